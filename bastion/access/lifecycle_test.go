package access_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
)

func TestSweep(t *testing.T) {
	e := newEnv(t)
	alice := e.actor(t, "alice")
	inAlice := alice
	inAlice.Source = inside

	stale := e.request(t, alice, "web01", []string{"root"}, time.Hour)  // pending until 09:30
	ended := e.request(t, inAlice, "staging01", nil, time.Hour)         // granted until 10:00
	denied := e.request(t, alice, "web02", []string{"root"}, time.Hour) // denied: final
	if _, err := e.svc.Deny(t.Context(), e.actor(t, "bob"), denied.ID, "no"); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Advance(time.Hour)                                    // 10:00
	fresh := e.request(t, alice, "web01", []string{"deploy"}, time.Hour) // pending until 10:30
	live := e.request(t, inAlice, "staging01", nil, time.Hour)           // granted until 11:00
	e.skip(t)

	if err := e.svc.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	events := e.newEvents(t)
	sort.Slice(events, func(i, j int) bool { return events[i].RequestID < events[j].RequestID })
	checkEvents(t, events, []ev{
		{Type: audit.RequestExpire, Actor: "bastion", Subject: "alice", Request: stale.ID, Outcome: audit.OutcomeOK},
		{Type: audit.RequestExpire, Actor: "bastion", Subject: "alice", Request: ended.ID, Outcome: audit.OutcomeOK},
	})
	reasons := map[int64]string{stale.ID: "not approved in time", ended.ID: "grant ended"}
	for _, ev := range events {
		if ev.Reason != reasons[ev.RequestID] {
			t.Errorf("request %d expired with reason %q, want %q", ev.RequestID, ev.Reason, reasons[ev.RequestID])
		}
	}
	notes := e.notes.take()
	var noted []int64
	for _, n := range notes {
		if n.Event != audit.RequestExpire {
			t.Errorf("notification %s, want %s", n.Event, audit.RequestExpire)
		}
		noted = append(noted, n.Request.ID)
	}
	slices.Sort(noted)
	if !slices.Equal(noted, []int64{stale.ID, ended.ID}) {
		t.Errorf("expiry notifications for %v, want %v", noted, []int64{stale.ID, ended.ID})
	}

	for _, want := range []struct {
		r     *store.Request
		state store.State
	}{
		{stale, store.Expired}, {ended, store.Expired}, {denied, store.Denied}, {fresh, store.Pending}, {live, store.Approved},
	} {
		s := e.stored(t, want.r.ID)
		if s.State != want.state {
			t.Errorf("request %d is stored as %s, want %s", s.ID, s.State, want.state)
		}
		if want.state == store.Expired && (s.ClosedBy != "bastion" || !s.ClosedAt.Equal(now) || s.CloseReason != reasons[s.ID]) {
			t.Errorf("request %d closed by %q at %v (%q)", s.ID, s.ClosedBy, s.ClosedAt, s.CloseReason)
		}
	}

	// Again: nothing more to do.
	if err := e.svc.Sweep(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.wantAudit(t)
	if n := e.notes.take(); len(n) != 0 {
		t.Errorf("a second sweep notified %d events", len(n))
	}

	// A swept request stays expired for everyone and can't be approved.
	_, err := e.svc.Approve(t.Context(), e.actor(t, "bob"), stale.ID, "")
	checkErr(t, err, refusal, "is expired")
}

// waitResult is what Wait returned.
type waitResult struct {
	r   *store.Request
	err error
}

// wakeBound is how soon Wait must return after what it waits for happened:
// far more than a store read takes, and less than Wait's once-a-second
// re-read, so that a Wait that missed the change and found it only by
// polling fails.
const wakeBound = 700 * time.Millisecond

// waitDone returns Wait's result, failing the test if Wait doesn't return
// within wakeBound.
func waitDone(t *testing.T, done <-chan waitResult) waitResult {
	t.Helper()
	select {
	case res := <-done:
		return res
	case <-time.After(wakeBound):
		t.Fatalf("Wait did not return within %v", wakeBound)
		return waitResult{}
	}
}

// startWait calls Wait in a goroutine and returns once Wait has read the
// request (and so is watching for changes).
func startWait(t *testing.T, e *testEnv, ctx context.Context, a access.Actor, id int64) <-chan waitResult {
	t.Helper()
	e.spy.drain()
	done := make(chan waitResult, 1)
	go func() {
		r, err := e.svc.Wait(ctx, a, id)
		done <- waitResult{r, err}
	}()
	select {
	case got := <-e.spy.reads:
		if got != id {
			t.Fatalf("Wait read request %d, want %d", got, id)
		}
	case res := <-done:
		t.Fatalf("Wait returned at once: %+v, %v", res.r, res.err)
	}
	return done
}

func TestWait(t *testing.T) {
	t.Run("approved by another goroutine", func(t *testing.T) {
		e := newEnv(t)
		alice := e.actor(t, "alice")
		r := e.request(t, alice, "web01", []string{"root"}, time.Hour)
		bob := e.actor(t, "bob")
		done := startWait(t, e, t.Context(), alice, r.ID)

		approved := make(chan error, 1)
		go func() {
			_, err := e.svc.Approve(context.Background(), bob, r.ID, "")
			approved <- err
		}()
		if err := <-approved; err != nil {
			t.Fatal(err)
		}
		res := waitDone(t, done)
		if res.err != nil || res.r.State != store.Approved || res.r.GrantEnd.IsZero() {
			t.Fatalf("Wait = %+v, %v; want the approved request", res.r, res.err)
		}
	})

	t.Run("denied", func(t *testing.T) {
		e := newEnv(t)
		alice := e.actor(t, "alice")
		r := e.request(t, alice, "web01", []string{"root"}, time.Hour)
		done := startWait(t, e, t.Context(), alice, r.ID)
		if _, err := e.svc.Deny(t.Context(), e.actor(t, "bob"), r.ID, "no"); err != nil {
			t.Fatal(err)
		}
		if res := waitDone(t, done); res.err != nil || res.r.State != store.Denied {
			t.Fatalf("Wait = %+v, %v; want the denied request", res.r, res.err)
		}
	})

	t.Run("context cancelled", func(t *testing.T) {
		e := newEnv(t)
		alice := e.actor(t, "alice")
		r := e.request(t, alice, "web01", []string{"root"}, time.Hour)
		ctx, cancel := context.WithCancel(t.Context())
		done := startWait(t, e, ctx, alice, r.ID)
		cancel()
		if res := waitDone(t, done); !errors.Is(res.err, context.Canceled) || res.r != nil {
			t.Fatalf("Wait = %+v, %v; want context.Canceled", res.r, res.err)
		}
	})

	t.Run("expires unswept", func(t *testing.T) {
		// A short approval window, so that Wait's own timer fires soon
		// after the clock has moved past it.
		e := newEnv(t, func(p *policy.Policy) { p.PendingTTL = 20 * time.Millisecond })
		alice := e.actor(t, "alice")
		r := e.request(t, alice, "web01", []string{"root"}, time.Hour)
		done := startWait(t, e, t.Context(), alice, r.ID)
		e.clock.Advance(time.Second)
		if res := waitDone(t, done); res.err != nil || res.r.State != store.Expired {
			t.Fatalf("Wait = %+v, %v; want the expired request", res.r, res.err)
		}
	})

	t.Run("expired by the sweep", func(t *testing.T) {
		e := newEnv(t)
		alice := e.actor(t, "alice")
		r := e.request(t, alice, "web01", []string{"root"}, time.Hour)
		done := startWait(t, e, t.Context(), alice, r.ID)
		e.clock.Advance(pendingTTL)
		if err := e.svc.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		if res := waitDone(t, done); res.err != nil || res.r.State != store.Expired {
			t.Fatalf("Wait = %+v, %v; want the expired request", res.r, res.err)
		}
	})

	t.Run("already decided", func(t *testing.T) {
		e := newEnv(t)
		alice := e.actor(t, "alice")
		r := e.approved(t, alice, "web01", []string{"root"}, time.Hour)
		got, err := e.svc.Wait(t.Context(), alice, r.ID)
		if err != nil || got.State != store.Approved {
			t.Fatalf("Wait = %+v, %v", got, err)
		}
	})

	t.Run("not visible", func(t *testing.T) {
		e := newEnv(t)
		r := e.request(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
		_, err := e.svc.Wait(t.Context(), e.actor(t, "dave"), r.ID)
		checkErr(t, err, notFound, "")
	})
}

// TestConcurrentDecisions races ten approvals against five denials of a
// request that needs one approval: exactly one decision wins.
func TestConcurrentDecisions(t *testing.T) {
	const approving, denying = 10, 5
	e := newEnv(t)
	alice := e.actor(t, "alice")
	deciders := make([]access.Actor, approving+denying)
	for i := range deciders {
		deciders[i] = e.actor(t, fmt.Sprintf("sre%02d", i))
	}

	for round := range 4 {
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			r := e.request(t, alice, "web01", []string{"root"}, time.Hour)

			type result struct {
				who  string
				deny bool
				r    *store.Request
				err  error
			}
			results := make([]result, len(deciders))
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, a := range deciders {
				wg.Go(func() {
					<-start
					res := result{who: a.User, deny: i >= approving}
					if res.deny {
						res.r, res.err = e.svc.Deny(context.Background(), a, r.ID, "no")
					} else {
						res.r, res.err = e.svc.Approve(context.Background(), a, r.ID, "yes")
					}
					results[i] = res
				})
			}
			close(start)
			wg.Wait()

			var winner *result
			for i := range results {
				res := &results[i]
				if res.err == nil {
					if winner != nil {
						t.Fatalf("both %s and %s decided the request", winner.who, res.who)
					}
					winner = res
					continue
				}
				var ref *policy.Refusal
				if !errors.As(res.err, &ref) {
					t.Errorf("%s: %v (%T), want a refusal", res.who, res.err, res.err)
				}
			}
			if winner == nil {
				t.Fatal("no decision succeeded")
			}

			final := e.stored(t, r.ID)
			wantState := store.Approved
			if winner.deny {
				wantState = store.Denied
			}
			if final.State != wantState || final.DecidedBy != winner.who || winner.r.State != wantState {
				t.Errorf("%s won (deny=%v), but the request is %s decided by %s", winner.who, winner.deny, final.State, final.DecidedBy)
			}
			var approvers []string
			for _, ap := range final.Approvals {
				approvers = append(approvers, ap.Approver)
			}
			if winner.deny && len(approvers) != 0 || !winner.deny && !slices.Equal(approvers, []string{winner.who}) {
				t.Errorf("approvals %q after %s won (deny=%v)", approvers, winner.who, winner.deny)
			}

			// One successful decision audited (two events for a grant), a
			// refusal for every other call, and one notification.
			events, err := e.st.Audit(t.Context(), store.AuditFilter{RequestID: r.ID, AfterSeq: e.lastSeq})
			if err != nil {
				t.Fatal(err)
			}
			var ok []ev
			refused := map[string]bool{}
			for _, x := range events {
				if x.Outcome == audit.OutcomeRefused {
					refused[x.Actor] = true
					continue
				}
				ok = append(ok, evOf(x))
			}
			want := []ev{{Type: audit.RequestDeny, Actor: winner.who, Subject: "alice", Request: r.ID, Outcome: audit.OutcomeOK}}
			if !winner.deny {
				want = []ev{
					{Type: audit.RequestApprove, Actor: winner.who, Subject: "alice", Request: r.ID, Outcome: audit.OutcomeOK},
					{Type: audit.RequestGrant, Actor: winner.who, Subject: "alice", Request: r.ID, Outcome: audit.OutcomeOK},
				}
			}
			if !slices.Equal(ok, want) {
				t.Errorf("successful events %v, want %v", ok, want)
			}
			if len(refused) != len(deciders)-1 || refused[winner.who] || len(events) != len(deciders)-1+len(want) {
				t.Errorf("%d events, refusals from %d deciders (winner %s among them: %v)", len(events), len(refused), winner.who, refused[winner.who])
			}
			wantNote := audit.RequestDeny
			if !winner.deny {
				wantNote = audit.RequestGrant
			}
			e.wantNotes(t, r.ID, wantNote)
			e.newEvents(t)
		})
	}

	all, err := e.st.Audit(t.Context(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.Verify(all); err != nil {
		t.Fatalf("audit chain of %d events: %v", len(all), err)
	}
}
