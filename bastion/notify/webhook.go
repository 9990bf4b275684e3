// Package notify tells approvers and requesters about access requests. The
// webhook posts one JSON document per event, with a Slack-compatible "text"
// field, retrying with backoff; a failing webhook never blocks the workflow.
// A burst of like events (one user filing request after request) is
// coalesced: the first is posted at once, the rest of the burst as one
// digest per coalescing window.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/store"
)

// queueSize bounds the notifications waiting for delivery; beyond it new
// ones are dropped (and logged) rather than blocking the workflow.
const queueSize = 1024

// maxResponse bounds how much of a webhook's response is read.
const maxResponse = 64 << 10

// DefaultCoalesce is the coalescing window where the config sets none.
const DefaultCoalesce = 10 * time.Second

// digestItems bounds the events a digest's text lists one by one; its
// Requests field holds them all.
const digestItems = 5

// defaultTimeout bounds one delivery attempt when the config sets no
// Timeout (a zero timeout would fail every attempt at once).
const defaultTimeout = 5 * time.Second

// Payload is the JSON document a webhook receives.
//
// A digest of a coalesced burst has Count > 1, no Request, and the burst's
// requests in Requests, oldest first.
type Payload struct {
	Text     string            `json:"text"`  // for Slack-compatible receivers
	Event    string            `json:"event"` // e.g. "request.create"
	Request  *RequestPayload   `json:"request,omitempty"`
	Count    int               `json:"count,omitempty"` // events in a digest
	Requests []*RequestPayload `json:"requests,omitempty"`
}

// RequestPayload describes the request an event is about.
type RequestPayload struct {
	ID        int64       `json:"id"`
	State     store.State `json:"state"`
	Requester string      `json:"requester"`
	Targets   []string    `json:"targets"`
	Logins    []string    `json:"logins,omitempty"`
	Reason    string      `json:"reason,omitempty"`
	Duration  string      `json:"duration"`
	Approvers []string    `json:"approvers,omitempty"`
	GrantEnd  *time.Time  `json:"grant_end,omitempty"`
}

// WebhookConfig configures a Webhook.
type WebhookConfig struct {
	URL      string
	Timeout  time.Duration // per attempt (default 5s)
	Attempts int           // at least 1
	Backoff  time.Duration // before the second attempt; doubles each time (default 1s)
	// Coalesce is the window in which like events (the same event about
	// the same requester's requests) after the first are posted as one
	// digest; default DefaultCoalesce, negative: never coalesce.
	Coalesce time.Duration
	Client   *http.Client // optional
	Logger   *slog.Logger // optional
	// Failed, if set, is called when a notification is given up on.
	Failed func(p Payload, err error)
}

// Webhook delivers notifications to one URL from a background goroutine.
type Webhook struct {
	cfg WebhookConfig

	mu     sync.RWMutex // held to send on queue, and to close it
	closed bool
	queue  chan Payload

	wg   sync.WaitGroup
	stop context.CancelFunc
	ctx  context.Context
}

var _ access.Notifier = (*Webhook)(nil)

