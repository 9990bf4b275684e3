package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
)

func testCreateRequestRoundTrip(t *testing.T, s store.Store) {
	// Times in another zone come back as the same instants.
	cet := time.FixedZone("CET", 3600)
	full := pendingRequest("alice", at(time.Minute).In(cet))
	full.PendingUntil = at(time.Hour).In(cet)
	full.ApprovalsRequired = 3
	full.Reason = "ünïcode, 'quotes', \"double\", ; DROP TABLE requests; --"

	// A database target: no logins, a single approver role.
	db := pendingRequest("bob", at(2*time.Minute))
	db.Logins, db.Approvers, db.Duration = nil, []string{"dba"}, 15*time.Minute

	// A command approval request.
	cmd := pendingRequest("carol", at(3*time.Minute))
	cmd.Command = "systemctl restart nginx && echo 'done'"

	for _, r := range []*store.Request{full, db, cmd} {
		want := clone(r)
		id := mustCreate(t, s, r)
		want.ID = id
		checkRequest(t, "read back", want, mustGet(t, s, id))
	}
	if full.ID == db.ID {
		t.Errorf("two requests got the same id %d", full.ID)
	}
}

func testCreateRequestAutoApproved(t *testing.T, s store.Store) {
	r := approvedRequest("alice", at(0))
	r.ApprovalsRequired = 2
	r.Approvals = []store.Approval{
		{Approver: "carol", Comment: "pre-approved", At: at(-time.Minute)},
		{Approver: "dave", At: at(-30 * time.Second)},
	}
	want := clone(r)
	want.ID = mustCreate(t, s, r)
	checkRequest(t, "read back", want, mustGet(t, s, want.ID))
}

func testCreateRequestInvalidState(t *testing.T, s store.Store) {
	for _, st := range []store.State{store.Denied, store.Expired, store.Revoked, store.Cancelled, "", "bogus"} {
		r := pendingRequest("alice", at(0))
		r.State = st
		if id, err := s.CreateRequest(t.Context(), r); err == nil {
			t.Errorf("CreateRequest in state %q = %d, nil; want an error", st, id)
		}
	}
	rs, err := s.Requests(t.Context(), store.RequestFilter{})
	if err != nil {
		t.Fatalf("Requests: %v", err)
	}
	if len(rs) != 0 {
		t.Errorf("%d requests stored, want none", len(rs))
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	const missing = 4711
	mustCreate(t, s, pendingRequest("alice", at(0)))
	if _, err := s.Request(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Request: err = %v, want store.ErrNotFound", err)
	}
	_, err := s.Approve(ctx, missing, store.Approval{Approver: "carol", At: at(time.Minute)})
	if !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		t.Errorf("Approve: err = %v, want store.ErrNotFound", err)
	}
	_, err = s.Transition(ctx, missing, store.Transition{From: []store.State{store.Pending}, To: store.Cancelled, By: "alice", At: at(time.Minute)})
	if !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		t.Errorf("Transition: err = %v, want store.ErrNotFound", err)
	}
	cs, err := s.Certificates(ctx, missing)
	if err != nil || len(cs) != 0 {
		t.Errorf("Certificates = %v, %v; want none, nil", cs, err)
	}
}

