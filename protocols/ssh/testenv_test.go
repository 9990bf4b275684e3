package ssh

// The in-package test environment: a Server on a loopback listener with
// small fakes for the interfaces in Config, real x/crypto/ssh clients, and
// a fake target (an x/crypto/ssh server that accepts only certificates from
// the upstream CA and runs a tiny shell).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/cli"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/leakcheck"
	"github.com/bastionhq/bastion/recorder"
)

// waitTimeout bounds every wait for a condition in these tests; nothing
// here should take more than a fraction of it.
const waitTimeout = 10 * time.Second

// waitFor waits until cond holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// env is a Server with fakes, and a fake target named web01.
type env struct {
	t          *testing.T
	srv        *Server
	addr       string
	hostKey    ssh.PublicKey // Bastion's
	keys       map[string]ssh.Signer
	users      *fakeUsers
	commands   *fakeCommands
	audit      *fakeAudit
	grants     *fakeGrants
	targets    *fakeTargets
	upstreamCA *fakeCA
	rules      *fakeRules
	approvals  *fakeApprovals
	sessions   *fakeSessions
	recordings *recorder.Dir
	target     *fakeTarget
	hostCA     ssh.Signer // certifies the target's host key (trusted only where a test says so)
}

// newEnv starts a Server whose Config the options may change. Users alice
// and bob have one key each; "mallory" is a key nobody registered. Alice
// may log in as root on web01 (request 7); bob may not.
func newEnv(t *testing.T, opts ...func(*env, *Config)) *env {
	t.Helper()
	leakcheck.Check(t)
	e := &env{
		t:         t,
		keys:      map[string]ssh.Signer{"alice": newSigner(t), "bob": newSigner(t), "mallory": newSigner(t)},
		commands:  &fakeCommands{},
		audit:     &fakeAudit{},
		grants:    &fakeGrants{allowed: map[string]string{"alice": "root@web01"}},
		rules:     &fakeRules{},
		approvals: &fakeApprovals{decide: make(chan *store.Request, 1)},
		sessions:  &fakeSessions{},
	}
	e.users = &fakeUsers{owners: map[string]string{
		string(e.keys["alice"].PublicKey().Marshal()): "alice",
		string(e.keys["bob"].PublicKey().Marshal()):   "bob",
	}}
	e.hostCA = newSigner(t)
	caSigner := newSigner(t)
	authority, err := ca.NewSSHAuthority("bastion-upstream-ca", caSigner)
	if err != nil {
		t.Fatal(err)
	}
	e.upstreamCA = &fakeCA{auth: authority}
	e.target = newFakeTarget(t, caSigner.PublicKey(), e.hostCA)
	e.targets = &fakeTargets{m: map[string]Target{
		"web01": {Name: "web01", Address: e.target.addr(), HostKey: e.target.hostKey.PublicKey()},
	}}
	e.recordings, err = recorder.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	host := newSigner(t)
	e.hostKey = host.PublicKey()
	cfg := Config{
		HostSigners:      []ssh.Signer{host},
		Users:            e.users,
		Commands:         e.commands,
		Audit:            e.audit,
		Grants:           e.grants,
		Targets:          e.targets,
		UpstreamCA:       e.upstreamCA,
		ExecRules:        e.rules,
		Approvals:        e.approvals,
		Recordings:       e.recordings,
		Sessions:         e.sessions,
		HandshakeTimeout: waitTimeout,
		Logger:           slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	for _, o := range opts {
		o(e, &cfg)
	}
	e.srv, err = NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = l.Addr().String()
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(l) }()
	t.Cleanup(func() {
		if err := e.srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return e
}

// dial connects as user (the SSH user name) with the key of keyOwner.
func (e *env) dial(user, keyOwner string) (*ssh.Client, error) {
	c, err := ssh.Dial("tcp", e.addr, &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(e.keys[keyOwner])},
		HostKeyCallback: ssh.FixedHostKey(e.hostKey),
		Timeout:         waitTimeout,
	})
	if err == nil {
		e.t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func (e *env) mustDial(user, keyOwner string) *ssh.Client {
	e.t.Helper()
	c, err := e.dial(user, keyOwner)
	if err != nil {
		e.t.Fatalf("dial %s with %s's key: %v", user, keyOwner, err)
	}
	return c
}

// result is what a client saw of one exec session.
type result struct {
	stdout, stderr string
	status         int    // -1: no exit status
	signal         string // of exit-signal, if sent
	err            error
}

func (r result) String() string {
	return fmt.Sprintf("stdout %q, stderr %q, status %d, signal %q, err %v", r.stdout, r.stderr, r.status, r.signal, r.err)
}

// run runs command in a new session channel of c, after setup (may be
// nil) has sent its requests, with no input, and returns what the client
// saw.
//
// Unlike x/crypto/ssh's Session, it does not ask for an answer to the exec
// request: Bastion may close a session before answering when the command
// ends at once, and Session then reports EOF although the command ran
// (TestExecAnsweredBeforeClose checks that bug). The other tests check what
// the command does.
func run(t *testing.T, c *ssh.Client, command string, setup func(ssh.Channel)) result {
	t.Helper()
	x, err := startExec(c, command, setup)
	if err != nil {
		return result{status: -1, err: err}
	}
	// No input. CloseWrite fails only when the session has ended already,
	// and wait reports how it ended.
	_ = x.ch.CloseWrite()
	return x.wait()
}

// ptyShell opens a session on c with a terminal (80×24) and a shell, and
// returns its input and what it prints; the session closes with the test.
func ptyShell(t *testing.T, c *ssh.Client) (*ssh.Session, io.WriteCloser, *syncBuffer) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	s.Stdout = out
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	return s, in, out
}

// execChannel is a session channel running an exec command.
type execChannel struct {
	ch             ssh.Channel
	stdout, stderr syncBuffer
	copied         sync.WaitGroup
	status         chan int // once the channel closes: its exit status, or -1

	mu     sync.Mutex
	signal string // of exit-signal, if sent
}

// startExec opens a session channel, lets setup (may be nil) send requests
// on it, and sends exec without asking for an answer (see run).
func startExec(c *ssh.Client, command string, setup func(ssh.Channel)) (*execChannel, error) {
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		return nil, err
	}
	x := &execChannel{ch: ch, status: make(chan int, 1)}
	go func() {
		status := -1
		for r := range reqs {
			var st struct{ Status uint32 }
			var sig struct { // RFC 4254 6.10
				Signal     string
				CoreDumped bool
				Msg, Lang  string
			}
			switch {
			case r.Type == "exit-status" && ssh.Unmarshal(r.Payload, &st) == nil:
				status = int(st.Status)
			case r.Type == "exit-signal" && ssh.Unmarshal(r.Payload, &sig) == nil:
				x.mu.Lock()
				x.signal = sig.Signal
				x.mu.Unlock()
			}
			if r.WantReply {
				r.Reply(false, nil)
			}
		}
		x.status <- status
	}()
	x.copied.Add(2)
	go func() { defer x.copied.Done(); io.Copy(&x.stdout, ch) }()
	go func() { defer x.copied.Done(); io.Copy(&x.stderr, ch.Stderr()) }()
	if setup != nil {
		setup(ch)
	}
	// EOF: Bastion has closed the channel already (a refusal that does not
	// wait for the request); wait reports what it said.
	if _, err := ch.SendRequest("exec", false, ssh.Marshal(struct{ Command string }{command})); err != nil && !errors.Is(err, io.EOF) {
		ch.Close()
		return nil, err
	}
	return x, nil
}

