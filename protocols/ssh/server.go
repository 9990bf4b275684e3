// Package ssh is Bastion's SSH front end. It terminates SSH from users'
// own OpenSSH clients and authenticates them by key or certificate. A plain
// user name (`ssh alice@bastion`) gets the self-service command line; a
// login at a target (`ssh root@web01@bastion`) is authorised against the
// user's certificate or standing access, then proxied to the target with a
// certificate Bastion mints for that session.
//
// The package decodes and transports; decisions come from the narrow
// interfaces in Config, which the server wires to the policy and store.
package ssh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/cli"
	"github.com/bastionhq/bastion/internal/frontend"
	"github.com/bastionhq/bastion/recorder"
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("ssh: server closed")

// Permission extensions set by a successful authentication. They are read
// back from the connection's Permissions after the handshake, never from
// state saved during callbacks: x/crypto/ssh may call the public key
// callback for keys the client never proves it holds (CVE-2024-45337).
const (
	extUser = "bastion-user"
	extKey  = "bastion-key-fingerprint"
	extPub  = "bastion-key" // authorized_keys form of the key that authenticated
	// Target sessions: the grant, as authorised.
	extTarget  = "bastion-target"
	extLogin   = "bastion-login"
	extRequest = "bastion-request"
	extSerial  = "bastion-serial"
	extRole    = "bastion-role"
	extEnds    = "bastion-grant-ends" // unix nanoseconds; absent for standing access
	// extGrantKey is the fingerprint of the user's key the grant holds for
	// (the key a certificate certifies): removing it ends the session.
	extGrantKey = "bastion-grant-key"
)

// Users finds the Bastion user who owns a key.
type Users interface {
	User(key ssh.PublicKey) (string, bool)
}

// Commands runs a self-service command line and returns its exit code.
type Commands interface {
	RunLine(ctx context.Context, actor access.Actor, stdio cli.IO, line string) int
}

// Auditor records audit events: Record those about what happened (kept
// and retried when the store cannot take them), Audit those whose action
// must not happen unaudited (a session start), failing when the event
// cannot be made durable.
type Auditor interface {
	Record(ctx context.Context, a access.Actor, e audit.Event)
	Audit(ctx context.Context, a access.Actor, e audit.Event) error
}

// Config configures a Server.
type Config struct {
	HostSigners []ssh.Signer // plain host keys and host certificates
	Users       Users
	Commands    Commands
	Audit       Auditor
	Banner      string // shown once the user is authenticated in the interactive prompt

	// Target sessions.
	Grants     Grants
	Targets    Targets
	UpstreamCA UpstreamCA
	HostCA     ssh.PublicKey               // trusted for targets' host certificates
	Permits    func(*access.Grant) Permits // optional channel kinds; nil: none
	ExecRules  ExecRules                   // nil: every command allowed
	Approvals  CommandApprovals            // holds commands a rule requires approval for

	// Listening returns the addresses ("host:port") of Bastion's own
	// listeners, and TargetAddresses those of every configured target:
	// neither is ever a forwarding destination. Resolver resolves
	// forwarding destinations' names (nil: net.DefaultResolver).
	Listening       func() []string
	TargetAddresses func() []string
	Resolver        Resolver

	// Recordings and Sessions record every target session; when both are
	// nil nothing is recorded (tests of the transport only).
	Recordings recorder.Storage
	Sessions   Sessions
	// FailOpen reports whether a grant's sessions may go on unrecorded
	// when recording fails (nil: never, fail closed). A fail-closed
	// session does not start while a recorder.Guarantor storage cannot
	// guarantee its recording.
	FailOpen        func(*access.Grant) bool
	ExecOutputLimit int64 // recorded output of exec sessions; 0: DefaultExecOutputLimit

	// HandshakeTimeout bounds the SSH handshake including authentication.
	HandshakeTimeout time.Duration
	// IdleTimeout ends an interactive self-service session with no input.
	IdleTimeout time.Duration
	// Gate caps connections (shared with the other front ends); nil: a
	// gate of the server's own with frontend.DefaultLimits.
	Gate *frontend.Gate
	// Watcher ends target sessions whose grant ends (shared with the other
	// front ends); nil: one of the server's own on Grants.
	Watcher *frontend.Watcher
	// Throttle slows failed authentication (shared with the other front
	// ends); nil: one of the server's own with frontend.DefaultAuthLimits.
	Throttle *frontend.AuthThrottle
	Logger   *slog.Logger
}

// Server accepts SSH connections.
type Server struct {
	cfg      Config
	log      *slog.Logger
	throttle *frontend.AuthThrottle
	holders  keyHolders // live self-service connections, for KeysChanged
	rt       *frontend.Server
	grants   *frontend.Watcher

	lastSerial atomic.Uint64 // of per-session upstream certificates
	targets    targetCache   // targets' addresses, for forwarding checks (dest.go)
}

// NewServer returns a Server.
func NewServer(cfg Config) (*Server, error) {
	if len(cfg.HostSigners) == 0 {
		return nil, errors.New("ssh: no host key")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, grants: cfg.Watcher}
	if s.grants == nil && cfg.Grants != nil {
		s.grants = frontend.NewWatcher(cfg.Grants, cfg.Logger)
	}
	s.rt = frontend.New(frontend.Config{Proto: "ssh", Handler: s.handleConn, Gate: cfg.Gate, Logger: cfg.Logger})
	if s.throttle = cfg.Throttle; s.throttle == nil {
		s.throttle = frontend.NewAuthThrottle(frontend.AuthLimits{}, nil)
	}
	return s, nil
}

