package access_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/bastion/store/sqlite"
	"github.com/bastionhq/bastion/ca"
)

// pendingTTL is how long requests wait for approval in testPolicy.
const pendingTTL = 30 * time.Minute

// Sources the tests connect from: inside and outside the corporate network
// that some rules require.
var (
	outside = netip.MustParseAddr("192.0.2.10")
	inside  = netip.MustParseAddr("10.1.2.3")
)

// startTime is where the fake clock starts: tomorrow at 09:00 UTC. It is in
// the future because the user CA checks validity against the real clock, and
// at a fixed time of day for the rule with a 08:00–10:00 window.
func startTime() time.Time {
	d := time.Now().UTC().AddDate(0, 0, 1)
	return time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, time.UTC)
}

// fakeClock is the service's clock; tests move it forward.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// recorder is a Notifier that keeps what it is told.
type recorder struct {
	mu    sync.Mutex
	notes []access.Notification
}

func (r *recorder) Notify(n access.Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, n)
}

// take returns the notifications received since the last take.
func (r *recorder) take() []access.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	notes := r.notes
	r.notes = nil
	return notes
}

// spyStore reports every read of a single request on reads (without
// blocking), so that a test knows when Wait has looked at the request.
type spyStore struct {
	store.Store
	reads chan int64
}

func (s *spyStore) Request(ctx context.Context, id int64) (*store.Request, error) {
	r, err := s.Store.Request(ctx, id)
	select {
	case s.reads <- id:
	default:
	}
	return r, err
}

// drain discards reads reported so far.
func (s *spyStore) drain() {
	for {
		select {
		case <-s.reads:
		default:
			return
		}
	}
}

// approvers are the members of role sre: bob and carol in the plain tests,
// sre00…sre14 in the concurrency test.
var approvers = func() []string {
	names := []string{"bob", "carol"}
	for i := range 15 {
		names = append(names, fmt.Sprintf("sre%02d", i))
	}
	return names
}()

// testPolicy is the policy of every test:
//   - alice and dave are developers (role dev), who request access;
//   - bob, carol and sre00…sre14 are approvers (role sre);
//   - erin is an auditor (PermAudit), olga has an unrelated role.
//
// Role dev may request:
//   - web*: logins root or deploy, one approval, at most 4h, reason required;
//   - db01 (PostgreSQL): one approval;
//   - staging*: login ubuntu, auto-approved from 10.0.0.0/8;
//   - prod*: login root, two approvals, at most 1h;
//   - win01: login root, usable 08:00–10:00 UTC only;
//   - net01: login root, only from 10.0.0.0/8.
func testPolicy() *policy.Policy {
	users := map[string]*policy.User{}
	add := func(name string, roles ...string) { users[name] = &policy.User{Name: name, Roles: roles} }
	add("alice", "dev")
	add("dave", "dev")
	add("erin", "auditor")
	add("olga", "ops")
	for _, name := range approvers {
		add(name, "sre")
	}

	targets := map[string]*policy.Target{}
	for name, kind := range map[string]policy.Kind{
		"web01": policy.KindSSH, "web02": policy.KindSSH, "db01": policy.KindPostgres,
		"staging01": policy.KindSSH, "prod01": policy.KindSSH, "win01": policy.KindSSH, "net01": policy.KindSSH,
	} {
		targets[name] = &policy.Target{Name: name, Kind: kind}
	}

	corp := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	every := [7]bool{true, true, true, true, true, true, true}
	rule := func(target string, logins ...string) policy.RequestRule {
		return policy.RequestRule{
			Access:    policy.Access{Targets: policy.Selector{Names: []string{target}}, Logins: logins},
			Approvers: []string{"sre"}, Approvals: 1, MaxDuration: 4 * time.Hour,
		}
	}
	web := rule("web*", "root", "deploy")
	web.RequireReason = true
	staging := rule("staging*", "ubuntu")
	staging.AutoApprove = &policy.Conditions{Networks: corp}
	prod := rule("prod*", "root")
	prod.Approvals, prod.MaxDuration = 2, time.Hour
	win := rule("win01", "root")
	win.Conditions.Windows = []policy.Window{{Days: every, From: 8 * time.Hour, To: 10 * time.Hour, Location: time.UTC}}
	net := rule("net01", "root")
	net.Conditions.Networks = corp

	return &policy.Policy{
		Users:   users,
		Targets: targets,
		Roles: map[string]*policy.Role{
			"dev":     {Name: "dev", Requestable: []policy.RequestRule{web, rule("db01"), staging, prod, win, net}},
			"sre":     {Name: "sre"},
			"auditor": {Name: "auditor", Permissions: []policy.Permission{policy.PermAudit}},
			"ops":     {Name: "ops"},
		},
		PendingTTL: pendingTTL,
	}
}

// testEnv is a Service on a real SQLite store and a real user CA, with a
// fake clock and a recording notifier.
type testEnv struct {
	svc   *access.Service
	st    store.Store
	spy   *spyStore
	ca    *ca.SSHAuthority
	clock *fakeClock
	notes *recorder
	pol   *policy.Policy

	keys    map[string]ssh.PublicKey
	lastSeq int64 // the last audit event a test has looked at
}

type envOption func(*policy.Policy)