// wait waits, up to waitTimeout, for the channel to close, and returns what
// the client saw.
func (x *execChannel) wait() result {
	defer x.ch.Close()
	done := make(chan struct{})
	go func() { x.copied.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		return result{stdout: x.stdout.String(), stderr: x.stderr.String(), status: -1, err: errors.New("the session did not end")}
	}
	select {
	case status := <-x.status:
		x.mu.Lock()
		defer x.mu.Unlock()
		return result{stdout: x.stdout.String(), stderr: x.stderr.String(), status: status, signal: x.signal}
	case <-time.After(waitTimeout):
		return result{stdout: x.stdout.String(), stderr: x.stderr.String(), status: -1, err: errors.New("the session's output ended, but not the session")}
	}
}

// waitSession waits, up to waitTimeout, for s to end and returns what
// Wait returned.
func waitSession(t *testing.T, s *ssh.Session) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(waitTimeout):
		t.Fatal("the session did not end")
		return nil
	}
}

// syncBuffer is a buffer written by one goroutine and polled by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitOutput waits until b holds s.
func waitOutput(t *testing.T, b *syncBuffer, s string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !strings.Contains(b.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %q; got %q", s, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeUsers maps marshalled keys to their owners.
type fakeUsers struct{ owners map[string]string }

func (u *fakeUsers) User(key ssh.PublicKey) (string, bool) {
	if c, ok := key.(*ssh.Certificate); ok { // a certificate is its key's, as identity.Directory has it
		key = c.Key
	}
	owner, ok := u.owners[string(key.Marshal())]
	return owner, ok
}

// fakeCommands is a self-service command line with a few commands.
type fakeCommands struct {
	mu     sync.Mutex
	lines  []string
	actors []access.Actor
}

func (c *fakeCommands) RunLine(_ context.Context, a access.Actor, stdio cli.IO, line string) int {
	c.mu.Lock()
	c.lines = append(c.lines, line)
	c.actors = append(c.actors, a)
	c.mu.Unlock()
	switch line {
	case "whoami":
		fmt.Fprintln(stdio.Stdout, a.User)
		return 0
	case "targets":
		fmt.Fprintln(stdio.Stdout, "web01")
		return 0
	case "fail":
		fmt.Fprintln(stdio.Stderr, "boom")
		return 3
	case "panic":
		panic("a bug in a command")
	}
	fmt.Fprintf(stdio.Stderr, "unknown command %q\n", line)
	return 2
}

func (c *fakeCommands) ran() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.lines)
}

