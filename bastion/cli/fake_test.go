package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/manifest"
	"github.com/bastionhq/bastion/recorder/querylog"
	"github.com/bastionhq/bastion/recorder/spool"
)

// The fakes below stand in for the access service, the store and recording
// storage: small, deterministic (fixed times, keys from fixed seeds), and
// they remember what the CLI asked of them.

// t0 is "now" in the fixture: every time in it is an offset from t0.
var t0 = time.Date(2026, time.December, 1, 9, 0, 0, 0, time.UTC)

// keyFromSeed is an ed25519 signer whose key is the same in every run.
func keyFromSeed(t testing.TB, b byte) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixturePolicy: alice (dev) requests web servers and databases, bob (lead)
// approves them, carol (auditor) reads everything, dave has no role.
func fixturePolicy() *policy.Policy {
	return &policy.Policy{
		Users: map[string]*policy.User{
			"alice": {Name: "alice", Roles: []string{"dev"}},
			"bob":   {Name: "bob", Roles: []string{"lead"}},
			"carol": {Name: "carol", Roles: []string{"auditor"}},
			"dave":  {Name: "dave"},
		},
		Roles: map[string]*policy.Role{
			"dev": {Name: "dev",
				Standing: []policy.Access{{Targets: policy.Selector{Names: []string{"staging"}}, Logins: []string{"deploy"}}},
				Requestable: []policy.RequestRule{
					{Access: policy.Access{Targets: policy.Selector{Labels: map[string]string{"env": "prod"}}, Logins: []string{"root", "deploy"}},
						Approvers: []string{"lead"}, Approvals: 1, MaxDuration: 4 * time.Hour},
					{Access: policy.Access{Targets: policy.Selector{Names: []string{"orders", "shop"}}},
						Approvers: []string{"lead"}, Approvals: 1, MaxDuration: time.Hour},
				}},
			"lead":    {Name: "lead"},
			"auditor": {Name: "auditor", Permissions: []policy.Permission{policy.PermAudit}},
		},
		Targets: map[string]*policy.Target{
			"web01":   {Name: "web01", Kind: policy.KindSSH, Labels: map[string]string{"env": "prod"}},
			"staging": {Name: "staging", Kind: policy.KindSSH},
			"orders":  {Name: "orders", Kind: policy.KindPostgres},
			"shop":    {Name: "shop", Kind: policy.KindMySQL},
		},
	}
}

// fixtureRequests are the requests the fake access service starts with.
func fixtureRequests() map[int64]*store.Request {
	approval := []store.Approval{{Approver: "bob", Comment: "ok, go ahead", At: t0.Add(-50 * time.Minute)}}
	return map[int64]*store.Request{
		1: {ID: 1, Requester: "alice", Role: "dev", Targets: []string{"web01"}, Logins: []string{"root"}, Reason: "INC-1 disk full",
			Duration: time.Hour, State: store.Approved, CreatedAt: t0.Add(-time.Hour), ApprovalsRequired: 1,
			Approvers: []string{"lead"}, Approvals: approval, DecidedBy: "bob", DecidedAt: t0.Add(-50 * time.Minute),
			GrantStart: t0.Add(-50 * time.Minute), GrantEnd: t0.Add(10 * time.Minute)},
		2: {ID: 2, Requester: "alice", Role: "dev", Targets: []string{"orders", "shop"}, Reason: "refund check",
			Duration: time.Hour, State: store.Approved, CreatedAt: t0.Add(-time.Hour), ApprovalsRequired: 1,
			Approvers: []string{"lead"}, Approvals: approval, DecidedBy: "bob", DecidedAt: t0.Add(-50 * time.Minute),
			GrantStart: t0.Add(-50 * time.Minute), GrantEnd: t0.Add(10 * time.Minute)},
		3: {ID: 3, Requester: "alice", Role: "dev", Targets: []string{"web01"}, Logins: []string{"deploy"}, Reason: "deploy 1.2",
			Duration: 2 * time.Hour, State: store.Pending, CreatedAt: t0.Add(-10 * time.Minute), PendingUntil: t0.Add(50 * time.Minute),
			ApprovalsRequired: 1, Approvers: []string{"lead"}},
		4: {ID: 4, Requester: "alice", Role: "dev", Targets: []string{"web01"}, Logins: []string{"root"}, Reason: "curious",
			Duration: time.Hour, State: store.Denied, CreatedAt: t0.Add(-3 * time.Hour), ApprovalsRequired: 1,
			Approvers: []string{"lead"}, DecidedBy: "bob", DecisionReason: "use staging", DecidedAt: t0.Add(-170 * time.Minute)},
		5: {ID: 5, Requester: "alice", Role: "dev", Targets: []string{"web01"}, Logins: []string{"root"}, Reason: "INC-0",
			Duration: time.Hour, State: store.Revoked, CreatedAt: t0.Add(-5 * time.Hour), ApprovalsRequired: 1,
			Approvers: []string{"lead"}, Approvals: approval, GrantStart: t0.Add(-290 * time.Minute), GrantEnd: t0.Add(-230 * time.Minute),
			ClosedBy: "alice", CloseReason: "done early", ClosedAt: t0.Add(-4 * time.Hour)},
		6: {ID: 6, Requester: "alice", Role: "dev", Targets: []string{"web01"}, Logins: []string{"root"},
			Duration: 10 * time.Minute, State: store.Pending, CreatedAt: t0.Add(-time.Minute), PendingUntil: t0.Add(59 * time.Minute),
			ApprovalsRequired: 1, Approvers: []string{"lead"}, Command: "systemctl restart nginx"},
	}
}

