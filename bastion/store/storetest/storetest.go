// Package storetest is the contract test suite for store.Store. Every
// implementation runs it from its own tests:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... a new, empty store ... })
//	}
//
// The suite pins down what the doc comments of package store promise,
// including the atomicity of Approve, Transition and AppendAudit under
// concurrent callers. Times are given at microsecond precision, the finest
// that every supported database keeps.
package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
)

// Run runs the contract tests. open is called once per subtest, from
// parallel subtests, and must return a new, empty store; Run closes it when
// the subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"CreateRequestRoundTrip", testCreateRequestRoundTrip},
		{"CreateRequestAutoApproved", testCreateRequestAutoApproved},
		{"CreateRequestInvalidState", testCreateRequestInvalidState},
		{"CreateRequestAudited", testCreateRequestAudited},
		{"NotFound", testNotFound},
		{"Requests", testRequests},
		{"ApproveOne", testApproveOne},
		{"ApproveTwo", testApproveTwo},
		{"ApproveDuplicate", testApproveDuplicate},
		{"ApproveConflict", testApproveConflict},
		{"ApproveConcurrent", testApproveConcurrent},
		{"ApproveConcurrentTwo", testApproveConcurrentTwo},
		{"DenyApproveRace", testDenyApproveRace},
		{"Transition", testTransition},
		{"TransitionConflict", testTransitionConflict},
		{"TransitionInvalid", testTransitionInvalid},
		{"TransitionConcurrent", testTransitionConcurrent},
		{"IssueCertificate", testIssueCertificate},
		{"IssueCertificateConcurrent", testIssueCertificateConcurrent},
		{"AuditChain", testAuditChain},
		{"AuditDetails", testAuditDetails},
		{"AuditConcurrent", testAuditConcurrent},
		{"AuditFilter", testAuditFilter},
		{"AuditArbitraryBytes", testAuditArbitraryBytes},
		{"Sessions", testSessions},
		{"LegalHolds", testLegalHolds},
		{"EndSessionConcurrent", testEndSessionConcurrent},
		{"DBSecrets", testDBSecrets},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tt.run(t, s)
		})
	}
}

// concurrency is how many goroutines the concurrency tests run at once.
const concurrency = 20

// base is the suite's clock.
var base = time.Date(2031, time.March, 4, 5, 6, 7, 891011000, time.UTC)

// at is base+d.
func at(d time.Duration) time.Time { return base.Add(d) }

// pendingRequest is a pending request created at created, needing one approval.
func pendingRequest(requester string, created time.Time) *store.Request {
	return &store.Request{
		Requester:         requester,
		Role:              "developer",
		Targets:           []string{"db-prod", "web-1"},
		Logins:            []string{"ubuntu", "deploy"},
		Reason:            "INC-42: investigate the failover",
		Duration:          2*time.Hour + 30*time.Second,
		Source:            "192.0.2.7:51234",
		State:             store.Pending,
		CreatedAt:         created,
		PendingUntil:      created.Add(time.Hour),
		ApprovalsRequired: 1,
		Approvers:         []string{"sre", "dba"},
	}
}

// approvedRequest is a request approved on creation by policy.
func approvedRequest(requester string, created time.Time) *store.Request {
	r := pendingRequest(requester, created)
	r.State = store.Approved
	r.ApprovalsRequired = 0
	r.DecidedAt, r.DecidedBy, r.DecisionReason = created, "policy", "rule self-service"
	r.GrantStart, r.GrantEnd = created, created.Add(r.Duration)
	return r
}

func mustCreate(t *testing.T, s store.Store, r *store.Request, events ...audit.Event) int64 {
	t.Helper()
	id, err := s.CreateRequest(t.Context(), r, events...)
	if err != nil {
		t.Fatalf("CreateRequest: %v", err)
	}
	if id <= 0 || r.ID != id {
		t.Fatalf("CreateRequest returned id %d and set r.ID = %d; want the same positive id", id, r.ID)
	}
	return id
}

func mustGet(t *testing.T, s store.Store, id int64) *store.Request {
	t.Helper()
	r, err := s.Request(t.Context(), id)
	if err != nil {
		t.Fatalf("Request(%d): %v", id, err)
	}
	return r
}

// create stores a pending request and returns it as read back.
func create(t *testing.T, s store.Store, r *store.Request) *store.Request {
	t.Helper()
	return mustGet(t, s, mustCreate(t, s, r))
}

// checkRequest fails t if got differs from want in any field.
func checkRequest(t *testing.T, what string, want, got *store.Request) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: got no request", what)
		return
	}
	if d := diffRequest(want, got); len(d) > 0 {
		t.Errorf("%s: request %d differs:\n\t%s", what, want.ID, strings.Join(d, "\n\t"))
	}
}