// fakeAudit keeps the events recorded.
type fakeAudit struct {
	mu      sync.Mutex
	events  []audit.Event
	failing bool // Audit fails, as when the store cannot take events
}

func (a *fakeAudit) Record(_ context.Context, actor access.Actor, e audit.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if e.Actor == "" {
		e.Actor = actor.User
	}
	a.events = append(a.events, e)
}

// Audit records e; it fails, recording nothing, while failing is set.
func (a *fakeAudit) Audit(ctx context.Context, actor access.Actor, e audit.Event) error {
	a.mu.Lock()
	fail := a.failing
	a.mu.Unlock()
	if fail {
		return errors.New("audit: store unavailable")
	}
	a.Record(ctx, actor, e)
	return nil
}

// of returns the events of type typ.
func (a *fakeAudit) of(typ string) []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Event
	for _, e := range a.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// fakeGrants authorises users for one login@target each, as request 7.
// CheckGrant returns checkErr once set.
type fakeGrants struct {
	allowed map[string]string // user → login@target
	ends    time.Time         // of the grants it gives; zero: standing

	// decide, when set, may refuse a login before the allowed check.
	decide func(in access.TargetLogin) error

	mu       sync.Mutex
	checkErr error
	checks   int
	refused  []string // reasons RefuseTarget audited
}

func (g *fakeGrants) CheckTarget(_ context.Context, in access.TargetLogin) (*access.Grant, error) {
	if g.decide != nil {
		if err := g.decide(in); err != nil {
			return nil, err
		}
	}
	if g.allowed[in.KeyOwner] != in.Login+"@"+in.Target {
		return nil, &policy.Refusal{Reason: fmt.Sprintf("no access to %s as %s", in.Target, in.Login)}
	}
	return &access.Grant{User: in.KeyOwner, Target: in.Target, Login: in.Login, Role: "ops", RequestID: 7, Serial: 99,
		Ends: g.ends, Source: in.Source}, nil
}

// RefuseTarget records a refusal as the access service audits it.
func (g *fakeGrants) RefuseTarget(_ context.Context, in access.TargetLogin, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refused = append(g.refused, err.Error())
}

// refusals are the refusals audited so far.
func (g *fakeGrants) refusals() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.refused)
}

func (g *fakeGrants) CheckGrant(context.Context, *access.Grant) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checks++
	return g.checkErr
}

func (g *fakeGrants) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.checkErr = err
}

