package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/dbauth"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
)

// The front end's own tests: authentication plugins, TLS, refused
// commands and the end of a grant, against a real MariaDB (one for the
// package) with a fake access service.

var mariadb *harness.MariaDB

func TestMain(m *testing.M) {
	code := m.Run()
	if mariadb != nil {
		mariadb.Stop()
	}
	os.Exit(code)
}

var mariadbOnce sync.Once

func testMariaDB(t *testing.T) *harness.MariaDB {
	t.Helper()
	var err error
	mariadbOnce.Do(func() {
		mariadb, err = harness.StartMariaDB(context.Background(), harness.MariaDBConfig{Databases: []string{"shop"}})
	})
	if err != nil || mariadb == nil {
		t.Fatalf("start mariadb: %v", err)
	}
	return mariadb
}

const secret = "the-jit-secret"

// fakeAccess is an access service with one user, alice, holding secret for
// shop, whose grant holds until revoked is set.
type fakeAccess struct {
	revoked   atomic.Bool
	storeDown atomic.Bool   // CheckGrant fails with an error that is not a refusal
	ends      time.Duration // how long grants last; 0: an hour
	mu        sync.Mutex
	events    []audit.Event
	// auditFails makes Audit fail, as when the store cannot take events.
	auditFails bool
}

func (f *fakeAccess) DBSecretFor(_ context.Context, in access.DBLogin) (*store.DBSecret, error) {
	if in.User != "alice" || in.Target != "shop" {
		return nil, fmt.Errorf("%w: none", access.ErrNoDBSecret)
	}
	v := dbauth.Derive(secret)
	return &store.DBSecret{ID: 1, RequestID: 7, User: "alice", MySQLNative: v.MySQLNative, MySQLSHA2: v.MySQLSHA2,
		ExpiresAt: time.Now().Add(time.Hour)}, nil
}

func (f *fakeAccess) DBLoginFailed(_ context.Context, in access.DBLogin, why error) {
	f.Record(context.Background(), access.Actor{User: in.User}, audit.Event{Type: audit.Login, Outcome: audit.OutcomeRefused, Reason: why.Error()})
}

func (f *fakeAccess) AuthorizeDB(_ context.Context, in access.DBLogin, _ *store.DBSecret) (*access.Grant, error) {
	if f.revoked.Load() {
		return nil, &policy.Refusal{Reason: "request 7 is revoked"}
	}
	ends := f.ends
	if ends == 0 {
		ends = time.Hour
	}
	return &access.Grant{User: in.User, Target: in.Target, RequestID: 7, Ends: time.Now().Add(ends)}, nil
}

func (f *fakeAccess) CheckGrant(context.Context, *access.Grant) error {
	if f.revoked.Load() {
		return &policy.Refusal{Reason: "request 7 was revoked"}
	}
	if f.storeDown.Load() {
		return errors.New("sqlite: database is locked")
	}
	return nil
}

