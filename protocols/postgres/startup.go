package postgres

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
)

// Startup packet codes (the int32 after the length).
const (
	codeSSLRequest    = 80877103
	codeGSSENCRequest = 80877104
	codeCancelRequest = 80877102
	protocol30        = 3 << 16
	protocol32        = 3<<16 | 2
)

// maxStartupPacket bounds a startup packet, as PostgreSQL does.
const maxStartupPacket = 10000

// startup is what the client asked for in its StartupMessage.
type startup struct {
	protocol uint32 // protocol30 or protocol32, after negotiation
	user     string
	database string
	params   map[string]string // the allowed run-time parameters
	// unsupported are the protocol options (_pq_.*) the client asked for:
	// Bastion supports none.
	unsupported []string
}

// allowedParams are the run-time parameters a client may set at startup;
// they reach the target as given. standard_conforming_strings is not among
// them: turned off, the server would read strings differently from the
// rules' parser. Keys are lower case (PostgreSQL's
// parameter names are case-insensitive).
var allowedParams = map[string]bool{
	"application_name": true, "fallback_application_name": true, "client_encoding": true,
	"datestyle": true, "timezone": true, "search_path": true, "extra_float_digits": true,
	"intervalstyle": true, "bytea_output": true,
	"lc_messages": true, "lc_monetary": true, "lc_numeric": true, "lc_time": true,
	"statement_timeout": true, "lock_timeout": true, "idle_in_transaction_session_timeout": true,
	"default_transaction_isolation": true, "default_transaction_read_only": true,
	"default_transaction_deferrable": true, "geqo": true, "jit": true, "work_mem": true,
	"client_min_messages": true, "timezone_abbreviations": true, "xmloption": true,
}

// startupError is a refusal during startup whose message is safe to show.
type startupError struct {
	code string
	msg  string
}

func (e *startupError) Error() string { return e.msg }

func refuseStartup(code, format string, args ...any) error {
	return &startupError{code: code, msg: fmt.Sprintf(format, args...)}
}

// cancelRequest is a CancelRequest: the process ID and key Bastion gave
// the client.
type cancelRequest struct {
	pid uint32
	key []byte
}

// readStartupPacket reads one length-prefixed startup packet.
func readStartupPacket(r io.Reader) (code uint32, body []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := int(int32(binary.BigEndian.Uint32(hdr[:4])))
	if n < 8 || n > maxStartupPacket {
		return 0, nil, fmt.Errorf("%w: startup packet of %d bytes", errMalformed, n)
	}
	body = make([]byte, n-8)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return binary.BigEndian.Uint32(hdr[4:]), body, nil
}

// parseStartup decodes a StartupMessage of any 3.x version and checks its
// parameters against the allow-list.
func parseStartup(version uint32, body []byte) (*startup, error) {
	if version>>16 != 3 {
		return nil, refuseStartup(codeProtocolViolation, "unsupported frontend protocol %d.%d: Bastion supports 3.0 to 3.2", version>>16, version&0xffff)
	}
	st := &startup{protocol: min(version, protocol32), params: map[string]string{}}
	seen := map[string]bool{}
	if version&0xffff == 1 {
		st.protocol = protocol30 // 3.1 was never used; 3.2 changed the cancel key
	}
	for {
		k, rest, err := cstring(body)
		if err != nil {
			return nil, fmt.Errorf("startup: %w", err)
		}
		body = rest
		if k == "" {
			break
		}
		v, rest, err := cstring(body)
		if err != nil {
			return nil, fmt.Errorf("startup: %w", err)
		}
		body = rest
		lk := strings.ToLower(k)
		if seen[lk] {
			// PostgreSQL keeps the last, a check may have read the first.
			return nil, refuseStartup(codeProtocolViolation, "the startup parameter %q is given twice", k)
		}
		seen[lk] = true
		switch {
		case lk == "user":
			st.user = v
		case lk == "database":
			st.database = v
		case strings.HasPrefix(lk, "_pq_."):
			st.unsupported = append(st.unsupported, k)
		case lk == "options":
			return nil, refuseStartup(codeInsufficientPrivilege, "the startup parameter \"options\" is not allowed through Bastion (set parameters with SET, or as separate startup parameters)")
		case lk == "role" || lk == "session_authorization" || lk == "replication" || lk == "is_superuser":
			return nil, refuseStartup(codeInsufficientPrivilege, "the startup parameter %q is not allowed through Bastion: the target's role is fixed by Bastion", k)
		case allowedParams[lk]:
			st.params[k] = v
		default:
			return nil, refuseStartup(codeInsufficientPrivilege, "the startup parameter %q is not allowed through Bastion", k)
		}
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("startup: %w: trailing bytes", errMalformed)
	}
	if st.user == "" {
		return nil, refuseStartup(codeInvalidAuthorization, "no user name in the startup packet")
	}
	if st.database == "" {
		st.database = st.user
	}
	sort.Strings(st.unsupported)
	return st, nil
}