// fakeAccess is the access service: requests in a map, decisions as the
// real service makes them in the common cases, and refusals where the CLI
// has to report one.
type fakeAccess struct {
	mu       sync.Mutex
	requests map[int64]*store.Request
	next     int64
	ca       ssh.Signer
	events   []audit.Event // what Record was given
	fail     error         // when set, every method but Record fails with it
	panicky  bool          // when set, List panics
}

var _ Access = (*fakeAccess)(nil)

func (f *fakeAccess) get(id int64) (*store.Request, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	q := f.requests[id]
	if q == nil {
		return nil, fmt.Errorf("request %d: %w", id, access.ErrNotFound)
	}
	c := *q
	return &c, nil
}

func (f *fakeAccess) Request(_ context.Context, a access.Actor, in access.RequestInput) (*store.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	for _, t := range in.Targets {
		if _, ok := fixturePolicy().Targets[t]; !ok {
			return nil, &policy.Refusal{Reason: fmt.Sprintf("no role of %s may request %q", a.User, t)}
		}
	}
	f.next++
	q := &store.Request{ID: f.next, Requester: a.User, Role: "dev", Targets: in.Targets, Logins: in.Logins, Reason: in.Reason,
		Duration: in.Duration, State: store.Pending, CreatedAt: t0, PendingUntil: t0.Add(time.Hour),
		ApprovalsRequired: 1, Approvers: []string{"lead"}}
	f.requests[q.ID] = q
	c := *q
	return &c, nil
}

func (f *fakeAccess) Get(_ context.Context, _ access.Actor, id int64) (*store.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.get(id)
}

func (f *fakeAccess) List(_ context.Context, a access.Actor, flt store.RequestFilter) ([]*store.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicky {
		panic("fake access: List is broken")
	}
	if f.fail != nil {
		return nil, f.fail
	}
	if flt.Requester != "" && flt.Requester != a.User && a.User != "carol" {
		return nil, &policy.Refusal{Reason: "listing other users' requests needs the audit permission"}
	}
	var out []*store.Request
	for id := int64(1); id <= f.next; id++ {
		q := f.requests[id]
		if q == nil || (flt.Requester != "" && q.Requester != flt.Requester) ||
			(len(flt.States) > 0 && !slices.Contains(flt.States, q.State)) {
			continue
		}
		c := *q
		out = append(out, &c)
		if flt.Limit > 0 && len(out) == flt.Limit {
			break
		}
	}
	return out, nil
}

func (f *fakeAccess) decide(a access.Actor, id int64, apply func(q *store.Request) error) (*store.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q, err := f.get(id)
	if err != nil {
		return nil, err
	}
	if err := apply(q); err != nil {
		return nil, err
	}
	f.requests[id] = q
	c := *q
	return &c, nil
}

