// Package server builds a running Bastion from its configuration: the
// store, the certificate authorities, the access service, the self-service
// command line, the SSH front end and the HTTP endpoints. The graph is built
// explicitly in New; Run serves until its context ends.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/cli"
	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/identity"
	"github.com/bastionhq/bastion/bastion/notify"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/bastion/store/sqlite"
	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/frontend"
	sshfront "github.com/bastionhq/bastion/protocols/ssh"
	"github.com/bastionhq/bastion/recorder"
)

// HostCertValidity is how long Bastion's own host certificate is valid; it
// is re-issued at every start.
const HostCertValidity = 90 * 24 * time.Hour

// shutdownGrace is how long Run waits for open sessions after its context
// ends before closing them.
const shutdownGrace = 5 * time.Second

// readHeaderTimeout bounds reading an HTTP request's headers.
const readHeaderTimeout = 10 * time.Second

// Bastion is a configured, not yet serving, Bastion.
type Bastion struct {
	Config     *config.Config
	Store      store.Store
	CA         *ca.Set
	Access     *access.Service
	CLI        *cli.CLI
	SSH        *sshfront.Server
	Recordings recorder.Storage
	recs       *recordings // Recordings, and the spool behind it
	log        *slog.Logger
	webhook    *notify.Webhook
	// keys are the users' SSH keys, replaced by ReloadKeys; throttle slows
	// failed authentication for every front end together.
	keys     *identity.Directory
	throttle *frontend.AuthThrottle
	// gate caps connections and grants ends the sessions of grants that
	// end, for every front end together.
	gate   *frontend.Gate
	grants *frontend.Watcher

	// sshAddr is the address the SSH listener is bound to once Run starts
	// (the configured one may say port 0); dbAddrs those of the database
	// front ends.
	sshAddr atomic.Value // string
	dbAddrs atomic.Value // map[policy.Kind]string
	bound   atomic.Value // []string: every listener's address, for the SSH front end's forwarding check

	frontends     map[policy.Kind]Frontend // the database front ends served
	frontendAddrs map[policy.Kind]string   // their configured listen addresses
	provisioners  []provisioner            // of targets that provision accounts
}

// New opens the store and keys and builds the service graph of a Bastion
// that serves. On error it releases whatever it had opened (the store, the
// spool and its lock, the webhook's sender), so a failed New leaves nothing
// behind.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Bastion, error) {
	return build(ctx, cfg, log, processStatus)
}

// NewLocal is New for a self-service command run on the server host
// (`bastion status`, `bastion audit verify`): that process is not the one
// serving, so `status` leaves out its open files and limits, which say
// nothing of the server's.
func NewLocal(ctx context.Context, cfg *config.Config, log *slog.Logger) (*Bastion, error) {
	return build(ctx, cfg, log, nil)
}