func testRequests(t *testing.T, s store.Store) {
	ctx := t.Context()
	// Created in this order, one minute apart.
	r1 := create(t, s, pendingRequest("alice", at(0)))
	r2 := create(t, s, pendingRequest("bob", at(1*time.Minute)))
	r3 := create(t, s, approvedRequest("alice", at(2*time.Minute)))
	r4 := create(t, s, pendingRequest("alice", at(3*time.Minute)))
	if _, err := s.Transition(ctx, r4.ID, store.Transition{From: []store.State{store.Pending}, To: store.Denied, By: "carol", At: at(4 * time.Minute)}); err != nil {
		t.Fatalf("deny: %v", err)
	}
	twoApprovals := pendingRequest("bob", at(4*time.Minute))
	twoApprovals.ApprovalsRequired = 2
	r5 := create(t, s, twoApprovals)
	if _, err := s.Approve(ctx, r5.ID, store.Approval{Approver: "carol", Comment: "ok", At: at(5 * time.Minute)}); err != nil {
		t.Fatalf("approve: %v", err)
	}
	ids := func(rs ...*store.Request) []int64 {
		var l []int64
		for _, r := range rs {
			l = append(l, r.ID)
		}
		return l
	}

	tests := []struct {
		name   string
		filter store.RequestFilter
		want   []int64
	}{
		{"all", store.RequestFilter{}, ids(r5, r4, r3, r2, r1)},
		{"requester", store.RequestFilter{Requester: "alice"}, ids(r4, r3, r1)},
		{"unknown requester", store.RequestFilter{Requester: "mallory"}, nil},
		{"pending", store.RequestFilter{States: []store.State{store.Pending}}, ids(r5, r2, r1)},
		{"pending or approved", store.RequestFilter{States: []store.State{store.Pending, store.Approved}}, ids(r5, r3, r2, r1)},
		{"denied", store.RequestFilter{States: []store.State{store.Denied}}, ids(r4)},
		{"since is inclusive", store.RequestFilter{Since: at(2 * time.Minute)}, ids(r5, r4, r3)},
		{"since after all", store.RequestFilter{Since: at(time.Hour)}, nil},
		{"limit", store.RequestFilter{Limit: 2}, ids(r5, r4)},
		{"limit above count", store.RequestFilter{Limit: 10}, ids(r5, r4, r3, r2, r1)},
		{"all filters", store.RequestFilter{Requester: "alice", States: []store.State{store.Pending, store.Approved}, Since: at(time.Minute), Limit: 1}, ids(r3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := s.Requests(ctx, tt.filter)
			if err != nil {
				t.Fatalf("Requests: %v", err)
			}
			got := ids(rs...)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Requests(%+v) = ids %v, want %v", tt.filter, got, tt.want)
			}
			// Each comes whole, approvals included.
			for _, r := range rs {
				checkRequest(t, "listed", mustGet(t, s, r.ID), r)
			}
		})
	}
}

// testCreateRequestAudited: the events given to CreateRequest are stored
// with the request, linked into the chain, and name it; when they cannot
// be stored, neither is the request.
func testCreateRequestAudited(t *testing.T, s store.Store) {
	before := appendAudit(t, s, audit.Event{Time: at(0), Type: audit.Login, Actor: "alice", Outcome: audit.OutcomeOK})
	r := approvedRequest("alice", at(time.Minute))
	id := mustCreate(t, s, r,
		audit.Event{Time: at(time.Minute), Type: audit.RequestCreate, Actor: "alice", Subject: "alice", Outcome: audit.OutcomeOK, Reason: "bogus\x89"},
		audit.Event{Time: at(time.Minute), Type: audit.RequestGrant, Actor: "policy", Subject: "alice", Outcome: audit.OutcomeOK, RequestID: 99})
	es := readAudit(t, s, store.AuditFilter{})
	if err := audit.Verify(es); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(es) != 3 || es[0].Hash != before.Hash || es[1].Type != audit.RequestCreate || es[2].Type != audit.RequestGrant {
		t.Fatalf("chain after CreateRequest: %+v, want the login, request.create, request.grant", es)
	}
	if es[1].RequestID != id || es[2].RequestID != 99 {
		t.Errorf("events name requests %d and %d, want %d (set by the store) and 99 (given)", es[1].RequestID, es[2].RequestID, id)
	}
	if es[1].Reason != `bogus\x89` {
		t.Errorf("event stored with reason %q, want its canonical form", es[1].Reason)
	}

	// An event the store refuses (no time) leaves no request and no event.
	requests, err := s.Requests(t.Context(), store.RequestFilter{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateRequest(t.Context(), pendingRequest("bob", at(2*time.Minute)),
		audit.Event{Time: at(2 * time.Minute), Type: audit.RequestCreate, Actor: "bob", Outcome: audit.OutcomeOK},
		audit.Event{Type: audit.RequestGrant, Actor: "bob", Outcome: audit.OutcomeOK})
	if err == nil {
		t.Fatalf("CreateRequest with an event without a time succeeded")
	}
	after, err := s.Requests(t.Context(), store.RequestFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(requests) {
		t.Errorf("%d requests after the failed CreateRequest, want %d", len(after), len(requests))
	}
	if got := readAudit(t, s, store.AuditFilter{}); len(got) != 3 {
		t.Errorf("%d events after the failed CreateRequest, want 3", len(got))
	}
	// The chain goes on without a gap where the refused events would have
	// been.
	mustCreate(t, s, pendingRequest("bob", at(3*time.Minute)))
	appendAudit(t, s, audit.Event{Time: at(3 * time.Minute), Type: audit.Login, Actor: "bob", Outcome: audit.OutcomeOK})
	if err := audit.Verify(readAudit(t, s, store.AuditFilter{})); err != nil {
		t.Errorf("Verify after the failed CreateRequest: %v", err)
	}
}
