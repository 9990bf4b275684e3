package access_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/bastion/store/sqlite"
)

// failingStore is a real store whose writes fail while failing is set, as
// when its disk is full.
type failingStore struct {
	store.Store
	failing atomic.Bool
}

var errDiskFull = errors.New("database or disk is full")

func (s *failingStore) AppendAudit(ctx context.Context, e audit.Event) (audit.Event, error) {
	if s.failing.Load() {
		return audit.Event{}, errDiskFull
	}
	return s.Store.AppendAudit(ctx, e)
}

func (s *failingStore) CreateRequest(ctx context.Context, r *store.Request, events ...audit.Event) (int64, error) {
	if s.failing.Load() {
		return 0, errDiskFull
	}
	return s.Store.CreateRequest(ctx, r, events...)
}

// auditEnv is a Service on a failingStore, for the audit-failure tests.
type auditEnv struct {
	svc   *access.Service
	st    *failingStore
	clock *fakeClock
}

func newAuditEnv(t *testing.T, backlog int) *auditEnv {
	t.Helper()
	sq, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "bastion.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sq.Close(); err != nil {
			t.Error(err)
		}
	})
	e := &auditEnv{st: &failingStore{Store: sq}, clock: &fakeClock{now: startTime()}}
	pol := testPolicy()
	e.svc = access.New(access.Config{
		Store: e.st, Policy: func() *policy.Policy { return pol }, Now: e.clock.Now, AuditBacklog: backlog,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return e
}

// stored returns the audit chain, checking that it verifies.
func (e *auditEnv) stored(t *testing.T) []audit.Event {
	t.Helper()
	es, err := e.st.Audit(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.Verify(es); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	return es
}

func (e *auditEnv) pending(t *testing.T, wantPending int, wantDropped uint64) {
	t.Helper()
	if p, d := e.svc.PendingAudit(); p != wantPending || d != wantDropped {
		t.Fatalf("PendingAudit() = %d, %d; want %d, %d", p, d, wantPending, wantDropped)
	}
}

// reasons lists the events' reasons, for comparing orders.
func reasons(es []audit.Event) []string {
	var rs []string
	for _, e := range es {
		rs = append(rs, e.Reason)
	}
	return rs
}

func TestAuditStrict(t *testing.T) {
	e := newAuditEnv(t, 0)
	alice := access.Actor{User: "alice", Source: outside}
	start := audit.Session{User: "alice", Target: "web01", Protocol: "ssh", ID: "s1"}.Start()

	e.st.failing.Store(true)
	err := e.svc.Audit(t.Context(), alice, start)
	if !errors.Is(err, access.ErrNotAudited) || !errors.Is(err, errDiskFull) {
		t.Fatalf("Audit while the store fails = %v, want ErrNotAudited wrapping the store's error", err)
	}
	e.pending(t, 0, 0) // not kept: the session did not start
	e.st.failing.Store(false)
	if got := e.stored(t); len(got) != 0 {
		t.Fatalf("%d events stored, want none", len(got))
	}

	if err := e.svc.Audit(t.Context(), alice, start); err != nil {
		t.Fatalf("Audit: %v", err)
	}
	got := e.stored(t)
	if len(got) != 1 || got[0].Type != audit.SessionStart || got[0].Actor != "alice" || got[0].Source != outside.String() ||
		!got[0].Time.Equal(e.clock.Now()) || got[0].Details["session"] != "s1" {
		t.Errorf("stored %+v, want alice's session.start at the service's time", got)
	}
}

// TestRequestNotCreatedUnaudited: a request whose creation cannot be
// audited is not created, and the refusal is recorded once the store is
// back.
func TestRequestNotCreatedUnaudited(t *testing.T) {
	e := newAuditEnv(t, 0)
	alice := access.Actor{User: "alice", Source: outside}
	in := access.RequestInput{Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "INC-1"}

	e.st.failing.Store(true)
	if r, err := e.svc.Request(t.Context(), alice, in); err == nil {
		t.Fatalf("Request while the store fails created request %d", r.ID)
	}
	e.pending(t, 1, 0) // the refusal
	e.st.failing.Store(false)
	if rs, err := e.st.Requests(t.Context(), store.RequestFilter{}); err != nil || len(rs) != 0 {
		t.Fatalf("Requests = %d, %v; want none", len(rs), err)
	}
	if err := e.svc.FlushAudit(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := e.stored(t)
	if len(got) != 1 || got[0].Type != audit.RequestCreate || got[0].Outcome != audit.OutcomeError {
		t.Fatalf("stored %+v, want the failed request.create", got)
	}

	r, err := e.svc.Request(t.Context(), alice, in)
	if err != nil {
		t.Fatal(err)
	}
	got = e.stored(t)
	if last := got[len(got)-1]; last.Type != audit.RequestCreate || last.RequestID != r.ID || last.Outcome != audit.OutcomeOK {
		t.Errorf("last event %+v, want request %d's request.create", last, r.ID)
	}
}

// TestRecordKeepsEvents: events Record cannot append are kept, retried with
// backoff by Run, and stored in order with their own times once the store
// recovers; events recorded meanwhile queue behind them.
func TestRecordKeepsEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newAuditEnv(t, 0)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); e.svc.Run(ctx) }()
		bob := access.Actor{User: "bob"}

		e.st.failing.Store(true)
		var times []time.Time
		for i := range 3 {
			times = append(times, e.clock.Advance(time.Second))
			e.svc.Record(ctx, bob, audit.Event{Type: audit.Command, Reason: fmt.Sprint("kept ", i)})
		}
		e.pending(t, 3, 0)
		time.Sleep(time.Minute) // many failed attempts
		synctest.Wait()
		e.pending(t, 3, 0)

		// The store is back, but the loop waits out its backoff: an event
		// recorded now goes behind the kept ones, not before them.
		e.st.failing.Store(false)
		e.svc.Record(ctx, bob, audit.Event{Type: audit.Command, Reason: "after"})
		e.pending(t, 4, 0)
		time.Sleep(10 * time.Second) // the longest wait between attempts
		synctest.Wait()
		e.pending(t, 0, 0)
		got := e.stored(t)
		if want := []string{"kept 0", "kept 1", "kept 2", "after"}; fmt.Sprint(reasons(got)) != fmt.Sprint(want) {
			t.Fatalf("stored %q, want %q", reasons(got), want)
		}
		for i, at := range times {
			if !got[i].Time.Equal(at) {
				t.Errorf("event %d stored at %v, want the time it was recorded, %v", i, got[i].Time, at)
			}
		}

		// With the store working, Record appends at once.
		e.svc.Record(ctx, bob, audit.Event{Type: audit.Command, Reason: "direct"})
		if got := e.stored(t); got[len(got)-1].Reason != "direct" {
			t.Errorf("last stored %q, want direct", got[len(got)-1].Reason)
		}
		cancel()
		<-done
	})
}

