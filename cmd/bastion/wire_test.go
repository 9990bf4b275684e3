package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"database/sql"
	be "encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/bastionhq/bastion/ca"
)

// The wire tests: what no client may send is refused on the wire, and
// where rules apply one session cannot end or cancel another's connection
// on the shared upstream account. Real pgx, psql, go-sql-driver and
// mariadb against the shared PostgreSQL and MariaDB, and raw frames where
// no client would send them.

// wireRoles: developers (alice, mallory) work under a query rule, so the
// isolation applies to them.
const wireRoles = `
roles:
  developer:
    request:
      - targets: [pgwire, mywire]
        approvers: [lead]
    queries:
      - {name: no-drop, action: deny, commands: ["DROP *"]}
  lead:
    request:
      - targets: [pgwire, mywire]
        approvers: [lead]
  auditor:
    permissions: [audit]
`

func TestWire(t *testing.T) {
	pg, my := testPostgres(t), testMariaDB(t)
	// MySQL in clear on loopback for the raw client (mysqlRaw).
	b := startBastionWith(t, options{postgres: true, mysql: true, mysqlPlaintext: true, roles: wireRoles, targets: func(t *testing.T, _ *ca.Set) string {
		return fmt.Sprintf(`
targets:
  - {name: pgwire, kind: postgres, address: %q, database: postgres, username: postgres, password: %q, tls: require}
  - {name: mywire, kind: mysql, address: %q, database: mysql, username: %s, password: %q}
`, pg.Addr, pg.Password, my.Addr, my.User, my.Password)
	}})
	t.Run("postgres sessions cannot signal each other", func(t *testing.T) { testPGIsolation(t, b) })
	t.Run("mysql sessions cannot kill each other", func(t *testing.T) { testMySQLIsolation(t, b) })
	t.Run("postgres refuses malformed wire", func(t *testing.T) { testPGWire(t, b) })
	t.Run("mysql refuses malformed wire", func(t *testing.T) { testMySQLWire(t, b) })
	// The sessions ended for a violation are audited with it.
	for _, want := range []string{"protocol violation: the client sent ReadyForQuery", "protocol violation: mysql: packets out of order"} {
		waitFor(t, 20*time.Second, func() bool {
			return strings.Contains(b.mustRun("carol", "audit", "--type", "session.end", "--json"), want)
		})
	}
}

// pgSession connects user to pgwire and returns the connection and its
// backend's PID.
func pgSession(t *testing.T, b *testBastion, user string) (*pgx.Conn, dbToken, uint32) {
	t.Helper()
	tok := b.grantDB(t, user, "pgwire")
	conn, err := pgx.Connect(t.Context(), tok.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	var pid uint32
	if err := conn.QueryRow(t.Context(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return conn, tok, pid
}

func testPGIsolation(t *testing.T, b *testBastion) {
	a, aTok, aPID := pgSession(t, b, "alice")
	m, _, mPID := pgSession(t, b, "mallory")
	for _, q := range []string{
		fmt.Sprintf("SELECT pg_terminate_backend(%d)", mPID),
		fmt.Sprintf("SELECT pg_cancel_backend(%d)", mPID),
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()",
		fmt.Sprintf("DO $$BEGIN PERFORM pg_terminate_backend(%d); END$$", mPID),
	} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeDescribeExec} {
			_, err := a.Exec(t.Context(), q, mode)
			if pe := pgError(t, err); pe.Code != "42501" || !strings.Contains(pe.Message, "own backend") {
				t.Errorf("%s (%v): %s %s, want Bastion's refusal", q, mode, pe.Code, pe.Message)
			}
		}
	}
	// A bind parameter is only known when it runs: refused at Parse.
	if _, err := a.Exec(t.Context(), "SELECT pg_terminate_backend($1)", mPID); pgError(t, err).Code != "42501" {
		t.Errorf("pg_terminate_backend($1): %v, want Bastion's refusal", err)
	}
	// psql too.
	_, errOut, code := psql(t, aTok.URL, "-c", fmt.Sprintf("SELECT pg_terminate_backend(%d)", mPID))
	if code == 0 || !strings.Contains(errOut, "own backend") {
		t.Errorf("psql pg_terminate_backend: exit %d, %s", code, errOut)
	}
	var one int
	if err := m.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("mallory's session after alice's attempts: %v", err)
	}
	// Alice's own backend is hers to cancel: the statement is not
	// refused (PostgreSQL then cancels it, or it has ended already).
	_, err := a.Exec(t.Context(), fmt.Sprintf("SELECT pg_cancel_backend(%d)", aPID))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" {
		t.Fatalf("cancel of the session's own backend refused: %s", pe.Message)
	}
	// A cancel request (pgx sends one when the context ends) reaches the
	// session's own backend only.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err = a.Exec(ctx, "SELECT pg_sleep(60)")
	if err == nil {
		t.Fatal("pg_sleep(60) was not cancelled")
	}
	if err := m.QueryRow(t.Context(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("mallory's session after alice's cancel: %v", err)
	}
}