func (f *fakeAccess) Approve(_ context.Context, a access.Actor, id int64, comment string) (*store.Request, error) {
	return f.decide(a, id, func(q *store.Request) error {
		switch {
		case q.Requester == a.User:
			return &policy.Refusal{Reason: "you may not approve your own request"}
		case q.State != store.Pending:
			return &policy.Refusal{Reason: fmt.Sprintf("request %d is %s, not pending", q.ID, q.State)}
		}
		q.Approvals = append(q.Approvals, store.Approval{Approver: a.User, Comment: comment, At: t0})
		q.State, q.DecidedBy, q.DecidedAt, q.GrantStart, q.GrantEnd = store.Approved, a.User, t0, t0, t0.Add(q.Duration)
		return nil
	})
}

func (f *fakeAccess) Deny(_ context.Context, a access.Actor, id int64, reason string) (*store.Request, error) {
	return f.decide(a, id, func(q *store.Request) error {
		if q.State != store.Pending {
			return &policy.Refusal{Reason: fmt.Sprintf("request %d is %s, not pending", q.ID, q.State)}
		}
		q.State, q.DecidedBy, q.DecidedAt, q.DecisionReason = store.Denied, a.User, t0, reason
		return nil
	})
}

func (f *fakeAccess) Revoke(_ context.Context, a access.Actor, id int64, reason string) (*store.Request, error) {
	return f.decide(a, id, func(q *store.Request) error {
		if q.State != store.Pending && q.State != store.Approved {
			return &policy.Refusal{Reason: fmt.Sprintf("request %d is %s already", q.ID, q.State)}
		}
		q.State, q.ClosedBy, q.ClosedAt, q.CloseReason = store.Revoked, a.User, t0, reason
		return nil
	})
}

// Wait returns the request as it is: the fixture's requests are decided, or
// the test does not wait on them.
func (f *fakeAccess) Wait(ctx context.Context, a access.Actor, id int64) (*store.Request, error) {
	return f.Get(ctx, a, id)
}

func (f *fakeAccess) Cert(_ context.Context, a access.Actor, id int64) (*access.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q, err := f.get(id)
	if err != nil {
		return nil, err
	}
	if q.State != store.Approved || len(q.Logins) == 0 {
		return nil, &policy.Refusal{Reason: fmt.Sprintf("request %d grants no SSH login", id)}
	}
	if a.Key == nil {
		return nil, &policy.Refusal{Reason: "a certificate needs the key you logged in with"}
	}
	c := &ssh.Certificate{Key: a.Key, Serial: 7, CertType: ssh.UserCert, KeyId: fmt.Sprintf("%s#%d", a.User, id),
		ValidPrincipals: q.Logins, ValidAfter: uint64(q.GrantStart.Unix()), ValidBefore: uint64(q.GrantEnd.Unix())}
	// A zero nonce and ed25519 make the certificate the same in every run.
	if err := c.SignCert(zeroReader{}, f.ca); err != nil {
		return nil, err
	}
	return &access.Certificate{Cert: c, Serial: 7}, nil
}

func (f *fakeAccess) IssueDBSecret(_ context.Context, a access.Actor, id int64) (*access.DBSecret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q, err := f.get(id)
	if err != nil {
		return nil, err
	}
	if q.State != store.Approved {
		return nil, &policy.Refusal{Reason: fmt.Sprintf("request %d is %s", id, q.State)}
	}
	return &access.DBSecret{Secret: "tok-" + fmt.Sprint(id), RequestID: id, User: a.User, Targets: q.Targets,
		ExpiresAt: t0.Add(15 * time.Minute)}, nil
}

