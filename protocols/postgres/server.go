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
	"sync"
	"sync/atomic"
	"time"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/internal/frontend"
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
	// Accounts, when set, gives each grant's sessions an upstream account
	// of their own (Username is then only the admin account); their
	// connections are not pooled.
	Accounts Accounts
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
	// Gate caps connections (shared with the other front ends); nil: a
	// gate of the server's own with frontend.DefaultLimits.
	Gate *frontend.Gate
	// Watcher ends sessions whose grant ends (shared with the other front
	// ends); nil: one of the server's own on Access.
	Watcher *frontend.Watcher
	// Throttle slows failed logins (shared with the other front ends);
	// nil: not slowed.
	Throttle *frontend.AuthThrottle
	Logger   *slog.Logger
}

// Server is the PostgreSQL front end.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mockKey []byte      // salts of mock SCRAM exchanges
	parsed  *parseCache // statement summaries, shared by connections
	pool    *pool       // target connections kept for reuse

	rt     *frontend.Server
	grants *frontend.Watcher

	mu        sync.Mutex
	conns     map[*conn]struct{} // relaying, for the idle sweep
	cancels   map[uint32]*conn   // by the process ID the client was given
	sweepDone chan struct{}
	sweepOnce sync.Once
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
	s := &Server{
		cfg: cfg, log: cfg.Logger.With("proto", "postgres"), mockKey: randBytes(32), parsed: newParseCache(), pool: newPool(),
		conns: map[*conn]struct{}{}, cancels: map[uint32]*conn{}, sweepDone: make(chan struct{}), grants: cfg.Watcher,
	}
	if s.grants == nil {
		s.grants = frontend.NewWatcher(cfg.Access, cfg.Logger)
	}
	s.rt = frontend.New(frontend.Config{Proto: "postgres", Handler: s.handle, Gate: cfg.Gate, Logger: cfg.Logger})
	return s, nil
}

// Serve accepts connections on l until Shutdown; it always returns a
// non-nil error, ErrServerClosed after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	s.sweepOnce.Do(func() { go s.sweep() })
	err := s.rt.Serve(l)
	if errors.Is(err, frontend.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// handle serves one connection. A panic ends that connection only: the
// runtime logs it, and this closes the target's side too.
func (s *Server) handle(fc *frontend.Conn) {
	c := newConn(s, fc)
	defer func() {
		if p := recover(); p != nil {
			c.close(frontend.ErrInternal)
			panic(p)
		}
	}()
	c.serve()
}

// Shutdown stops accepting, then waits for open connections until ctx
// ends, and closes those left with a FATAL message.
func (s *Server) Shutdown(ctx context.Context) error {
	s.sweepOnce.Do(func() {})
	s.stopSweep()
	defer s.pool.close() // after the last session has put its connection back
	return s.rt.Shutdown(ctx)
}

func (s *Server) stopSweep() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.sweepDone:
	default:
		close(s.sweepDone)
	}
}

// register makes a live (relaying) connection reachable by its made-up
// process ID for cancel requests.
func (s *Server) register(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if _, taken := s.cancels[c.pid]; !taken && c.pid != 0 {
			break
		}
		c.newKey()
	}
	s.conns[c] = struct{}{}
	s.cancels[c.pid] = c
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

// sweepInterval is how often idle connections are looked for and kept
// target connections expired.
const sweepInterval = time.Second

// sweep ends connections idle for longer than IdleTimeout and expires
// kept target connections, every sweepInterval until Shutdown. (Grants
// are the Watcher's.)
func (s *Server) sweep() {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.sweepDone:
			return
		case <-t.C:
		}
		now := time.Now()
		s.pool.expire(now)
		if s.cfg.IdleTimeout <= 0 {
			continue
		}
		s.mu.Lock()
		for c := range s.conns {
			if now.Sub(c.lastActive()) > s.cfg.IdleTimeout {
				c.end(fmt.Errorf("idle for more than %s", s.cfg.IdleTimeout))
			}
		}
		s.mu.Unlock()
	}
}

// activity is a connection's last traffic, in Unix nanoseconds.
type activity struct{ at atomic.Int64 }

func (a *activity) touch()                { a.at.Store(time.Now().UnixNano()) }
func (a *activity) lastActive() time.Time { return time.Unix(0, a.at.Load()) }
