// Package harness starts real peer servers — OpenSSH sshd, PostgreSQL,
// MariaDB and an S3 gateway (versitygw) — on 127.0.0.1 for integration tests
// and demos.
//
// Every server listens on a free port (never a standard one: system servers
// may already use 22, 5432 and 3306), keeps all its state in its own directory
// and is stopped by PID or pidfile, never by name. Each kind has two entry
// points:
//
//   - StartX(ctx, XConfig) (*X, error) for long-running programs; the caller
//     calls Stop, which is idempotent and removes the temp dir Start created.
//     ctx bounds the start only: cancelling it later does not stop the server.
//   - NewX(t, XConfig) *X for tests; it fails the test (never skips it) when
//     the server cannot start and registers Stop with t.Cleanup.
//
// The programs come from Debian packages and a go install; a missing one is
// reported by name together with its package. scripts/install-deps.sh
// installs all of them.
//
// The harness runs as root: sshd needs /run/sshd, and PostgreSQL and MariaDB
// are started as their system users through runuser.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// readyTimeout bounds how long a started server may take to accept
	// requests; they are all ready within about two seconds here.
	readyTimeout = 30 * time.Second
	// stopGrace is how long a server may take to exit after SIGTERM before it
	// is killed.
	stopGrace = 10 * time.Second
	// startAttempts is how many free ports are tried: FreePort races with
	// every other process on the machine, so a start can fail with "address
	// already in use".
	startAttempts = 3
	// logTailLines is how much of a server's log an error carries.
	logTailLines = 25
	// installHint is appended to errors about missing programs.
	installHint = "run scripts/install-deps.sh as root"
)

// errAddrInUse marks a start that failed because another process took the
// port between FreePort and the server's bind.
var errAddrInUse = errors.New("address already in use")

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another
// process can take it before the caller binds it; the servers here retry.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("harness: free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("harness: free port: %w", err)
	}
	return port, nil
}

// Run runs cmd to completion and returns its combined stdout and stderr. On
// failure the error names the program and holds the tail of its output.
// Callers pass secrets through cmd.Env or cmd.Stdin, never arguments: the
// arguments end up in the error.
func Run(cmd *exec.Cmd) (string, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, tail(out.String(), logTailLines))
	}
	return out.String(), nil
}

// permanentError stops WaitFor.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that WaitFor returns it at once instead of polling
// again, e.g. when the server being waited for has exited.
func Permanent(err error) error { return permanentError{err} }

// WaitFor calls cond until it returns nil, backing off from 10 ms to 250 ms
// between calls. It gives up when cond returns a Permanent error, when ctx is
// done or after timeout; the error then carries cond's last error.
func WaitFor(ctx context.Context, timeout time.Duration, cond func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 10 * time.Millisecond
	for {
		err := cond(ctx)
		if err == nil {
			return nil
		}
		if p, ok := errors.AsType[permanentError](err); ok {
			return p.err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waited up to %v): %w", context.Cause(ctx), timeout, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 250*time.Millisecond)
	}
}

// makeDir returns dir, created if needed, or a new temp dir named after kind.
// owned reports whether Stop should remove it.
func makeDir(dir, kind string) (path string, owned bool, err error) {
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", false, err
		}
		return dir, false, nil
	}
	dir, err = os.MkdirTemp("", "bastion-harness-"+kind+"-")
	return dir, err == nil, err
}

