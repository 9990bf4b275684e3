package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
)

// bound is how long a test waits for something that should happen at once
// (or after a few 10ms backoffs) before it fails. It is only ever reached
// when the code under test is broken.
const bound = 5 * time.Second

// backoff keeps the retry tests fast.
const backoff = 10 * time.Millisecond

// received is one request a test server got.
type received struct {
	method, contentType, userAgent string
	body                           map[string]any
	at                             time.Time
}

// logCounter is a slog.Handler counting messages, to see what Notify logs.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
}

func newLogCounter() *logCounter { return &logCounter{msgs: map[string]int{}} }

func (c *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logCounter) WithGroup(string) slog.Handler            { return c }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs[r.Message]++
	return nil
}

func (c *logCounter) count(msg string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs[msg]
}

var quiet = slog.New(slog.DiscardHandler)

// recvServer is a webhook receiver that reports each request on the
// returned channel, then answers with status.
func recvServer(t *testing.T, status func(n int) (int, string)) (*httptest.Server, <-chan received) {
	t.Helper()
	got := make(chan received, 64)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := received{method: r.Method, contentType: r.Header.Get("Content-Type"), userAgent: r.UserAgent(), at: time.Now()}
		if err := json.NewDecoder(r.Body).Decode(&rec.body); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		got <- rec // before answering: the sender sees it once it has the answer
		code, body := status(int(n.Add(1)))
		w.WriteHeader(code)
		if _, err := io.WriteString(w, body); err != nil {
			t.Errorf("answer webhook: %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func ok(int) (int, string) { return http.StatusOK, "ok" }

// hangingServer is a webhook that never answers (until the test ends).
func hangingServer(t *testing.T) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return srv
}

// failures collects what Failed is called with.
type failures chan failure

type failure struct {
	p   Payload
	err error
}

func (f failures) record(p Payload, err error) { f <- failure{p, err} }

func next[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(bound):
		t.Fatalf("no %s within %v", what, bound)
		panic("unreachable")
	}
}

func closeWebhook(t *testing.T, w *Webhook) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func note(id int64) access.Notification {
	r := &store.Request{
		ID: id, State: store.Pending, Requester: "alice", Targets: []string{"web01"}, Logins: []string{"root"},
		Reason: "INC-123 disk full", Duration: time.Hour, Approvers: []string{"sre"},
	}
	return access.Notification{Event: audit.RequestCreate, Text: access.Describe(audit.RequestCreate, r), Request: r}
}

func TestPayload(t *testing.T) {
	grantEnd := time.Date(2031, 3, 4, 12, 30, 0, 0, time.FixedZone("CET", 3600))
	granted := &store.Request{
		ID: 42, State: store.Approved, Requester: "alice", Targets: []string{"web01", "web02"}, Logins: []string{"root"},
		Duration: 90 * time.Minute, Approvers: []string{"sre"}, DecidedBy: "bob", GrantEnd: grantEnd,
	}
	tests := []struct {
		name string
		n    access.Notification
		want string // the request, as JSON
	}{
		{
			name: "pending request",
			n:    note(7),
			want: `{"id":7,"state":"pending","requester":"alice","targets":["web01"],"logins":["root"],
				"reason":"INC-123 disk full","duration":"1h0m0s","approvers":["sre"]}`,
		},
		{
			name: "granted request, end in UTC",
			n:    access.Notification{Event: audit.RequestGrant, Text: access.Describe(audit.RequestGrant, granted), Request: granted},
			want: `{"id":42,"state":"approved","requester":"alice","targets":["web01","web02"],"logins":["root"],
				"duration":"1h30m0s","approvers":["sre"],"grant_end":"2031-03-04T11:30:00Z"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := recvServer(t, ok)
			w := NewWebhook(WebhookConfig{URL: srv.URL, Timeout: bound, Logger: quiet})
			defer closeWebhook(t, w)
			w.Notify(tt.n)
			rec := next(t, got, "delivery")

			if rec.method != http.MethodPost || rec.contentType != "application/json" || rec.userAgent != "Bastion-Webhook/1" {
				t.Errorf("%s with Content-Type %q, User-Agent %q", rec.method, rec.contentType, rec.userAgent)
			}
			if rec.body["text"] != "Bastion: "+tt.n.Text {
				t.Errorf("text = %q, want %q", rec.body["text"], "Bastion: "+tt.n.Text)
			}
			if !strings.Contains(fmt.Sprint(rec.body["text"]), "#"+itoa(tt.n.Request.ID)) {
				t.Errorf("text %q does not name the request", rec.body["text"])
			}
			if rec.body["event"] != tt.n.Event {
				t.Errorf("event = %v, want %s", rec.body["event"], tt.n.Event)
			}
			var want any
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			gotReq, _ := json.Marshal(rec.body["request"])
			wantReq, _ := json.Marshal(want)
			if string(gotReq) != string(wantReq) {
				t.Errorf("request =\n %s\nwant\n %s", gotReq, wantReq)
			}
		})
	}

	t.Run("no request", func(t *testing.T) {
		srv, got := recvServer(t, ok)
		w := NewWebhook(WebhookConfig{URL: srv.URL, Timeout: bound, Logger: quiet})
		defer closeWebhook(t, w)
		w.Notify(access.Notification{Event: "test", Text: "hello"})
		rec := next(t, got, "delivery")
		if _, has := rec.body["request"]; has || rec.body["text"] != "Bastion: hello" {
			t.Errorf("body = %v", rec.body)
		}
	})
}

func TestRetry(t *testing.T) {
	srv, got := recvServer(t, func(n int) (int, string) {
		if n <= 2 {
			return http.StatusInternalServerError, "try later"
		}
		return http.StatusOK, "ok"
	})
	failed := make(failures, 1)
	w := NewWebhook(WebhookConfig{URL: srv.URL, Timeout: bound, Attempts: 5, Backoff: backoff, Logger: quiet, Failed: failed.record})
	w.Notify(note(1))
	var attempts []received
	for range 3 {
		attempts = append(attempts, next(t, got, "attempt"))
	}
	closeWebhook(t, w) // after the third attempt succeeded: no more

	if n := len(got); n != 0 {
		t.Errorf("%d attempts after the successful third", n)
	}
	if len(failed) != 0 {
		t.Errorf("Failed called for a delivered notification: %v", (<-failed).err)
	}
	// The backoff doubles: at least 10ms before the second attempt, 20ms
	// before the third.
	for i, min := range []time.Duration{backoff, 2 * backoff} {
		if gap := attempts[i+1].at.Sub(attempts[i].at); gap < min {
			t.Errorf("attempt %d came %v after the one before, want at least %v", i+2, gap, min)
		}
	}
	for _, a := range attempts {
		if a.body["event"] != audit.RequestCreate {
			t.Errorf("attempt with body %v", a.body)
		}
	}
}

func TestGiveUp(t *testing.T) {
	garbage := "<html><body>" + strings.Repeat("upstream exploded ", 100) + "</body></html>"
	srv, got := recvServer(t, func(int) (int, string) { return http.StatusBadGateway, garbage })
	failed := make(failures, 2)
	w := NewWebhook(WebhookConfig{URL: srv.URL, Timeout: bound, Attempts: 3, Backoff: backoff, Logger: quiet, Failed: failed.record})
	w.Notify(note(9))

	f := next(t, failed, "Failed call")
	closeWebhook(t, w)
	if n := len(got); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	if len(failed) != 0 {
		t.Error("Failed called more than once")
	}
	if f.p.Event != audit.RequestCreate || f.p.Request == nil || f.p.Request.ID != 9 {
		t.Errorf("Failed with payload %+v", f.p)
	}
	msg := f.err.Error()
	for _, want := range []string{"502 Bad Gateway", "<html><body>upstream exploded upstream exploded", "…"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if len(msg) > 400 || strings.Contains(msg, "</html>") {
		t.Errorf("error quotes the whole body (%d bytes): %q", len(msg), msg)
	}
}

func TestTimeout(t *testing.T) {
	srv := hangingServer(t)
	failed := make(failures, 1)
	w := NewWebhook(WebhookConfig{URL: srv.URL, Timeout: 50 * time.Millisecond, Attempts: 2, Backoff: backoff, Logger: quiet, Failed: failed.record})
	start := time.Now()
	w.Notify(note(3))
	f := next(t, failed, "Failed call") // within bound, although the server never answers
	if !errors.Is(f.err, context.DeadlineExceeded) {
		t.Errorf("Failed with %v, want a deadline exceeded", f.err)
	}
	if elapsed := time.Since(start); elapsed < 100*time.Millisecond {
		t.Errorf("gave up after %v, before two 50ms attempts could time out", elapsed)
	}
	closeWebhook(t, w)
}

func TestNotifyNeverBlocks(t *testing.T) {
	// Three times what the queue holds, while the webhook hangs.
	const n = 3 * queueSize
	silent := func(t *testing.T) string {
		l, err := net.Listen("tcp", "127.0.0.1:0") // connections are queued, never accepted
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return "http://" + l.Addr().String() + "/hook"
	}
	tests := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"server never answers", func(t *testing.T) string { return hangingServer(t).URL }},
		{"listener never accepts", silent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := newLogCounter()
			var failedN atomic.Int32
			w := NewWebhook(WebhookConfig{
				URL: tt.url(t), Timeout: time.Minute, Attempts: 3, Backoff: time.Minute, Coalesce: -1, Logger: slog.New(logs),
				Failed: func(Payload, error) { failedN.Add(1) },
			})

			start := time.Now()
			for i := range n {
				w.Notify(note(int64(i + 1)))
			}
			if elapsed := time.Since(start); elapsed > bound/5 {
				t.Errorf("%d notifications took %v to queue", n, elapsed)
			}
			// One may be in delivery, queueSize wait, the rest are dropped.
			dropped := logs.count("webhook queue full: notification dropped")
			if dropped < n-queueSize-1 || dropped > n-queueSize {
				t.Errorf("%d notifications dropped, want %d or %d", dropped, n-queueSize-1, n-queueSize)
			}

			// Close gives up at its deadline and reports what was not delivered.
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if err := w.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Close = %v, want a deadline exceeded", err)
			}
			if got := int(failedN.Load()); got != n-dropped {
				t.Errorf("Failed called %d times, want %d (every accepted notification)", got, n-dropped)
			}
		})
	}
}

func TestCloseDrains(t *testing.T) {
	const n = 20
	gate := make(chan struct{})
	var mu sync.Mutex
	var ids []int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-gate
		var p Payload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || p.Request == nil {
			t.Errorf("body: %+v, %v", p, err)
			return
		}
		mu.Lock()
		ids = append(ids, p.Request.ID)
		mu.Unlock()
	}))
	defer srv.Close()
	failed := make(failures, n)
	w := NewWebhook(WebhookConfig{URL: srv.URL, Timeout: bound, Coalesce: -1, Logger: quiet, Failed: failed.record})
	for i := range n {
		w.Notify(note(int64(i + 1)))
	}

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		closed <- w.Close(ctx)
	}()
	close(gate)
	if err := next(t, closed, "Close"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ids) != n || len(failed) != 0 {
		t.Fatalf("delivered %v (%d failed), want all %d in order", ids, len(failed), n)
	}
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("delivered %v, want 1…%d in order", ids, n)
		}
	}
}

func TestNotifyAfterClose(t *testing.T) {
	srv, got := recvServer(t, ok)
	logs := newLogCounter()
	w := NewWebhook(WebhookConfig{URL: srv.URL, Timeout: bound, Logger: slog.New(logs)})
	closeWebhook(t, w)

	// The workflow may still be finishing a request while Bastion shuts
	// down: a late notification is dropped, not a panic.
	w.Notify(note(1))
	if logs.count("webhook closed: notification dropped") != 1 {
		t.Error("late notification not logged as dropped")
	}
	closeWebhook(t, w) // twice is fine
	if len(got) != 0 {
		t.Error("delivered after Close")
	}
}

func TestNotifyDuringClose(t *testing.T) {
	srv, _ := recvServer(t, ok)
	w := NewWebhook(WebhookConfig{URL: srv.URL, Timeout: bound, Logger: quiet})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 50 {
				w.Notify(note(int64(i*100 + j)))
			}
		})
	}
	closeWebhook(t, w)
	wg.Wait()
}

func TestDefaultTimeout(t *testing.T) {
	// A config without a Timeout must still deliver (a zero per-attempt
	// timeout would fail every attempt at once).
	srv, got := recvServer(t, ok)
	failed := make(failures, 1)
	w := NewWebhook(WebhookConfig{URL: srv.URL, Logger: quiet, Failed: failed.record})
	w.Notify(note(5))
	closeWebhook(t, w)
	if len(got) != 1 || len(failed) != 0 {
		f := failure{}
		if len(failed) > 0 {
			f = <-failed
		}
		t.Errorf("%d deliveries, failure: %v", len(got), f.err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