// NewWebhook starts a Webhook; Close stops it.
func NewWebhook(cfg WebhookConfig) *Webhook {
	if cfg.Attempts < 1 {
		cfg.Attempts = 1
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Coalesce == 0 {
		cfg.Coalesce = DefaultCoalesce
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, stop := context.WithCancel(context.Background())
	w := &Webhook{cfg: cfg, queue: make(chan Payload, queueSize), ctx: ctx, stop: stop}
	w.wg.Add(1)
	go w.run()
	return w
}

// Notify queues n for delivery without blocking. After Close it drops n.
func (w *Webhook) Notify(n access.Notification) {
	p := Payload{Text: "Bastion: " + n.Text, Event: n.Event}
	if r := n.Request; r != nil {
		p.Request = &RequestPayload{ID: r.ID, State: r.State, Requester: r.Requester, Targets: r.Targets,
			Logins: r.Logins, Reason: r.Reason, Duration: r.Duration.String(), Approvers: r.Approvers}
		if !r.GrantEnd.IsZero() {
			end := r.GrantEnd.UTC()
			p.Request.GrantEnd = &end
		}
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed { // sending on the closed queue would panic
		w.cfg.Logger.Error("webhook closed: notification dropped", "event", p.Event)
		return
	}
	select {
	case w.queue <- p:
	default:
		w.cfg.Logger.Error("webhook queue full: notification dropped", "event", p.Event)
	}
}

// Close stops delivery after the queued notifications have been tried once
// more (bounded by ctx).
func (w *Webhook) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		w.stop()
		<-done
		return ctx.Err()
	}
}

// burst is what the delivery loop knows of one kind of event: when it was
// last posted, and the events held for the next digest.
type burst struct {
	sent time.Time
	held []Payload
}

// burstKey groups like events: the same event about the same requester.
func burstKey(p Payload) string {
	if p.Request == nil {
		return p.Event
	}
	return p.Event + "\x00" + p.Request.Requester
}

func (w *Webhook) run() {
	defer w.wg.Done()
	window := w.cfg.Coalesce
	bursts := map[string]*burst{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case p, ok := <-w.queue:
			if !ok { // closed: post what is held, then stop
				for _, b := range bursts {
					w.send(digest(b.held)...)
				}
				return
			}
			k, now := burstKey(p), time.Now()
			b := bursts[k]
			if window < 0 || b == nil || (len(b.held) == 0 && now.Sub(b.sent) >= window) {
				bursts[k] = &burst{sent: now}
				w.send(p)
				break
			}
			b.held = append(b.held, p)
		case <-timer.C:
		}
		w.flushDue(bursts, window, timer)
	}
}

// flushDue posts the digests whose window has passed, forgets the kinds
// of event quiet for a whole window, and sets timer for the next digest.
func (w *Webhook) flushDue(bursts map[string]*burst, window time.Duration, timer *time.Timer) {
	now := time.Now()
	var next time.Time
	for k, b := range bursts {
		due := b.sent.Add(window)
		switch {
		case len(b.held) == 0 && !now.Before(due):
			delete(bursts, k)
		case len(b.held) > 0 && !now.Before(due):
			w.send(digest(b.held)...)
			b.held, b.sent = nil, time.Now()
		case len(b.held) > 0 && (next.IsZero() || due.Before(next)):
			next = due
		}
	}
	if next.IsZero() {
		timer.Stop()
	} else {
		timer.Reset(time.Until(next))
	}
}

// digest is one payload for the held events of a burst (nil: none; one:
// itself).
func digest(held []Payload) []Payload {
	switch len(held) {
	case 0, 1:
		return held
	}
	d := Payload{Event: held[0].Event, Count: len(held)}
	var lines []string
	for i, p := range held {
		if p.Request != nil {
			d.Requests = append(d.Requests, p.Request)
		}
		if i < digestItems {
			lines = append(lines, "• "+strings.TrimPrefix(p.Text, "Bastion: "))
		}
	}
	if n := len(held) - digestItems; n > 0 {
		lines = append(lines, fmt.Sprintf("… and %d more", n))
	}
	d.Text = fmt.Sprintf("Bastion: %d more %s events:\n%s", len(held), held[0].Event, strings.Join(lines, "\n"))
	return []Payload{d}
}

// send delivers each of ps, reporting those given up on.
func (w *Webhook) send(ps ...Payload) {
	for _, p := range ps {
		if err := w.deliver(p); err != nil {
			w.cfg.Logger.Error("webhook delivery failed", "event", p.Event, "attempts", w.cfg.Attempts, "err", err)
			if w.cfg.Failed != nil {
				w.cfg.Failed(p, err)
			}
		}
	}
}

// deliver posts p, retrying with exponential backoff.
func (w *Webhook) deliver(p Payload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	backoff := w.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err = w.post(body)
		if err == nil || attempt == w.cfg.Attempts {
			return err
		}
		w.cfg.Logger.Warn("webhook attempt failed; retrying", "event", p.Event, "attempt", attempt, "in", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-w.ctx.Done():
			return fmt.Errorf("stopped before delivery: %w", err)
		}
		backoff *= 2
	}
}

func (w *Webhook) post(body []byte) error {
	ctx, cancel := context.WithTimeout(w.ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Bastion-Webhook/1")
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	snippet, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s: %q", resp.Status, truncate(snippet, 200))
	}
	if readErr != nil {
		return fmt.Errorf("read webhook response: %w", readErr)
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return strings.ToValidUTF8(string(b[:n]), "") + "…"
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
