package frontend

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/bastionhq/bastion/bastion/audit"
)

// AuthLimits slow down failed authentication: past a budget of failures a
// minute from one source, or naming one user, each further failure's
// answer is held for a delay that doubles with every failure over the
// budget, up to MaxDelay. Successful logins are never held, so a real user
// whose client offers a key that is registered is not slowed by an
// attacker's guessing, from elsewhere or for another name.
type AuthLimits struct {
	// PerSource is the failures a minute from one address (IPv6: one /64)
	// before they are slowed; also the burst allowed at once.
	PerSource int
	// PerUser is the failures a minute naming one user (whoever makes
	// them) before they are slowed.
	PerUser int
	// MaxDelay is the longest one failure's answer is held.
	MaxDelay time.Duration
}

// DefaultAuthLimits are the limits used where the configuration sets
// none: 30 failures a minute are more than a person's client makes when it
// offers each key of an agent in turn, and far fewer than a guessing
// script's; a failure is held 8 s at most, under the default handshake
// timeout, so a slowed client sees its refusal rather than a timeout.
var DefaultAuthLimits = AuthLimits{PerSource: 30, PerUser: 30, MaxDelay: 8 * time.Second}

// throttleBaseDelay is the delay of the first failure over a budget; each
// further one doubles it.
const throttleBaseDelay = 250 * time.Millisecond

// maxThrottled bounds the sources and users tracked at once; past it,
// entries whose budget is full again are dropped, and if none is, new ones
// share one overflow budget (a flood from very many sources is slowed as
// one).
const maxThrottled = 1 << 16

// AuthThrottle counts failed authentications against AuthLimits. One is
// shared by the front ends of a process.
type AuthThrottle struct {
	lim AuthLimits
	now func() time.Time

	mu      sync.Mutex
	sources map[netip.Prefix]*budget
	users   map[string]*budget
}

// budget is one source's or user's failures.
type budget struct {
	lim  *rate.Limiter
	over int // failures over the budget since it was last full: the backoff's exponent
}

// NewAuthThrottle returns an AuthThrottle enforcing lim; a zero field
// takes its default. now is the clock (nil: time.Now).
func NewAuthThrottle(lim AuthLimits, now func() time.Time) *AuthThrottle {
	if lim.PerSource <= 0 {
		lim.PerSource = DefaultAuthLimits.PerSource
	}
	if lim.PerUser <= 0 {
		lim.PerUser = DefaultAuthLimits.PerUser
	}
	if lim.MaxDelay <= 0 {
		lim.MaxDelay = DefaultAuthLimits.MaxDelay
	}
	if now == nil {
		now = time.Now
	}
	return &AuthThrottle{lim: lim, now: now, sources: map[netip.Prefix]*budget{}, users: map[string]*budget{}}
}

// Throttled is the start of a burst of failures over a budget: the one
// event a burst is audited as, however long it lasts.
type Throttled struct {
	Source netip.Addr // set when the source's budget ran out
	User   string     // set when the user's budget ran out
	Reason string     // one line for the audit log
}

// Failed counts a failed authentication from src naming user ("" when the
// attempt names nobody Bastion knows of) and returns how long to hold its
// answer, and the bursts that start with it (one per budget that has just
// run out, none while a burst goes on).
func (t *AuthThrottle) Failed(src netip.Addr, user string) (time.Duration, []Throttled) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	var bursts []Throttled
	k := sourceKey(src)
	delay, started := t.spend(bucketOf(t.sources, k, t.lim.PerSource, now), now)
	if started {
		bursts = append(bursts, Throttled{Source: src, Reason: fmt.Sprintf(
			"authentication failures from %s over the limit of %d a minute: further failures are slowed, up to %s each",
			k, t.lim.PerSource, t.lim.MaxDelay)})
	}
	if user != "" {
		d, started := t.spend(bucketOf(t.users, user, t.lim.PerUser, now), now)
		delay = max(delay, d)
		if started {
			bursts = append(bursts, Throttled{User: user, Reason: fmt.Sprintf(
				"authentication failures naming %s over the limit of %d a minute: further failures are slowed, up to %s each",
				user, t.lim.PerUser, t.lim.MaxDelay)})
		}
	}
	return delay, bursts
}

// Hold counts a failed authentication as Failed does, then holds the
// caller for the delay (or until ctx ends). over reports that the failure
// was over a budget: the burst's one event speaks for it.
func (t *AuthThrottle) Hold(ctx context.Context, src netip.Addr, user string) (bursts []Throttled, over bool) {
	delay, bursts := t.Failed(src, user)
	if delay > 0 {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
		}
	}
	return bursts, delay > 0
}

// Event is the audit event of a burst's start, for protocol.
func (b Throttled) Event(protocol string) audit.Event {
	e := audit.Event{Type: audit.LoginThrottle, Outcome: audit.OutcomeRefused, Reason: b.Reason,
		Details: map[string]string{"protocol": protocol}}
	if b.User != "" {
		e.Details["user"] = b.User
	}
	return e
}

// spend takes one failure from b: no delay within the budget, else a
// doubling one. started reports the first failure over the budget since it
// was last full.
func (t *AuthThrottle) spend(b *budget, now time.Time) (delay time.Duration, started bool) {
	if b.over > 0 && b.lim.TokensAt(now) >= float64(b.lim.Burst()) {
		b.over = 0 // a full budget again: the burst is over
	}
	if b.lim.AllowN(now, 1) {
		return 0, false
	}
	b.over++
	delay = t.lim.MaxDelay
	if b.over < 16 {
		delay = min(throttleBaseDelay<<(b.over-1), t.lim.MaxDelay)
	}
	return delay, b.over == 1
}

// bucketOf returns m's budget for k, making one (perMinute a minute, as
// many at once) if needed, within maxThrottled.
func bucketOf[K comparable](m map[K]*budget, k K, perMinute int, now time.Time) *budget {
	if b := m[k]; b != nil {
		return b
	}
	if len(m) >= maxThrottled {
		for key, b := range m {
			if b.lim.TokensAt(now) >= float64(b.lim.Burst()) {
				delete(m, key)
			}
		}
	}
	var zero K
	if len(m) >= maxThrottled {
		k = zero // the overflow budget
		if b := m[k]; b != nil {
			return b
		}
	}
	b := &budget{lim: rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute)}
	m[k] = b
	return b
}

// Tracked is how many sources and users the throttle holds budgets for.
func (t *AuthThrottle) Tracked() (sources, users int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sources), len(t.users)
}
