package server

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/cli"
	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/internal/leakcheck"
)

// runWait bounds how long Run takes to serve after it starts, and to
// return after its context ends (shutdownGrace, and some).
const runWait = 30 * time.Second

// testConfig loads a configuration from YAML with dir as the data dir;
// extra is appended to the file.
func testConfig(t *testing.T, dir, extra string) *config.Config {
	t.Helper()
	yaml := fmt.Sprintf(`data_dir: %q
listen: {ssh: "127.0.0.1:0"}
server: {hostnames: [127.0.0.1]}
users:
  - {name: alice, roles: [developer], keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBX4Hvkmd7q3dT+O6R8/4LpD+Eyb/1hXUkmgLSAUhhM6 alice"]}
roles:
  developer: {}
`, dir) + extra
	cfg, err := config.Parse(filepath.Join(dir, "bastion.yaml"), []byte(yaml), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg
}

// s3Recordings is the YAML that records into a bucket of gw, through a
// spool; the bucket is created.
func s3Recordings(t *testing.T, gw *harness.S3) string {
	t.Helper()
	if err := gw.CreateBucket(t.Context(), "recordings"); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`recordings: s3://recordings/bastion
recording: {endpoint: %q, access_key: %q, secret_key: %q}
`, gw.Endpoint, gw.AccessKey, gw.SecretKey)
}

// webhook is YAML for a webhook nobody is notified through in these
// tests: New starts its sender all the same.
const webhook = `notify: {webhook: {url: "http://127.0.0.1:1/hook"}}
`

// spoolLocked says whether some open file holds the spool's lock (flock
// conflicts between open files, in one process as between two).
func spoolLocked(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // releases the lock if this took it
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return false
}

// TestNewReleasesOnError: a New that fails after it opened the store, the
// spool and the webhook leaves none of them behind: no goroutine, the
// spool's lock free, and a New with the same data dir then works and owns
// the spool.
func TestNewReleasesOnError(t *testing.T) {
	gw := harness.NewS3(t, harness.S3Config{})
	recordings := s3Recordings(t, gw)
	for _, tc := range []struct {
		name string
		// broken returns the YAML to add, and may break the data dir.
		broken func(t *testing.T, dir string) string
		want   string // in New's error
	}{
		{
			name: "unreadable host key",
			broken: func(t *testing.T, dir string) string {
				if err := os.MkdirAll(filepath.Join(dir, "ssh_host_ed25519_key"), 0o700); err != nil {
					t.Fatal(err)
				}
				return ""
			},
			want: "ssh_host_ed25519_key",
		},
		{
			name: "missing front-end target CA file",
			broken: func(t *testing.T, dir string) string {
				return fmt.Sprintf(`targets:
  - {name: orders, kind: postgres, address: "127.0.0.1:1", database: orders, tls: verify-full, ca_file: %q}
`, filepath.Join(dir, "missing-ca.pem"))
			},
			want: "ca_file",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			dir := t.TempDir()
			log := slog.New(slog.DiscardHandler)
			cfg := testConfig(t, dir, recordings+webhook+tc.broken(t, dir))
			cfg.Listen.Postgres = "127.0.0.1:0"
			before := leakcheck.Take()
			_, err := New(t.Context(), cfg, log)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error about %s", err, tc.want)
			}
			if err := before.Leaked(); err != nil {
				t.Fatalf("after the failed New: %v", err)
			}
			if spoolLocked(t, cfg.Recording.SpoolDir) {
				t.Fatal("after the failed New, the spool is still locked")
			}

			// The same data dir, New no longer broken: it owns the spool.
			if err := os.RemoveAll(filepath.Join(dir, "ssh_host_ed25519_key")); err != nil {
				t.Fatal(err)
			}
			ok := testConfig(t, dir, recordings+webhook)
			b, err := New(t.Context(), ok, log)
			if err != nil {
				t.Fatalf("New after the failed one: %v", err)
			}
			defer b.Close()
			if !spoolLocked(t, ok.Recording.SpoolDir) {
				t.Fatal("the second New does not hold the spool's lock")
			}
		})
	}
}

