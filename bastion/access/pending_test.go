package access_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/policy"
)

// TestPendingCap: a user with DefaultMaxPending requests pending cannot
// file another (a refusal, audited); a decision makes room again, and other
// users are not affected.
func TestPendingCap(t *testing.T) {
	e := newEnv(t)
	alice := e.actor(t, "alice")
	var first int64
	for i := range access.DefaultMaxPending {
		r := e.request(t, alice, "web01", []string{"root"}, time.Hour)
		if i == 0 {
			first = r.ID
		}
	}
	in := access.RequestInput{Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "one more"}
	_, err := e.svc.Request(t.Context(), alice, in)
	var ref *policy.Refusal
	if !errors.As(err, &ref) || !strings.Contains(ref.Reason, "10 pending requests (the limit is 10)") {
		t.Fatalf("request over the cap: %v", err)
	}
	events := e.newEvents(t)
	if len(events) != 1 || events[0].Type != "request.create" || events[0].Outcome != "refused" {
		t.Fatalf("the refusal was audited as %+v", events)
	}
	if _, err := e.svc.Request(t.Context(), e.actor(t, "dave"), in); err != nil {
		t.Fatalf("another user's request: %v", err)
	}
	if _, err := e.svc.Approve(t.Context(), e.actor(t, "bob"), first, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Request(t.Context(), alice, in); err != nil {
		t.Fatalf("a request after a decision made room: %v", err)
	}
}