type fakeTargets struct{ m map[string]Target }

func (f *fakeTargets) Target(name string) (Target, bool) {
	t, ok := f.m[name]
	return t, ok
}

// fakeCA is the real SSH authority, keeping the requests it signed.
type fakeCA struct {
	auth *ca.SSHAuthority
	mu   sync.Mutex
	reqs []ca.UserCertRequest
}

func (c *fakeCA) SignUser(req ca.UserCertRequest) (*ssh.Certificate, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, req)
	c.mu.Unlock()
	return c.auth.SignUser(req)
}

// fakeRules refuses rm, holds anything that mentions reboot for approval,
// panics on panic, allows the rest. Command
// rules apply everywhere, so pty shells are filtered.
type fakeRules struct{}

func (fakeRules) CheckExec(_ context.Context, _, _, command string) ExecDecision {
	switch {
	case command == "panic":
		panic("a bug in a rule")
	case strings.HasPrefix(command, "rm "):
		return ExecDecision{Refusal: "denied by rule no-rm: deleting files needs a change ticket"}
	case strings.Contains(command, "reboot"):
		return ExecDecision{Approval: &ApprovalNeeded{Rule: "reboot-needs-ok", Reason: "reboots are approved", Roles: []string{"lead"}}}
	}
	return ExecDecision{}
}

func (fakeRules) CommandsRestricted(string, string) bool { return true }

// fakeApprovals holds commands as request 42 until the test sends a
// decision on decide.
type fakeApprovals struct {
	decide chan *store.Request

	mu        sync.Mutex
	requested []access.CommandRequest
	done      []int64
}

func (f *fakeApprovals) RequestCommand(_ context.Context, _ access.Actor, in access.CommandRequest) (*store.Request, error) {
	f.mu.Lock()
	f.requested = append(f.requested, in)
	f.mu.Unlock()
	now := time.Now()
	return &store.Request{ID: 42, State: store.Pending, Approvers: []string{"lead"}, CreatedAt: now, PendingUntil: now.Add(time.Minute)}, nil
}

func (f *fakeApprovals) Wait(ctx context.Context, _ access.Actor, id int64) (*store.Request, error) {
	select {
	case r := <-f.decide:
		r.ID = id
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *fakeApprovals) CommandDone(_ context.Context, _ access.Actor, id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.done = append(f.done, id)
}

// fakeSessions keeps the session rows.
type fakeSessions struct {
	mu      sync.Mutex
	created []store.Session
	ended   []endedSession
}

type endedSession struct {
	id         string
	reason     string
	exitStatus int
}

func (f *fakeSessions) CreateSession(_ context.Context, s *store.Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, *s)
	return nil
}

func (f *fakeSessions) EndSession(_ context.Context, id string, _ store.SessionState, _ time.Time, reason string, exitStatus int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended = append(f.ended, endedSession{id, reason, exitStatus})
	return nil
}

func (f *fakeSessions) snapshot() ([]store.Session, []endedSession) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.created), slices.Clone(f.ended)
}

// breakableStorage is recording storage whose objects fail every write and
// sync once broken is set (a full or lost disk).
type breakableStorage struct {
	recorder.Storage
	broken atomic.Bool
}

func (s *breakableStorage) Create(ctx context.Context, name string) (recorder.Object, error) {
	o, err := s.Storage.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return breakableObject{o, &s.broken}, nil
}

type breakableObject struct {
	recorder.Object
	broken *atomic.Bool
}

var errDiskFailed = errors.New("disk failed")

func (o breakableObject) Write(p []byte) (int, error) {
	if o.broken.Load() {
		return 0, errDiskFailed
	}
	return o.Object.Write(p)
}

func (o breakableObject) Sync() error {
	if o.broken.Load() {
		return errDiskFailed
	}
	return o.Object.Sync()
}

// failingGuarantor is recording storage that cannot guarantee recordings.
type failingGuarantor struct{ recorder.Storage }

func (failingGuarantor) Guarantee(context.Context) error { return errors.New("spool disk full") }

