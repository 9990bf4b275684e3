package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/store"
)

func testApproveOne(t *testing.T, s store.Store) {
	r := create(t, s, pendingRequest("alice", at(0)))
	a := store.Approval{Approver: "carol", Comment: "looks fine", At: at(5 * time.Minute)}
	got, err := s.Approve(t.Context(), r.ID, a)
	if err != nil {
		t.Fatalf("Approve: %v", err)
	}
	want := clone(r)
	want.State = store.Approved
	want.Approvals = []store.Approval{a}
	want.DecidedAt, want.DecidedBy = a.At, a.Approver
	want.GrantStart, want.GrantEnd = a.At, a.At.Add(r.Duration)
	checkRequest(t, "returned", want, got)
	checkRequest(t, "read back", want, mustGet(t, s, r.ID))
}

func testApproveTwo(t *testing.T, s store.Store) {
	pr := pendingRequest("alice", at(0))
	pr.ApprovalsRequired = 2
	r := create(t, s, pr)

	first := store.Approval{Approver: "carol", Comment: "one", At: at(5 * time.Minute)}
	got, err := s.Approve(t.Context(), r.ID, first)
	if err != nil {
		t.Fatalf("first Approve: %v", err)
	}
	want := clone(r)
	want.Approvals = []store.Approval{first}
	checkRequest(t, "after the first approval", want, got)
	checkRequest(t, "read back after the first approval", want, mustGet(t, s, r.ID))

	second := store.Approval{Approver: "dave", Comment: "two", At: at(7 * time.Minute)}
	got, err = s.Approve(t.Context(), r.ID, second)
	if err != nil {
		t.Fatalf("second Approve: %v", err)
	}
	want.State = store.Approved
	want.Approvals = []store.Approval{first, second}
	want.DecidedAt, want.DecidedBy = second.At, second.Approver
	want.GrantStart, want.GrantEnd = second.At, second.At.Add(r.Duration)
	checkRequest(t, "after the second approval", want, got)
	checkRequest(t, "read back after the second approval", want, mustGet(t, s, r.ID))
}

func testApproveDuplicate(t *testing.T, s store.Store) {
	pr := pendingRequest("alice", at(0))
	pr.ApprovalsRequired = 2
	r := create(t, s, pr)
	if _, err := s.Approve(t.Context(), r.ID, store.Approval{Approver: "carol", At: at(time.Minute)}); err != nil {
		t.Fatalf("Approve: %v", err)
	}
	before := mustGet(t, s, r.ID)
	_, err := s.Approve(t.Context(), r.ID, store.Approval{Approver: "carol", Comment: "again", At: at(2 * time.Minute)})
	if !errors.Is(err, store.ErrDuplicate) || errors.Is(err, store.ErrConflict) {
		t.Fatalf("second Approve by the same approver: err = %v, want store.ErrDuplicate", err)
	}
	checkUnchanged(t, s, before)
}

func testApproveConflict(t *testing.T, s store.Store) {
	ctx := t.Context()
	move := func(id int64, from, to store.State) {
		t.Helper()
		if _, err := s.Transition(ctx, id, store.Transition{From: []store.State{from}, To: to, By: "x", At: at(time.Minute)}); err != nil {
			t.Fatalf("Transition to %s: %v", to, err)
		}
	}
	tests := []struct {
		name  string
		setup func() int64 // returns the request to approve
		at    time.Time
		want  store.State // in the ConflictError
	}{
		{"approved", func() int64 { return mustCreate(t, s, approvedRequest("alice", at(0))) }, at(time.Minute), store.Approved},
		{"denied", func() int64 {
			id := mustCreate(t, s, pendingRequest("alice", at(0)))
			move(id, store.Pending, store.Denied)
			return id
		}, at(2 * time.Minute), store.Denied},
		// Not completed by this approval, so only the state check refuses it.
		{"denied, needing two", func() int64 {
			r := pendingRequest("alice", at(0))
			r.ApprovalsRequired = 2
			id := mustCreate(t, s, r)
			move(id, store.Pending, store.Denied)
			return id
		}, at(2 * time.Minute), store.Denied},
		{"cancelled", func() int64 {
			id := mustCreate(t, s, pendingRequest("alice", at(0)))
			move(id, store.Pending, store.Cancelled)
			return id
		}, at(2 * time.Minute), store.Cancelled},
		{"expired", func() int64 {
			id := mustCreate(t, s, pendingRequest("alice", at(0)))
			move(id, store.Pending, store.Expired)
			return id
		}, at(2 * time.Minute), store.Expired},
		{"revoked", func() int64 {
			id := mustCreate(t, s, approvedRequest("alice", at(0)))
			move(id, store.Approved, store.Revoked)
			return id
		}, at(2 * time.Minute), store.Revoked},
		// Still pending in the store, but its window has closed: the
		// conflict reports the state at the approval's time.
		{"at PendingUntil", func() int64 { return mustCreate(t, s, pendingRequest("alice", at(0))) }, at(time.Hour), store.Expired},
		{"after PendingUntil", func() int64 { return mustCreate(t, s, pendingRequest("alice", at(0))) }, at(2 * time.Hour), store.Expired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.setup()
			before := mustGet(t, s, id)
			_, err := s.Approve(ctx, id, store.Approval{Approver: "carol", At: tt.at})
			wantConflict(t, err, id, tt.want)
			checkUnchanged(t, s, before)
		})
	}
}