// banner explains a malformed user name before authentication fails, so
// that the user sees why instead of a bare "Permission denied".
func (s *Server) banner(conn ssh.ConnMetadata) string {
	d, err := ParseUsername(conn.User())
	if err != nil {
		return fmt.Sprintf("bastion: %v\r\n", err)
	}
	if d.IsTarget() && s.cfg.Grants == nil {
		return fmt.Sprintf("bastion: sessions on targets (%s@%s) are not served here; use `ssh USER@bastion help`\r\n", d.Login, d.Target)
	}
	return ""
}

// grantPermissions is what a connection authorised by g carries through
// the handshake: the grant, read back by grantOf. Nothing is dialled
// before: the upstream connection is opened after the handshake.
func grantPermissions(g *access.Grant, key ssh.PublicKey) *ssh.Permissions {
	ext := map[string]string{
		extUser: g.User, extKey: ssh.FingerprintSHA256(key), extPub: string(ssh.MarshalAuthorizedKey(key)),
		extTarget: g.Target, extLogin: g.Login, extRole: g.Role,
		extRequest: strconv.FormatInt(g.RequestID, 10), extSerial: strconv.FormatUint(g.Serial, 10),
		extGrantKey: g.Key,
	}
	if !g.Ends.IsZero() {
		ext[extEnds] = strconv.FormatInt(g.Ends.UnixNano(), 10)
	}
	if c, ok := key.(*ssh.Certificate); ok {
		ext[extCertPermits] = certPermits(c) // the session honours them (see narrow)
	}
	return &ssh.Permissions{Extensions: ext}
}

// grantOf reads the grant back from a connection's Permissions.
func grantOf(p *ssh.Permissions, source netip.Addr) (*access.Grant, bool) {
	e := p.Extensions
	if e[extTarget] == "" {
		return nil, false
	}
	g := &access.Grant{User: e[extUser], Target: e[extTarget], Login: e[extLogin], Role: e[extRole], Source: source, Key: e[extGrantKey]}
	g.RequestID, _ = strconv.ParseInt(e[extRequest], 10, 64)
	g.Serial, _ = strconv.ParseUint(e[extSerial], 10, 64)
	if n, err := strconv.ParseInt(e[extEnds], 10, 64); err == nil {
		g.Ends = time.Unix(0, n)
	}
	return g, true
}

// Serve accepts connections on l until Shutdown or Close. It always returns
// a non-nil error; after Shutdown or Close it is ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	err := s.rt.Serve(l)
	if errors.Is(err, frontend.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Shutdown stops accepting connections and waits for open ones to finish
// until ctx ends, then closes them.
func (s *Server) Shutdown(ctx context.Context) error { return s.rt.Shutdown(ctx) }

// Close closes the listeners and every connection at once.
func (s *Server) Close() error { return s.rt.Close() }

// handleConn runs one connection: handshake under a deadline, then its
// channels.
func (s *Server) handleConn(fc *frontend.Conn) {
	nc, log := fc.NetConn, fc.Log
	if s.cfg.HandshakeTimeout > 0 {
		if err := nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout)); err != nil {
			log.Debug("set handshake deadline", "err", err)
			return
		}
	}
	st := &authState{fc: fc}
	conn, chans, reqs, err := ssh.NewServerConn(nc, s.serverConfig(st))
	if err != nil {
		log.Info("handshake failed", "err", err)
		s.authFailed(st)
		return
	}
	defer conn.Close()
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return
	}
	fc.OnEnd(func(error) { conn.Close() })

	actor := access.Actor{User: conn.Permissions.Extensions[extUser], Source: fc.Source}
	if key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(conn.Permissions.Extensions[extPub])); err == nil {
		actor.Key = key
	}
	log = log.With("user", actor.User)
	fp := conn.Permissions.Extensions[extKey]
	if err := fc.Authenticated(actor.User); err != nil {
		go ssh.DiscardRequests(reqs)
		tellAll(chans, "bastion: "+err.Error(), log)
		return
	}
	log.Info("login", "key", fp, "client", string(conn.ClientVersion()))
	ctx := fc.Context()
	if g, ok := grantOf(conn.Permissions, actor.Source); ok {
		s.cfg.Audit.Record(ctx, actor, audit.LoginAttempt{User: actor.User, Target: g.Target, RequestID: g.RequestID,
			Protocol: "ssh", Login: g.Login, Key: fp, Via: "target"}.OK())
		s.serveTarget(fc, conn, chans, reqs, g, actor, log)
		return
	}
	s.cfg.Audit.Record(ctx, actor, audit.LoginAttempt{User: actor.User, Protocol: "ssh", Key: fp, Via: "self-service"}.OK())
	defer s.holders.hold(fc, actor)()

	go ssh.DiscardRequests(reqs)
	c := &connection{srv: s, fc: fc, conn: conn, actor: actor, keyFingerprint: fp, log: log}
	var open channelCount
	for nch := range chans {
		if nch.ChannelType() != "session" {
			log.Info("refused channel", "type", nch.ChannelType())
			if err := nch.Reject(ssh.Prohibited, "bastion: only sessions are allowed here"); err != nil {
				log.Debug("reject channel", "err", err)
			}
			continue
		}
		release, ok := open.admit(nch, log)
		if !ok {
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			release()
			log.Debug("accept channel", "err", err)
			continue
		}
		fc.Go(func() { defer release(); c.session(ctx, ch, creqs) })
	}
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	return netip.Addr{}
}
