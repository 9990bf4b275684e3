package transfer

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// SFTP packet types (draft-ietf-secsh-filexfer-02 §3).
const (
	fxpInit          = 1
	fxpVersion       = 2
	fxpOpen          = 3
	fxpClose         = 4
	fxpRead          = 5
	fxpWrite         = 6
	fxpFsetstat      = 10
	fxpSetstat       = 9
	fxpRemove        = 13
	fxpMkdir         = 14
	fxpRmdir         = 15
	fxpRealpath      = 16
	fxpStat          = 17
	fxpRename        = 18
	fxpSymlink       = 20
	fxpStatus        = 101
	fxpHandle        = 102
	fxpData          = 103
	fxpName          = 104
	fxpAttrs         = 105
	fxpExtended      = 200
	fxpExtendedReply = 201
)

// Open flags (pflags of SSH_FXP_OPEN).
const (
	fxfRead  = 0x01
	fxfWrite = 0x02
)

// Status codes of SSH_FXP_STATUS.
const (
	fxOK  = 0
	fxEOF = 1
)

var statusText = [...]string{
	"ok", "end of file", "no such file", "permission denied", "failure",
	"bad message", "no connection", "connection lost", "operation unsupported",
}

// statusError is the Error of an Event for a failed status: the server's
// message, or the code's name when it sent none.
func statusError(code uint32, msg []byte) string {
	if len(msg) > 0 {
		return string(msg)
	}
	if int(code) < len(statusText) {
		return statusText[code]
	}
	return fmt.Sprintf("status %d", code)
}

// Sizes of what the decoder keeps of a packet.
const (
	// maxPacket is the longest packet: OpenSSH's SFTP_MAX_MSG_LENGTH, which
	// both its client and its server enforce.
	maxPacket = 256 << 10

	// maxHandle is the longest handle (draft-02 §3: at most 256 bytes).
	maxHandle = 256

	// maxMessage is the most of a status message an Event carries.
	maxMessage = 512

	// handlePrefix holds type, id, a handle and the fixed fields after it
	// (WRITE: offset and data length).
	handlePrefix = 1 + 4 + 4 + maxHandle + 8 + 4

	// pathPrefix holds type, id, an extension name and two paths of MaxPath
	// with their lengths, and the open flags after them.
	pathPrefix = 1 + 4 + 4 + 64 + 2*(4+MaxPath) + 4
)

// framer splits one direction of an SFTP stream into packets. Of each packet
// it keeps the first bytes the decoder asks for and counts the rest without
// storing it.
type framer struct {
	hdr  [4]byte
	nhdr int    // bytes of the length seen
	body []byte // kept bytes of the current packet, from its type byte
	want int    // how many to keep; 0 until the type byte is seen
	left int64  // bytes of the current packet still to come
}

var errShort = errors.New("packet too short")

// reader reads the fields of a packet from its kept bytes. A field that ran
// past them makes the reader short: later fields are unknown (zero), which
// is not an error. A field that runs past the packet is an error.
type reader struct {
	b     []byte
	rest  int64 // bytes of the packet after b that were not kept
	short bool
	err   error
}

func (r *reader) take(n int) []byte {
	if r.short || r.err != nil {
		return nil
	}
	if len(r.b) < n {
		if int64(len(r.b))+r.rest < int64(n) {
			r.err = errShort
			return nil
		}
		r.short = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// str reads a string and returns at most max bytes of it; cut reports that
// the string was longer, ran past the kept bytes, or is unknown.
func (r *reader) str(max int) (s []byte, cut bool) {
	n := int64(r.u32())
	if r.err != nil {
		return nil, false
	}
	if r.short {
		return nil, true
	}
	if n > int64(len(r.b))+r.rest {
		r.err = fmt.Errorf("string of %d bytes runs past the packet", n)
		return nil, false
	}
	if n > int64(len(r.b)) {
		s, cut = r.b, true
		r.rest -= n - int64(len(r.b))
		r.b = nil
		r.short = true
	} else {
		s, r.b = r.b[:n], r.b[n:]
	}
	if len(s) > max {
		s, cut = s[:max], true
	}
	return s, cut
}

// length reads a string's length, for contents that are counted and not
// kept, and checks that the contents fit in the packet.
func (r *reader) length() int64 {
	n := int64(r.u32())
	if r.err != nil || r.short {
		return 0
	}
	if n > int64(len(r.b))+r.rest {
		r.err = fmt.Errorf("string of %d bytes runs past the packet", n)
		return 0
	}
	return n
}
