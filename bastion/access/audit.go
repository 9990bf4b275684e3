package access

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
)

// How audit events reach the store: see "Audit failures" in the package
// documentation.

// DefaultAuditBacklog is how many events Record keeps in memory while the
// store cannot take them, when Config.AuditBacklog is 0.
const DefaultAuditBacklog = 10000

const (
	// auditRetryMin is the first wait before the kept events are appended
	// again; it doubles after every failed attempt up to auditRetryMax.
	auditRetryMin = 100 * time.Millisecond
	// auditRetryMax caps the wait between attempts: how long events may
	// wait after the store has recovered.
	auditRetryMax = 10 * time.Second
	// auditFlushTimeout bounds the last attempt Run makes when it stops.
	auditFlushTimeout = 5 * time.Second
)

// ErrNotAudited is wrapped by Audit's error: the event could not be made
// durable, so the action it describes must not happen.
var ErrNotAudited = errors.New("the action could not be audited")

// auditBacklog holds the events Record could not append, oldest first.
type auditBacklog struct {
	max  int
	wake chan struct{} // a new event is kept; buffered, 1

	flushMu sync.Mutex // held by whoever appends from the backlog

	mu       sync.Mutex
	events   []audit.Event
	dropped  uint64 // events dropped since the start
	reported uint64 // of those, how many an audit.dropped event has reported
}

// Audit appends an event whose action must not happen unaudited (a session
// start, for one): it returns an error wrapping ErrNotAudited when the event
// could not be made durable, and the caller then refuses the action (and
// may Record the refusal). Nothing is kept for retry: the event describes
// something that did not happen.
func (s *Service) Audit(ctx context.Context, a Actor, e audit.Event) error {
	e = s.fill(a, e)
	if _, err := s.store.AppendAudit(ctx, e); err != nil {
		s.log.Error("audit append failed; the action is refused", "type", e.Type, "actor", e.Actor, "request", e.RequestID, "err", err)
		return fmt.Errorf("access: %w: %s: %w", ErrNotAudited, e.Type, err)
	}
	return nil
}

// Record appends an audit event on behalf of the actor about something that
// has happened (or been refused): the way other parts of Bastion (logins,
// commands, session ends) add to the same chain. It does not fail: an event
// the store cannot take now is kept, with its time, and appended in order
// once the store recovers (see "Audit failures" in the package
// documentation).
func (s *Service) Record(ctx context.Context, a Actor, e audit.Event) {
	s.emit(ctx, a, e)
}

// PendingAudit reports the events Record is keeping until the store takes
// them, and how many it has dropped since the start because too many were
// kept. Readiness and status report both.
func (s *Service) PendingAudit() (pending int, dropped uint64) {
	s.backlog.mu.Lock()
	defer s.backlog.mu.Unlock()
	return len(s.backlog.events), s.backlog.dropped
}

// fill completes an event with what the service knows: the time, the actor
// and their address, and an ok outcome.
func (s *Service) fill(a Actor, e audit.Event) audit.Event {
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if e.Actor == "" {
		e.Actor = a.User
	}
	if e.Source == "" {
		e.Source = sourceString(a.Source)
	}
	if e.Outcome == "" {
		e.Outcome = audit.OutcomeOK
	}
	return e
}

// emit appends an audit event, or keeps it for the retry loop. While events
// are kept, new ones queue behind them, so the chain keeps their order.
func (s *Service) emit(ctx context.Context, a Actor, e audit.Event) {
	e = s.fill(a, e)
	if s.keepBehind(e) {
		return
	}
	if _, err := s.store.AppendAudit(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("audit append failed; the event is kept and retried", "type", e.Type, "actor", e.Actor, "request", e.RequestID, "err", err)
		s.keep(e)
	}
}

// keepBehind keeps e if events are already kept, and reports whether it did.
func (s *Service) keepBehind(e audit.Event) bool {
	b := &s.backlog
	b.mu.Lock()
	waiting := len(b.events) > 0
	b.mu.Unlock()
	if waiting {
		s.keep(e)
	}
	return waiting
}

// keep adds e to the backlog, or drops it (counted) when the backlog is
// full, and wakes the retry loop.
func (s *Service) keep(e audit.Event) {
	b := &s.backlog
	b.mu.Lock()
	full := len(b.events) >= b.max
	if full {
		b.dropped++
	} else {
		b.events = append(b.events, e)
	}
	dropped := b.dropped
	b.mu.Unlock()
	// Log the 1st, 2nd, 4th, 8th… drop: a long outage does not flood the log.
	if full && dropped&(dropped-1) == 0 {
		s.log.Error("audit backlog full: events dropped", "dropped", dropped, "kept", b.max, "type", e.Type)
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// FlushAudit appends the kept events in order until none is left or one
// fails, and then, if events were dropped, an audit.dropped event saying how
// many. It returns an error if events are still kept.
func (s *Service) FlushAudit(ctx context.Context) error {
	b := &s.backlog
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	for {
		b.mu.Lock()
		if len(b.events) == 0 {
			lost := b.dropped - b.reported
			b.mu.Unlock()
			return s.reportDropped(ctx, lost)
		}
		e := b.events[0]
		n := len(b.events)
		b.mu.Unlock()
		if _, err := s.store.AppendAudit(ctx, e); err != nil {
			return fmt.Errorf("access: %d audit events not yet stored: %w", n, err)
		}
		b.mu.Lock()
		b.events[0] = audit.Event{}
		b.events = b.events[1:]
		if len(b.events) == 0 {
			b.events = nil // let the backing array go
		}
		b.mu.Unlock()
	}
}

// reportDropped appends an audit.dropped event for lost events, once.
func (s *Service) reportDropped(ctx context.Context, lost uint64) error {
	if lost == 0 {
		return nil
	}
	e := s.fill(Actor{User: "bastion"}, audit.Event{Type: audit.AuditDropped, Outcome: audit.OutcomeError,
		Reason:  fmt.Sprintf("%d audit events were dropped: the store could not take them and %d were already waiting", lost, s.backlog.max),
		Details: map[string]string{"dropped": fmt.Sprint(lost)}})
	if _, err := s.store.AppendAudit(ctx, e); err != nil {
		return fmt.Errorf("access: report %d dropped audit events: %w", lost, err)
	}
	s.backlog.mu.Lock()
	s.backlog.reported += lost
	s.backlog.mu.Unlock()
	return nil
}

// retryAudit appends kept events whenever there are some, waiting longer
// after each failed attempt, until ctx ends.
func (s *Service) retryAudit(ctx context.Context) {
	wait := auditRetryMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.backlog.wake:
		}
		for {
			err := s.FlushAudit(ctx)
			if err == nil {
				wait = auditRetryMin
				break
			}
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("audit events still not stored; retrying", "in", wait, "err", err)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, auditRetryMax)
		}
	}
}

// flushAtStop is the last attempt to store the kept events when Run stops.
func (s *Service) flushAtStop() {
	ctx, cancel := context.WithTimeout(context.Background(), auditFlushTimeout)
	defer cancel()
	if err := s.FlushAudit(ctx); err != nil {
		pending, dropped := s.PendingAudit()
		s.log.Error("audit events lost at stop: the store did not take them", "pending", pending, "dropped", dropped, "err", err)
	}
}