// TestRun: a Bastion built by New serves SSH, the database front ends and
// HTTP; when its context ends Run returns, every goroutine it started
// ends and the store is closed.
func TestRun(t *testing.T) {
	checkGoroutines(t)
	gw := harness.NewS3(t, harness.S3Config{})
	dir := t.TempDir()
	cfg := testConfig(t, dir, s3Recordings(t, gw)+webhook)
	cfg.Listen.HTTP, cfg.Listen.Postgres, cfg.Listen.MySQL = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	b, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.Listen()
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- b.Run(ctx, l) }()

	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: runWait}
	for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": "ready\n"} {
		resp, err := client.Get("http://" + l.HTTP.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(body) != want {
			t.Errorf("GET %s: %d %q (%v), want 200 %q", path, resp.StatusCode, body, err, want)
		}
	}
	// Each front end answers as its protocol does: SSH and MySQL speak
	// first; PostgreSQL answers an SSLRequest with S (TLS offered).
	for name, probe := range map[string]struct {
		addr  net.Addr
		send  []byte
		wantP string
	}{
		"ssh":      {l.SSH.Addr(), nil, "SSH-2.0-"},
		"postgres": {l.Databases["postgres"].Addr(), []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}, "S"},
		"mysql":    {l.Databases["mysql"].Addr(), nil, ""},
	} {
		c, err := net.DialTimeout("tcp", probe.addr.String(), runWait)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.SetDeadline(time.Now().Add(runWait))
		if probe.send != nil {
			if _, err := c.Write(probe.send); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		first := make([]byte, 8)
		n, err := bufio.NewReader(c).Read(first)
		c.Close()
		if err != nil || n == 0 || !strings.HasPrefix(string(first[:n]), probe.wantP) {
			t.Errorf("%s: first bytes %q (%v), want %q…", name, first[:n], err, probe.wantP)
		}
	}

	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(runWait):
		t.Fatal("Run did not return after its context ended")
	}
	if _, err := b.Store.Audit(context.Background(), store.AuditFilter{Limit: 1}); err == nil {
		t.Error("the store still answers after Run returned")
	}
	if spoolLocked(t, cfg.Recording.SpoolDir) {
		t.Error("the spool is still locked after Run returned")
	}
}

// TestReadyzStoreNotWritable: /readyz is unready while the store's
// directory cannot be written, and ready again once it can.
func TestReadyzStoreNotWritable(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	if err := os.Mkdir(storeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, dir, fmt.Sprintf("store: {sqlite: %q}\n", filepath.Join(storeDir, "bastion.db")))
	b, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	readyz(t, b, http.StatusOK, "ready\n")

	// The store's directory replaced by a file: SQLite keeps its open
	// files (reads still work), but nothing can be created there.
	moved := filepath.Join(dir, "store.moved")
	if err := os.Rename(storeDir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(storeDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	readyz(t, b, http.StatusServiceUnavailable, "not ready: store not writable\n")

	if err := os.Remove(storeDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, storeDir); err != nil {
		t.Fatal(err)
	}
	readyz(t, b, http.StatusOK, "ready\n")
	if left, _ := filepath.Glob(filepath.Join(storeDir, ".readyz-*")); len(left) > 0 {
		t.Errorf("probe files left: %v", left)
	}
}

// TestReadyzNearFileLimit: /readyz is unready while the process uses over
// 90% of its soft open-file limit, and ready again below it.
func TestReadyzNearFileLimit(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	b, err := New(t.Context(), testConfig(t, dir, ""), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	readyz(t, b, http.StatusOK, "ready\n")

	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
			t.Errorf("restore the open-file limit: %v", err)
		}
	}()
	// At least 100 files open, then a soft limit 10 above them: over 90%
	// used, with room for what serving the request opens.
	var extra []*os.File
	defer func() {
		for _, f := range extra {
			f.Close()
		}
	}()
	for {
		n, err := openFiles()
		if err != nil {
			t.Fatal(err)
		}
		if n >= 100 {
			lowered := syscall.Rlimit{Cur: uint64(n + 10), Max: orig.Max}
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
				t.Fatal(err)
			}
			break
		}
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		extra = append(extra, f)
	}
	readyz(t, b, http.StatusServiceUnavailable, "")
	if status := processStatus(); nearFileLimit(status) == "" {
		t.Errorf("process status %+v is not near its limit", status)
	}

	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	readyz(t, b, http.StatusOK, "ready\n")
}

