package frontend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/policy"
)

// flakyListener fails its first accepts with errs, then accepts from a
// real listener.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// echo is a handler that echoes one line, authenticated as the line's
// first word when it starts with "user ".
func echo(c *Conn) {
	buf := make([]byte, 64)
	n, err := c.NetConn.Read(buf)
	if err != nil {
		return
	}
	line := string(buf[:n])
	if u, ok := strings.CutPrefix(line, "user "); ok {
		if err := c.Authenticated(strings.TrimSpace(u)); err != nil {
			fmt.Fprintln(c.NetConn, "refused:", err)
			return
		}
		fmt.Fprintln(c.NetConn, "ok")
		<-c.Context().Done()
		return
	}
	c.NetConn.Write(buf[:n])
}

func serve(t *testing.T, s *Server, l net.Listener) chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return done
}

func roundTrip(t *testing.T, addr, msg string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal(err)
	}
	return string(b)
}

// Temporary accept errors (the process out of descriptors, a connection
// aborted in the backlog) are retried; the listener goes on serving.
func TestServeRetriesTemporaryErrors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS} {
		t.Run(errno.Error(), func(t *testing.T) {
			l := &flakyListener{Listener: listen(t)}
			for range 4 {
				l.errs = append(l.errs, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)})
			}
			s := New(Config{Proto: "test", Handler: echo})
			serve(t, s, l)
			if got := roundTrip(t, l.Addr().String(), "hello"); got != "hello" {
				t.Fatalf("after %v: got %q, want hello", errno, got)
			}
		})
	}
}

// A permanent accept error ends Serve with that error.
func TestServePermanentError(t *testing.T) {
	l := &flakyListener{Listener: listen(t), errs: []error{errors.New("listener broken")}}
	defer l.Close()
	s := New(Config{Proto: "test", Handler: echo})
	err := s.Serve(l)
	if err == nil || errors.Is(err, ErrServerClosed) || !strings.Contains(err.Error(), "listener broken") {
		t.Fatalf("Serve = %v, want the listener's error", err)
	}
}

