// Package notify tells approvers and requesters about access requests. The
// webhook posts one JSON document per event, with a Slack-compatible "text"
// field, retrying with backoff; a failing webhook never blocks the workflow.
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

// defaultTimeout bounds one delivery attempt when the config sets no
// Timeout (a zero timeout would fail every attempt at once).
const defaultTimeout = 5 * time.Second

// Payload is the JSON document a webhook receives.
type Payload struct {
	Text    string          `json:"text"`  // one line, for Slack-compatible receivers
	Event   string          `json:"event"` // e.g. "request.create"
	Request *RequestPayload `json:"request,omitempty"`
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
	Client   *http.Client  // optional
	Logger   *slog.Logger  // optional
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

func (w *Webhook) run() {
	defer w.wg.Done()
	for p := range w.queue {
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
