package frontend

import (
	"net/netip"
	"testing"
	"time"
)

// throttleClock is a clock a test moves by hand.
type throttleClock struct{ t time.Time }

func (c *throttleClock) now() time.Time { return c.t }

func TestAuthThrottle(t *testing.T) {
	attacker, other := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.7")
	lim := AuthLimits{PerSource: 3, PerUser: 5, MaxDelay: 2 * time.Second}
	type step struct {
		src       netip.Addr
		user      string
		advance   time.Duration // before the failure
		delay     time.Duration
		burstFrom string // "source", "user", "both" or ""
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"within the budget nothing is slowed", []step{
			{src: attacker}, {src: attacker}, {src: attacker},
		}},
		{"past the budget the delay doubles up to the maximum, one burst event", []step{
			{src: attacker}, {src: attacker}, {src: attacker},
			{src: attacker, delay: 250 * time.Millisecond, burstFrom: "source"},
			{src: attacker, delay: 500 * time.Millisecond},
			{src: attacker, delay: time.Second},
			{src: attacker, delay: 2 * time.Second},
			{src: attacker, delay: 2 * time.Second},
		}},
		{"another source is not slowed by the attacker's failures", []step{
			{src: attacker}, {src: attacker}, {src: attacker},
			{src: attacker, delay: 250 * time.Millisecond, burstFrom: "source"},
			{src: other},
		}},
		{"an IPv6 /64 is one source", []step{
			{src: netip.MustParseAddr("2001:db8::1")}, {src: netip.MustParseAddr("2001:db8::2")}, {src: netip.MustParseAddr("2001:db8::3")},
			{src: netip.MustParseAddr("2001:db8::ffff"), delay: 250 * time.Millisecond, burstFrom: "source"},
			{src: netip.MustParseAddr("2001:db8:0:1::1")},
		}},
		{"one user's name guessed from many sources", []step{
			{src: netip.MustParseAddr("203.0.113.1"), user: "alice"},
			{src: netip.MustParseAddr("203.0.113.2"), user: "alice"},
			{src: netip.MustParseAddr("203.0.113.3"), user: "alice"},
			{src: netip.MustParseAddr("203.0.113.4"), user: "alice"},
			{src: netip.MustParseAddr("203.0.113.5"), user: "alice"},
			{src: netip.MustParseAddr("203.0.113.6"), user: "alice", delay: 250 * time.Millisecond, burstFrom: "user"},
			{src: netip.MustParseAddr("203.0.113.7"), user: "bob"},
		}},
		{"the budget refills: a new burst is a new event", []step{
			{src: attacker}, {src: attacker}, {src: attacker},
			{src: attacker, delay: 250 * time.Millisecond, burstFrom: "source"},
			{src: attacker, advance: 20 * time.Second}, // one failure's worth back
			{src: attacker, advance: time.Minute},      // full again: the burst ended
			{src: attacker}, {src: attacker},
			{src: attacker, delay: 250 * time.Millisecond, burstFrom: "source"},
		}},
		{"source and user run out together", []step{
			{src: attacker, user: "alice"}, {src: attacker, user: "alice"}, {src: attacker, user: "alice"},
			{src: attacker, user: "alice", delay: 250 * time.Millisecond, burstFrom: "source"},
			{src: attacker, user: "alice", delay: 500 * time.Millisecond},
			{src: attacker, user: "alice", delay: time.Second, burstFrom: "user"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &throttleClock{t: time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)}
			th := NewAuthThrottle(lim, clock.now)
			for i, s := range tt.steps {
				clock.t = clock.t.Add(s.advance)
				delay, bursts := th.Failed(s.src, s.user)
				var from string
				for _, b := range bursts {
					switch {
					case b.Source.IsValid() && from == "":
						from = "source"
					case b.User != "" && from == "":
						from = "user"
					default:
						from = "both"
					}
					if b.Reason == "" {
						t.Errorf("step %d: a burst without a reason", i)
					}
				}
				if delay != s.delay || from != s.burstFrom {
					t.Fatalf("step %d (%s %q): delay %s, burst %q; want %s, %q", i, s.src, s.user, delay, from, s.delay, s.burstFrom)
				}
			}
		})
	}
}

// TestAuthThrottleBounded: a flood from more sources than it tracks shares
// one overflow budget instead of growing the maps.
func TestAuthThrottleBounded(t *testing.T) {
	clock := &throttleClock{t: time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)}
	th := NewAuthThrottle(AuthLimits{PerSource: 1}, clock.now)
	for i := range maxThrottled + 10 {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		th.Failed(src, "")
	}
	if n, _ := th.Tracked(); n > maxThrottled+1 { // and the overflow budget
		t.Fatalf("%d sources tracked, want at most %d", n, maxThrottled+1)
	}
	delay, _ := th.Failed(netip.MustParseAddr("172.16.0.1"), "")
	if delay == 0 {
		t.Fatal("a new source past the bound was not slowed (it shares the overflow budget)")
	}
}