// build is New; process is what `status` shows of the process, or nil.
func build(ctx context.Context, cfg *config.Config, log *slog.Logger, process func() cli.ProcessStatus) (_ *Bastion, err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	cas, err := ca.LoadOrCreate(filepath.Join(cfg.DataDir, "ca"), ca.Files{
		UserCA: cfg.CA.UserCA, UpstreamCA: cfg.CA.UpstreamCA, HostCA: cfg.CA.HostCA,
		TLSCert: cfg.CA.TLSCert, TLSKey: cfg.CA.TLSKey,
	})
	if err != nil {
		return nil, err
	}
	b := &Bastion{Config: cfg, CA: cas, log: log}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.Store, err = openStore(ctx, cfg.Store); err != nil {
		return nil, err
	}
	if b.recs, err = openRecordings(ctx, cfg, log); err != nil {
		return nil, err
	}
	b.Recordings = b.recs.Storage

	pol := cfg.Policy
	policyFn := func() *policy.Policy { return pol }

	var notifier access.Notifier
	if w := cfg.Notify.Webhook; w != nil {
		b.webhook = notify.NewWebhook(notify.WebhookConfig{
			URL: w.URL, Timeout: w.Timeout, Attempts: w.Attempts, Coalesce: w.Coalesce, Logger: log.With("component", "webhook"),
			Failed: func(p notify.Payload, err error) {
				e := audit.Event{Type: audit.Notify, Actor: "bastion", Outcome: audit.OutcomeError,
					Reason: "webhook delivery failed: " + err.Error(), Details: map[string]string{"event": p.Event}}
				if p.Request != nil {
					e.RequestID = p.Request.ID
				}
				b.Access.Record(context.Background(), access.Actor{User: "bastion"}, e)
			},
		})
		notifier = b.webhook
	}
	if b.keys, err = identity.NewDirectory(usersKeys(cfg)); err != nil {
		return nil, err
	}
	b.Access = access.New(access.Config{Store: b.Store, Policy: policyFn, UserCA: cas.User, Notifier: notifier, Logger: log, Keys: b.keys,
		MaxPending: cfg.Server.Limits.PendingRequestsPerUser})
	lim := cfg.Server.Limits
	b.throttle = frontend.NewAuthThrottle(frontend.AuthLimits{PerSource: lim.AuthFailuresPerSource,
		PerUser: lim.AuthFailuresPerUser, MaxDelay: lim.AuthMaxDelay}, nil)
	b.gate = frontend.NewGate(frontend.Limits{Unauthenticated: lim.Unauthenticated,
		UnauthenticatedPerSource: lim.UnauthenticatedPerSource, PerUser: lim.ConnectionsPerUser})
	b.grants = frontend.NewWatcher(b.Access, log)
	b.grants.FollowChanges(b.Access.Changed) // a new channel's grant check is a cached read until a request changes
	b.CLI = cli.New(cli.Config{Access: b.Access, Audit: b.Store, Sessions: b.Store, Recordings: b.Recordings, Policy: policyFn, CA: b.caInfo,
		Databases: b.databases, Process: process, CommandsPerMinute: lim.CommandsPerMinute, Logger: log})

	if b.SSH, err = b.newSSH(policyFn); err != nil {
		return nil, err
	}
	if err := b.buildFrontends(); err != nil {
		return nil, err
	}
	return b, nil
}

// newSSH builds the SSH front end: Bastion's host key and certificate, the
// users' keys, and the SSH targets.
func (b *Bastion) newSSH(policyFn func() *policy.Policy) (*sshfront.Server, error) {
	cfg := b.Config
	hostKey, err := ca.LoadOrCreateHostKey(filepath.Join(cfg.DataDir, "ssh_host_ed25519_key"))
	if err != nil {
		return nil, err
	}
	certSigner, _, err := ca.HostCertSigner(b.CA.Host, hostKey, cfg.Server.Hostnames, HostCertValidity)
	if err != nil {
		return nil, err
	}
	return sshfront.NewServer(sshfront.Config{
		HostSigners: []ssh.Signer{certSigner, hostKey}, Users: b.keys, Commands: b.CLI, Audit: b.Access,
		HandshakeTimeout: cfg.Server.HandshakeTimeout, IdleTimeout: cfg.Server.IdleTimeout, Logger: b.log,
		Gate: b.gate, Watcher: b.grants, Throttle: b.throttle, Grants: b.Access, Targets: sshTargets(cfg.Targets), UpstreamCA: b.CA.Upstream, HostCA: b.CA.Host.PublicKey(),
		Recordings: b.Recordings, Sessions: b.Store, ExecRules: sshfront.PolicyRules{Policy: policyFn}, Approvals: b.Access,
		Permits: func(g *access.Grant) sshfront.Permits {
			return policyFn().ForwardingFor(g.User, g.Target, g.Role)
		},
		Listening: b.listening, TargetAddresses: func() []string { return targetAddresses(cfg.Targets) },
		FailOpen: func(g *access.Grant) bool {
			return policyFn().RecordingFor(g.User, g.Target, g.Role) == policy.FailOpen
		},
	})
}

// listening is the addresses Bastion's listeners are bound to, once Run
// has started (before, the configured ones).
func (b *Bastion) listening() []string {
	if l, ok := b.bound.Load().([]string); ok {
		return l
	}
	c := b.Config.Listen
	return []string{c.SSH, c.HTTP, c.Postgres, c.MySQL}
}

// targetAddresses is the address of every configured target, of any kind.
func targetAddresses(targets map[string]*config.Target) []string {
	out := make([]string, 0, len(targets))
	for _, t := range targets {
		out = append(out, t.Address)
	}
	return out
}

// sshTargets is the configured SSH targets, as the proxy reaches them.
type sshTargets map[string]*config.Target

func (m sshTargets) Target(name string) (sshfront.Target, bool) {
	t, ok := m[name]
	if !ok || t.Kind != policy.KindSSH {
		return sshfront.Target{}, false
	}
	return sshfront.Target{Name: t.Name, Address: t.Address, HostKey: t.HostKey}, true
}

