package access

import (
	"context"
	"fmt"
	"time"

	"github.com/bastionhq/bastion/bastion/store"
)

// DefaultMaxPending caps a user's pending requests where the configuration
// sets no cap (server.limits.pending_requests_per_user). Ten is more than
// anyone waits on at once; a script filing requests in a loop stops there,
// before the approvers' queue and their notifications are buried.
const DefaultMaxPending = 10

// pendingRoom refuses a new request of user's while they have
// s.maxPending requests pending. Two requests filed at the same instant
// may both pass: the cap is a bound on a flood, not an exact count.
func (s *Service) pendingRoom(ctx context.Context, user string, now time.Time) error {
	rs, err := s.store.Requests(ctx, store.RequestFilter{Requester: user, States: []store.State{store.Pending}})
	if err != nil {
		return fmt.Errorf("access: count pending requests: %w", err)
	}
	n := 0
	for _, r := range rs {
		if r.StateAt(now) == store.Pending {
			n++
		}
	}
	if n >= s.maxPending {
		return refusef("you have %d pending requests (the limit is %d): wait for a decision, or withdraw one with `revoke ID`", n, s.maxPending)
	}
	return nil
}