// fakeTarget is an SSH server that accepts only user certificates signed by
// the upstream CA (principal = login, source-address checked), and runs a
// tiny shell: echo, warn (to stderr), env, cat, exit N, joined with ';';
// an exec of kill SIG alone ends with exit-signal SIG; an exec of agent
// (or rconnect) opens an agent channel (or a connection to the latest
// remote forward) back to the user and reports what came of it.
// A pty shell echoes what is typed and runs each line.
type fakeTarget struct {
	t       *testing.T
	l       net.Listener
	hostKey ssh.Signer
	cfg     *ssh.ServerConfig
	wg      sync.WaitGroup

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	certs    []*ssh.Certificate // that logged in
	ran      []string           // exec commands and typed lines, as run
	forwards []remoteForward    // asked for by the user (ssh -R)
	dialed   []string           // direct-tcpip destinations, as the target was asked
}

// directs is the direct-tcpip destinations the target was asked for.
func (ft *fakeTarget) directs() []string {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return slices.Clone(ft.dialed)
}

// fakeResolver resolves the names it holds, and no others.
type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// The target presents its plain host key, and a host certificate for web01
// signed by hostCA.
func newFakeTarget(t *testing.T, upstreamCA ssh.PublicKey, hostCA ssh.Signer) *fakeTarget {
	t.Helper()
	ft := &fakeTarget{t: t, hostKey: newSigner(t), conns: map[net.Conn]struct{}{}}
	checker := &ssh.CertChecker{IsUserAuthority: func(auth ssh.PublicKey) bool {
		return bytes.Equal(auth.Marshal(), upstreamCA.Marshal())
	}}
	ft.cfg = &ssh.ServerConfig{PublicKeyCallback: func(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
		// Authenticate checks the signature by the CA, the principal, the
		// validity window and the source-address option; with no
		// UserKeyFallback, plain keys are refused.
		p, err := checker.Authenticate(conn, key)
		if err != nil {
			return nil, err
		}
		// Kept in the Permissions, read back after the handshake.
		p.Extensions = maps.Clone(p.Extensions)
		if p.Extensions == nil {
			p.Extensions = map[string]string{}
		}
		p.Extensions["test-cert"] = string(key.Marshal())
		return p, nil
	}}
	ft.cfg.AddHostKey(ft.hostKey)
	cert := &ssh.Certificate{Key: ft.hostKey.PublicKey(), CertType: ssh.HostCert, KeyId: "web01",
		ValidPrincipals: []string{"web01"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, hostCA); err != nil {
		t.Fatal(err)
	}
	certSigner, err := ssh.NewCertSigner(cert, ft.hostKey)
	if err != nil {
		t.Fatal(err)
	}
	ft.cfg.AddHostKey(certSigner)
	ft.l, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ft.wg.Add(1)
	go ft.serve()
	t.Cleanup(ft.close)
	return ft
}

func (ft *fakeTarget) addr() string { return ft.l.Addr().String() }

func (ft *fakeTarget) serve() {
	defer ft.wg.Done()
	for {
		nc, err := ft.l.Accept()
		if err != nil {
			return
		}
		ft.mu.Lock()
		ft.conns[nc] = struct{}{}
		ft.mu.Unlock()
		ft.wg.Add(1)
		go ft.handle(nc)
	}
}

func (ft *fakeTarget) close() {
	ft.l.Close()
	ft.mu.Lock()
	for c := range ft.conns {
		c.Close()
	}
	ft.mu.Unlock()
	ft.wg.Wait()
}

func (ft *fakeTarget) handle(nc net.Conn) {
	defer ft.wg.Done()
	defer nc.Close()
	conn, chans, reqs, err := ssh.NewServerConn(nc, ft.cfg)
	if err != nil {
		return
	}
	defer conn.Close()
	if pub, err := ssh.ParsePublicKey([]byte(conn.Permissions.Extensions["test-cert"])); err == nil {
		if cert, ok := pub.(*ssh.Certificate); ok {
			ft.mu.Lock()
			ft.certs = append(ft.certs, cert)
			ft.mu.Unlock()
		}
	}
	go ft.globalRequests(reqs)
	var wg sync.WaitGroup
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			wg.Add(1)
			go func() { defer wg.Done(); ft.session(conn, nch) }()
		case "direct-tcpip":
			// An echo service reached through the target.
			var to struct {
				Host       string
				Port       uint32
				OriginHost string
				OriginPort uint32
			}
			if ssh.Unmarshal(nch.ExtraData(), &to) == nil {
				ft.mu.Lock()
				ft.dialed = append(ft.dialed, net.JoinHostPort(to.Host, fmt.Sprint(to.Port)))
				ft.mu.Unlock()
			}
			ch, creqs, err := nch.Accept()
			if err != nil {
				continue
			}
			go ssh.DiscardRequests(creqs)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer ch.Close()
				if _, err := io.Copy(ch, ch); err == nil {
					ch.CloseWrite()
				}
			}()
		default:
			nch.Reject(ssh.UnknownChannelType, "not here")
		}
	}
	wg.Wait()
}