func newEnv(t *testing.T, opts ...envOption) *testEnv {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "bastion.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	userCA, err := ca.LoadOrCreateSSH("bastion-user-ca", filepath.Join(dir, "ca", "user_ca"))
	if err != nil {
		t.Fatal(err)
	}
	pol := testPolicy()
	for _, o := range opts {
		o(pol)
	}
	e := &testEnv{
		st: st, spy: &spyStore{Store: st, reads: make(chan int64, 1)}, ca: userCA,
		clock: &fakeClock{now: startTime()}, notes: &recorder{}, pol: pol,
		keys: map[string]ssh.PublicKey{},
	}
	e.svc = access.New(access.Config{
		Store: e.spy, Policy: func() *policy.Policy { return pol }, UserCA: userCA,
		Notifier: e.notes, Now: e.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	// Whatever a test did, the audit log must still be one intact chain.
	t.Cleanup(func() {
		events, err := st.Audit(context.Background(), store.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if err := audit.Verify(events); err != nil {
			t.Errorf("audit chain of %d events: %v", len(events), err)
		}
	})
	return e
}

// actor is user connecting from outside with their own ed25519 key.
func (e *testEnv) actor(t *testing.T, user string) access.Actor {
	t.Helper()
	key := e.keys[user]
	if key == nil {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		if key, err = ssh.NewPublicKey(pub); err != nil {
			t.Fatal(err)
		}
		e.keys[user] = key
	}
	return access.Actor{User: user, Source: outside, Key: key}
}

// request creates a request that must succeed, and forgets its audit
// events and notifications.
func (e *testEnv) request(t *testing.T, a access.Actor, target string, logins []string, d time.Duration) *store.Request {
	t.Helper()
	r, err := e.svc.Request(t.Context(), a, access.RequestInput{Targets: []string{target}, Logins: logins, Duration: d, Reason: "INC-123"})
	if err != nil {
		t.Fatalf("request %s: %v", target, err)
	}
	e.skip(t)
	return r
}

// approved is request followed by bob's approval.
func (e *testEnv) approved(t *testing.T, a access.Actor, target string, logins []string, d time.Duration) *store.Request {
	t.Helper()
	r := e.request(t, a, target, logins, d)
	r, err := e.svc.Approve(t.Context(), e.actor(t, "bob"), r.ID, "ok")
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	e.skip(t)
	return r
}

// skip forgets the audit events and notifications so far.
func (e *testEnv) skip(t *testing.T) {
	t.Helper()
	e.newEvents(t)
	e.notes.take()
}

// newEvents returns the audit events appended since the last call.
func (e *testEnv) newEvents(t *testing.T) []audit.Event {
	t.Helper()
	events, err := e.st.Audit(context.Background(), store.AuditFilter{AfterSeq: e.lastSeq})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) > 0 {
		e.lastSeq = events[len(events)-1].Seq
	}
	return events
}

// ev is the part of an audit event the tests check.
type ev struct {
	Type, Actor, Subject string
	Request              int64
	Outcome              string
}

func (x ev) String() string {
	return fmt.Sprintf("%s actor=%q subject=%q request=%d outcome=%s", x.Type, x.Actor, x.Subject, x.Request, x.Outcome)
}

func evOf(e audit.Event) ev {
	return ev{Type: e.Type, Actor: e.Actor, Subject: e.Subject, Request: e.RequestID, Outcome: e.Outcome}
}

// wantAudit checks that exactly the events want, in order, were appended
// since the last check, and returns them.
func (e *testEnv) wantAudit(t *testing.T, want ...ev) []audit.Event {
	t.Helper()
	got := e.newEvents(t)
	checkEvents(t, got, want)
	return got
}

func checkEvents(t *testing.T, got []audit.Event, want []ev) {
	t.Helper()
	var g, w []string
	for _, e := range got {
		g = append(g, evOf(e).String())
	}
	for _, e := range want {
		w = append(w, e.String())
	}
	if strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Errorf("audit events:\n got: %s\nwant: %s", strings.Join(g, "\n      "), strings.Join(w, "\n      "))
	}
}

// wantNotes checks the notifications since the last check: their events in
// order, each about request id, with a text naming it.
func (e *testEnv) wantNotes(t *testing.T, id int64, events ...string) []access.Notification {
	t.Helper()
	notes := e.notes.take()
	var got []string
	for _, n := range notes {
		got = append(got, n.Event)
		switch {
		case n.Request == nil:
			t.Errorf("%s notification has no request", n.Event)
		case n.Request.ID != id:
			t.Errorf("%s notification is about request %d, want %d", n.Event, n.Request.ID, id)
		}
		if !strings.Contains(n.Text, fmt.Sprintf("#%d ", id)) {
			t.Errorf("%s notification text %q does not name request #%d", n.Event, n.Text, id)
		}
	}
	if strings.Join(got, ",") != strings.Join(events, ",") {
		t.Errorf("notifications = %q, want %q", got, events)
	}
	return notes
}

// Error kinds a test expects.
type errKind int

const (
	noErr errKind = iota
	refusal
	invalid
	notFound
)

func (k errKind) String() string {
	return [...]string{"no error", "*policy.Refusal", "*policy.InvalidError", "access.ErrNotFound"}[k]
}

// checkErr checks that err is of kind k and, if err is not nil, that its
// message contains substr.
func checkErr(t *testing.T, err error, k errKind, substr string) {
	t.Helper()
	var ref *policy.Refusal
	var inv *policy.InvalidError
	ok := false
	switch k {
	case noErr:
		ok = err == nil
	case refusal:
		ok = errors.As(err, &ref)
	case invalid:
		ok = errors.As(err, &inv)
	case notFound:
		ok = errors.Is(err, access.ErrNotFound)
	}
	if !ok {
		t.Fatalf("err = %v (%T), want %v", err, err, k)
	}
	if err != nil && !strings.Contains(err.Error(), substr) {
		t.Errorf("err = %q, want it to mention %q", err, substr)
	}
}

// stored reads request id straight from the store.
func (e *testEnv) stored(t *testing.T, id int64) *store.Request {
	t.Helper()
	r, err := e.st.Request(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}
