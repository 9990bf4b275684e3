// Package mysql is Bastion's MySQL and MariaDB front end.
//
// It terminates the client's wire protocol: the handshake (with TLS from
// Bastion's TLS CA when the client asks for it), the user's proof of the
// JIT secret (mysql_native_password, or caching_sha2_password: the fast
// path, and the full exchange over TLS only), and the authorisation of the
// grant. Only then does it log in to the target with the credentials of
// the configuration (upstream.go, a small client of its own), and relay
// commands. Every statement is summarised by mysqlsql and decided by the
// policy before it is forwarded (rules.go); each statement, with its
// decision, parameters, duration, rows and error, goes to the session's
// query log (record.go). Results are relayed packet by packet through
// buffers, never held whole (relay.go).
//
// Refused: COM_CHANGE_USER (the session is the grant's), LOAD DATA LOCAL
// INFILE (the capability is neither offered nor passed upstream), the
// binlog and replica commands, and anything this package does not know.
package mysql

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/internal/rawconn"
	"github.com/bastionhq/bastion/protocols/dbrec"
	"github.com/bastionhq/bastion/recorder"
)

// Access is the subset of the access service the front end uses.
type Access interface {
	dbrec.Logins
	dbrec.Approvals
}

// Sessions records sessions for listing and replay.
type Sessions = dbrec.Sessions

// Config holds a Server's settings and dependencies.
type Config struct {
	Access  Access
	Policy  func() *policy.Policy
	Targets map[string]Target // the MySQL targets, by name
	// TLS is offered to clients (CLIENT_SSL); nil offers none.
	TLS        *tls.Config
	Recordings recorder.Storage // nil: sessions are not recorded
	Sessions   Sessions         // nil: sessions are not listed
	// HandshakeTimeout bounds the handshake, authentication and the login
	// upstream; IdleTimeout the wait for a client's next command.
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	// MaxMessage bounds a client command; 0 means DefaultMaxMessage.
	MaxMessage int
	// AuthPlugin is the plugin named in the greeting:
	// mysql_native_password (the default, which every client has) or
	// caching_sha2_password. Either is accepted from any client.
	AuthPlugin string
	Logger     *slog.Logger
}

// Defaults of the Config's limits.
const (
	// DefaultHandshakeTimeout bounds a client's handshake and login.
	DefaultHandshakeTimeout = 15 * time.Second
	// DefaultIdleTimeout ends a session nobody sends commands on.
	DefaultIdleTimeout = 30 * time.Minute
	// grantCheckInterval is how often a live session's grant is checked
	// again (revocation must end it within 2 s).
	grantCheckInterval = time.Second
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("mysql: server closed")

// Server serves MySQL clients.
type Server struct {
	cfg    Config
	log    *slog.Logger
	nextID atomic.Uint32

	mu       sync.Mutex
	closed   bool
	lns      map[net.Listener]struct{}
	conns    map[*clientConn]struct{}
	wg       sync.WaitGroup
	shutdown chan struct{}
}

// NewServer checks cfg and returns a Server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Access == nil || cfg.Policy == nil {
		return nil, errors.New("mysql: config needs Access and Policy")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	switch cfg.AuthPlugin {
	case "":
		cfg.AuthPlugin = pluginNative
	case pluginNative, pluginCachingSHA:
	default:
		return nil, fmt.Errorf("mysql: unknown authentication plugin %q", cfg.AuthPlugin)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("proto", "mysql"), lns: map[net.Listener]struct{}{},
		conns: map[*clientConn]struct{}{}, shutdown: make(chan struct{})}, nil
}

// Serve accepts connections on l until Shutdown; it always returns a
// non-nil error (ErrServerClosed after Shutdown).
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.lns[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, l)
		s.mu.Unlock()
	}()
	var delay time.Duration
	for {
		conn, err := l.Accept()
		conn = rawconn.Wrap(conn)
		if err != nil {
			select {
			case <-s.shutdown:
				return ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		c := s.newConn(conn)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			defer func() {
				if r := recover(); r != nil {
					c.log.Error("panic in connection", "panic", r, "stack", string(debug.Stack()))
					c.close()
				}
			}()
			c.serve()
		}()
	}
}

// Shutdown stops accepting, tells idle sessions the server is going away,
// waits for open connections until ctx ends, and then closes those left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.shutdown)
	}
	for l := range s.lns {
		l.Close()
	}
	for c := range s.conns {
		c.end(errShutdown)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

var errShutdown = errors.New("bastion is shutting down")