func (f *fakeAccess) Record(_ context.Context, _ access.Actor, e audit.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

// Audit fails when auditFails is set, as the access service does when the
// store cannot take an event.
func (f *fakeAccess) Audit(ctx context.Context, a access.Actor, e audit.Event) error {
	f.mu.Lock()
	fail := f.auditFails
	f.mu.Unlock()
	if fail {
		return errors.New("audit: store unavailable")
	}
	f.Record(ctx, a, e)
	return nil
}

func (f *fakeAccess) RequestCommand(context.Context, access.Actor, access.CommandRequest) (*store.Request, error) {
	return nil, errors.New("no approvals here")
}

func (f *fakeAccess) Wait(context.Context, access.Actor, int64) (*store.Request, error) {
	return nil, errors.New("no approvals here")
}

func (f *fakeAccess) CommandDone(context.Context, access.Actor, int64) {}

const testPolicy = `
data_dir: /nonexistent
users:
  - {name: alice, roles: [developer]}
targets:
  - {name: shop, kind: mysql, address: "127.0.0.1:1", database: shop}
roles:
  developer:
    request:
      - targets: [shop]
        approvers: [developer]
    queries:
      - {name: no-drop, action: deny, commands: ["DROP *"], reason: no drops}
`

// frontEnd is a Server in front of the shared MariaDB.
type frontEnd struct {
	addr   string
	access *fakeAccess
	roots  *x509.CertPool // trusts the server's TLS certificate
}

func startFrontEnd(t *testing.T, plugin string) *frontEnd {
	t.Helper()
	return startFrontEndWith(t, plugin, &fakeAccess{}, nil)
}

// startFrontEndWith starts a front end with fa; set, if not nil, changes
// its config.
func startFrontEndWith(t *testing.T, plugin string, fa *fakeAccess, set func(*Config)) *frontEnd {
	t.Helper()
	db := testMariaDB(t)
	cfg, err := config.Parse("test.yaml", []byte(testPolicy), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	authority, err := ca.LoadOrCreateTLS(filepath.Join(t.TempDir(), "tls.crt"), filepath.Join(t.TempDir(), "tls.key"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(authority.CertPEM())
	c := Config{
		Access: fa, Policy: func() *policy.Policy { return cfg.Policy }, AuthPlugin: plugin,
		Targets: map[string]Target{"shop": {Name: "shop", Address: db.Addr, Database: "shop", Username: db.User, Password: db.Password}},
		TLS:     authority.ServerConfig([]string{"127.0.0.1"}),
		// The protocol tests run both in clear and over TLS; TestTLSRequired
		// checks the default.
		AllowPlaintext: true,
	}
	if set != nil {
		set(&c)
	}
	srv, err := NewServer(c)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return &frontEnd{addr: l.Addr().String(), access: fa, roots: roots}
}

var tlsNames atomic.Int64

// open opens a go-sql-driver handle; tlsOn verifies the server's
// certificate.
func (f *frontEnd) open(t *testing.T, password string, tlsOn bool) *sql.DB {
	t.Helper()
	params := "timeout=10s"
	if tlsOn {
		name := fmt.Sprintf("bastion-test-%d", tlsNames.Add(1))
		if err := mysql.RegisterTLSConfig(name, &tls.Config{RootCAs: f.roots, ServerName: "127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
		params += "&tls=" + name
	}
	db, err := sql.Open("mysql", fmt.Sprintf("alice:%s@tcp(%s)/shop?%s", password, f.addr, params))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestAuthentication: both plugins, with and without TLS; a wrong secret
// is refused like an unknown user.
func TestAuthentication(t *testing.T) {
	for _, plugin := range []string{pluginNative, pluginCachingSHA} {
		f := startFrontEnd(t, plugin)
		for _, tc := range []struct {
			name     string
			password string
			tls      bool
			ok       bool
		}{
			{"clear", secret, false, true},
			{"tls", secret, true, true},
			{"wrong secret", "wrong", false, false},
			{"wrong secret over tls", "wrong", true, false},
		} {
			t.Run(plugin+"/"+tc.name, func(t *testing.T) {
				var one int
				err := f.open(t, tc.password, tc.tls).QueryRowContext(t.Context(), "SELECT 1").Scan(&one)
				if tc.ok {
					if err != nil || one != 1 {
						t.Fatalf("SELECT 1: %v, %v", one, err)
					}
					return
				}
				var me *mysql.MySQLError
				if !errors.As(err, &me) || me.Number != erAccessDenied || !strings.Contains(me.Message, "Access denied for user 'alice'") {
					t.Fatalf("wrong secret: %v", err)
				}
			})
		}
	}
}

// rawLogin logs in with this package's own client code as the test
// client, returning the connection.
func rawLogin(t *testing.T, f *frontEnd, tlsCfg *tls.Config) *upstreamConn {
	t.Helper()
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	u, err := login(conn, Target{Username: "alice", Password: secret, Database: "shop", TLS: tlsCfg}, serverCaps, 45)
	if err != nil {
		conn.Close()
		t.Fatalf("login: %v", err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

// roundTrip sends a command and returns the first packet of the answer.
func roundTrip(t *testing.T, u *upstreamConn, cmd []byte) []byte {
	t.Helper()
	if err := u.w.send(0, cmd); err != nil {
		t.Fatal(err)
	}
	p, _, err := u.r.readMessage(1 << 20)
	if err != nil {
		t.Fatalf("command %#x: %v", cmd[0], err)
	}
	return p
}

// TestCachingSHA2FullAuth: a client that sends no scramble gets full
// authentication, which sends the password itself: over TLS only.
func TestCachingSHA2FullAuth(t *testing.T) {
	f := startFrontEnd(t, pluginCachingSHA)
	for _, tlsOn := range []bool{true, false} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			conn, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			r, w := newPacketReader(conn, 1<<12), newPacketWriter(conn, 1<<12)
			if _, _, err := r.readMessage(1 << 12); err != nil {
				t.Fatal(err)
			}
			caps := uint32(serverCaps)
			seq := byte(1)
			if tlsOn {
				if err := w.send(seq, (&handshakeResponse{caps: caps | capSSL, charset: 45}).marshal()); err != nil {
					t.Fatal(err)
				}
				tc := tls.Client(conn, &tls.Config{RootCAs: f.roots, ServerName: "127.0.0.1"})
				r, w, seq = newPacketReader(tc, 1<<12), newPacketWriter(tc, 1<<12), seq+1
				caps |= capSSL
			}
			resp := &handshakeResponse{caps: caps, charset: 45, user: "alice", database: "shop", plugin: pluginCachingSHA}
			if err := w.send(seq, resp.marshal()); err != nil {
				t.Fatal(err)
			}
			p, s, err := r.readMessage(1 << 12)
			if err != nil {
				t.Fatal(err)
			}
			if !tlsOn {
				if len(p) == 0 || p[0] != iERR {
					t.Fatalf("full authentication in clear: got %x, want ERR", p)
				}
				return
			}
			if string(p) != "\x01\x04" {
				t.Fatalf("got %x, want perform-full-authentication", p)
			}
			if err := w.send(s+1, append([]byte(secret), 0)); err != nil {
				t.Fatal(err)
			}
			if p, _, err = r.readMessage(1 << 12); err != nil || len(p) == 0 || p[0] != iOK {
				t.Fatalf("after the password: %x, %v", p, err)
			}
		})
	}
}

// TestRefusedCommands: COM_CHANGE_USER and the binlog commands are refused
// with an error, and the session stays usable.
func TestRefusedCommands(t *testing.T) {
	f := startFrontEnd(t, "")
	u := rawLogin(t, f, nil)
	for _, cmd := range [][]byte{
		append([]byte{comChangeUser}, "root\x00"...),
		{comBinlogDump, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0},
		{comBinlogDumpGTID},
		{comRegisterSlave},
		{0x08}, // COM_SHUTDOWN
		{0x7f}, // unknown
	} {
		p := roundTrip(t, u, cmd)
		if code, msg := parseErr(p); code == 0 || !strings.Contains(msg, "bastion:") {
			t.Errorf("command %#x: got %x, want a Bastion error", cmd[0], p)
		}
	}
	if p := roundTrip(t, u, []byte{comPing}); p[0] != iOK {
		t.Fatalf("ping after the refusals: %x", p)
	}
	if p := roundTrip(t, u, append([]byte{comInitDB}, "mysql"...)); p[0] != iERR {
		t.Fatalf("COM_INIT_DB mysql: %x, want ERR", p)
	}
	if p := roundTrip(t, u, append([]byte{comQuery}, "DROP TABLE x"...)); p[0] != iERR {
		t.Fatalf("DROP TABLE: %x, want ERR", p)
	} else if code, msg := parseErr(p); code != erTableAccessDenied || !strings.Contains(msg, "rule no-drop") {
		t.Fatalf("DROP TABLE: %d %s", code, msg)
	}
}

// TestGrantEnds: a grant that stops holding ends an idle session within
// the check interval; the client's next command reads why.
func TestGrantEnds(t *testing.T) {
	f := startFrontEnd(t, "")
	u := rawLogin(t, f, nil)
	if p := roundTrip(t, u, []byte{comPing}); p[0] != iOK {
		t.Fatalf("ping: %x", p)
	}
	f.access.revoked.Store(true)
	// The ERR packet arrives unasked (numbered as the answer to the next
	// command), then the connection closes.
	u.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, seq, err := u.r.readMessage(1 << 12)
	if err != nil {
		t.Fatal(err)
	}
	code, msg := parseErr(p)
	if code != erConnKilled || seq != 1 || !strings.Contains(msg, "revoked") {
		t.Fatalf("after revocation: %d (seq %d) %q", code, seq, msg)
	}
}

// TestGrantCheckFails: when a grant cannot be checked (the store fails),
// the session ends, and the client is told a fixed message, never the
// store's error.
func TestGrantCheckFails(t *testing.T) {
	f := startFrontEnd(t, "")
	u := rawLogin(t, f, nil)
	f.access.storeDown.Store(true)
	u.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, _, err := u.r.readMessage(1 << 12)
	if err != nil {
		t.Fatal(err)
	}
	code, msg := parseErr(p)
	if code != erConnKilled || !strings.Contains(msg, "could not be checked") || strings.Contains(msg, "sqlite") {
		t.Fatalf("after a failed check: %d %q", code, msg)
	}
}

// TestSessionStartNotAudited: a session whose start cannot be audited
// does not start.
func TestSessionStartNotAudited(t *testing.T) {
	fa := &fakeAccess{auditFails: true}
	f := startFrontEndWith(t, "", fa, nil)
	db := f.open(t, secret, false)
	var me *mysql.MySQLError
	if err := db.PingContext(t.Context()); !errors.As(err, &me) || !strings.Contains(me.Message, "cannot be audited") {
		t.Fatalf("login whose start cannot be audited: %v", err)
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	for _, e := range fa.events {
		if e.Type == audit.SessionStart && e.Outcome == audit.OutcomeOK {
			t.Fatalf("a session start was recorded: %+v", e)
		}
	}
}

// TestUpstreamClient: Bastion's own client (the one it logs in to targets
// with) speaks both plugins, in clear and over TLS, against a front end.
func TestUpstreamClient(t *testing.T) {
	for _, plugin := range []string{pluginNative, pluginCachingSHA} {
		f := startFrontEnd(t, plugin)
		for _, tlsOn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/tls=%v", plugin, tlsOn), func(t *testing.T) {
				var cfg *tls.Config
				if tlsOn {
					cfg = &tls.Config{RootCAs: f.roots, ServerName: "127.0.0.1"}
				}
				u := rawLogin(t, f, cfg)
				if p := roundTrip(t, u, []byte{comPing}); p[0] != iOK {
					t.Fatalf("ping: %x", p)
				}
			})
		}
	}
}

// TestNoDatabase: a client that names no database is told to name the
// target.
func TestNoDatabase(t *testing.T) {
	f := startFrontEnd(t, "")
	db, err := sql.Open("mysql", fmt.Sprintf("alice:%s@tcp(%s)/?timeout=10s", secret, f.addr))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var me *mysql.MySQLError
	if err := db.PingContext(t.Context()); !errors.As(err, &me) || !strings.Contains(me.Message, "name the target as the database") {
		t.Fatalf("no database: %v", err)
	}
}

// TestGrantExpires: a session ends when its grant does, in the middle of a
// statement, and the client reads why.
func TestGrantExpires(t *testing.T) {
	f := startFrontEndWith(t, "", &fakeAccess{ends: 2 * time.Second}, nil)
	db := f.open(t, secret, false)
	_, err := db.ExecContext(t.Context(), "SELECT SLEEP(30)")
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != erConnKilled || !strings.Contains(me.Message, "expired") {
		t.Fatalf("at the grant's end: %v", err)
	}
}

// TestTimeouts: a client that does not finish its handshake is cut off, and
// an idle session ends with an error saying why.
func TestTimeouts(t *testing.T) {
	f := startFrontEndWith(t, "", &fakeAccess{}, func(c *Config) {
		c.HandshakeTimeout, c.IdleTimeout = 500*time.Millisecond, 500*time.Millisecond
	})
	t.Run("handshake", func(t *testing.T) {
		conn, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		r := newPacketReader(conn, 1<<12)
		if _, _, err := r.readMessage(1 << 12); err != nil { // the greeting
			t.Fatal(err)
		}
		// No answer: the server closes.
		if _, _, err := r.readMessage(1 << 12); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("silent client: %v, want the connection closed", err)
		}
	})
	t.Run("idle", func(t *testing.T) {
		u := rawLogin(t, f, nil)
		u.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		p, _, err := u.r.readMessage(1 << 12)
		if err != nil {
			t.Fatal(err)
		}
		if code, msg := parseErr(p); code != erConnKilled || !strings.Contains(msg, "idle") {
			t.Fatalf("idle session: %d %q", code, msg)
		}
	})
}