func openStore(ctx context.Context, s config.Store) (store.Store, error) {
	switch s.Driver {
	case "sqlite":
		st, err := sqlite.Open(ctx, s.DSN)
		if err != nil {
			return nil, err
		}
		return st, nil
	default:
		return nil, fmt.Errorf("store: driver %q is not available in this build (use sqlite)", s.Driver)
	}
}

// caInfo is what the `ca` command prints.
func (b *Bastion) caInfo() cli.CAInfo {
	port, addr := "22", b.Config.Listen.SSH
	if bound, ok := b.sshAddr.Load().(string); ok {
		addr = bound
	}
	if _, p, err := net.SplitHostPort(addr); err == nil {
		port = p
	}
	var hosts []string
	for _, h := range b.Config.Server.Hostnames {
		if port == "22" {
			hosts = append(hosts, h)
		} else {
			hosts = append(hosts, "["+h+"]:"+port)
		}
	}
	return cli.CAInfo{
		UserCA:     b.CA.User.AuthorizedKey(),
		UpstreamCA: b.CA.Upstream.AuthorizedKey(),
		HostCA:     b.CA.Host.AuthorizedKey(),
		TLSCA:      string(b.CA.TLS.CertPEM()),
		KnownHosts: "@cert-authority " + strings.Join(hosts, ",") + " " + b.CA.Host.AuthorizedKey(),
	}
}

// Listeners are the bound sockets Run serves.
type Listeners struct {
	SSH       net.Listener
	HTTP      net.Listener                 // optional
	Databases map[policy.Kind]net.Listener // for the configured database front ends
}

// Listen binds the configured addresses.
func (b *Bastion) Listen() (*Listeners, error) {
	var l Listeners
	var err error
	if l.SSH, err = net.Listen("tcp", b.Config.Listen.SSH); err != nil {
		return nil, fmt.Errorf("listen ssh: %w", err)
	}
	if b.Config.Listen.HTTP != "" {
		if l.HTTP, err = net.Listen("tcp", b.Config.Listen.HTTP); err != nil {
			l.SSH.Close()
			return nil, fmt.Errorf("listen http: %w", err)
		}
	}
	l.Databases = map[policy.Kind]net.Listener{}
	for k := range b.frontends {
		dl, err := net.Listen("tcp", b.frontendAddrs[k])
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("listen %s: %w", k, err)
		}
		l.Databases[k] = dl
	}
	return &l, nil
}

// Close closes every listener.
func (l *Listeners) Close() {
	for _, c := range append([]net.Listener{l.SSH, l.HTTP}, slices.Collect(maps.Values(l.Databases))...) {
		if c != nil {
			c.Close()
		}
	}
}

// Run serves on l until ctx ends, then shuts down gracefully.
func (b *Bastion) Run(ctx context.Context, l *Listeners) error {
	defer b.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2+len(l.Databases))

	if soft, hard, err := raiseOpenFileLimit(); err != nil {
		b.log.Warn("open-file limit not raised", "soft", soft, "hard", hard, "err", err)
	} else {
		b.log.Info("open-file limit", "soft", soft, "hard", hard)
	}

	wg.Add(2)
	go func() { defer wg.Done(); b.Access.Run(ctx) }()
	go func() { defer wg.Done(); b.wakeOnChange(ctx) }()
	b.runProvisioners(ctx, &wg)
	b.recs.start(ctx, b.Store, b.Access.Record)

	// The database front ends log before SSH: "serving ssh" is the line
	// that says Bastion is up.
	addrs := map[policy.Kind]string{}
	for k, dl := range l.Databases {
		addrs[k] = dl.Addr().String()
		go func() { errc <- b.frontends[k].Serve(dl) }()
		b.log.Info("serving "+string(k), "addr", dl.Addr().String())
	}
	b.dbAddrs.Store(addrs)

	b.sshAddr.Store(l.SSH.Addr().String())
	bound := []string{l.SSH.Addr().String()}
	for _, dl := range l.Databases {
		bound = append(bound, dl.Addr().String())
	}
	if l.HTTP != nil {
		bound = append(bound, l.HTTP.Addr().String())
	}
	b.bound.Store(bound)
	go func() { errc <- b.SSH.Serve(l.SSH) }()
	b.log.Info("serving ssh", "addr", l.SSH.Addr().String())

	var hs *http.Server
	if l.HTTP != nil {
		hs = &http.Server{Handler: b.httpHandler(), ReadHeaderTimeout: readHeaderTimeout, ErrorLog: slog.NewLogLogger(b.log.Handler(), slog.LevelWarn)}
		go func() { errc <- hs.Serve(l.HTTP) }()
		b.log.Info("serving http", "addr", l.HTTP.Addr().String())
	}

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		b.log.Error("listener failed", "err", err)
	}
	cancel()
	shutdown, stop := context.WithTimeout(context.Background(), shutdownGrace)
	defer stop()
	if hs != nil {
		if serr := hs.Shutdown(shutdown); serr != nil {
			b.log.Warn("http shutdown", "err", serr)
		}
	}
	if serr := b.SSH.Shutdown(shutdown); serr != nil {
		b.log.Warn("ssh shutdown: closing open sessions", "err", serr)
	}
	for k, f := range b.frontends {
		if serr := f.Shutdown(shutdown); serr != nil {
			b.log.Warn(string(k)+" shutdown: closing open connections", "err", serr)
		}
	}
	wg.Wait()
	if errors.Is(err, sshfront.ErrServerClosed) || errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Close releases what New opened, for a Bastion that was never Run.