// TestRecordFlushesAtStop: Run's last attempt stores what is kept.
func TestRecordFlushesAtStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newAuditEnv(t, 0)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); e.svc.Run(ctx) }()

		e.st.failing.Store(true)
		e.svc.Record(ctx, access.Actor{User: "bob"}, audit.Event{Type: audit.SessionEnd, Reason: "at stop"})
		synctest.Wait() // the loop tried and now waits
		e.pending(t, 1, 0)
		e.st.failing.Store(false)
		cancel()
		<-done
		e.pending(t, 0, 0)
		if got := e.stored(t); len(got) != 1 || got[0].Reason != "at stop" {
			t.Fatalf("stored %q, want the kept event", reasons(got))
		}
	})
}

// TestRecordBacklogFull: beyond the backlog, events are dropped and
// counted, and an audit.dropped event says so once the store is back.
func TestRecordBacklogFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newAuditEnv(t, 3)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); e.svc.Run(ctx) }()

		e.st.failing.Store(true)
		for i := range 5 {
			e.svc.Record(ctx, access.Actor{User: "bob"}, audit.Event{Type: audit.Command, Reason: fmt.Sprint(i)})
		}
		e.pending(t, 3, 2)
		e.st.failing.Store(false)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		e.pending(t, 0, 2) // the count stays, for status
		got := e.stored(t)
		if want := []string{"0", "1", "2"}; len(got) != 4 || fmt.Sprint(reasons(got[:3])) != fmt.Sprint(want) {
			t.Fatalf("stored %q, want %q and the report", reasons(got), want)
		}
		if d := got[3]; d.Type != audit.AuditDropped || d.Details["dropped"] != "2" || d.Actor != "bastion" {
			t.Errorf("last event %+v, want audit.dropped of 2", d)
		}

		// The loss is reported once.
		if err := e.svc.FlushAudit(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(e.stored(t)); n != 4 {
			t.Errorf("%d events after another flush, want 4", n)
		}
		cancel()
		<-done
	})
}

// TestRecordAnyBytes: a self-service command line that is not UTF-8 (as
// `ssh alice@bastion $'bogus\x89cmd'` sends) is recorded, and the chain
// still verifies, showing the escaped text.
func TestRecordAnyBytes(t *testing.T) {
	e := newAuditEnv(t, 0)
	alice := access.Actor{User: "alice", Source: outside}
	e.svc.Record(t.Context(), alice, audit.Event{Type: audit.Command, Outcome: audit.OutcomeRefused,
		Reason: "unknown command \"bogus\x89cmd\"", Details: map[string]string{"command": "bogus\x89cmd\x00"}})
	e.svc.Record(t.Context(), alice, audit.Event{Type: audit.Command, Reason: "after"})
	got := e.stored(t) // verifies the chain
	if len(got) != 2 || got[0].Reason != `unknown command "bogus\x89cmd"` || got[0].Details["command"] != `bogus\x89cmd\x00` ||
		got[0].Details[audit.EscapedDetail] != "reason,details.command" {
		t.Fatalf("stored %+v", got)
	}
}
