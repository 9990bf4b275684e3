package mysql

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/bastionhq/bastion/internal/rawconn"
)

// Target is a MySQL or MariaDB server Bastion logs in to, with credentials
// from its configuration. Users never see them.
type Target struct {
	Name     string
	Address  string // host:port
	Database string // the database upstream
	Username string
	Password string
	// TLS is the client configuration for the connection to the target;
	// nil connects in clear. Only a configuration that verifies the
	// server (InsecureSkipVerify unset) lets the password itself go over
	// it (see upstreamauth.go).
	TLS *tls.Config
	// ServerPublicKey is the target's pinned RSA key: without TLS, the
	// password is encrypted for it when the target asks for the password
	// itself; nil refuses that.
	ServerPublicKey *rsa.PublicKey
	// RedactParameters keeps bound parameters out of the recording.
	RedactParameters bool
	// Accounts, when set, gives each grant's sessions an upstream account
	// of their own (admin.go); Username and Password are then the admin
	// account that provisions them.
	Accounts Accounts
}

// dialTimeout bounds connecting and logging in to a target.
const dialTimeout = 10 * time.Second

// ioBuffer is the size of the read and write buffers of each side.
const ioBuffer = 64 << 10

// upstreamConn is an authenticated connection to a target.
type upstreamConn struct {
	conn    net.Conn
	r       *packetReader
	w       *packetWriter
	caps    uint32 // negotiated
	version string
	status  uint16
}

func (u *upstreamConn) Close() error { return u.conn.Close() }

// mustShare are the capabilities that change the shape of responses: when
// the client negotiated one, the target must have it too, since Bastion
// relays responses unchanged.
const mustShare = capDeprecateEOF | capSessionTrack | capMultiResults | capPSMultiResults | capMultiStatements | capProtocol41

// dialUpstream connects and logs in to t with the client's negotiated
// capabilities and character set.
func dialUpstream(ctx context.Context, t Target, clientCaps uint32, charset byte) (*upstreamConn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.Address)
	conn = rawconn.Wrap(conn)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	u, err := login(conn, t, clientCaps, charset)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return u, nil
}

func login(conn net.Conn, t Target, clientCaps uint32, charset byte) (*upstreamConn, error) {
	u := &upstreamConn{conn: conn, r: newPacketReader(conn, ioBuffer), w: newPacketWriter(conn, ioBuffer)}
	p, _, err := u.r.readMessage(1 << 16)
	if err != nil {
		return nil, fmt.Errorf("read greeting: %w", err)
	}
	hs, err := parseHandshakeV10(p)
	if err != nil {
		return nil, err
	}
	u.version = hs.version
	caps := clientCaps&serverCaps | requiredCaps | capPluginAuth | capPluginAuthLenEnc
	caps &^= capConnectAttrs | capLocalFiles | capCompress | capSSL
	if t.Database != "" {
		caps |= capConnectWithDB
	} else {
		caps &^= capConnectWithDB
	}
	if missing := caps & mustShare &^ hs.caps; missing != 0 {
		return nil, fmt.Errorf("the target lacks capabilities %#x the client uses", missing)
	}
	caps &= hs.caps | capConnectWithDB
	// Session tracking tells Bastion the session's sql_mode (sqlmode.go);
	// the relay takes it out for a client that did not ask for it.
	caps |= hs.caps & capSessionTrack
	seq := u.r.seq + 1
	if t.TLS != nil {
		if hs.caps&capSSL == 0 {
			return nil, errors.New("the target does not offer TLS")
		}
		caps |= capSSL
		req := &handshakeResponse{caps: caps, maxPkt: maxPayload, charset: charset}
		if err := u.w.send(seq, req.marshal()); err != nil {
			return nil, err
		}
		seq++
		tc := tls.Client(conn, t.TLS)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS: %w", err)
		}
		u.conn = tc
		u.r = newPacketReader(tc, ioBuffer)
		u.w = newPacketWriter(tc, ioBuffer)
	}
	u.caps = caps
	a := &upstreamAuth{t: t, link: linkOf(t), nonce: hs.nonce}
	plugin := hs.plugin
	if plugin != pluginCachingSHA {
		plugin = pluginNative
	}
	resp := &handshakeResponse{caps: caps, maxPkt: maxPayload, charset: charset, user: t.Username,
		auth: scramble(plugin, t.Password, a.nonce), database: t.Database, plugin: plugin}
	if err := u.w.send(seq, resp.marshal()); err != nil {
		return nil, err
	}
	for range 5 {
		p, _, err := u.r.readMessage(1 << 16)
		if err != nil {
			return nil, fmt.Errorf("read login response: %w", err)
		}
		var reply []byte
		switch {
		case len(p) == 0:
			return nil, errMalformed
		case p[0] == iOK:
			_, u.status, _ = okInfo(p)
			return u, nil
		case p[0] == iERR:
			return nil, targetRefusal(t.Name, p)
		case p[0] == iEOF: // auth switch
			name, n, ok := readNulString(p[1:])
			if !ok {
				return nil, errMalformed
			}
			a.nonce = bytes.TrimSuffix(p[1+n:], []byte{0})
			reply, err = a.answer(string(name))
		case p[0] == 0x01 && len(p) == 2 && p[1] == 0x03: // caching_sha2 fast path succeeded
			continue
		case p[0] == 0x01 && len(p) == 2 && p[1] == 0x04: // full authentication
			reply, err = a.password(pluginCachingSHA)
		default:
			return nil, fmt.Errorf("unexpected login packet %#x", p[0])
		}
		if err != nil {
			return nil, err
		}
		if err := u.w.send(u.r.seq+1, reply); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("login did not finish")
}

// scramble answers a nonce with the password, as plugin does.
func scramble(plugin, password string, nonce []byte) []byte {
	if password == "" {
		return nil
	}
	nonce = nonce[:min(len(nonce), 20)]
	if plugin == pluginCachingSHA {
		h1 := sha256.Sum256([]byte(password))
		h2 := sha256.Sum256(h1[:])
		h := sha256.New()
		h.Write(h2[:])
		h.Write(nonce)
		out := make([]byte, sha256.Size)
		subtle.XORBytes(out, h1[:], h.Sum(nil))
		return out
	}
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	h := sha1.New()
	h.Write(nonce)
	h.Write(h2[:])
	out := make([]byte, sha1.Size)
	subtle.XORBytes(out, h1[:], h.Sum(nil))
	return out
}