func testApproveConcurrent(t *testing.T, s store.Store) {
	r := create(t, s, pendingRequest("alice", at(0)))
	errs := race(concurrency, func(i int) error {
		_, err := s.Approve(t.Context(), r.ID, store.Approval{Approver: fmt.Sprint("approver", i), At: at(time.Minute)})
		return err
	})
	winner := fmt.Sprint("approver", oneWinner(t, errs))
	got := mustGet(t, s, r.ID)
	if got.State != store.Approved || got.DecidedBy != winner {
		t.Errorf("request is %s, decided by %q; want approved by %q", got.State, got.DecidedBy, winner)
	}
	if len(got.Approvals) != 1 || got.Approvals[0].Approver != winner {
		t.Errorf("approvals = %+v, want only %s's", got.Approvals, winner)
	}
}

func testApproveConcurrentTwo(t *testing.T, s store.Store) {
	pr := pendingRequest("alice", at(0))
	pr.ApprovalsRequired = 2
	r := create(t, s, pr)
	errs := race(concurrency, func(i int) error {
		_, err := s.Approve(t.Context(), r.ID, store.Approval{Approver: fmt.Sprint("approver", i), At: at(time.Minute)})
		return err
	})
	winners := map[string]bool{}
	for i, err := range errs {
		switch {
		case err == nil:
			winners[fmt.Sprint("approver", i)] = true
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("approver %d: err = %v, want nil or store.ErrConflict", i, err)
		}
	}
	if len(winners) != 2 {
		t.Fatalf("%d approvals succeeded, want 2", len(winners))
	}
	got := mustGet(t, s, r.ID)
	if got.State != store.Approved || !winners[got.DecidedBy] {
		t.Errorf("request is %s, decided by %q; want approved by one of %v", got.State, got.DecidedBy, winners)
	}
	if len(got.Approvals) != 2 || !winners[got.Approvals[0].Approver] || !winners[got.Approvals[1].Approver] {
		t.Errorf("approvals = %+v, want those of %v", got.Approvals, winners)
	}
	if len(got.Approvals) == 2 && got.DecidedBy != got.Approvals[1].Approver {
		t.Errorf("decided by %q, want the second approver %q", got.DecidedBy, got.Approvals[1].Approver)
	}
}

// testDenyApproveRace races denials against approvals of one request.
func testDenyApproveRace(t *testing.T, s store.Store) {
	r := create(t, s, pendingRequest("alice", at(0)))
	name := func(i int) string {
		if i%2 == 0 {
			return fmt.Sprint("denier", i)
		}
		return fmt.Sprint("approver", i)
	}
	errs := race(concurrency, func(i int) error {
		var err error
		if i%2 == 0 {
			_, err = s.Transition(t.Context(), r.ID, store.Transition{
				From: []store.State{store.Pending}, To: store.Denied, By: name(i), Reason: "no", At: at(time.Minute),
			})
		} else {
			_, err = s.Approve(t.Context(), r.ID, store.Approval{Approver: name(i), At: at(time.Minute)})
		}
		return err
	})
	winner := oneWinner(t, errs)
	got := mustGet(t, s, r.ID)
	if winner%2 == 0 {
		if got.State != store.Denied || got.DecidedBy != name(winner) || len(got.Approvals) != 0 {
			t.Errorf("%s won, but the request is %s, decided by %q, with approvals %+v", name(winner), got.State, got.DecidedBy, got.Approvals)
		}
	} else {
		if got.State != store.Approved || got.DecidedBy != name(winner) || len(got.Approvals) != 1 {
			t.Errorf("%s won, but the request is %s, decided by %q, with approvals %+v", name(winner), got.State, got.DecidedBy, got.Approvals)
		}
	}
}

