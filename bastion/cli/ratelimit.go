package cli

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/bastionhq/bastion/bastion/policy"
)

// DefaultCommandsPerMinute caps one user's self-service commands over SSH
// where the configuration sets none (server.limits.commands_per_minute).
// Two a second, after a burst of half a minute's worth, is far beyond what
// a person types or a script waiting on approvals needs; a loop filing
// requests or polling `requests` as fast as it can is slowed to that.
const DefaultCommandsPerMinute = 120

// commandLimiter is a token bucket per user. The set of users is the
// configured one (only authenticated users run commands), so the map is
// bounded without eviction.
type commandLimiter struct {
	perMinute int
	now       func() time.Time

	mu    sync.Mutex
	users map[string]*userLimit
}

type userLimit struct {
	lim *rate.Limiter
	// refused counts the commands refused since the last one allowed:
	// the first refusal of a burst is audited, the rest only counted.
	refused int
}

func newCommandLimiter(perMinute int, now func() time.Time) *commandLimiter {
	if perMinute <= 0 {
		perMinute = DefaultCommandsPerMinute
	}
	if now == nil {
		now = time.Now
	}
	return &commandLimiter{perMinute: perMinute, now: now, users: map[string]*userLimit{}}
}

// allow takes a token for user's next command. When there is none it
// returns a refusal that says when to try again, and whether this is the
// first refusal of the burst (the one worth an audit event).
func (l *commandLimiter) allow(user string) (first bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u := l.users[user]
	if u == nil {
		burst := max(l.perMinute/2, 1)
		u = &userLimit{lim: rate.NewLimiter(rate.Limit(float64(l.perMinute)/60), burst)}
		l.users[user] = u
	}
	now := l.now()
	r := u.lim.ReserveN(now, 1) // always OK: the burst is at least 1
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		u.refused++
		secs := int(math.Ceil(wait.Seconds()))
		return u.refused == 1, &policy.Refusal{Reason: fmt.Sprintf(
			"too many commands: %d a minute is the limit (server.limits.commands_per_minute); try again in %ds", l.perMinute, secs)}
	}
	u.refused = 0
	return false, nil
}