// mySession opens one connection of user to mywire and returns it and its
// target connection ID.
func mySession(t *testing.T, b *testBastion, user string) (*sql.Conn, dbToken, int64) {
	t.Helper()
	tok := b.grantDB(t, user, "mywire")
	c, err := tok.open(t, "").Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var id int64
	if err := c.QueryRowContext(t.Context(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return c, tok, id
}

func testMySQLIsolation(t *testing.T, b *testBastion) {
	a, aTok, aID := mySession(t, b, "alice")
	m, _, mID := mySession(t, b, "mallory")
	for _, q := range []string{
		fmt.Sprintf("KILL %d", mID),
		fmt.Sprintf("KILL QUERY %d", mID),
		fmt.Sprintf("KILL CONNECTION %d", mID),
		fmt.Sprintf("/*!KILL %d */", mID),
	} {
		_, err := a.ExecContext(t.Context(), q)
		if me := myError(t, err); me.Number != 1142 || !strings.Contains(me.Message, "own connection") {
			t.Errorf("%s: %d %s, want Bastion's refusal", q, me.Number, me.Message)
		}
	}
	_, errOut, code := mariadbCLI(t, aTok, "-e", fmt.Sprintf("KILL %d", mID))
	if code == 0 || !strings.Contains(errOut, "own connection") {
		t.Errorf("mariadb KILL: exit %d, %s", code, errOut)
	}
	var one int
	if err := m.QueryRowContext(t.Context(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("mallory's session after alice's KILLs: %v", err)
	}
	// Alice may kill her own query.
	if _, err := a.ExecContext(t.Context(), fmt.Sprintf("KILL QUERY %d", aID)); err != nil {
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number == 1142 {
			t.Fatalf("KILL QUERY of the session's own connection: %v", err)
		}
	}
	if err := m.QueryRowContext(t.Context(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("mallory's session: %v", err)
	}
}

// fatal08P01 reads the next message and checks it is a FATAL protocol
// violation naming want.
func fatal08P01(t *testing.T, fe *pgproto3.Frontend, want string) {
	t.Helper()
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("want a FATAL 08P01 naming %q, got %v", want, err)
		}
		if e, ok := msg.(*pgproto3.ErrorResponse); ok {
			if e.Severity != "FATAL" || e.Code != "08P01" || !strings.Contains(e.Message, want) {
				t.Fatalf("got %s %s %q, want FATAL 08P01 naming %q", e.Severity, e.Code, e.Message, want)
			}
			return
		}
	}
}

func testPGWire(t *testing.T, b *testBastion) {
	tok := b.grantDB(t, "alice", "pgwire")
	cfg, err := pgconn.ParseConfig(tok.URL)
	if err != nil {
		t.Fatal(err)
	}
	// After login: raw frames on a real session (pgconn logs in, then
	// hands over its connection).
	for _, tc := range []struct {
		name   string
		frames [][]byte
		want   string
	}{
		{"backend message", [][]byte{{'Z', 0, 0, 0, 5, 'I'}}, "ReadyForQuery"},
		{"unknown type", [][]byte{{'y', 0, 0, 0, 4}}, "unknown message type"},
		{"copy data outside copy", [][]byte{append([]byte{'d', 0, 0, 0, 7}, "1\tx"...)}, "CopyData outside COPY"},
		{"copy done after a select", [][]byte{mustEncode(t, &pgproto3.Query{String: "SELECT 1"}), {'c', 0, 0, 0, 4}}, "CopyDone outside COPY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := pgconn.ConnectConfig(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			hc, err := pc.Hijack()
			if err != nil {
				t.Fatal(err)
			}
			defer hc.Conn.Close()
			hc.Conn.SetDeadline(time.Now().Add(30 * time.Second))
			for _, f := range tc.frames {
				if _, err := hc.Conn.Write(f); err != nil {
					t.Fatal(err)
				}
			}
			fatal08P01(t, hc.Frontend, tc.want)
		})
	}
	// COPY FROM STDIN still works, pipelined by pgx (data before the
	// server's CopyInResponse).
	conn, err := pgx.Connect(t.Context(), tok.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), "CREATE TEMP TABLE wire_copy (id int, v text)"); err != nil {
		t.Fatal(err)
	}
	n, err := conn.CopyFrom(t.Context(), pgx.Identifier{"wire_copy"}, []string{"id", "v"}, pgx.CopyFromRows([][]any{{1, "a"}, {2, "b"}}))
	if err != nil || n != 2 {
		t.Fatalf("CopyFrom: %d rows, %v", n, err)
	}
	// psql's \copy waits for the server's CopyInResponse.
	out, errOut, code := psql(t, tok.URL, "-c", "CREATE TEMP TABLE c (v text)", "-c", `\copy c from stdin`, "-c", "SELECT count(*) FROM c")
	if f := strings.Fields(out); code != 0 || len(f) == 0 || f[len(f)-1] != "0" {
		t.Fatalf("psql \\copy: exit %d: %q %s", code, out, errOut)
	}
	// Before login: startup parameters given twice, GSSENCRequest in TLS.
	addr := b.dbAddr("postgres")
	t.Run("startup parameter twice", func(t *testing.T) {
		tc := rawTLS(t, addr, cfg.TLSConfig)
		body := be.BigEndian.AppendUint32(nil, 3<<16)
		for _, s := range []string{"user", "alice", "database", "pgwire", "user", "bob"} {
			body = append(append(body, s...), 0)
		}
		body = append(body, 0)
		if _, err := tc.Write(append(be.BigEndian.AppendUint32(nil, uint32(4+len(body))), body...)); err != nil {
			t.Fatal(err)
		}
		fatal08P01(t, pgproto3.NewFrontend(tc, tc), `"user" is given twice`)
	})
	t.Run("GSSENCRequest after TLS", func(t *testing.T) {
		tc := rawTLS(t, addr, cfg.TLSConfig)
		if _, err := tc.Write(be.BigEndian.AppendUint32(be.BigEndian.AppendUint32(nil, 8), 80877104)); err != nil {
			t.Fatal(err)
		}
		fatal08P01(t, pgproto3.NewFrontend(tc, tc), "GSSENCRequest after TLS")
	})
}

