package ssh

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/crypto/ssh"
)

// pipeListener is a net.Listener of in-memory connections (bufferedPipe),
// so that a Server and its clients can run in a synctest bubble: blocking
// on them is durable, and time is virtual.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// dial connects to the listener.
func (l *pipeListener) dial() (net.Conn, error) {
	client, server := bufferedPipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// bufferedPipe is net.Pipe with buffers: SSH's two sides both write their
// version first, which deadlocks on net.Pipe's unbuffered writes.
func bufferedPipe() (net.Conn, net.Conn) {
	ab, ba := newPipeBuffer(), newPipeBuffer()
	return &pipeConn{r: ba, w: ab}, &pipeConn{r: ab, w: ba}
}

// pipeBuffer is one direction of a bufferedPipe.
type pipeBuffer struct {
	mu     sync.Mutex
	cond   *sync.Cond // waits are durable in a synctest bubble
	data   []byte
	closed bool
}

func newPipeBuffer() *pipeBuffer {
	b := &pipeBuffer{}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *pipeBuffer) read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.data) == 0 && !b.closed {
		b.cond.Wait()
	}
	if len(b.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

func (b *pipeBuffer) write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, net.ErrClosed
	}
	b.data = append(b.data, p...)
	b.cond.Broadcast()
	return len(p), nil
}

func (b *pipeBuffer) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.cond.Broadcast()
}

// pipeConn is one end of a bufferedPipe. Deadlines are not kept: the
// Server here has no handshake timeout.
type pipeConn struct{ r, w *pipeBuffer }

func (c *pipeConn) Read(p []byte) (int, error)       { return c.r.read(p) }
func (c *pipeConn) Write(p []byte) (int, error)      { return c.w.write(p) }
func (c *pipeConn) Close() error                     { c.r.close(); c.w.close(); return nil }
func (c *pipeConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (c *pipeConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (c *pipeConn) SetDeadline(time.Time) error      { return nil }
func (c *pipeConn) SetReadDeadline(time.Time) error  { return nil }
func (c *pipeConn) SetWriteDeadline(time.Time) error { return nil }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// TestSelfServiceIdleTimeoutVirtual checks the idle timeout to the second,
// in virtual time: a self-service shell with no input closes after
// IdleTimeout, and a command line typed meanwhile starts the wait again.
func TestSelfServiceIdleTimeoutVirtual(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const idle = time.Hour
		users, keys := &fakeUsers{owners: map[string]string{}}, newSigner(t)
		users.owners[string(keys.PublicKey().Marshal())] = "alice"
		host := newSigner(t)
		srv, err := NewServer(Config{
			HostSigners: []ssh.Signer{host}, Users: users, Commands: &fakeCommands{}, Audit: &fakeAudit{},
			IdleTimeout: idle, Logger: slog.New(slog.NewTextHandler(t.Output(), nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		l := newPipeListener()
		served := make(chan error, 1)
		go func() { served <- srv.Serve(l) }()
		defer func() {
			srv.Close()
			if err := <-served; !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		}()

		nc, err := l.dial()
		if err != nil {
			t.Fatal(err)
		}
		conn, chans, reqs, err := ssh.NewClientConn(nc, "bastion", &ssh.ClientConfig{
			User: "alice", Auth: []ssh.AuthMethod{ssh.PublicKeys(keys)}, HostKeyCallback: ssh.FixedHostKey(host.PublicKey()),
		})
		if err != nil {
			t.Fatal(err)
		}
		c := ssh.NewClient(conn, chans, reqs)
		defer c.Close()
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		in, err := s.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr syncBuffer
		s.Stdout, s.Stderr = &stdout, &stderr
		if err := s.Shell(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		ended := make(chan error, 1)
		go func() { ended <- s.Wait() }()

		time.Sleep(idle - time.Second)
		synctest.Wait()
		select {
		case err := <-ended:
			t.Fatalf("the session ended after %s without input (%v); want %s", time.Since(start), err, idle)
		default:
		}
		if _, err := io.WriteString(in, "whoami\n"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		typed := time.Now()
		if !strings.Contains(stdout.String(), "alice\n") {
			t.Fatalf("output %q; want the command's", stdout.String())
		}

		<-ended
		if got := time.Since(typed); got != idle {
			t.Errorf("the session ended %s after the last command line; want %s", got, idle)
		}
		if want := "bastion: closing the session after 1h0m0s without input"; !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q; want %q", stderr.String(), want)
		}
	})
}
