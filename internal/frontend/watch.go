package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/policy"
)

// GrantCheckInterval is how often live grants are checked again: a grant
// revoked (on this replica or another) or whose conditions stop holding
// ends its sessions within about this. Expiry is exact (a timer), and a
// Wake checks at once.
const GrantCheckInterval = time.Second

// GrantChecker re-checks a live session's grant; an error says why it no
// longer holds (a *policy.Refusal, whose reason is safe to show) or that it
// could not be checked (anything else, never shown).
type GrantChecker interface {
	CheckGrant(ctx context.Context, g *access.Grant) error
}

// Watcher ends sessions whose grant ends: one for the whole process,
// shared by the front ends. Each distinct grant is checked once per pass,
// however many connections use it. It runs while something is watched and
// stops by itself when nothing is.
type Watcher struct {
	check GrantChecker
	log   *slog.Logger

	mu      sync.Mutex
	grants  map[grantKey]*watched
	nextID  uint64
	running bool
	wake    chan struct{}          // check now
	resched chan struct{}          // a new grant: set the expiry timer again
	changes func() <-chan struct{} // see FollowChanges; nil: Holds always checks
}

// watched is one grant and the connections that use it.
type watched struct {
	grant access.Grant
	ends  map[uint64]func(msg string)
	// held says when the grant was last found to hold, and the changes
	// channel current before that check: while it is open and the check
	// is recent, Holds answers from here.
	heldAt   time.Time
	heldSeen <-chan struct{}
}

// grantKey identifies a grant; time.Time is not a safe map key (its
// monotonic reading differs between copies of the same instant).
type grantKey struct {
	user, target, login, role string
	request                   int64
	serial                    uint64
	ends                      int64
	source                    netip.Addr
	key                       string // the user's key: removing it ends only its sessions
}

func keyOf(g *access.Grant) grantKey {
	k := grantKey{user: g.User, target: g.Target, login: g.Login, role: g.Role, request: g.RequestID, serial: g.Serial, source: g.Source, key: g.Key}
	if !g.Ends.IsZero() {
		k.ends = g.Ends.UnixNano()
	}
	return k
}

// NewWatcher returns a Watcher that checks grants with check.
func NewWatcher(check GrantChecker, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{check: check, log: log, grants: map[grantKey]*watched{},
		wake: make(chan struct{}, 1), resched: make(chan struct{}, 1)}
}

// Watch calls end, once, with a message for the user when g expires,
// stops holding or cannot be checked; stop ends the watch (it is safe to
// call after end and more than once). end is called in a goroutine of its
// own and must make the connection end.
func (w *Watcher) Watch(g *access.Grant, end func(msg string)) (stop func()) {
	k := keyOf(g)
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.grants[k]
	if e == nil {
		e = &watched{grant: *g, ends: map[uint64]func(string){}}
		w.grants[k] = e
		if w.running && !g.Ends.IsZero() {
			// Its end may come before the timer's.
			select {
			case w.resched <- struct{}{}:
			default:
			}
		}
	}
	w.nextID++
	id := w.nextID
	e.ends[id] = end
	if !w.running {
		w.running = true
		go w.run()
	}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if e := w.grants[k]; e != nil {
			delete(e.ends, id)
			if len(e.ends) == 0 {
				delete(w.grants, k)
			}
			if len(w.grants) == 0 && w.running {
				// Nothing left to watch: let the goroutine end now
				// rather than at its next tick.
				select {
				case w.resched <- struct{}{}:
				default:
				}
			}
		}
	}
}

// Wake checks every grant now (after a revocation, say) instead of at the
// next tick.
func (w *Watcher) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// FollowChanges lets Holds answer from the last check while nothing
// changed: changed returns a channel that is closed at the next change of
// any grant (access.Service.Changed). Call it before the first Watch.
func (w *Watcher) FollowChanges(changed func() <-chan struct{}) { w.changes = changed }

