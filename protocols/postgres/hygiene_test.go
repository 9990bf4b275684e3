package postgres

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/internal/leakcheck"
	"github.com/jackc/pgx/v5/pgproto3"
)

// TestClientMessageTypes: after login, exactly the frontend message types
// of protocol 3 pass; backend-only and unknown types are a protocol
// violation that names the message.
func TestClientMessageTypes(t *testing.T) {
	frontend := "QPBESCFXDHdcf"
	for b := 0; b < 256; b++ {
		typ := byte(b)
		err := checkClientType(typ)
		if strings.IndexByte(frontend, typ) >= 0 {
			if err != nil {
				t.Errorf("%q refused: %v", typ, err)
			}
			continue
		}
		var ee *endError
		if !errors.As(err, &ee) || ee.code != codeProtocolViolation {
			t.Fatalf("%q: %v, want a protocol violation", typ, err)
		}
	}
	for _, tc := range []struct {
		name string
		typ  byte
		want string
	}{
		{"ready for query", 'Z', "ReadyForQuery"},
		{"authentication", 'R', "Authentication"},
		{"password after login", 'p', "PasswordMessage"},
		{"unknown", 'y', `unknown message type 'y'`},
		{"nul", 0, `unknown message type '\x00'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkClientType(tc.typ); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want it to name %s", err, tc.want)
			}
		})
	}
}

// TestCopyState: copy-in messages pass only inside a COPY the client
// started or the target opened, until CopyDone, CopyFail or another
// message.
func TestCopyState(t *testing.T) {
	type step struct {
		client  byte // a client message, or 0
		copyStm bool // the client message is a COPY statement
		server  bool // the target sends CopyInResponse
		refused bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"copy data with no copy", []step{{client: 'd', refused: true}}},
		{"copy done with no copy", []step{{client: 'c', refused: true}}},
		{"copy fail with no copy", []step{{client: 'f', refused: true}}},
		{"after a select", []step{{client: 'Q'}, {client: 'd', refused: true}}},
		{"target opened", []step{{client: 'Q'}, {server: true}, {client: 'd'}, {client: 'd'}, {client: 'c'}}},
		{"pipelined after the statement", []step{{client: 'Q', copyStm: true}, {client: 'd'}, {client: 'c'}, {server: true}, {client: 'Q'}, {client: 'd', refused: true}}},
		{"after copy done", []step{{client: 'Q', copyStm: true}, {client: 'd'}, {client: 'c'}, {client: 'd', refused: true}}},
		{"after copy fail", []step{{client: 'Q'}, {server: true}, {client: 'f'}, {client: 'c', refused: true}}},
		{"sync and flush keep it", []step{{client: 'Q'}, {server: true}, {client: 'S'}, {client: 'H'}, {client: 'd'}}},
		{"a query ends it", []step{{client: 'Q'}, {server: true}, {client: 'Q'}, {client: 'd', refused: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s copyState
			for i, st := range tc.steps {
				if st.server {
					s.serverOpen.Store(true)
					continue
				}
				s.clientMessage(st.client)
				var err error
				if isCopyMessage(st.client) {
					err = s.check(st.client)
				} else if st.copyStm {
					s.expected = true
				}
				if (err != nil) != st.refused {
					t.Fatalf("step %d (%q): %v, refused want %v", i, st.client, err, st.refused)
				}
			}
		})
	}
}

func TestStartsCopy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stmts []policy.Statement
		text  string
		want  bool
	}{
		{"plain", nil, "COPY t FROM STDIN", true},
		{"lower case after comments", nil, "-- load\n/* x */ copy t from stdin", true},
		{"select", nil, "SELECT 1", false},
		{"parsed second statement", []policy.Statement{{Command: "SELECT"}, {Command: "COPY"}}, "SELECT 1; COPY t FROM STDIN", true},
		{"copy in a string", nil, "SELECT 'COPY'", false},
		{"unterminated comment", nil, "/* COPY", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := startsCopy(tc.stmts, tc.text); got != tc.want {
				t.Fatalf("startsCopy = %v, want %v", got, tc.want)
			}
		})
	}
}

// rawStartup encodes a StartupMessage with params in order (pgproto3's map
// cannot hold a name twice).
func rawStartup(params ...string) []byte {
	body := binary.BigEndian.AppendUint32(nil, protocol30)
	for _, p := range params {
		body = append(body, cstr(p)...)
	}
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(4+len(body))), body...)
}

// TestDuplicateStartupParameters: a name given twice, in any case, is
// refused: PostgreSQL keeps the last value, a check may have read the
// first.
func TestDuplicateStartupParameters(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params []string
		dup    bool
	}{
		{"distinct", []string{"user", "alice", "database", "orders", "application_name", "x"}, false},
		{"user twice", []string{"user", "alice", "user", "postgres"}, true},
		{"database in another case", []string{"user", "alice", "database", "orders", "DataBase", "other"}, true},
		{"search_path twice", []string{"user", "alice", "search_path", "public", "search_path", "evil"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, err := readStartupPacket(bytes.NewReader(rawStartup(tc.params...)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = parseStartup(code, body)
			var se *startupError
			isDup := errors.As(err, &se) && se.code == codeProtocolViolation && strings.Contains(se.msg, "given twice")
			if isDup != tc.dup {
				t.Fatalf("err %v, duplicate refusal want %v", err, tc.dup)
			}
		})
	}
}

// hygieneSeeds are client messages the relay refuses after login.
func hygieneSeeds(f *testing.F) {
	for _, m := range []pgproto3.BackendMessage{
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
		&pgproto3.AuthenticationOk{},
		&pgproto3.CopyInResponse{},
	} {
		b, err := m.Encode(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(appendMsg(nil, msgCopyDone))
	f.Add(appendMsg(nil, msgCopyFail, cstr("abort")))
	f.Add(appendMsg(nil, 'y', []byte("unknown")))
}

// TestGSSENCAfterTLS: a GSSENCRequest (or a second SSLRequest) inside
// TLS is refused with protocol_violation before any StartupMessage.
func TestGSSENCAfterTLS(t *testing.T) {
	for _, tc := range []struct {
		name string
		code uint32
		want string
	}{
		{"gssenc", codeGSSENCRequest, "GSSENCRequest after TLS"},
		{"second ssl", codeSSLRequest, "SSLRequest after TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer leakcheck.Check(t)
			cert, roots := testTLS(t)
			server, client := net.Pipe()
			defer client.Close()
			c := &conn{srv: &Server{cfg: Config{TLS: &tls.Config{Certificates: []tls.Certificate{*cert}}}}, nc: server}
			done := make(chan error, 1)
			go func() {
				_, _, err := c.handshake()
				server.Close()
				done <- err
			}()
			request := func(w io.Writer, code uint32) {
				if _, err := w.Write(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 8), code)); err != nil {
					t.Fatal(err)
				}
			}
			request(client, codeSSLRequest)
			var answer [1]byte
			if _, err := io.ReadFull(client, answer[:]); err != nil || answer[0] != 'S' {
				t.Fatalf("SSLRequest answered %q, %v", answer[0], err)
			}
			tc2 := tls.Client(client, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
			if err := tc2.Handshake(); err != nil {
				t.Fatal(err)
			}
			request(tc2, tc.code)
			err := <-done
			var se *startupError
			if !errors.As(err, &se) || se.code != codeProtocolViolation || se.msg != tc.want {
				t.Fatalf("handshake: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestSignalRefusal: only the session's own backend may be terminated or
// cancelled; another PID, or one that is not a constant, is refused.
func TestSignalRefusal(t *testing.T) {
	const own = 4242
	for _, tc := range []struct {
		name, sql string
		refused   bool
	}{
		{"own by pid", "SELECT pg_cancel_backend(4242)", false},
		{"own by function", "SELECT pg_terminate_backend(pg_backend_pid())", false},
		{"another", "SELECT pg_terminate_backend(4243)", true},
		{"another cancelled", "SELECT pg_cancel_backend(1)", true},
		{"all of them", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity", true},
		{"own and another", "SELECT pg_cancel_backend(4242), pg_cancel_backend(17)", true},
		{"none", "SELECT 1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if why := signalRefusal(tc.sql, own); (why != "") != tc.refused {
				t.Fatalf("refusal %q, want refused %v", why, tc.refused)
			}
		})
	}
	for _, sql := range []string{"SELECT pg_terminate_backend(1)", `SELECT U&"pg_terminate\005fbackend"(1)`, `SELECT dblink('c', E'select pg_terminate\x5fbackend(1)')`} {
		if !maySignal(sql) {
			t.Errorf("maySignal(%q) = false", sql)
		}
	}
}