// negotiateVersion encodes NegotiateProtocolVersion for st, or nil when
// the client asked for what Bastion speaks.
func negotiateVersion(requested uint32, st *startup) []byte {
	if requested == st.protocol && len(st.unsupported) == 0 {
		return nil
	}
	body := binary.BigEndian.AppendUint32(nil, st.protocol&0xffff)
	body = binary.BigEndian.AppendUint32(body, uint32(len(st.unsupported)))
	for _, o := range st.unsupported {
		body = append(body, cstr(o)...)
	}
	return appendMsg(nil, msgNegotiateVersion, body)
}

// handshake reads startup packets until a StartupMessage: it answers
// SSLRequest with TLS and GSSENCRequest with 'N'. It returns the client
// connection (TLS by then, or a cancel request's plain one), and either
// the startup or the cancel request.
func (c *conn) handshake() (*startup, *cancelRequest, error) {
	// A startup packet begins with its length, whose first byte is 0 for
	// any length PostgreSQL accepts; a TLS handshake record begins with
	// 0x16: PostgreSQL 17's direct TLS (sslnegotiation=direct).
	var first [1]byte
	if _, err := io.ReadFull(c.nc, first[:]); err != nil {
		return nil, nil, fmt.Errorf("startup: %w", err)
	}
	c.nc = &prefixConn{Conn: c.nc, prefix: first[:]}
	var r io.Reader = c.nc
	tlsDone := false
	if first[0] == tlsHandshakeRecord {
		tc := tls.Server(c.nc, c.srv.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			return nil, nil, fmt.Errorf("direct tls: %w", err)
		}
		c.nc, r, tlsDone = tc, tc, true
		if tc.ConnectionState().NegotiatedProtocol != alpnPostgres {
			return nil, nil, refuseStartup(codeProtocolViolation, "direct TLS without the ALPN protocol %q", alpnPostgres)
		}
	}
	for {
		code, body, err := readStartupPacket(r)
		if err != nil {
			return nil, nil, fmt.Errorf("startup: %w", err)
		}
		switch {
		case code == codeSSLRequest && len(body) == 0:
			if tlsDone {
				return nil, nil, refuseStartup(codeProtocolViolation, "SSLRequest after TLS")
			}
			if _, err := c.nc.Write([]byte{'S'}); err != nil {
				return nil, nil, err
			}
			tc := tls.Server(c.nc, c.srv.cfg.TLS)
			if err := tc.Handshake(); err != nil {
				return nil, nil, fmt.Errorf("tls: %w", err)
			}
			c.nc, r, tlsDone = tc, tc, true
		case code == codeGSSENCRequest && len(body) == 0:
			if tlsDone {
				return nil, nil, refuseStartup(codeProtocolViolation, "GSSENCRequest after TLS")
			}
			if _, err := c.nc.Write([]byte{'N'}); err != nil {
				return nil, nil, err
			}
		case code == codeCancelRequest:
			if len(body) < 8 || len(body) > 4+256 {
				return nil, nil, fmt.Errorf("%w: cancel request", errMalformed)
			}
			return nil, &cancelRequest{pid: binary.BigEndian.Uint32(body), key: body[4:]}, nil
		case code>>16 == 3:
			st, err := parseStartup(code, body)
			if err != nil {
				return nil, nil, err
			}
			c.requested = code
			if !tlsDone {
				return st, nil, refuseStartup(codeInvalidAuthorization, "Bastion requires TLS: connect with sslmode=require or verify-full")
			}
			c.br = bufio.NewReaderSize(c.nc, relayBufferSize)
			c.bw = bufio.NewWriterSize(c.nc, relayBufferSize)
			return st, nil, nil
		default:
			return nil, nil, refuseStartup(codeProtocolViolation, "unsupported startup request %d", code)
		}
	}
}

// Direct TLS.
const (
	tlsHandshakeRecord = 0x16 // the first byte of a TLS ClientHello
	alpnPostgres       = "postgresql"
)

// prefixConn is a connection whose first bytes were already read: reads
// return them first.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// cancel forwards a cancel request to the target of the connection it
// names, if its key matches. The client hears nothing either way, as from
// PostgreSQL.
func (s *Server) cancel(req *cancelRequest) {
	c := s.cancelTarget(req.pid)
	if c == nil || subtle.ConstantTimeCompare(c.key, req.key) != 1 {
		s.log.Info("cancel request for no live connection", "pid", req.pid)
		return
	}
	c.log.Info("forwarding a cancel request")
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandshakeTimeout)
	defer cancel()
	if err := c.up.cancel(ctx); err != nil {
		c.log.Warn("forward cancel request", "err", err)
	}
}

// isClosed reports whether err is the end of a connection rather than a
// failure worth logging.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}