// rawTLS opens a connection to Bastion's PostgreSQL port and upgrades it
// to TLS with an SSLRequest.
func rawTLS(t *testing.T, addr string, cfg *tls.Config) *tls.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := nc.Write(be.BigEndian.AppendUint32(be.BigEndian.AppendUint32(nil, 8), 80877103)); err != nil {
		t.Fatal(err)
	}
	var s [1]byte
	if _, err := nc.Read(s[:]); err != nil || s[0] != 'S' {
		t.Fatalf("SSLRequest: %q %v", s[0], err)
	}
	tc := tls.Client(nc, cfg)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc
}

func mustEncode(t *testing.T, m pgproto3.FrontendMessage) []byte {
	t.Helper()
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mysqlRaw is a MySQL client of a few lines, logged in to Bastion in
// clear with mysql_native_password: it sends what go-sql-driver never
// would.
type mysqlRaw struct{ nc net.Conn }

func dialMySQLRaw(t *testing.T, tok dbToken) *mysqlRaw {
	t.Helper()
	nc, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", tok.Host, tok.Port), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	m := &mysqlRaw{nc: nc}
	greeting, _ := m.read(t)
	// Protocol 10: version, NUL, connection ID, 8 bytes of nonce, filler,
	// capabilities, charset, status, capabilities, length, 10 reserved,
	// the rest of the nonce.
	i := bytes.IndexByte(greeting, 0) + 1 + 4
	nonce := append([]byte(nil), greeting[i:i+8]...)
	i += 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
	nonce = append(nonce, greeting[i:i+12]...)
	h1 := sha1.Sum([]byte(tok.Password))
	h2 := sha1.Sum(h1[:])
	h3 := sha1.Sum(append(nonce, h2[:]...))
	auth := make([]byte, 20)
	for k := range auth {
		auth[k] = h1[k] ^ h3[k]
	}
	const caps = 1<<0 | 1<<3 | 1<<9 | 1<<13 | 1<<15 | 1<<19 // long password, with db, 4.1, transactions, secure, plugin auth
	resp := be.LittleEndian.AppendUint32(nil, caps)
	resp = be.LittleEndian.AppendUint32(resp, 1<<24)
	resp = append(resp, 45)
	resp = append(resp, make([]byte, 23)...)
	resp = append(append(resp, tok.User...), 0)
	resp = append(append(resp, byte(len(auth))), auth...)
	resp = append(append(resp, tok.Database...), 0)
	resp = append(append(resp, "mysql_native_password"...), 0)
	m.write(t, 1, resp)
	if ok, _ := m.read(t); len(ok) == 0 || ok[0] != 0 {
		t.Fatalf("login: %q", ok)
	}
	return m
}

func (m *mysqlRaw) write(t *testing.T, seq byte, payload []byte) {
	t.Helper()
	n := len(payload)
	if _, err := m.nc.Write(append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, payload...)); err != nil {
		t.Fatal(err)
	}
}