func (f *fakeAccess) Record(_ context.Context, a access.Actor, e audit.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e.Actor = a.User
	f.events = append(f.events, e)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// fakeAudit is the audit log: events in order, sealed into a chain.
type fakeAudit struct {
	events  []audit.Event
	filters []store.AuditFilter // what the CLI asked for
	fail    error
}

var _ AuditLog = (*fakeAudit)(nil)

func newFakeAudit() *fakeAudit {
	a := &fakeAudit{}
	for i, e := range []audit.Event{
		{Type: audit.RequestCreate, Actor: "alice", Subject: "alice", RequestID: 1, Target: "web01", Outcome: audit.OutcomeOK, Reason: "INC-1 disk full"},
		{Type: audit.RequestGrant, Actor: "bob", Subject: "alice", RequestID: 1, Target: "web01", Outcome: audit.OutcomeOK},
		{Type: audit.Login, Actor: "bob", Subject: "bob", Outcome: audit.OutcomeRefused, Reason: "unknown key", Source: "192.0.2.7"},
		{Type: audit.SessionStart, Actor: "alice", Subject: "alice", RequestID: 1, Target: "web01", Outcome: audit.OutcomeOK,
			Details: map[string]string{"session": "ssh-1"}},
	} {
		e.Time = t0.Add(time.Duration(i-60) * time.Minute)
		var prev *audit.Event
		if i > 0 {
			prev = &a.events[i-1]
		}
		e.Seal(prev)
		a.events = append(a.events, e)
	}
	return a
}

func (a *fakeAudit) Audit(_ context.Context, f store.AuditFilter) ([]audit.Event, error) {
	a.filters = append(a.filters, f)
	if a.fail != nil {
		return nil, a.fail
	}
	var out []audit.Event
	for _, e := range a.events {
		if e.Seq <= f.AfterSeq || (f.User != "" && e.Actor != f.User && e.Subject != f.User) || (f.Type != "" && e.Type != f.Type) ||
			(f.RequestID != 0 && e.RequestID != f.RequestID) || e.Time.Before(f.Since) {
			continue
		}
		out = append(out, e)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

// fakeSessions is the session log, with legal holds.
type fakeSessions struct {
	sessions map[string]*store.Session
	holds    map[string]bool
	filters  []store.SessionFilter
}

var _ SessionLog = (*fakeSessions)(nil)

func newFakeSessions() *fakeSessions {
	return &fakeSessions{holds: map[string]bool{}, sessions: map[string]*store.Session{
		"ssh-1": {ID: "ssh-1", User: "alice", Target: "web01", Login: "root", Protocol: "ssh", Kind: "shell", RequestID: 1,
			Source: "192.0.2.10", Recording: "2026/12/01/ssh-1.cast", State: store.SessionEnded,
			StartedAt: t0.Add(-45 * time.Minute), EndedAt: t0.Add(-40 * time.Minute), EndReason: "client closed", ExitStatus: 0},
		"pg-2": {ID: "pg-2", User: "alice", Target: "orders", Login: "orders_ro", Protocol: "postgres", Kind: "query", RequestID: 2,
			Source: "192.0.2.10", Recording: "2026/12/01/pg-2.jsonl", State: store.SessionEnded,
			StartedAt: t0.Add(-30 * time.Minute), EndedAt: t0.Add(-29 * time.Minute), EndReason: "client closed", ExitStatus: -1},
		"ssh-3": {ID: "ssh-3", User: "bob", Target: "web01", Login: "deploy", Protocol: "ssh", Kind: "exec", Command: "uptime",
			Source: "192.0.2.11", Recording: "2026/12/01/ssh-3.cast", State: store.SessionLive,
			StartedAt: t0.Add(-time.Minute), ExitStatus: -1},
		"ssh-4": {ID: "ssh-4", User: "alice", Target: "web01", Login: "root", Protocol: "ssh", Kind: "exec", Command: "true",
			Source: "192.0.2.10", Recording: "2026/12/01/ssh-4.cast", State: store.SessionEnded,
			StartedAt: t0.Add(-20 * time.Minute), EndedAt: t0.Add(-20 * time.Minute), ExitStatus: 0},
	}}
}

func (s *fakeSessions) Session(_ context.Context, id string) (*store.Session, error) {
	x := s.sessions[id]
	if x == nil {
		return nil, fmt.Errorf("session %q: %w", id, store.ErrNotFound)
	}
	c := *x
	return &c, nil
}

func (s *fakeSessions) Sessions(_ context.Context, f store.SessionFilter) ([]*store.Session, error) {
	s.filters = append(s.filters, f)
	var out []*store.Session
	for _, id := range []string{"ssh-4", "ssh-3", "pg-2", "ssh-1"} { // newest first
		x := s.sessions[id]
		if (f.User != "" && x.User != f.User) || (f.Target != "" && x.Target != f.Target) ||
			(len(f.States) > 0 && !slices.Contains(f.States, x.State)) {
			continue
		}
		c := *x
		out = append(out, &c)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

func (s *fakeSessions) SetLegalHold(_ context.Context, id string, hold bool, _, _ string, _ time.Time) error {
	if s.sessions[id] == nil {
		return store.ErrNotFound
	}
	s.holds[id] = hold
	return nil
}

// fakeStorage is recording storage in memory: read-only, as the CLI uses it.
type fakeStorage struct {
	objects map[string][]byte
}

var _ recorder.Storage = (*fakeStorage)(nil)

func newFakeStorage(t testing.TB) *fakeStorage {
	cast := `{"version":2,"width":80,"height":24,"timestamp":1764579300}
[0.000000,"o","root@web01:~# "]
[0.001000,"i","df -h\r"]
[0.002000,"o","df -h\r\n/dev/sda1  100%\r\n"]
`
	var jsonl bytes.Buffer
	qw := querylog.NewWriter(&jsonl)
	start := t0.Add(-30 * time.Minute)
	for _, e := range []querylog.Event{
		{Time: start, Type: querylog.TypeStart, User: "alice", Target: "orders", Database: "orders", RequestID: "2",
			ClientAddr: "192.0.2.10:5000", Protocol: querylog.ProtocolPostgres},
		{Time: start.Add(time.Millisecond), Type: querylog.TypeQuery, Statement: "SELECT count(*) FROM refunds", Decision: querylog.Allow,
			Tag: "SELECT 1", Rows: 1},
		{Time: start.Add(2 * time.Millisecond), Type: querylog.TypeEnd, Reason: "client closed"},
	} {
		if err := qw.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	return &fakeStorage{objects: map[string][]byte{
		"2026/12/01/ssh-1.cast": []byte(cast),
		"2026/12/01/pg-2.jsonl": jsonl.Bytes(),
		"2026/12/01/ssh-3.cast": []byte(cast),
	}}
}

func (s *fakeStorage) Create(context.Context, string) (recorder.Object, error) {
	return nil, fmt.Errorf("fake storage is read-only: %w", fs.ErrPermission)
}

func (s *fakeStorage) Open(_ context.Context, name string) (io.ReadCloser, error) {
	b, ok := s.objects[name]
	if !ok {
		return nil, fmt.Errorf("open %s: %w", name, fs.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (s *fakeStorage) Stat(_ context.Context, name string) (recorder.ObjectInfo, error) {
	b, ok := s.objects[name]
	if !ok {
		return recorder.ObjectInfo{}, fmt.Errorf("stat %s: %w", name, fs.ErrNotExist)
	}
	return recorder.ObjectInfo{Name: name, Size: int64(len(b)), ModTime: t0}, nil
}

func (s *fakeStorage) List(_ context.Context, prefix string) ([]recorder.ObjectInfo, error) {
	var out []recorder.ObjectInfo
	for name, b := range s.objects {
		if strings.HasPrefix(name, prefix) {
			out = append(out, recorder.ObjectInfo{Name: name, Size: int64(len(b)), ModTime: t0})
		}
	}
	slices.SortFunc(out, func(a, b recorder.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *fakeStorage) Delete(context.Context, string) error {
	return fmt.Errorf("fake storage is read-only: %w", fs.ErrPermission)
}

// signedStorage is storage behind the spool: recordings with signed
// manifests (one chunk each: the recording itself), and upload status.
type signedStorage struct {
	*fakeStorage
	key       ssh.Signer
	manifests map[string][]byte
	chunks    map[string][]byte // what Source serves as chunk 1
	status    spool.Status
}

var (
	_ RecordingVerifier = (*signedStorage)(nil)
	_ RecordingStatus   = (*signedStorage)(nil)
)

func newSignedStorage(t testing.TB, st *fakeStorage) *signedStorage {
	s := &signedStorage{fakeStorage: st, key: keyFromSeed(t, 3), manifests: map[string][]byte{}, chunks: map[string][]byte{},
		status: spool.Status{StorageOK: true, LastOK: t0, Recordings: 1, Pending: 4096, Quota: 1 << 30, Uploaded: 1 << 20,
			Chunks: 12, LagP50: spool.Duration(80 * time.Millisecond), LagP99: spool.Duration(900 * time.Millisecond)}}
	for _, name := range []string{"2026/12/01/ssh-1.cast", "2026/12/01/pg-2.jsonl"} {
		data := st.objects[name]
		sum := sha256.Sum256(data)
		chain := manifest.NewChain(name)
		chain.Add(sum)
		m := &manifest.Manifest{Name: name, Status: manifest.Complete, Started: t0.Add(-45 * time.Minute), Ended: t0.Add(-40 * time.Minute),
			Session: map[string]string{"id": "ssh-1", "user": "alice"}, Chunks: []manifest.Chunk{{N: 1, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}},
			Size: int64(len(data)), Chain: chain.Sum(), Signer: "bastion.example"}
		b, err := manifest.Sign(m, s.key)
		if err != nil {
			t.Fatal(err)
		}
		s.manifests[name], s.chunks[name] = b, data
	}
	return s
}

func (s *signedStorage) Source(name string) manifest.Source { return &fakeSource{s: s, name: name} }
func (s *signedStorage) PublicKey() ssh.PublicKey           { return s.key.PublicKey() }
func (s *signedStorage) Status() spool.Status               { return s.status }

type fakeSource struct {
	s    *signedStorage
	name string
}

func (f *fakeSource) Manifest(context.Context) ([]byte, error) {
	b, ok := f.s.manifests[f.name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", f.name, fs.ErrNotExist)
	}
	return b, nil
}

func (f *fakeSource) Chunks(context.Context) ([]int, error) {
	if _, ok := f.s.chunks[f.name]; !ok {
		return nil, nil
	}
	return []int{1}, nil
}

func (f *fakeSource) Chunk(_ context.Context, n int) (io.ReadCloser, error) {
	b, ok := f.s.chunks[f.name]
	if !ok || n != 1 {
		return nil, fs.ErrNotExist
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// fixture is one CLI over fresh fakes.
type fixture struct {
	access   *fakeAccess
	audit    *fakeAudit
	sessions *fakeSessions
	storage  *fakeStorage
	signed   *signedStorage
	keys     map[string]ssh.PublicKey // users' login keys
	cfg      Config
}

func newFixture(t testing.TB) *fixture {
	f := &fixture{
		access:   &fakeAccess{requests: fixtureRequests(), next: 6, ca: keyFromSeed(t, 1)},
		audit:    newFakeAudit(),
		sessions: newFakeSessions(),
		storage:  newFakeStorage(t),
		keys:     map[string]ssh.PublicKey{"alice": keyFromSeed(t, 2).PublicKey()},
	}
	f.signed = newSignedStorage(t, f.storage)
	pol := fixturePolicy()
	f.cfg = Config{Access: f.access, Audit: f.audit, Sessions: f.sessions, Recordings: f.storage,
		Policy: func() *policy.Policy { return pol },
		CA: func() CAInfo {
			return CAInfo{UserCA: "ssh-ed25519 AAAAuser bastion-user-ca", UpstreamCA: "ssh-ed25519 AAAAupstream bastion-upstream-ca",
				HostCA: "ssh-ed25519 AAAAhost bastion-host-ca", TLSCA: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
				KnownHosts: "@cert-authority * ssh-ed25519 AAAAhost bastion-host-ca"}
		},
		Databases: func() Databases { return Databases{Host: "bastion.example", PostgresPort: 5432, MySQLPort: 3306} },
	}
	return f
}

// actor is the user as the SSH front end presents them.
func (f *fixture) actor(user string) access.Actor {
	return access.Actor{User: user, Source: netip.MustParseAddr("192.0.2.10"), Key: f.keys[user]}
}