func testTransition(t *testing.T, s store.Store) {
	both := []store.State{store.Pending, store.Approved}
	tests := []struct {
		name    string
		request *store.Request
		from    []store.State
		to      store.State
	}{
		{"deny pending", pendingRequest("alice", at(0)), []store.State{store.Pending}, store.Denied},
		{"cancel pending", pendingRequest("alice", at(0)), []store.State{store.Pending}, store.Cancelled},
		{"expire pending", pendingRequest("alice", at(0)), []store.State{store.Pending}, store.Expired},
		{"revoke pending from either", pendingRequest("alice", at(0)), both, store.Revoked},
		{"revoke approved", approvedRequest("alice", at(0)), []store.State{store.Approved}, store.Revoked},
		{"expire approved", approvedRequest("alice", at(0)), []store.State{store.Approved}, store.Expired},
		{"deny approved from either", approvedRequest("alice", at(0)), both, store.Denied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := create(t, s, tt.request)
			tr := store.Transition{From: tt.from, To: tt.to, By: "erin", Reason: "because " + tt.name, At: at(10 * time.Minute)}
			got, err := s.Transition(t.Context(), r.ID, tr)
			if err != nil {
				t.Fatalf("Transition: %v", err)
			}
			want := clone(r)
			want.State = tt.to
			if tt.to == store.Denied {
				want.DecidedAt, want.DecidedBy, want.DecisionReason = tr.At, tr.By, tr.Reason
			} else {
				want.ClosedAt, want.ClosedBy, want.CloseReason = tr.At, tr.By, tr.Reason
			}
			checkRequest(t, "returned", want, got)
			checkRequest(t, "read back", want, mustGet(t, s, r.ID))
		})
	}
}

func testTransitionConflict(t *testing.T, s store.Store) {
	tests := []struct {
		name    string
		request *store.Request
		first   *store.Transition // applied before the one that must fail
		from    []store.State
		to      store.State
		want    store.State
	}{
		{"revoke pending", pendingRequest("alice", at(0)), nil, []store.State{store.Approved}, store.Revoked, store.Pending},
		{"cancel approved", approvedRequest("alice", at(0)), nil, []store.State{store.Pending}, store.Cancelled, store.Approved},
		{"deny denied", pendingRequest("alice", at(0)),
			&store.Transition{From: []store.State{store.Pending}, To: store.Denied, By: "carol", At: at(time.Minute)},
			[]store.State{store.Pending}, store.Denied, store.Denied},
		{"revoke revoked", approvedRequest("alice", at(0)),
			&store.Transition{From: []store.State{store.Approved}, To: store.Revoked, By: "carol", At: at(time.Minute)},
			[]store.State{store.Pending, store.Approved}, store.Revoked, store.Revoked},
		{"cancel expired", pendingRequest("alice", at(0)),
			&store.Transition{From: []store.State{store.Pending}, To: store.Expired, By: "sweeper", At: at(time.Hour)},
			[]store.State{store.Pending}, store.Cancelled, store.Expired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := mustCreate(t, s, tt.request)
			if tt.first != nil {
				if _, err := s.Transition(t.Context(), id, *tt.first); err != nil {
					t.Fatalf("first Transition: %v", err)
				}
			}
			before := mustGet(t, s, id)
			_, err := s.Transition(t.Context(), id, store.Transition{From: tt.from, To: tt.to, By: "erin", Reason: "late", At: at(2 * time.Hour)})
			wantConflict(t, err, id, tt.want)
			checkUnchanged(t, s, before)
		})
	}
}

// testTransitionInvalid checks that transitions the type rules out are
// refused and change nothing.
func testTransitionInvalid(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		tr   store.Transition
	}{
		{"to pending", store.Transition{From: []store.State{store.Pending}, To: store.Pending}},
		{"to approved", store.Transition{From: []store.State{store.Pending}, To: store.Approved}},
		{"to unknown", store.Transition{From: []store.State{store.Pending}, To: "bogus"}},
		{"from nothing", store.Transition{To: store.Cancelled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := create(t, s, pendingRequest("alice", at(0)))
			tt.tr.By, tt.tr.At = "erin", at(time.Minute)
			if _, err := s.Transition(t.Context(), r.ID, tt.tr); err == nil {
				t.Errorf("Transition(%+v) succeeded, want an error", tt.tr)
			}
			checkUnchanged(t, s, r)
		})
	}
}

func testTransitionConcurrent(t *testing.T, s store.Store) {
	r := create(t, s, approvedRequest("alice", at(0)))
	errs := race(concurrency, func(i int) error {
		_, err := s.Transition(t.Context(), r.ID, store.Transition{
			From: []store.State{store.Approved}, To: store.Revoked, By: fmt.Sprint("revoker", i), At: at(time.Minute),
		})
		return err
	})
	winner := fmt.Sprint("revoker", oneWinner(t, errs))
	if got := mustGet(t, s, r.ID); got.State != store.Revoked || got.ClosedBy != winner {
		t.Errorf("request is %s, closed by %q; want revoked by %q", got.State, got.ClosedBy, winner)
	}
}