// Holds is "" while g still holds, else what its users are told and end,
// which ends every connection using g with it, as a pass would: the caller
// refuses what was asked first, so that the refusal reaches the client
// before its connection closes. It is asked when a
// connection opens a channel or a forward, so that a new channel in the
// second after a revocation is refused: it answers from the last check of
// g if that is younger than GrantCheckInterval and no grant changed since
// (see FollowChanges), and checks g now otherwise.
func (w *Watcher) Holds(ctx context.Context, g *access.Grant) (msg string, end func()) {
	if !g.Ends.IsZero() && !time.Now().Before(g.Ends) {
		msg := fmt.Sprintf("your access to %s expired", g.Target)
		return msg, func() { w.endAll(keyOf(g), msg) }
	}
	k := keyOf(g)
	var seen <-chan struct{}
	if w.changes != nil {
		seen = w.changes()
	}
	w.mu.Lock()
	e := w.grants[k]
	fresh := e != nil && seen != nil && e.heldSeen == seen && time.Since(e.heldAt) < GrantCheckInterval
	w.mu.Unlock()
	if fresh {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, GrantCheckInterval)
	defer cancel()
	if err := w.check.CheckGrant(ctx, g); err != nil {
		msg := GrantEndMessage(w.log, g, err)
		return msg, func() { w.endAll(k, msg) }
	}
	w.held(k, seen, time.Now())
	return "", nil
}

// held notes that the grant k was found to hold at t, checked after seen
// was the current changes channel.
func (w *Watcher) held(k grantKey, seen <-chan struct{}, t time.Time) {
	if seen == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.grants[k]; e != nil && t.After(e.heldAt) {
		e.heldAt, e.heldSeen = t, seen
	}
}

// Watching is the number of distinct grants being watched.
func (w *Watcher) Watching() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.grants)
}

// run checks the grants every GrantCheckInterval, at the first expiry and
// on Wake, until nothing is watched.
func (w *Watcher) run() {
	tick := time.NewTicker(GrantCheckInterval)
	defer tick.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	for {
		w.mu.Lock()
		if len(w.grants) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		next := time.Time{}
		for _, e := range w.grants {
			if end := e.grant.Ends; !end.IsZero() && (next.IsZero() || end.Before(next)) {
				next = end
			}
		}
		w.mu.Unlock()
		if next.IsZero() {
			expiry.Stop()
		} else {
			expiry.Reset(max(time.Until(next), 0))
		}
		select {
		case <-tick.C:
		case <-expiry.C:
		case <-w.wake:
		case <-w.resched:
			continue
		}
		w.pass()
	}
}

// pass checks each grant once and ends the connections of those that no
// longer hold.
func (w *Watcher) pass() {
	w.mu.Lock()
	grants := make([]access.Grant, 0, len(w.grants))
	for _, e := range w.grants {
		grants = append(grants, e.grant)
	}
	w.mu.Unlock()
	var seen <-chan struct{}
	if w.changes != nil {
		seen = w.changes()
	}
	start := time.Now()
	for i := range grants {
		if msg := w.verdict(&grants[i]); msg != "" {
			w.endAll(keyOf(&grants[i]), msg)
		} else {
			w.held(keyOf(&grants[i]), seen, start)
		}
	}
}

// verdict is "" while g holds, else what its users are told.
func (w *Watcher) verdict(g *access.Grant) string {
	if !g.Ends.IsZero() && !time.Now().Before(g.Ends) {
		return fmt.Sprintf("your access to %s expired", g.Target)
	}
	ctx, cancel := context.WithTimeout(context.Background(), GrantCheckInterval)
	defer cancel()
	err := w.check.CheckGrant(ctx, g)
	if err == nil {
		return ""
	}
	return GrantEndMessage(w.log, g, err)
}

// GrantEndMessage is what the users of g are told when a check of it
// failed with err: a refusal's reason, or, for any other error (the store
// unreachable, a timeout), a fixed message, the error going to the log
// only. The session ends either way: a grant that cannot be checked is not
// trusted.
func GrantEndMessage(log *slog.Logger, g *access.Grant, err error) string {
	var r *policy.Refusal
	if errors.As(err, &r) {
		return fmt.Sprintf("your access to %s ended: %s", g.Target, r.Reason)
	}
	log.Error("grant check failed; ending its sessions", "user", g.User, "target", g.Target, "request", g.RequestID, "err", err)
	return fmt.Sprintf("your access to %s could not be checked, so the session ends (the operator's log has the details)", g.Target)
}

// endAll ends every connection watching the grant k.
func (w *Watcher) endAll(k grantKey, msg string) {
	w.mu.Lock()
	e := w.grants[k]
	delete(w.grants, k)
	if len(w.grants) == 0 && w.running {
		// Holds may end the last grant outside a pass: let the goroutine
		// end now rather than at its next tick.
		select {
		case w.resched <- struct{}{}:
		default:
		}
	}
	w.mu.Unlock()
	if e == nil {
		return
	}
	for _, end := range e.ends {
		go end(msg)
	}
}
