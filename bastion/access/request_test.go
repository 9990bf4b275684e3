package access_test

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
)

func TestRequest(t *testing.T) {
	tests := []struct {
		name       string
		user       string
		source     netip.Addr
		in         access.RequestInput
		err        errKind
		errText    string
		state      store.State
		logins     []string
		approvals  int
		autoGrant  bool
		wantEvents []string // with outcome ok
	}{
		{
			name: "pending", user: "alice", source: outside,
			in:    access.RequestInput{Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "INC-123 disk full"},
			state: store.Pending, logins: []string{"root"}, approvals: 1,
			wantEvents: []string{audit.RequestCreate},
		},
		{
			name: "two logins", user: "alice", source: outside,
			in:    access.RequestInput{Targets: []string{"web01", "web02"}, Logins: []string{"root", "deploy"}, Duration: time.Hour, Reason: "x"},
			state: store.Pending, logins: []string{"root", "deploy"}, approvals: 1,
			wantEvents: []string{audit.RequestCreate},
		},
		{
			name: "the only login is the default", user: "alice", source: outside,
			in:    access.RequestInput{Targets: []string{"prod01"}, Duration: time.Hour},
			state: store.Pending, logins: []string{"root"}, approvals: 2,
			wantEvents: []string{audit.RequestCreate},
		},
		{
			name: "database: no logins", user: "alice", source: outside,
			in:    access.RequestInput{Targets: []string{"db01"}, Duration: time.Hour},
			state: store.Pending, approvals: 1,
			wantEvents: []string{audit.RequestCreate},
		},
		{
			name: "auto-approved", user: "alice", source: inside,
			in:    access.RequestInput{Targets: []string{"staging01"}, Duration: 2 * time.Hour},
			state: store.Approved, logins: []string{"ubuntu"}, approvals: 1, autoGrant: true,
			wantEvents: []string{audit.RequestCreate, audit.RequestGrant},
		},
		{
			name: "auto-approval conditions unmet: pending", user: "alice", source: outside,
			in:    access.RequestInput{Targets: []string{"staging01"}, Duration: 2 * time.Hour},
			state: store.Pending, logins: []string{"ubuntu"}, approvals: 1,
			wantEvents: []string{audit.RequestCreate},
		},
		{
			name: "unknown target", user: "alice", source: outside,
			in:  access.RequestInput{Targets: []string{"nope"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "x"},
			err: invalid, errText: `unknown target "nope"`,
		},
		{
			name: "no target", user: "alice", source: outside,
			in:  access.RequestInput{Duration: time.Hour, Reason: "x"},
			err: invalid, errText: "at least one target",
		},
		{
			name: "no duration", user: "alice", source: outside,
			in:  access.RequestInput{Targets: []string{"web01"}, Logins: []string{"root"}, Reason: "x"},
			err: invalid, errText: "duration must be positive",
		},
		{
			name: "reason required", user: "alice", source: outside,
			in:  access.RequestInput{Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "  "},
			err: invalid, errText: "reason is required",
		},
		{
			name: "login ambiguous", user: "alice", source: outside,
			in:  access.RequestInput{Targets: []string{"web01"}, Duration: time.Hour, Reason: "x"},
			err: invalid, errText: "name a login",
		},
		{
			name: "login not requestable", user: "alice", source: outside,
			in:  access.RequestInput{Targets: []string{"web01"}, Logins: []string{"admin"}, Duration: time.Hour, Reason: "x"},
			err: refusal, errText: `login "admin" is not requestable`,
		},
		{
			name: "too long", user: "alice", source: outside,
			in:  access.RequestInput{Targets: []string{"prod01"}, Duration: 2 * time.Hour},
			err: refusal, errText: "exceeds the maximum 1h0m0s",
		},
		{
			name: "role does not allow", user: "bob", source: outside,
			in:  access.RequestInput{Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "x"},
			err: refusal, errText: "your roles do not allow requesting web01",
		},
		{
			name: "unknown user", user: "mallory", source: outside,
			in:  access.RequestInput{Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "x"},
			err: refusal, errText: "your roles do not allow",
		},
		{
			name: "source outside the allowed network", user: "alice", source: outside,
			in:  access.RequestInput{Targets: []string{"net01"}, Duration: time.Hour},
			err: refusal, errText: "source address 192.0.2.10 is not in an allowed network",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			now := e.clock.Advance(time.Minute)
			a := e.actor(t, tt.user)
			a.Source = tt.source
			r, err := e.svc.Request(t.Context(), a, tt.in)
			checkErr(t, err, tt.err, tt.errText)

			if tt.err != noErr {
				if r != nil {
					t.Errorf("refused request returned %+v", r)
				}
				events := e.wantAudit(t, ev{Type: audit.RequestCreate, Actor: tt.user, Outcome: audit.OutcomeRefused})
				if len(events) == 1 {
					if events[0].Reason != err.Error() {
						t.Errorf("audit reason = %q, want %q", events[0].Reason, err.Error())
					}
					if want := strings.Join(tt.in.Targets, ","); events[0].Target != want {
						t.Errorf("audit target = %q, want %q", events[0].Target, want)
					}
					if events[0].Source != tt.source.String() {
						t.Errorf("audit source = %q, want %q", events[0].Source, tt.source)
					}
				}
				e.wantNotes(t, 0)
				all, err := e.st.Requests(t.Context(), store.RequestFilter{})
				if err != nil {
					t.Fatal(err)
				}
				if len(all) != 0 {
					t.Errorf("a refused request was stored: %+v", all[0])
				}
				return
			}

			if r.ID == 0 || r.State != tt.state || r.Requester != tt.user || r.Role != "dev" {
				t.Fatalf("request = {ID:%d State:%s Requester:%s Role:%s}, want a new %s request by %s under role dev",
					r.ID, r.State, r.Requester, r.Role, tt.state, tt.user)
			}
			if !slices.Equal(r.Logins, tt.logins) || r.ApprovalsRequired != tt.approvals || !slices.Equal(r.Approvers, []string{"sre"}) {
				t.Errorf("logins %q, approvals %d from %q; want %q, %d from [sre]", r.Logins, r.ApprovalsRequired, r.Approvers, tt.logins, tt.approvals)
			}
			sameTime(t, "CreatedAt", r.CreatedAt, now)
			sameTime(t, "PendingUntil", r.PendingUntil, now.Add(pendingTTL))
			if tt.autoGrant {
				sameTime(t, "GrantStart", r.GrantStart, now)
				sameTime(t, "GrantEnd", r.GrantEnd, now.Add(tt.in.Duration))
				sameTime(t, "DecidedAt", r.DecidedAt, now)
				if r.DecidedBy != "policy" {
					t.Errorf("DecidedBy = %q, want policy", r.DecidedBy)
				}
			} else if !r.GrantStart.IsZero() || !r.GrantEnd.IsZero() {
				t.Errorf("pending request has a grant window %v–%v", r.GrantStart, r.GrantEnd)
			}

			// What was stored is what was returned.
			s := e.stored(t, r.ID)
			if s.State != r.State || !s.PendingUntil.Equal(r.PendingUntil) || !s.GrantEnd.Equal(r.GrantEnd) ||
				s.Source != tt.source.String() || s.Reason != tt.in.Reason || s.Duration != tt.in.Duration {
				t.Errorf("stored %+v\nreturned %+v", s, r)
			}

			want := []ev{{Type: audit.RequestCreate, Actor: tt.user, Subject: tt.user, Request: r.ID, Outcome: audit.OutcomeOK}}
			if tt.autoGrant {
				want = append(want, ev{Type: audit.RequestGrant, Actor: "policy", Subject: tt.user, Request: r.ID, Outcome: audit.OutcomeOK})
			}
			events := e.wantAudit(t, want...)
			if len(events) > 0 {
				d := events[0].Details
				if d["logins"] != strings.Join(tt.logins, ",") || d["role"] != "dev" || d["duration"] != tt.in.Duration.String() {
					t.Errorf("request.create details = %v", d)
				}
				if events[0].Target != strings.Join(tt.in.Targets, ",") || events[0].Source != tt.source.String() {
					t.Errorf("request.create target %q source %q", events[0].Target, events[0].Source)
				}
			}
			if tt.autoGrant && len(events) == 2 {
				if got, want := events[1].Details["grant_end"], r.GrantEnd.UTC().Format(time.RFC3339); got != want {
					t.Errorf("request.grant grant_end = %q, want %q", got, want)
				}
			}

			notes := e.wantNotes(t, r.ID, tt.wantEvents...)
			if len(notes) > 0 {
				if n := notes[0]; !strings.Contains(n.Text, "approve "+itoa(r.ID)) || n.Request.State != r.State {
					t.Errorf("request.create notification %q (state %s)", n.Text, n.Request.State)
				}
			}
		})
	}
}

