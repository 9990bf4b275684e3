// Package frontend is the server runtime the SSH, PostgreSQL and MySQL
// front ends share, so that none of them has its own copy of the plumbing
// where outages hide:
//
//   - Serve: the accept loop. Temporary accept errors (EMFILE, ENFILE,
//     ECONNABORTED, timeouts, …) are retried with a doubling delay up to a
//     second, as net/http does; they never stop the listener.
//   - Gate: caps on connections not yet authenticated, in total and per
//     source, and on authenticated connections per user, shared by every
//     front end of the process. A connection over a cap is closed at once;
//     the process goes on serving everyone else.
//   - Conn: a connection's identity (ID, source, logger), its context,
//     cancelled with a cause that is what the user is told, and Go, which
//     runs a goroutine of the connection under a recover: a panic ends that
//     connection, never the process.
//   - Shutdown and Close, with a registry of live connections.
//   - Watcher: one grant watcher for the server, which checks each live
//     grant once however many connections use it, and ends them with a
//     message safe to show.
//   - NewSessionID.
//
// The protocol packages keep only protocol code: a Handler gets a Conn
// and serves it.
package frontend

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("frontend: server closed")

// errShutdown is the cause of connections ended by Shutdown.
var errShutdown = errors.New("bastion is shutting down")

// closeGrace is how long Shutdown waits, after telling the connections
// left that they end, before it closes their sockets: time to write the
// protocol's last message to a client that reads.
const closeGrace = time.Second

// Config configures a Server.
type Config struct {
	// Proto names the protocol in logs and errors: "ssh", "postgres",
	// "mysql".
	Proto string
	// Handler serves one accepted connection; the connection ends when it
	// returns (the socket is closed, its slots in the Gate released).
	Handler func(c *Conn)
	// Gate holds the connection caps; nil gives the server a Gate of its
	// own with DefaultLimits. Front ends of one process share one.
	Gate   *Gate
	Logger *slog.Logger
}

// Server runs a front end's connections.
type Server struct {
	cfg    Config
	log    *slog.Logger
	nextID atomic.Uint64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	closed    bool
	wg        sync.WaitGroup // connections and their goroutines
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Gate == nil {
		cfg.Gate = NewGate(DefaultLimits)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("proto", cfg.Proto),
		listeners: map[net.Listener]struct{}{}, conns: map[*Conn]struct{}{}}
}

// Serve accepts connections on l until Shutdown or Close, and serves each
// in its own goroutine. It always returns a non-nil error: ErrServerClosed
// after Shutdown or Close, or the error of a listener that cannot accept
// any more (it was closed by someone else).
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if !temporary(err) {
				return fmt.Errorf("%s: accept: %w", s.cfg.Proto, err)
			}
			delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
			if delay == minAcceptDelay {
				// Once per episode: a flood retries many times a second.
				s.log.Warn("accept failed; retrying", "err", err)
			}
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.start(nc)
	}
}

// Accept retry delays: the first retry after minAcceptDelay, then doubling
// up to maxAcceptDelay while errors go on.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// start admits nc through the gate and serves it, or closes it.
func (s *Server) start(nc net.Conn) {
	src := addrOf(nc.RemoteAddr())
	if why := s.cfg.Gate.admit(src); why != "" {
		s.cfg.Gate.refusal(s.log, src, why)
		nc.Close()
		return
	}
	id := s.nextID.Add(1)
	c := &Conn{NetConn: nc, ID: id, Source: src, srv: s,
		Log: s.log.With("conn", id, "remote", nc.RemoteAddr().String())}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.cfg.Gate.leave(src)
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go s.serve(c)
}

// serve runs the handler of c and releases what c holds when it returns.
func (s *Server) serve(c *Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.release()
	}()
	defer c.recover("connection")
	s.cfg.Handler(c)
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// closeListeners marks the server closed and closes its listeners.
func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
}

// live returns the live connections.
func (s *Server) live() []*Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	return cs
}