func (b *Bastion) Close() { b.close() }

// close releases what New opened; fields New had not set yet are nil.
func (b *Bastion) close() {
	if b.recs != nil {
		b.recs.close(shutdownGrace)
	}
	if b.webhook != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		if err := b.webhook.Close(ctx); err != nil {
			b.log.Warn("webhook: undelivered notifications", "err", err)
		}
		cancel()
	}
	if b.Access != nil && b.Store != nil {
		// Audit events recorded after Access.Run stopped (the ends of the
		// sessions the shutdown closed) that the store could not take then.
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		if err := b.Access.FlushAudit(ctx); err != nil {
			b.log.Error("audit events lost at stop: the store did not take them", "err", err)
		}
		cancel()
	}
	if b.Store != nil {
		if err := b.Store.Close(); err != nil {
			b.log.Warn("close store", "err", err)
		}
	}
}

// readyTimeout bounds the store probes of one /readyz request.
const readyTimeout = 2 * time.Second

// httpHandler serves health and readiness.
func (b *Bastion) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if reason := b.unready(r.Context()); reason != "" {
			http.Error(w, "not ready: "+reason, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// unready says why Bastion should not be sent new clients, or "" when it
// can take them: it is near its open-file limit or its cap on
// unauthenticated connections, or its store cannot be read or written. The
// reason is short and safe to show; the cause is logged.
func (b *Bastion) unready(ctx context.Context) string {
	for _, reason := range []string{nearFileLimit(processStatus()), nearConnectionCap(b.gate.Stats()), auditBacklog(b.Access.PendingAudit()),
		spoolUnwritable(b.recs)} {
		if reason != "" {
			b.log.Warn("readiness: " + reason)
			return reason
		}
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if _, err := b.Store.Audit(ctx, store.AuditFilter{Limit: 1}); err != nil {
		b.log.Warn("readiness: store unavailable", "err", err)
		return "store unavailable"
	}
	if err := b.probeStoreWrite(); err != nil {
		b.log.Warn("readiness: store not writable", "err", err)
		return "store not writable"
	}
	return ""
}

// auditBacklog is why Bastion is unready while audit events wait for the
// store (it refused them; they are kept and retried), or "".
func auditBacklog(pending int, _ uint64) string {
	if pending == 0 {
		return ""
	}
	return fmt.Sprintf("%d audit events wait for the store", pending)
}

// probeStoreWrite writes and removes a small file next to the SQLite
// store: it fails when the store's file system is full, read-only or gone,
// the cases where the store's next write would. It does not fsync (a full
// disk already fails the write), so a probe costs no disk I/O to speak of.
func (b *Bastion) probeStoreWrite() error {
	if b.Config.Store.Driver != "sqlite" {
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(b.Config.Store.DSN), ".readyz-*")
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte("ready\n"))
	return errors.Join(werr, f.Close(), os.Remove(f.Name()))
}

// wakeOnChange has the grant watcher check every live grant as soon as a
// request changes here (a revocation ends its sessions at once), until ctx
// ends.
func (b *Bastion) wakeOnChange(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.Access.Changed():
			b.grants.Wake()
			b.wakeProvisioners()
		}
	}
}