func (ft *fakeTarget) session(conn *ssh.ServerConn, nch ssh.NewChannel) {
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	env := map[string]string{}
	var wg sync.WaitGroup
	defer wg.Wait()
	started := false
	for req := range reqs {
		ok, replied := false, false
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil {
				env[kv.Name], ok = kv.Value, true
			}
		case "pty-req", "window-change", "auth-agent-req@openssh.com":
			ok = true
		case "subsystem":
			// sftp: an echo of the client's packets, enough to see them relayed.
			var sub struct{ Name string }
			if ssh.Unmarshal(req.Payload, &sub) != nil || sub.Name != "sftp" || started {
				break
			}
			started, ok, replied = true, true, true
			ft.record("subsystem sftp")
			if req.WantReply {
				req.Reply(true, nil)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := io.Copy(ch, ch); err == nil {
					exit(ch, 0)
				}
			}()
		case "exec", "shell":
			if started {
				break
			}
			started, ok = true, true
			var ex struct{ Command string }
			if req.Type == "exec" && ssh.Unmarshal(req.Payload, &ex) != nil {
				ok = false
				break
			}
			// Answered before the command may end and close the channel,
			// as sshd does.
			if req.WantReply {
				req.Reply(true, nil)
			}
			replied = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				status := 0
				if req.Type == "exec" {
					ft.record(ex.Command)
					status, _ = ft.run(ex.Command, env, ch, ch, ch.Stderr())
				} else {
					status = ft.shell(ch, env)
				}
				switch ex.Command {
				case "agent":
					fmt.Fprintln(ch, agentPing(conn))
				case "rconnect":
					fmt.Fprintln(ch, ft.rconnect(conn))
				}
				if f := strings.Fields(ex.Command); len(f) == 2 && f[0] == "kill" {
					ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
						Signal     string
						CoreDumped bool
						Msg, Lang  string
					}{Signal: f[1]}))
					ch.CloseWrite()
					ch.Close()
					return
				}
				exit(ch, status)
			}()
		}
		if req.WantReply && !replied {
			req.Reply(ok, nil)
		}
	}
}

// remoteForward is a port the user asked the target to forward (ssh -R).
type remoteForward struct {
	Addr string
	Port uint32
}

// globalRequests accepts remote forwarding (ssh -R) without listening: a
// connection to the port is made up by the rconnect command.
func (ft *fakeTarget) globalRequests(reqs <-chan *ssh.Request) {
	for req := range reqs {
		var fwd remoteForward
		if req.Type != "tcpip-forward" || ssh.Unmarshal(req.Payload, &fwd) != nil {
			if req.WantReply {
				req.Reply(false, nil)
			}
			continue
		}
		if fwd.Port == 0 {
			fwd.Port = 4242
		}
		ft.mu.Lock()
		ft.forwards = append(ft.forwards, fwd)
		ft.mu.Unlock()
		if req.WantReply {
			req.Reply(true, ssh.Marshal(struct{ Port uint32 }{fwd.Port}))
		}
	}
}

// rconnect opens a forwarded-tcpip channel for the last remote forward (as
// sshd does when a connection arrives at the port), sends ping and returns
// what came back, or why the channel was refused.
func (ft *fakeTarget) rconnect(conn *ssh.ServerConn) string {
	ft.mu.Lock()
	if len(ft.forwards) == 0 {
		ft.mu.Unlock()
		return "no forwards"
	}
	fwd := ft.forwards[len(ft.forwards)-1]
	ft.mu.Unlock()
	payload := ssh.Marshal(struct {
		Addr       string
		Port       uint32
		OriginAddr string
		OriginPort uint32
	}{fwd.Addr, fwd.Port, "10.0.0.9", 5555})
	ch, reqs, err := conn.OpenChannel("forwarded-tcpip", payload)
	return ping("rconnect", ch, reqs, err)
}