// checkUnchanged fails t unless the stored request id equals before.
func checkUnchanged(t *testing.T, s store.Store, before *store.Request) {
	t.Helper()
	checkRequest(t, "after the failed call", before, mustGet(t, s, before.ID))
}

// diffs collects field differences.
type diffs []string

func eq[T comparable](d *diffs, field string, want, got T) {
	if want != got {
		*d = append(*d, fmt.Sprintf("%s = %v, want %v", field, got, want))
	}
}

// timeEq compares instants, whatever their location or monotonic reading.
func timeEq(d *diffs, field string, want, got time.Time) {
	if !want.Equal(got) {
		*d = append(*d, fmt.Sprintf("%s = %v, want %v", field, got, want))
	}
}

// listEq treats nil and empty as equal.
func listEq(d *diffs, field string, want, got []string) {
	if !slices.Equal(want, got) {
		*d = append(*d, fmt.Sprintf("%s = %q, want %q", field, got, want))
	}
}

func diffRequest(want, got *store.Request) diffs {
	var d diffs
	eq(&d, "ID", want.ID, got.ID)
	eq(&d, "Requester", want.Requester, got.Requester)
	eq(&d, "Role", want.Role, got.Role)
	listEq(&d, "Targets", want.Targets, got.Targets)
	listEq(&d, "Logins", want.Logins, got.Logins)
	eq(&d, "Reason", want.Reason, got.Reason)
	eq(&d, "Duration", want.Duration, got.Duration)
	eq(&d, "Source", want.Source, got.Source)
	eq(&d, "State", want.State, got.State)
	timeEq(&d, "CreatedAt", want.CreatedAt, got.CreatedAt)
	timeEq(&d, "PendingUntil", want.PendingUntil, got.PendingUntil)
	eq(&d, "ApprovalsRequired", want.ApprovalsRequired, got.ApprovalsRequired)
	listEq(&d, "Approvers", want.Approvers, got.Approvers)
	if len(want.Approvals) != len(got.Approvals) {
		d = append(d, fmt.Sprintf("Approvals = %v, want %v", got.Approvals, want.Approvals))
	} else {
		for i := range want.Approvals {
			f := fmt.Sprintf("Approvals[%d].", i)
			eq(&d, f+"Approver", want.Approvals[i].Approver, got.Approvals[i].Approver)
			eq(&d, f+"Comment", want.Approvals[i].Comment, got.Approvals[i].Comment)
			timeEq(&d, f+"At", want.Approvals[i].At, got.Approvals[i].At)
		}
	}
	timeEq(&d, "DecidedAt", want.DecidedAt, got.DecidedAt)
	eq(&d, "DecidedBy", want.DecidedBy, got.DecidedBy)
	eq(&d, "DecisionReason", want.DecisionReason, got.DecisionReason)
	timeEq(&d, "GrantStart", want.GrantStart, got.GrantStart)
	timeEq(&d, "GrantEnd", want.GrantEnd, got.GrantEnd)
	timeEq(&d, "ClosedAt", want.ClosedAt, got.ClosedAt)
	eq(&d, "ClosedBy", want.ClosedBy, got.ClosedBy)
	eq(&d, "CloseReason", want.CloseReason, got.CloseReason)
	eq(&d, "Command", want.Command, got.Command)
	return d
}

// clone copies r deeply enough to edit it as an expectation.
func clone(r *store.Request) *store.Request {
	c := *r
	c.Targets = slices.Clone(r.Targets)
	c.Logins = slices.Clone(r.Logins)
	c.Approvers = slices.Clone(r.Approvers)
	c.Approvals = slices.Clone(r.Approvals)
	return &c
}

// wantConflict fails t unless err is a *store.ConflictError for request id
// in state.
func wantConflict(t *testing.T, err error, id int64, state store.State) {
	t.Helper()
	var ce *store.ConflictError
	if !errors.Is(err, store.ErrConflict) || !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *store.ConflictError wrapping store.ErrConflict", err)
	}
	if ce.ID != id || ce.State != state {
		t.Errorf("ConflictError{ID: %d, State: %s}, want {ID: %d, State: %s}", ce.ID, ce.State, id, state)
	}
}

// race runs fn(0) ... fn(n-1) in n goroutines released at once and returns
// their errors by index.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one error in errs is nil and the others
// wrap store.ErrConflict, and returns the winner's index.
func oneWinner(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("callers %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("caller %d: err = %v, want nil or store.ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no caller succeeded")
	}
	return winner
}