// findProgram returns the first of paths (absolute, or looked up on PATH)
// that exists, or an error naming the program and its Debian package.
func findProgram(pkg string, paths ...string) (string, error) {
	for _, p := range paths {
		if filepath.IsAbs(p) {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s not found (looked for %s): install Debian package %s, or %s",
		filepath.Base(paths[0]), strings.Join(paths, ", "), pkg, installHint)
}

// freePortFor picks the port for a server of a kind ("sshd", …); tests
// replace it to make ports clash.
var freePortFor = func(kind string) (int, error) { return FreePort() }

// retryOnPortClash calls start with a fresh free port until it succeeds, fails
// for another reason than errAddrInUse, or startAttempts ports were tried.
func retryOnPortClash(kind string, start func(port int) error) (int, error) {
	for attempt := 1; ; attempt++ {
		port, err := freePortFor(kind)
		if err != nil {
			return 0, err
		}
		err = start(port)
		if err == nil {
			return port, nil
		}
		if !errors.Is(err, errAddrInUse) || attempt == startAttempts {
			return 0, err
		}
	}
}

// startError adds the tail of the server's log to err, and marks it with
// errAddrInUse when the log says the port was taken.
func startError(err error, logPath string) error {
	logText, _ := os.ReadFile(logPath) // a missing log just adds nothing
	msg := fmt.Sprintf("%v\n--- %s (tail) ---\n%s", err, logPath, tail(string(logText), logTailLines))
	if strings.Contains(strings.ToLower(string(logText)), "address already in use") {
		return fmt.Errorf("%s: %w", msg, errAddrInUse)
	}
	return errors.New(msg)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// process is a server running in the foreground, its output in a log file.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, set before done is closed
}

// startProcess starts path with args, its stdout and stderr truncating
// logPath. The process gets its own process group, so that a terminal's ^C
// reaches only the program that owns the harness, which then calls Stop. If
// that program dies first, Linux kills the server (Pdeathsig), unless the
// server has changed its user, as mariadbd does.
func startProcess(path string, args []string, env []string, logPath string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own copy
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = filepath.Dir(logPath)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited returns a Permanent error if the process has exited, else nil.
func (p *process) exited() error {
	select {
	case <-p.done:
		return Permanent(fmt.Errorf("%s exited: %v", filepath.Base(p.cmd.Path), p.err))
	default:
		return nil
	}
}

// waitReady waits up to readyTimeout until probe succeeds. It fails as soon
// as the process exits, even in the middle of a probe: a process that failed to
// bind its port exits, while a stranger that took the port may accept the
// probe's connection and never answer.
func (p *process) waitReady(ctx context.Context, probe func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return WaitFor(ctx, readyTimeout, func(ctx context.Context) error {
		err := probe(ctx)
		if exitErr := p.exited(); exitErr != nil {
			return exitErr
		}
		return err
	})
}

// stop sends SIGTERM to the process group, then SIGKILL if the process has
// not exited after stopGrace, and waits for it. A nil process is stopped.
func (p *process) stop() error {
	if p == nil {
		return nil
	}
	pgid := p.cmd.Process.Pid
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		select {
		case <-p.done:
			return nil
		default:
		}
		if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill %d: %w", pgid, err)
		}
		select {
		case <-p.done:
			return nil
		case <-time.After(stopGrace):
		}
	}
	return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", filepath.Base(p.cmd.Path), pgid)
}

// teardown runs a server's stop function once, then removes the server's dir
// if the harness created it. It keeps the dir when stopping failed: the server
// may still be using it.
type teardown struct {
	kind    string // "sshd", "postgres", …: names the server in errors
	dir     string
	ownsDir bool
	once    sync.Once
	err     error
}

func (td *teardown) run(stop func() error) error {
	td.once.Do(func() {
		err := stop()
		if err == nil && td.ownsDir {
			err = os.RemoveAll(td.dir)
		}
		if err != nil {
			td.err = fmt.Errorf("harness: stop %s: %w", td.kind, err)
		}
	})
	return td.err
}

// stopper is what every server type has.
type stopper interface{ Stop() error }

// startForTest starts a server for t: it fails the test when start fails and
// stops the server when the test ends.
func startForTest[S stopper](t testing.TB, start func(context.Context) (S, error)) S {
	t.Helper()
	s, err := start(t.Context())
	if err != nil {
		if !strings.Contains(err.Error(), installHint) {
			err = fmt.Errorf("%w\n(a program or package missing? %s)", err, installHint)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// chownTree gives dir and everything in it to the named system user (and its
// primary group).
func chownTree(dir, username, pkg string) error {
	u, err := user.Lookup(username)
	if err != nil {
		return fmt.Errorf("system user %s (created by Debian package %s; %s): %w", username, pkg, installHint, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// sortedKeys returns m's keys in order, so that setup runs deterministically.
func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