func (m *mysqlRaw) read(t *testing.T) ([]byte, byte) {
	t.Helper()
	var h [4]byte
	if _, err := io.ReadFull(m.nc, h[:]); err != nil {
		t.Fatalf("read: %v", err)
	}
	p := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	if _, err := io.ReadFull(m.nc, p); err != nil {
		t.Fatalf("read: %v", err)
	}
	return p, h[3]
}

// wantErr reads an ERR packet with code and a message naming want.
func (m *mysqlRaw) wantErr(t *testing.T, code uint16, want string) {
	t.Helper()
	p, _ := m.read(t)
	if len(p) < 9 || p[0] != 0xff || be.LittleEndian.Uint16(p[1:]) != code || !strings.Contains(string(p[9:]), want) {
		t.Fatalf("got %q, want error %d naming %q", p, code, want)
	}
}

func testMySQLWire(t *testing.T, b *testBastion) {
	tok := b.grantDB(t, "alice", "mywire")
	t.Run("statement never prepared", func(t *testing.T) {
		m := dialMySQLRaw(t, tok)
		for _, cmd := range []byte{0x17, 0x1a, 0x1c} { // execute, reset, fetch
			m.write(t, 0, append([]byte{cmd}, 77, 0, 0, 0, 0, 1, 0, 0, 0))
			m.wantErr(t, 1243, "unknown prepared statement handler (77)")
		}
		// Long data and close of it get no answer; the session goes on.
		m.write(t, 0, []byte{0x18, 77, 0, 0, 0, 0, 0, 'x'})
		m.write(t, 0, []byte{0x19, 77, 0, 0, 0})
		m.write(t, 0, []byte{0x0e}) // COM_PING
		if p, _ := m.read(t); len(p) == 0 || p[0] != 0 {
			t.Fatalf("ping: %q", p)
		}
	})
	t.Run("command not at sequence 0", func(t *testing.T) {
		m := dialMySQLRaw(t, tok)
		m.write(t, 5, append([]byte{0x03}, "SELECT 1"...))
		m.wantErr(t, 1156, "sequence number 0, got 5")
		if _, err := m.nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("after the refusal: %v, want the connection closed", err)
		}
	})
}