// Shutdown stops accepting, waits for open connections to end until ctx
// ends, then ends those left with "bastion is shutting down" (each
// protocol tells its client in its own way), and closes their sockets
// after closeGrace. It returns ctx's error when it had to end connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, c := range s.live() {
		c.End(errShutdown)
	}
	select {
	case <-done:
	case <-time.After(closeGrace):
		for _, c := range s.live() {
			c.NetConn.Close()
		}
		<-done
	}
	return ctx.Err()
}

// Close closes the listeners and every connection at once, and waits for
// their handlers to return.
func (s *Server) Close() error {
	s.closeListeners()
	for _, c := range s.live() {
		c.cancel(errShutdown)
		c.NetConn.Close()
	}
	s.wg.Wait()
	return nil
}

// Len is the number of live connections.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Conn is one accepted connection.
type Conn struct {
	// NetConn is the accepted socket. The handler may wrap it (TLS, raw
	// system calls) but the server closes this one on Close.
	NetConn net.Conn
	ID      uint64
	Source  netip.Addr
	// Log is a child logger with the protocol, connection ID and remote
	// address; handlers add the user and target once known.
	Log *slog.Logger

	srv    *Server
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu     sync.Mutex
	user   string // set once authenticated
	authed bool
	onEnd  func(cause error)
}

// Context is cancelled when the connection ends; its cause says why.
func (c *Conn) Context() context.Context { return c.ctx }

// Authenticated moves the connection from the unauthenticated caps to the
// per-user cap of user. It fails, with an error safe to show, when user
// has too many connections open; the handler then refuses the login.
func (c *Conn) Authenticated(user string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.authed {
		return nil
	}
	if err := c.srv.cfg.Gate.login(user); err != nil {
		c.srv.cfg.Gate.refusal(c.Log, c.Source, err.Error())
		return err
	}
	c.srv.cfg.Gate.leave(c.Source)
	c.user, c.authed = user, true
	return nil
}

// OnEnd sets what End does after cancelling the context: the protocol's
// way of telling a client why its connection ends and of waking the loops
// that serve it. f may be called from any goroutine, more than once.
func (c *Conn) OnEnd(f func(cause error)) {
	c.mu.Lock()
	c.onEnd = f
	c.mu.Unlock()
}

// End ends the connection with cause, which the user is told.
func (c *Conn) End(cause error) {
	c.cancel(cause)
	c.mu.Lock()
	f := c.onEnd
	c.mu.Unlock()
	if f != nil {
		f(cause)
	}
}

// Go runs f in a goroutine of the connection: the server waits for it at
// shutdown, and a panic in it is logged with its stack and ends this
// connection only.
func (c *Conn) Go(f func()) {
	c.srv.wg.Add(1)
	go func() {
		defer c.srv.wg.Done()
		defer c.recover("goroutine")
		f()
	}()
}

// recover ends the connection on a panic: a decoder or parser fed by a
// client must not take the process down.
func (c *Conn) recover(where string) {
	if p := recover(); p != nil {
		c.Log.Error("panic in "+where+"; closing the connection", "panic", p, "stack", string(debug.Stack()))
		c.cancel(ErrInternal)
		c.NetConn.Close()
	}
}

// ErrInternal is the cause of a connection ended by a fault of Bastion's:
// all the user is told.
var ErrInternal = errors.New("internal error (the operator's log has the details)")

// release gives back the connection's slot in the gate and closes it.
func (c *Conn) release() {
	c.cancel(errors.New("connection closed"))
	c.NetConn.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.authed {
		c.srv.cfg.Gate.logout(c.user)
	} else {
		c.srv.cfg.Gate.leave(c.Source)
	}
}

// NewSessionID returns a random session ID: 16 hex digits.
func NewSessionID() string {
	var b [8]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}

// addrOf is the IP address of a TCP remote address (IPv4-mapped
// addresses unmapped); the zero Addr for anything else.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
