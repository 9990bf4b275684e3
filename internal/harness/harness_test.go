package harness

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFreePort(t *testing.T) {
	t.Parallel()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("port %d from FreePort is not free: %v", port, err)
	}
	l.Close()
}

func TestRetryOnPortClash(t *testing.T) {
	t.Parallel()
	errBoom := errors.New("boom")
	tests := []struct {
		name      string
		failures  []error // what start returns on each call, then nil
		wantErr   error
		wantCalls int
	}{
		{name: "first try", wantCalls: 1},
		{name: "clash then success", failures: []error{errAddrInUse}, wantCalls: 2},
		{name: "clashes exhaust attempts", failures: []error{errAddrInUse, errAddrInUse, errAddrInUse}, wantErr: errAddrInUse, wantCalls: startAttempts},
		{name: "other error is not retried", failures: []error{errBoom}, wantErr: errBoom, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			_, err := retryOnPortClash("test", func(int) error {
				calls++
				if calls <= len(tt.failures) {
					return tt.failures[calls-1]
				}
				return nil
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if calls != tt.wantCalls {
				t.Errorf("start called %d times, want %d", calls, tt.wantCalls)
			}
		})
	}
}

// TestPortClashRetry gives each kind of server a taken port first and checks
// that it starts on another. It replaces freePortFor, so it is not parallel:
// parallel tests start only after it has finished.
func TestPortClashRetry(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() }) // not defer: the parallel subtests run after this function returns
	takenPort := taken.Addr().(*net.TCPAddr).Port
	var mu sync.Mutex
	picks := map[string]int{}
	origFreePortFor := freePortFor
	freePortFor = func(kind string) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		picks[kind]++
		if picks[kind] == 1 {
			return takenPort, nil
		}
		return FreePort()
	}
	t.Cleanup(func() { freePortFor = origFreePortFor })

	tests := []struct {
		kind  string
		start func(t *testing.T) (port int)
	}{
		{kind: "sshd", start: func(t *testing.T) int { return NewSSHD(t, SSHDConfig{}).Port }},
		{kind: "postgres", start: func(t *testing.T) int { return NewPostgres(t, PostgresConfig{}).Port }},
		{kind: "mariadb", start: func(t *testing.T) int { return NewMariaDB(t, MariaDBConfig{}).Port }},
		{kind: "s3", start: func(t *testing.T) int {
			_, port, err := net.SplitHostPort(NewS3(t, S3Config{}).Endpoint)
			if err != nil {
				t.Fatal(err)
			}
			n, err := strconv.Atoi(port)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			if port := tt.start(t); port == takenPort {
				t.Errorf("%s runs on the taken port %d", tt.kind, port)
			}
			mu.Lock()
			defer mu.Unlock()
			if picks[tt.kind] != 2 {
				t.Errorf("%s picked %d ports, want 2 (the taken one, then a free one)", tt.kind, picks[tt.kind])
			}
		})
	}
}

func TestStartErrorClassifiesPortClash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		log       string
		wantClash bool
	}{
		{name: "sshd", log: "Bind to port 40000 on 127.0.0.1 failed: Address already in use.\nCannot bind any address.\n", wantClash: true},
		{name: "postgres", log: `LOG:  could not bind IPv4 address "127.0.0.1": Address already in use`, wantClash: true},
		{name: "versitygw", log: "listen tcp 127.0.0.1:40000: bind: address already in use", wantClash: true},
		{name: "other failure", log: "FATAL: something else\n"},
		{name: "no log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "server.log")
			if tt.log != "" {
				if err := os.WriteFile(logPath, []byte(tt.log), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := startError(errors.New("server exited"), logPath)
			if got := errors.Is(err, errAddrInUse); got != tt.wantClash {
				t.Errorf("errors.Is(err, errAddrInUse) = %v, want %v (err: %v)", got, tt.wantClash, err)
			}
			if !strings.Contains(err.Error(), "server exited") || !strings.Contains(err.Error(), strings.TrimSpace(tt.log)) {
				t.Errorf("error lacks the cause or the log tail: %v", err)
			}
		})
	}
}

func TestWaitFor(t *testing.T) {
	t.Parallel()
	errNotYet := errors.New("not yet")
	errFatal := errors.New("fatal")
	tests := []struct {
		name    string
		cond    func(calls int) error
		wantErr error
	}{
		{name: "ready after a few polls", cond: func(calls int) error {
			if calls < 3 {
				return errNotYet
			}
			return nil
		}},
		{name: "never ready times out with the last error", cond: func(int) error { return errNotYet }, wantErr: errNotYet},
		{name: "permanent error stops at once", cond: func(int) error { return Permanent(errFatal) }, wantErr: errFatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			start := time.Now()
			err := WaitFor(context.Background(), 300*time.Millisecond, func(context.Context) error {
				calls++
				return tt.cond(calls)
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == errFatal && (calls != 1 || time.Since(start) > 100*time.Millisecond) {
				t.Errorf("permanent error: %d calls in %v, want 1 call at once", calls, time.Since(start))
			}
		})
	}
}

func TestFindProgram(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		paths    []string
		wantPath string   // if found
		wantErr  []string // substrings of the error otherwise
	}{
		{name: "absolute path", paths: []string{"/bin/sh"}, wantPath: "/bin/sh"},
		{name: "on PATH after a missing absolute path", paths: []string{"/nonexistent/sh", "sh"}, wantPath: "/"},
		{name: "missing", paths: []string{"/nonexistent/sshd", "no-such-program"},
			wantErr: []string{"sshd not found", "/nonexistent/sshd, no-such-program", "Debian package openssh-server", "scripts/install-deps.sh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, err := findProgram("openssh-server", tt.paths...)
			if tt.wantErr == nil {
				if err != nil || !strings.HasPrefix(path, tt.wantPath) {
					t.Errorf("findProgram = %q, %v; want a path starting %q", path, err, tt.wantPath)
				}
				return
			}
			if err == nil {
				t.Fatalf("findProgram = %q, want an error", path)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}