func TestTemporary(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"EMFILE", &net.OpError{Op: "accept", Err: os.NewSyscallError("accept4", syscall.EMFILE)}, true},
		{"ECONNABORTED", syscall.ECONNABORTED, true},
		{"timeout", &net.OpError{Op: "accept", Err: os.ErrDeadlineExceeded}, true},
		{"closed", net.ErrClosed, false},
		{"other", errors.New("x"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := temporary(tc.err); got != tc.want {
				t.Fatalf("temporary(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// A panic in a handler, or in a goroutine of a connection, ends that
// connection; the server goes on serving.
func TestPanicEndsOneConnection(t *testing.T) {
	for _, where := range []string{"handler", "goroutine"} {
		t.Run(where, func(t *testing.T) {
			l := listen(t)
			s := New(Config{Proto: "test", Handler: func(c *Conn) {
				buf := make([]byte, 16)
				n, _ := c.NetConn.Read(buf)
				if string(buf[:n]) != "panic" {
					c.NetConn.Write(buf[:n])
					return
				}
				if where == "handler" {
					panic("boom")
				}
				c.Go(func() { panic("boom") })
				<-c.Context().Done()
				if cause := context.Cause(c.Context()); cause != ErrInternal {
					t.Errorf("cause = %v, want ErrInternal", cause)
				}
			}})
			serve(t, s, l)
			if got := roundTrip(t, l.Addr().String(), "panic"); got != "" {
				t.Fatalf("panicking connection answered %q", got)
			}
			if got := roundTrip(t, l.Addr().String(), "still"); got != "still" {
				t.Fatalf("after a panic: got %q, want still", got)
			}
		})
	}
}

// Connections over the unauthenticated caps are closed at once; the
// others are served; slots come back when connections end.
func TestGateUnauthenticated(t *testing.T) {
	for _, tc := range []struct {
		name string
		lim  Limits
	}{
		{"total", Limits{Unauthenticated: 3, UnauthenticatedPerSource: 100}},
		{"per source", Limits{Unauthenticated: 100, UnauthenticatedPerSource: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t)
			gate := NewGate(tc.lim)
			s := New(Config{Proto: "test", Gate: gate, Handler: echo})
			serve(t, s, l)
			var idle []net.Conn
			for range 3 {
				c, err := net.Dial("tcp", l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				idle = append(idle, c)
			}
			waitFor(t, "3 unauthenticated", func() bool { return gate.Stats().Unauthenticated == 3 })
			// The fourth is closed without an answer.
			if got := roundTrip(t, l.Addr().String(), "x"); got != "" {
				t.Fatalf("over the cap: got %q", got)
			}
			if st := gate.Stats(); st.Refused == 0 {
				t.Fatalf("refusal not counted: %+v", st)
			}
			for _, c := range idle {
				c.Close()
			}
			waitFor(t, "slots back", func() bool { return gate.Stats().Unauthenticated == 0 })
			if got := roundTrip(t, l.Addr().String(), "again"); got != "again" {
				t.Fatalf("after the idle ones left: got %q", got)
			}
		})
	}
}

// Authentication moves a connection out of the unauthenticated caps, and
// a user over the per-user cap is refused with a message safe to show.
func TestGatePerUser(t *testing.T) {
	l := listen(t)
	gate := NewGate(Limits{Unauthenticated: 2, UnauthenticatedPerSource: 2, PerUser: 2})
	s := New(Config{Proto: "test", Gate: gate, Handler: echo})
	serve(t, s, l)
	login := func(user string) (net.Conn, string) {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "user "+user)
		buf := make([]byte, 128)
		n, _ := c.Read(buf)
		return c, strings.TrimSpace(string(buf[:n]))
	}
	var open []net.Conn
	for range 2 {
		c, got := login("alice")
		if got != "ok" {
			t.Fatalf("alice's login: %q", got)
		}
		open = append(open, c)
	}
	// Two authenticated connections no longer hold unauthenticated slots.
	if st := gate.Stats(); st.Unauthenticated != 0 || st.Authenticated != 2 {
		t.Fatalf("stats = %+v", st)
	}
	if _, got := login("alice"); got != "refused: "+ErrTooManyConnections.Error() {
		t.Fatalf("third alice login: %q", got)
	}
	if _, got := login("bob"); got != "ok" {
		t.Fatalf("bob's login: %q", got)
	}
	for _, c := range open {
		c.Close()
	}
}

// Shutdown ends the connections left when its context ends, with a cause
// their protocol tells the user, then closes them.
func TestShutdown(t *testing.T) {
	l := listen(t)
	told := make(chan error, 1)
	s := New(Config{Proto: "test", Handler: func(c *Conn) {
		c.OnEnd(func(cause error) { told <- cause })
		<-c.Context().Done()
	}})
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "connection registered", func() bool { return s.Len() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v", err)
	}
	if cause := <-told; cause != errShutdown {
		t.Fatalf("cause = %v", cause)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve = %v", err)
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Fatal("listener still open")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

func TestSourceKey(t *testing.T) {
	a := sourceKey(netip.MustParseAddr("2001:db8::1"))
	b := sourceKey(netip.MustParseAddr("2001:db8::ffff:1"))
	if a != b {
		t.Fatalf("one /64 counted as two sources: %v %v", a, b)
	}
	if sourceKey(netip.MustParseAddr("10.0.0.1")) == sourceKey(netip.MustParseAddr("10.0.0.2")) {
		t.Fatal("two IPv4 hosts counted as one source")
	}
}

// checker is a GrantChecker whose answer the test sets.
type checker struct {
	mu    sync.Mutex
	err   error
	calls map[int64]int
}

func (c *checker) CheckGrant(_ context.Context, g *access.Grant) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[g.RequestID]++
	return c.err
}

func (c *checker) set(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// The watcher checks each grant once per pass however many connections
// use it, ends them all with the refusal's reason, shows a fixed message
// for any other error, ends expired grants at their end, and stops when
// nothing is watched.
func TestWatcher(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"refusal", &policy.Refusal{Reason: "request 7 was revoked by bob"}, "your access to web01 ended: request 7 was revoked by bob"},
		{"store error", errors.New("sqlite: database is locked"), "your access to web01 could not be checked, so the session ends (the operator's log has the details)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ck := &checker{calls: map[int64]int{}}
				w := NewWatcher(ck, nil)
				g := &access.Grant{User: "alice", Target: "web01", RequestID: 7, Ends: time.Now().Add(time.Hour)}
				msgs := make(chan string, 3)
				for range 3 {
					w.Watch(g, func(m string) { msgs <- m })
				}
				time.Sleep(3*GrantCheckInterval + time.Millisecond)
				synctest.Wait()
				if n := ck.calls[7]; n != 3 {
					t.Fatalf("3 passes checked the grant %d times, want once a pass", n)
				}
				ck.set(tc.err)
				time.Sleep(GrantCheckInterval)
				synctest.Wait()
				for range 3 {
					if got := <-msgs; got != tc.want {
						t.Fatalf("told %q, want %q", got, tc.want)
					}
				}
				if n := w.Watching(); n != 0 {
					t.Fatalf("still watching %d grants", n)
				}
			})
		})
	}
	t.Run("expiry", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ck := &checker{calls: map[int64]int{}}
			w := NewWatcher(ck, nil)
			start := time.Now()
			g := &access.Grant{User: "alice", Target: "db", RequestID: 8, Ends: start.Add(1500 * time.Millisecond)}
			msgs := make(chan string, 1)
			w.Watch(g, func(m string) { msgs <- m })
			got := <-msgs
			if got != "your access to db expired" {
				t.Fatalf("told %q", got)
			}
			if at := time.Since(start); at != 1500*time.Millisecond {
				t.Fatalf("ended after %v, want exactly at the grant's end", at)
			}
		})
	})
	t.Run("wake and stop", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ck := &checker{calls: map[int64]int{}}
			w := NewWatcher(ck, nil)
			ended := make(chan string, 1)
			stop := w.Watch(&access.Grant{User: "alice", Target: "web01", RequestID: 9}, func(m string) { ended <- m })
			ck.set(&policy.Refusal{Reason: "revoked"})
			w.Wake()
			synctest.Wait()
			select {
			case m := <-ended:
				if !strings.HasSuffix(m, "revoked") {
					t.Fatalf("told %q", m)
				}
			default:
				t.Fatal("Wake did not check at once")
			}
			stop() // after the end: a no-op
			stop2 := w.Watch(&access.Grant{User: "bob", Target: "web01", RequestID: 10}, func(string) { t.Error("a stopped watch ended") })
			stop2()
			ck.set(errors.New("down"))
			synctest.Wait() // no time passes: the last stop ends the goroutine at once
			w.mu.Lock()
			running := w.running
			w.mu.Unlock()
			if running {
				t.Fatal("the watcher still runs with nothing to watch")
			}
		})
	})
}