// agentPing opens an agent channel towards the user (as sshd does for a
// program using the forwarded agent), sends ping and returns what came
// back, or why the channel was refused.
func agentPing(conn *ssh.ServerConn) string {
	ch, reqs, err := conn.OpenChannel("auth-agent@openssh.com", nil)
	return ping("agent", ch, reqs, err)
}

// ping sends ping on a channel the target opened and returns what came
// back, or why the channel was refused.
func ping(what string, ch ssh.Channel, reqs <-chan *ssh.Request, err error) string {
	if err != nil {
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			return what + " refused: " + oce.Message
		}
		return what + " failed: " + err.Error()
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs)
	if _, err := io.WriteString(ch, "ping"); err != nil {
		return what + " failed: " + err.Error()
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(ch, buf); err != nil {
		return what + " failed: " + err.Error()
	}
	return what + " answered " + string(buf)
}

func exit(ch ssh.Channel, status int) {
	ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
	ch.CloseWrite()
	ch.Close()
}

func (ft *fakeTarget) record(command string) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.ran = append(ft.ran, command)
}

func (ft *fakeTarget) commands() []string {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return slices.Clone(ft.ran)
}

// run runs a command line of the tiny shell; exited says `exit` ran.
func (ft *fakeTarget) run(line string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) (status int, exited bool) {
	for part := range strings.SplitSeq(line, ";") {
		f := strings.Fields(part)
		if len(f) == 0 {
			continue
		}
		status = 0
		switch f[0] {
		case "echo":
			fmt.Fprintln(stdout, strings.Join(f[1:], " "))
		case "warn":
			fmt.Fprintln(stderr, strings.Join(f[1:], " "))
		case "env":
			for _, k := range slices.Sorted(maps.Keys(env)) {
				fmt.Fprintf(stdout, "%s=%s\n", k, env[k])
			}
		case "cat":
			if _, err := io.Copy(stdout, stdin); err != nil {
				status = 1
			}
		case "agent", "rconnect": // run by session, which has the connection
		case "kill":
			return -1, true // the session ends with exit-signal f[1] (see session)
		case "exit":
			if len(f) > 1 {
				status, _ = strconv.Atoi(f[1])
			}
			return status, true
		default:
			fmt.Fprintf(stderr, "sh: %s: not found\n", f[0])
			status = 127
		}
	}
	return status, false
}

// shell is an interactive shell on a terminal: it echoes typed bytes and
// runs each line; Ctrl-U kills the line (as Bastion's refusal sends).
func (ft *fakeTarget) shell(ch ssh.Channel, env map[string]string) int {
	out := crlfWriter{ch}
	io.WriteString(ch, "$ ")
	var line []byte
	buf := make([]byte, 256)
	for {
		n, err := ch.Read(buf)
		for _, b := range buf[:n] {
			switch b {
			case '\r', '\n':
				io.WriteString(ch, "\r\n")
				text := strings.TrimSpace(string(line))
				line = line[:0]
				if text != "" {
					ft.record(text)
					if status, exited := ft.run(text, env, strings.NewReader(""), out, out); exited {
						return status
					}
				}
				io.WriteString(ch, "$ ")
			case 0x15: // Ctrl-U
				line = line[:0]
			case 0x05: // Ctrl-E: the cursor is always at the end here
			default:
				line = append(line, b)
				ch.Write([]byte{b})
			}
		}
		if err != nil {
			return 0
		}
	}
}

// crlfWriter writes "\n" as "\r\n", as a terminal in cooked mode would.
type crlfWriter struct{ w io.Writer }

func (c crlfWriter) Write(p []byte) (int, error) {
	if _, err := c.w.Write(bytes.ReplaceAll(p, []byte("\n"), []byte("\r\n"))); err != nil {
		return 0, err
	}
	return len(p), nil
}
