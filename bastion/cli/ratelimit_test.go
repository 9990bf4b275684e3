package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestCommandLimiter: a user gets a burst of half a minute's commands, then
// one per 60/N seconds; the first refusal of a burst is the one to audit;
// another user is not slowed.
func TestCommandLimiter(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newCommandLimiter(6, func() time.Time { return now }) // burst 3, one per 10 s
	for i := range 3 {
		if _, err := l.allow("alice"); err != nil {
			t.Fatalf("command %d of the burst: %v", i+1, err)
		}
	}
	first, err := l.allow("alice")
	if err == nil || !first {
		t.Fatalf("4th command: first=%v err=%v, want the burst's first refusal", first, err)
	}
	if want := "6 a minute is the limit (server.limits.commands_per_minute); try again in 10s"; !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %q, want it to contain %q", err, want)
	}
	if first, err := l.allow("alice"); err == nil || first {
		t.Errorf("5th command: first=%v err=%v, want a refusal that is not the first", first, err)
	}
	if _, err := l.allow("bob"); err != nil {
		t.Errorf("bob is slowed by alice's burst: %v", err)
	}
	now = now.Add(10 * time.Second) // refused commands took no tokens
	if _, err := l.allow("alice"); err != nil {
		t.Errorf("after 10 s: %v", err)
	}
	if first, err := l.allow("alice"); err == nil || !first {
		t.Errorf("the next burst: first=%v err=%v, want a first refusal again", first, err)
	}
}

// TestRunLineRateLimited: over SSH (RunLine) a user past the limit is
// refused with exit 1 and the reason, audited once per burst; the
// operator's commands on the server are not capped.
func TestRunLineRateLimited(t *testing.T) {
	f := newFixture(t)
	cfg := f.cfg
	cfg.CommandsPerMinute = 2 // burst 1
	c := New(cfg)
	var out, errOut bytes.Buffer
	io := IO{Stdout: &out, Stderr: &errOut}
	if code := c.RunLine(t.Context(), f.actor("alice"), io, "whoami"); code != ExitOK {
		t.Fatalf("first command: exit %d, %s", code, errOut.String())
	}
	for range 3 {
		errOut.Reset()
		if code := c.RunLine(t.Context(), f.actor("alice"), io, "whoami"); code != ExitRefused ||
			!strings.Contains(errOut.String(), "too many commands: 2 a minute is the limit") {
			t.Fatalf("past the limit: exit %d, stderr %q", code, errOut.String())
		}
	}
	n := 0
	for _, e := range f.access.events {
		if e.Details["limit"] == "commands_per_minute" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d audit events for one burst of refusals, want 1", n)
	}
	for range 3 {
		if code := c.RunAsOperator(t.Context(), f.actor("alice"), io, []string{"whoami"}); code != ExitOK {
			t.Fatalf("operator command: exit %d", code)
		}
	}
}
