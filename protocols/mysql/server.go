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
	"time"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/internal/frontend"
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
	// TLS is offered to clients (CLIENT_SSL); nil offers none. A client
	// that does not ask for it is refused unless AllowPlaintext.
	TLS            *tls.Config
	AllowPlaintext bool
	Recordings     recorder.Storage // nil: sessions are not recorded
	Sessions       Sessions         // nil: sessions are not listed
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

// Defaults of the Config's limits.
const (
	// DefaultHandshakeTimeout bounds a client's handshake and login.
	DefaultHandshakeTimeout = 15 * time.Second
	// DefaultIdleTimeout ends a session nobody sends commands on.
	DefaultIdleTimeout = 30 * time.Minute
	// idleCheckInterval is how often a session is checked for idleness.
	idleCheckInterval = time.Second
)

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("mysql: server closed")

// Server serves MySQL clients.
type Server struct {
	cfg    Config
	log    *slog.Logger
	rt     *frontend.Server
	grants *frontend.Watcher
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
	s := &Server{cfg: cfg, log: cfg.Logger.With("proto", "mysql"), grants: cfg.Watcher}
	if s.grants == nil {
		s.grants = frontend.NewWatcher(cfg.Access, cfg.Logger)
	}
	s.rt = frontend.New(frontend.Config{Proto: "mysql", Handler: s.handle, Gate: cfg.Gate, Logger: cfg.Logger})
	return s, nil
}

// Serve accepts connections on l until Shutdown; it always returns a
// non-nil error (ErrServerClosed after Shutdown).
func (s *Server) Serve(l net.Listener) error {
	err := s.rt.Serve(l)
	if errors.Is(err, frontend.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// handle serves one connection. A panic ends that connection only: the
// runtime logs it, and this closes the target's side too.
func (s *Server) handle(fc *frontend.Conn) {
	c := s.newConn(fc)
	defer func() {
		if r := recover(); r != nil {
			c.close()
			panic(r)
		}
	}()
	c.serve()
}

// Shutdown stops accepting, waits for open connections until ctx ends,
// then tells those left that the server is going away and closes them.
func (s *Server) Shutdown(ctx context.Context) error { return s.rt.Shutdown(ctx) }
