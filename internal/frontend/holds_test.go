package frontend

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/policy"
)

// changes is a change source like access.Service.Changed.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
}

func (c *changes) changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch
}

func (c *changes) change() {
	c.mu.Lock()
	close(c.ch)
	c.ch = make(chan struct{})
	c.mu.Unlock()
}

// Holds answers from the last check while nothing changed and the check is
// recent; a change (a revocation here) or age makes it check again, and a
// grant that no longer holds is refused at once and its connections ended.
func TestWatcherHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ck := &checker{calls: map[int64]int{}}
		src := &changes{ch: make(chan struct{})}
		w := NewWatcher(ck, nil)
		w.FollowChanges(src.changed)
		g := &access.Grant{User: "alice", Target: "web01", RequestID: 7, Ends: time.Now().Add(time.Hour)}
		ended := make(chan string, 1)
		stop := w.Watch(g, func(m string) { ended <- m })
		defer stop()
		ctx := context.Background()

		if msg, end := w.Holds(ctx, g); msg != "" || end != nil {
			t.Fatalf("Holds = %q for a live grant", msg)
		}
		for range 100 {
			w.Holds(ctx, g)
		}
		if n := ck.calls[7]; n != 1 {
			t.Fatalf("101 channel opens with nothing changed checked the grant %d times; want once", n)
		}
		time.Sleep(GrantCheckInterval / 2)
		w.Holds(ctx, g) // the pass has not run yet: still the cached answer
		if n := ck.calls[7]; n != 1 {
			t.Fatalf("checked %d times within the interval; want once", n)
		}

		// A revocation: the very next open checks, without waiting for a pass.
		ck.set(&policy.Refusal{Reason: "request 7 was revoked by carol"})
		src.change()
		want := "your access to web01 ended: request 7 was revoked by carol"
		msg, end := w.Holds(ctx, g)
		if msg != want || end == nil {
			t.Fatalf("Holds after the revocation = %q; want %q and an end", msg, want)
		}
		synctest.Wait()
		select {
		case m := <-ended:
			t.Fatalf("the connection was told %q before the caller refused and called end", m)
		default:
		}
		end()
		synctest.Wait()
		select {
		case m := <-ended:
			if m != want {
				t.Fatalf("the connection was told %q", m)
			}
		default:
			t.Fatal("the grant's connections were not ended")
		}
	})
}

// Without a change source every open checks: nothing could say the cached
// answer is still right.
func TestWatcherHoldsWithoutChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ck := &checker{calls: map[int64]int{}}
		w := NewWatcher(ck, nil)
		g := &access.Grant{User: "alice", Target: "web01", RequestID: 7}
		stop := w.Watch(g, func(string) {})
		defer stop()
		for range 3 {
			w.Holds(context.Background(), g)
		}
		if n := ck.calls[7]; n != 3 {
			t.Fatalf("checked %d times; want 3", n)
		}
	})
}
