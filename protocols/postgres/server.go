// Package postgres is Bastion's PostgreSQL front end.
//
// It terminates the PostgreSQL wire protocol: TLS from its own CA,
// SCRAM-SHA-256 against the verifier of the user's JIT secret, then, only
// once the login is authorised, a connection to the target with
// credentials from Bastion's configuration (pgx's pgconn opens and
// authenticates it, then hands the raw connection over). From there it
// relays messages both ways, and checks every statement — simple query,
// Parse, FunctionCall — against the role's query rules before the target
// sees it. A denied statement is replaced by one the target rejects, and
// the target's error is rewritten into Bastion's (SQLSTATE 42501, the rule
// and its reason): the target itself then skips to Sync and reports the
// right transaction status, exactly as for any failed statement.
//
// Every connection is recorded as JSON Lines (recorder/querylog), one event
// per statement, and listed as a session.
//
// Files: server.go (the listener and live connections), startup.go (TLS,
// startup parameters, cancel requests), scram.go (authentication),
// upstream.go (the target), relay.go (the two copy loops), statements.go
// (decisions), record.go (recording), wire.go (message codec).
package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/internal/rawconn"
	"github.com/bastionhq/bastion/protocols/dbrec"
	"github.com/bastionhq/bastion/recorder"
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("postgres: server closed")

// Default limits, used when the Config leaves them zero.
const (
	// DefaultHandshakeTimeout bounds the time from accepting a connection
	// to the first ReadyForQuery: TLS, startup, SCRAM and the target's
	// own login.
	DefaultHandshakeTimeout = 30 * time.Second
	// DefaultMaxMessageSize bounds a client message that Bastion reads
	// whole (Query, Parse, Bind, FunctionCall); others are streamed.
	DefaultMaxMessageSize = 64 << 20
)

// grantCheckInterval is how often live connections' grants are checked:
// an expired or revoked grant closes its connections within about this.
const grantCheckInterval = time.Second

// Target is a PostgreSQL target as the front end reaches it.
type Target struct {
	Name     string
	Address  string // host:port
	Database string // the database upstream; "" means the target's name
	Username string
	Password string
	// TLS is "disable", "require" (encrypt, do not verify) or
	// "verify-full" (against RootCAs, or the system roots when nil).
	TLS     string
	RootCAs *x509.CertPool
	// RedactParameters keeps bind parameters out of recordings.
	RedactParameters bool
}

// Targets finds PostgreSQL targets by name.
type Targets interface {
	Target(name string) (Target, bool)
}

// Access is the subset of the access service the front end uses.
type Access = dbrec.Logins

// Approvals holds statements for approval (require-approval rules).
type Approvals = dbrec.Approvals

// Sessions is the subset of the store that lists sessions.
type Sessions = dbrec.Sessions

// Config configures a Server.
type Config struct {
	// TLS is the server's TLS configuration (its certificate from
	// Bastion's TLS CA). Clients must use TLS.
	TLS        *tls.Config
	Targets    Targets
	Access     Access
	Approvals  Approvals // nil: statements that need approval are denied
	Policy     func() *policy.Policy
	Sessions   Sessions
	Recordings recorder.Storage
	// HandshakeTimeout bounds the login (DefaultHandshakeTimeout if 0);
	// IdleTimeout closes connections without traffic either way (0: never).
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	MaxMessageSize   int // DefaultMaxMessageSize if 0
	Logger           *slog.Logger
}

// Server is the PostgreSQL front end.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mockKey []byte      // salts of mock SCRAM exchanges
	parsed  *parseCache // statement summaries, shared by connections
	pool    *pool       // target connections kept for reuse

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	cancels   map[uint32]*conn // by the process ID the client was given
	closed    bool
	wg        sync.WaitGroup
	stopWatch chan struct{}
	watchOnce sync.Once
}

