// Package transfer reports the file transfers inside an SSH session
// channel, for the session recording: SFTP (the "sftp" subsystem, which
// sftp(1) and the default scp(1) speak) and the legacy scp protocol (scp -O,
// an exec of "scp -t" or "scp -f" on the target).
//
// A decoder watches copies of the two byte streams of one channel: the
// proxy hands it each chunk it relays (FromClient for what the user sent,
// FromServer for what the target sent) and gets back Events through a
// callback. It never changes, holds up or fails the streams. It is cheap:
// it keeps at most one bounded packet header or control line per
// direction, counts file contents without storing them, and bounds what it
// tracks (outstanding requests, open handles, path lengths). What it cannot
// follow (a malformed stream, a peer that exceeds a bound) ends decoding for
// that channel with one Event{Op: "decode-error"}, while the proxy keeps
// relaying; the caller decides whether that ends the session.
//
// Each chunk must be handed over before it is forwarded (io.TeeReader on
// the source does this), so that the decoder sees a request before its
// reply. FromClient and FromServer may be called from different goroutines.
// When the channel closes, End reports what was left unfinished (a file
// still open, with the bytes seen so far).
//
// Which decoder a channel needs: NewSFTP for the "sftp" subsystem, NewSCP
// for an exec whose command it recognises.
//
// The package does no I/O and applies no policy.
package transfer