// readyz checks what GET /readyz answers; an empty want body checks only
// that it starts with "not ready: near the open-file limit".
func readyz(t *testing.T, b *Bastion, code int, body string) {
	t.Helper()
	rec := httptest.NewRecorder()
	b.httpHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	got := rec.Body.String()
	if rec.Code != code || (body != "" && got != body) || (body == "" && !strings.HasPrefix(got, "not ready: near the open-file limit")) {
		t.Errorf("GET /readyz: %d %q, want %d %q", rec.Code, got, code, body)
	}
}

// TestStatusProcess: `status` in the serving process shows its open files
// against its limits; a local command's process, which is not the server,
// leaves them out.
func TestStatusProcess(t *testing.T) {
	checkGoroutines(t)
	for _, tc := range []struct {
		name string
		new  func(context.Context, *config.Config, *slog.Logger) (*Bastion, error)
		want bool // the open-files line
	}{
		{"serving", New, true},
		{"local", NewLocal, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.new(t.Context(), testConfig(t, t.TempDir(), ""), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			var out, errOut strings.Builder
			if code := b.CLI.RunAsOperator(t.Context(), access.Actor{User: "operator"}, cli.IO{Stdout: &out, Stderr: &errOut}, []string{"status"}); code != 0 {
				t.Fatalf("status: exit %d: %s", code, errOut.String())
			}
			p := processStatus()
			line := fmt.Sprintf("open files:     %d of %d (hard limit %d)\n", p.OpenFiles, p.SoftLimit, p.HardLimit)
			if got := strings.Contains(out.String(), "open files:"); got != tc.want {
				t.Errorf("status shows open files: %v, want %v:\n%s", got, tc.want, out.String())
			}
			if tc.want && !strings.Contains(out.String(), fmt.Sprintf("of %d (hard limit %d)\n", p.SoftLimit, p.HardLimit)) {
				t.Errorf("status:\n%s\nwant a line like %q", out.String(), line)
			}
		})
	}
}

// TestReadyzNearConnectionCap: /readyz is unready while the connections
// not yet authenticated are over 90% of their cap, and ready again once
// they close.
func TestReadyzNearConnectionCap(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, "")
	cfg.Server.Limits.Unauthenticated = 4
	b, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.Listen()
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- b.Run(ctx, l) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// Four idle connections that never start the SSH handshake.
	var conns []net.Conn
	for range 4 {
		c, err := net.DialTimeout("tcp", l.SSH.Addr().String(), runWait)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitUntil(t, "4 unauthenticated connections", func() bool { return b.gate.Stats().Unauthenticated == 4 })
	readyz(t, b, http.StatusServiceUnavailable, "not ready: near the cap on unauthenticated connections (4 of 4)\n")

	for _, c := range conns {
		c.Close()
	}
	waitUntil(t, "no unauthenticated connection", func() bool { return b.gate.Stats().Unauthenticated == 0 })
	readyz(t, b, http.StatusOK, "ready\n")
}

// waitUntil polls cond until it holds, or fails t after runWait.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(runWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", runWait, what)
		}
		time.Sleep(10 * time.Millisecond) // polling the condition
	}
}

// TestReadyzAuditBacklog: /readyz is unready while audit events wait for a
// store that refused them, and ready again once they are written.
func TestReadyzAuditBacklog(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir, "")
	b, err := New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	readyz(t, b, http.StatusOK, "ready\n")

	// Another connection to the same SQLite file makes every append fail.
	db, err := sql.Open("sqlite3", cfg.Store.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	b.Access.Record(t.Context(), access.Actor{User: "alice"}, audit.Event{Type: audit.Command, Reason: "kept"})
	readyz(t, b, http.StatusServiceUnavailable, "not ready: 1 audit events wait for the store\n")

	if _, err := db.Exec(`DROP TRIGGER refuse`); err != nil {
		t.Fatal(err)
	}
	if err := b.Access.FlushAudit(t.Context()); err != nil {
		t.Fatal(err)
	}
	readyz(t, b, http.StatusOK, "ready\n")
}