// NewServer checks cfg and returns a Server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.TLS == nil || cfg.Targets == nil || cfg.Access == nil || cfg.Policy == nil || cfg.Sessions == nil || cfg.Recordings == nil {
		return nil, errors.New("postgres: TLS, Targets, Access, Policy, Sessions and Recordings are required")
	}
	// PostgreSQL clients never resume TLS sessions, and PostgreSQL sends
	// no session tickets; neither does Bastion.
	cfg.TLS = cfg.TLS.Clone()
	cfg.TLS.SessionTicketsDisabled = true
	// PostgreSQL's ALPN name: required with direct TLS (sslnegotiation=
	// direct), accepted after SSLRequest; a client naming another protocol
	// is refused, as PostgreSQL 17 does.
	cfg.TLS.NextProtos = []string{alpnPostgres}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = DefaultMaxMessageSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg: cfg, log: cfg.Logger.With("proto", "postgres"), mockKey: randBytes(32), parsed: newParseCache(), pool: newPool(),
		listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}, cancels: map[uint32]*conn{},
		stopWatch: make(chan struct{}),
	}, nil
}

// Serve accepts connections on l until Shutdown; it always returns a
// non-nil error, ErrServerClosed after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	s.watchOnce.Do(func() { go s.watch() })
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	for {
		nc, err := l.Accept()
		nc = rawconn.Wrap(nc)
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("postgres: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(nc)
	}
}

// handle serves one connection; a panic ends that connection only.
func (s *Server) handle(nc net.Conn) {
	defer s.wg.Done()
	c := newConn(s, nc)
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic serving connection", "panic", p, "stack", string(debug.Stack()))
			c.close(fmt.Errorf("internal error"))
		}
	}()
	c.serve()
}

// Shutdown stops accepting, then waits for open connections until ctx
// ends, and closes those left with a FATAL message.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	s.mu.Unlock()
	s.watchOnce.Do(func() {})
	select {
	case <-s.stopWatch:
	default:
		close(s.stopWatch)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	defer s.pool.close() // after the last session has put its connection back
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.end(errShutdown)
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// errShutdown ends connections left open at shutdown.
var errShutdown = errors.New("bastion is shutting down")

// register adds a live (relaying) connection, reachable by its made-up
// process ID for cancel requests.
func (s *Server) register(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	for {
		if _, taken := s.cancels[c.pid]; !taken && c.pid != 0 {
			break
		}
		c.newKey()
	}
	s.conns[c] = struct{}{}
	s.cancels[c.pid] = c
	return true
}

func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.cancels[c.pid] == c {
		delete(s.cancels, c.pid)
	}
}

// cancelTarget returns the connection a cancel request names.
func (s *Server) cancelTarget(pid uint32) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancels[pid]
}

// watch checks, every grantCheckInterval, the grants of live connections
// (once per grant) and their idle time, and ends those that must end.
func (s *Server) watch() {
	t := time.NewTicker(grantCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopWatch:
			return
		case <-t.C:
		}
		s.mu.Lock()
		byGrant := map[access.Grant][]*conn{}
		for c := range s.conns {
			byGrant[*c.grant] = append(byGrant[*c.grant], c)
		}
		s.mu.Unlock()
		now := time.Now()
		s.pool.expire(now)
		for g, conns := range byGrant {
			ctx, cancel := context.WithTimeout(context.Background(), grantCheckInterval)
			err := s.cfg.Access.CheckGrant(ctx, &g)
			cancel()
			for _, c := range conns {
				switch {
				case err != nil:
					c.end(fmt.Errorf("access ended: %w", err))
				case s.cfg.IdleTimeout > 0 && now.Sub(c.lastActive()) > s.cfg.IdleTimeout:
					c.end(fmt.Errorf("idle for more than %s", s.cfg.IdleTimeout))
				}
			}
		}
	}
}

// activity is a connection's last traffic, in Unix nanoseconds.
type activity struct{ at atomic.Int64 }

func (a *activity) touch()                { a.at.Store(time.Now().UnixNano()) }
func (a *activity) lastActive() time.Time { return time.Unix(0, a.at.Load()) }