func TestApprove(t *testing.T) {
	t.Run("one approval grants from the approval time", func(t *testing.T) {
		e := newEnv(t)
		alice := e.actor(t, "alice")
		r := e.request(t, alice, "web01", []string{"root"}, time.Hour)
		at := e.clock.Advance(10 * time.Minute)

		got, err := e.svc.Approve(t.Context(), e.actor(t, "bob"), r.ID, "looks fine")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.Approved || got.DecidedBy != "bob" {
			t.Fatalf("state %s decided by %q, want approved by bob", got.State, got.DecidedBy)
		}
		sameTime(t, "GrantStart", got.GrantStart, at)
		sameTime(t, "GrantEnd", got.GrantEnd, at.Add(time.Hour))
		sameTime(t, "DecidedAt", got.DecidedAt, at)
		if len(got.Approvals) != 1 || got.Approvals[0].Approver != "bob" || got.Approvals[0].Comment != "looks fine" {
			t.Errorf("approvals = %+v", got.Approvals)
		}
		events := e.wantAudit(t,
			ev{Type: audit.RequestApprove, Actor: "bob", Subject: "alice", Request: r.ID, Outcome: audit.OutcomeOK},
			ev{Type: audit.RequestGrant, Actor: "bob", Subject: "alice", Request: r.ID, Outcome: audit.OutcomeOK},
		)
		if len(events) == 2 {
			if events[0].Details["approvals"] != "1/1" || events[0].Reason != "looks fine" {
				t.Errorf("request.approve details %v reason %q", events[0].Details, events[0].Reason)
			}
			if events[1].Details["grant_end"] != at.Add(time.Hour).Format(time.RFC3339) {
				t.Errorf("request.grant details %v", events[1].Details)
			}
		}
		notes := e.wantNotes(t, r.ID, audit.RequestGrant)
		if len(notes) == 1 && !strings.Contains(notes[0].Text, "approved by bob") {
			t.Errorf("grant notification %q", notes[0].Text)
		}
	})

	t.Run("two approvals from distinct approvers", func(t *testing.T) {
		e := newEnv(t)
		alice, bob, carol := e.actor(t, "alice"), e.actor(t, "bob"), e.actor(t, "carol")
		r := e.request(t, alice, "prod01", nil, time.Hour)
		e.clock.Advance(time.Minute)

		got, err := e.svc.Approve(t.Context(), bob, r.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.Pending || len(got.Approvals) != 1 {
			t.Fatalf("after one of two approvals: %s with %d approvals", got.State, len(got.Approvals))
		}
		events := e.wantAudit(t, ev{Type: audit.RequestApprove, Actor: "bob", Subject: "alice", Request: r.ID, Outcome: audit.OutcomeOK})
		if len(events) == 1 && events[0].Details["approvals"] != "1/2" {
			t.Errorf("approvals detail = %q, want 1/2", events[0].Details["approvals"])
		}
		e.wantNotes(t, r.ID) // nothing to tell until granted

		_, err = e.svc.Approve(t.Context(), bob, r.ID, "")
		checkErr(t, err, refusal, "already approved")
		e.wantAudit(t, ev{Type: audit.RequestApprove, Actor: "bob", Request: r.ID, Outcome: audit.OutcomeRefused})
		if s := e.stored(t, r.ID); s.State != store.Pending || len(s.Approvals) != 1 {
			t.Errorf("a repeated approval counted: %s with %d approvals", s.State, len(s.Approvals))
		}

		at := e.clock.Advance(5 * time.Minute)
		got, err = e.svc.Approve(t.Context(), carol, r.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.Approved || got.DecidedBy != "carol" || len(got.Approvals) != 2 {
			t.Fatalf("after two approvals: %s decided by %q with %d approvals", got.State, got.DecidedBy, len(got.Approvals))
		}
		sameTime(t, "GrantStart", got.GrantStart, at)
		sameTime(t, "GrantEnd", got.GrantEnd, at.Add(time.Hour))
		e.wantAudit(t,
			ev{Type: audit.RequestApprove, Actor: "carol", Subject: "alice", Request: r.ID, Outcome: audit.OutcomeOK},
			ev{Type: audit.RequestGrant, Actor: "carol", Subject: "alice", Request: r.ID, Outcome: audit.OutcomeOK},
		)
		e.wantNotes(t, r.ID, audit.RequestGrant)
	})

	refusals := []struct {
		name    string
		by      string
		setup   func(t *testing.T, e *testEnv, id int64)
		id      int64 // instead of the request's
		err     errKind
		errText string
	}{
		{name: "self-approval", by: "alice", err: refusal, errText: "cannot approve or deny your own request"},
		{name: "auditor is not an approver", by: "erin", err: refusal, errText: "needs one of the roles: sre"},
		{name: "another developer", by: "dave", err: notFound},
		{name: "unrelated user", by: "olga", err: notFound},
		{name: "unknown user", by: "mallory", err: notFound},
		{name: "no such request", by: "bob", id: 999, err: notFound},
		{
			name: "after the approval window", by: "bob", err: refusal, errText: "is expired",
			setup: func(t *testing.T, e *testEnv, id int64) { e.clock.Advance(pendingTTL) },
		},
		{
			name: "already denied", by: "bob", err: refusal, errText: "is denied",
			setup: func(t *testing.T, e *testEnv, id int64) {
				if _, err := e.svc.Deny(t.Context(), e.actor(t, "carol"), id, "no"); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "already approved", by: "carol", err: refusal, errText: "is approved",
			setup: func(t *testing.T, e *testEnv, id int64) {
				if _, err := e.svc.Approve(t.Context(), e.actor(t, "bob"), id, ""); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.request(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
			if tt.setup != nil {
				tt.setup(t, e, r.ID)
			}
			before := e.stored(t, r.ID)
			e.skip(t)
			id := r.ID
			if tt.id != 0 {
				id = tt.id
			}
			got, err := e.svc.Approve(t.Context(), e.actor(t, tt.by), id, "")
			checkErr(t, err, tt.err, tt.errText)
			if got != nil {
				t.Errorf("refused approval returned %+v", got)
			}
			e.wantAudit(t, ev{Type: audit.RequestApprove, Actor: tt.by, Request: id, Outcome: audit.OutcomeRefused})
			e.wantNotes(t, r.ID)
			if after := e.stored(t, r.ID); after.State != before.State || len(after.Approvals) != len(before.Approvals) {
				t.Errorf("refused approval changed the request: %s/%d approvals → %s/%d", before.State, len(before.Approvals), after.State, len(after.Approvals))
			}
		})
	}
}

func TestDeny(t *testing.T) {
	t.Run("denied", func(t *testing.T) {
		e := newEnv(t)
		r := e.request(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
		at := e.clock.Advance(time.Minute)
		got, err := e.svc.Deny(t.Context(), e.actor(t, "bob"), r.ID, "use the runbook")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != store.Denied || got.DecidedBy != "bob" || got.DecisionReason != "use the runbook" {
			t.Errorf("got %s by %q (%q), want denied by bob", got.State, got.DecidedBy, got.DecisionReason)
		}
		sameTime(t, "DecidedAt", got.DecidedAt, at)
		if !got.GrantEnd.IsZero() {
			t.Errorf("denied request has a grant end %v", got.GrantEnd)
		}
		events := e.wantAudit(t, ev{Type: audit.RequestDeny, Actor: "bob", Subject: "alice", Request: r.ID, Outcome: audit.OutcomeOK})
		if len(events) == 1 && events[0].Reason != "use the runbook" {
			t.Errorf("request.deny reason %q", events[0].Reason)
		}
		notes := e.wantNotes(t, r.ID, audit.RequestDeny)
		if len(notes) == 1 && !strings.Contains(notes[0].Text, "denied by bob: use the runbook") {
			t.Errorf("deny notification %q", notes[0].Text)
		}
	})

	refusals := []struct {
		name     string
		by       string
		approved bool
		err      errKind
		errText  string
	}{
		{name: "own request", by: "alice", err: refusal, errText: "your own request"},
		{name: "not an approver", by: "erin", err: refusal, errText: "needs one of the roles"},
		{name: "stranger", by: "dave", err: notFound},
		{name: "already approved", by: "carol", approved: true, err: refusal, errText: "is approved"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			var r *store.Request
			if tt.approved {
				r = e.approved(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
			} else {
				r = e.request(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
			}
			_, err := e.svc.Deny(t.Context(), e.actor(t, tt.by), r.ID, "no")
			checkErr(t, err, tt.err, tt.errText)
			e.wantAudit(t, ev{Type: audit.RequestDeny, Actor: tt.by, Request: r.ID, Outcome: audit.OutcomeRefused})
			e.wantNotes(t, r.ID)
			if s := e.stored(t, r.ID); s.State != r.State {
				t.Errorf("refused denial moved the request from %s to %s", r.State, s.State)
			}
		})
	}
}

func TestRevoke(t *testing.T) {
	tests := []struct {
		name     string
		by       string
		approved bool // revoke an approved request rather than a pending one
		err      errKind
		errText  string
		state    store.State
		event    string
	}{
		{name: "requester withdraws pending", by: "alice", state: store.Cancelled, event: audit.RequestCancel},
		{name: "requester releases grant", by: "alice", approved: true, state: store.Revoked, event: audit.RequestRevoke},
		{name: "approver revokes grant", by: "carol", approved: true, state: store.Revoked, event: audit.RequestRevoke},
		{name: "approver cannot revoke pending", by: "bob", err: refusal, errText: "only approved requests can be revoked", event: audit.RequestRevoke},
		{name: "auditor cannot revoke", by: "erin", approved: true, err: refusal, errText: "needs one of the roles", event: audit.RequestRevoke},
		{name: "stranger", by: "dave", approved: true, err: notFound, event: audit.RequestRevoke},
		{name: "unknown user", by: "mallory", err: notFound, event: audit.RequestRevoke},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			var r *store.Request
			if tt.approved {
				r = e.approved(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
			} else {
				r = e.request(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
			}
			at := e.clock.Advance(time.Minute)
			got, err := e.svc.Revoke(t.Context(), e.actor(t, tt.by), r.ID, "done")
			checkErr(t, err, tt.err, tt.errText)
			if tt.err != noErr {
				e.wantAudit(t, ev{Type: tt.event, Actor: tt.by, Request: r.ID, Outcome: audit.OutcomeRefused})
				e.wantNotes(t, r.ID)
				if s := e.stored(t, r.ID); s.State != r.State {
					t.Errorf("refused revocation moved the request from %s to %s", r.State, s.State)
				}
				return
			}
			if got.State != tt.state || got.ClosedBy != tt.by || got.CloseReason != "done" {
				t.Errorf("got %s closed by %q (%q), want %s by %s", got.State, got.ClosedBy, got.CloseReason, tt.state, tt.by)
			}
			sameTime(t, "ClosedAt", got.ClosedAt, at)
			e.wantAudit(t, ev{Type: tt.event, Actor: tt.by, Subject: "alice", Request: r.ID, Outcome: audit.OutcomeOK})
			e.wantNotes(t, r.ID, tt.event)

			// A closed request cannot be revoked again.
			_, err = e.svc.Revoke(t.Context(), e.actor(t, tt.by), r.ID, "again")
			checkErr(t, err, refusal, "is "+string(tt.state))
			e.wantAudit(t, ev{Type: audit.RequestRevoke, Actor: tt.by, Request: r.ID, Outcome: audit.OutcomeRefused})
		})
	}
}

func TestVisibility(t *testing.T) {
	e := newEnv(t)
	alice, dave := e.actor(t, "alice"), e.actor(t, "dave")
	r1 := e.request(t, alice, "web01", []string{"root"}, time.Hour)
	r2 := e.request(t, dave, "web02", []string{"root"}, time.Hour)
	// r1 and r2 expire, unswept; r3 is approved after that.
	e.clock.Advance(pendingTTL + time.Minute)
	inAlice := alice
	inAlice.Source = inside
	r3 := e.request(t, inAlice, "staging01", nil, time.Hour)

	gets := []struct {
		user string
		id   int64
		err  errKind
	}{
		{"alice", r1.ID, noErr},
		{"bob", r1.ID, noErr},     // may approve it
		{"erin", r1.ID, noErr},    // auditor
		{"dave", r1.ID, notFound}, // someone else's
		{"olga", r1.ID, notFound},
		{"mallory", r1.ID, notFound},
		{"alice", r2.ID, notFound},
		{"dave", r2.ID, noErr},
		{"alice", 999, notFound},
	}
	for _, tt := range gets {
		t.Run("get/"+tt.user+"/"+itoa(tt.id), func(t *testing.T) {
			got, err := e.svc.Get(t.Context(), e.actor(t, tt.user), tt.id)
			checkErr(t, err, tt.err, "")
			if err == nil && (got.ID != tt.id || got.State != store.Expired) {
				t.Errorf("got request %d %s, want %d expired (effective state, before any sweep)", got.ID, got.State, tt.id)
			}
		})
	}

	lists := []struct {
		name string
		user string
		f    store.RequestFilter
		want []int64
	}{
		{"requester", "alice", store.RequestFilter{}, []int64{r3.ID, r1.ID}},
		{"approver sees all", "bob", store.RequestFilter{}, []int64{r3.ID, r2.ID, r1.ID}},
		{"auditor sees all", "erin", store.RequestFilter{}, []int64{r3.ID, r2.ID, r1.ID}},
		{"other developer", "dave", store.RequestFilter{}, []int64{r2.ID}},
		{"unrelated", "olga", store.RequestFilter{}, nil},
		{"expired but unswept", "alice", store.RequestFilter{States: []store.State{store.Expired}}, []int64{r1.ID}},
		{"no longer pending", "bob", store.RequestFilter{States: []store.State{store.Pending}}, nil},
		{"approved", "bob", store.RequestFilter{States: []store.State{store.Approved}}, []int64{r3.ID}},
		{"limit after visibility", "dave", store.RequestFilter{Limit: 1}, []int64{r2.ID}},
		{"limit", "erin", store.RequestFilter{Limit: 2}, []int64{r3.ID, r2.ID}},
		{"by requester", "erin", store.RequestFilter{Requester: "dave"}, []int64{r2.ID}},
	}
	for _, tt := range lists {
		t.Run("list/"+tt.name, func(t *testing.T) {
			got, err := e.svc.List(t.Context(), e.actor(t, tt.user), tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, r := range got {
				ids = append(ids, r.ID)
				if want := r.StateAt(e.clock.Now()); r.State != want {
					t.Errorf("request %d listed as %s, want %s", r.ID, r.State, want)
				}
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("listed %v, want %v", ids, tt.want)
			}
		})
	}
	if s := e.stored(t, r1.ID); s.State != store.Pending {
		t.Errorf("reading changed the stored state to %s", s.State)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
