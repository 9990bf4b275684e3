package notify

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
)

// capture is a webhook transport that keeps what is posted.
type capture struct {
	mu  sync.Mutex
	got []Payload
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	var p Payload
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.got = append(c.got, p)
	c.mu.Unlock()
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
}

func (c *capture) posted() []Payload {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Payload(nil), c.got...)
}

func noteBy(id int64, requester string) access.Notification {
	n := note(id)
	n.Request.Requester = requester
	return n
}

func ids(rs []*RequestPayload) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

// TestCoalesceBurst: a user filing request after request gives the
// approvers one notification at once and one digest of the rest, not one
// each; another user's request in the middle is posted on its own at once.
func TestCoalesceBurst(t *testing.T) {
	c := &capture{}
	w := NewWebhook(WebhookConfig{URL: "http://hook.test/", Client: &http.Client{Transport: c}, Coalesce: time.Hour, Logger: quiet})
	const n = 30
	for i := range n {
		w.Notify(noteBy(int64(i+1), "alice"))
		if i == 10 {
			w.Notify(noteBy(100, "bob"))
		}
	}
	closeWebhook(t, w) // posts what is held
	got := c.posted()
	if len(got) != 3 {
		t.Fatalf("%d posts for a burst of %d and one other, want 3: %+v", len(got), n, got)
	}
	if got[0].Request == nil || got[0].Request.ID != 1 || got[0].Count != 0 {
		t.Errorf("first post %+v, want request 1 on its own", got[0])
	}
	if got[1].Request == nil || got[1].Request.ID != 100 {
		t.Errorf("second post %+v, want bob's request 100 on its own", got[1])
	}
	d := got[2]
	if d.Count != n-1 || d.Request != nil || len(d.Requests) != n-1 || d.Requests[0].ID != 2 || d.Requests[n-2].ID != n {
		t.Errorf("digest: count %d, request %v, requests %v; want %d requests 2…%d", d.Count, d.Request, ids(d.Requests), n-1, n)
	}
	for _, want := range []string{"Bastion: 29 more request.create events:", "• request #2 by alice", "• request #6 by alice", "… and 24 more"} {
		if !strings.Contains(d.Text, want) {
			t.Errorf("digest text %q lacks %q", d.Text, want)
		}
	}
	if strings.Contains(d.Text, "request #7 ") {
		t.Errorf("digest text lists more than %d events: %q", digestItems, d.Text)
	}
}

// TestCoalesceWindow: the held events go out one window after the last
// post, without waiting for more; after a quiet window the next event is
// posted at once again.
func TestCoalesceWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 10 * time.Second
		c := &capture{}
		w := NewWebhook(WebhookConfig{URL: "http://hook.test/", Client: &http.Client{Transport: c}, Coalesce: window, Logger: quiet})
		defer closeWebhook(t, w)
		step := func(what string, want int) []Payload {
			t.Helper()
			synctest.Wait()
			got := c.posted()
			if len(got) != want {
				t.Fatalf("%s: %d posts, want %d: %+v", what, len(got), want, got)
			}
			return got
		}
		w.Notify(noteBy(1, "alice"))
		step("the first event", 1)
		w.Notify(noteBy(2, "alice"))
		w.Notify(noteBy(3, "alice"))
		step("two more within the window", 1)
		time.Sleep(window - time.Millisecond)
		step("just before the window ends", 1)
		time.Sleep(time.Millisecond)
		got := step("once the window ends", 2)
		if d := got[1]; d.Count != 2 || len(d.Requests) != 2 || d.Requests[0].ID != 2 || d.Requests[1].ID != 3 {
			t.Errorf("digest %+v, want requests 2 and 3", d)
		}
		time.Sleep(window) // a quiet window
		w.Notify(noteBy(4, "alice"))
		got = step("after a quiet window", 3)
		if got[2].Request == nil || got[2].Request.ID != 4 || got[2].Count != 0 {
			t.Errorf("post %+v, want request 4 on its own", got[2])
		}
	})
}
