// Package access is Bastion's just-in-time access workflow: users request
// targets, approvers approve or deny, requesters fetch short-lived
// certificates, and grants end by expiry or revocation. It combines the
// policy (who may), the store (what happened) and the user CA, and it is the
// one place that emits the workflow's audit events and notifications.
//
// # Audit failures
//
// Every audit event reaches the store through this package, by one of two
// paths, chosen by whether the action it describes has already happened:
//
//   - An action that must not happen unaudited is audited first, and does
//     not happen if its event cannot be stored (fail closed). A request is
//     created together with its request.create event (and request.grant when
//     the policy approves it at once) in one store transaction: if the event
//     cannot be stored, neither is the request. A front end audits a session
//     start with Audit before the session reaches its target; Audit returns
//     an error wrapping ErrNotAudited, and the front end refuses the session.
//   - An event about what has already happened (a session's end, a refusal,
//     an approval the store has recorded) is given to Record, which never
//     fails and never loses it silently: an event the store cannot take now
//     is kept in memory, with its own time, and a loop started by Run
//     appends the kept events in order, waiting from 100 ms doubling up to
//     10 s between attempts; new events queue behind them. When Run stops it
//     tries once more. At most Config.AuditBacklog events are kept (10,000
//     by default); beyond that, events are dropped and counted, the count
//     is logged, and once the store recovers an audit.dropped event records
//     how many were lost. PendingAudit reports both numbers, for readiness
//     and status.
//
// Events that were kept are appended after those the store took meanwhile,
// so the chain's order is the order of storing; each keeps its own time.
package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/ca"
)

// ClockSkew is how far back certificates' validity starts, so that a client
// or server whose clock is slightly behind still accepts them.
const ClockSkew = time.Minute

// SweepInterval is how often expired requests are recorded as expired.
const SweepInterval = 5 * time.Second

// waitPoll is how often Wait re-reads the store, so that a decision made on
// another replica is seen without a notification.
const waitPoll = time.Second

// CertSigner signs and recognises user certificates: the user CA.
type CertSigner interface {
	SignUser(req ca.UserCertRequest) (*ssh.Certificate, error)
	IsAuthority(key ssh.PublicKey) bool
}

// Notifier is told about workflow events. It must not block.
type Notifier interface {
	Notify(n Notification)
}

// Notification is a workflow event approvers or requesters care about.
type Notification struct {
	Event   string // an audit event type, e.g. audit.RequestCreate
	Text    string // one human-readable line
	Request *store.Request
}

// Actor is who performs an action and from where.
type Actor struct {
	User   string
	Source netip.Addr
	Key    ssh.PublicKey // the key the user authenticated with, if any
}

// Config holds a Service's dependencies.
type Config struct {
	Store    store.Store
	Policy   func() *policy.Policy // the current policy
	UserCA   CertSigner
	Notifier Notifier         // optional
	Now      func() time.Time // optional; time.Now
	Logger   *slog.Logger     // optional
	// AuditBacklog is how many audit events Record keeps in memory while
	// the store cannot take them; 0 means DefaultAuditBacklog.
	AuditBacklog int
	// MaxPending caps a user's pending requests; 0 means
	// DefaultMaxPending.
	MaxPending int
	// Keys, when set, is asked whether a live grant's key is still its
	// user's (CheckGrant); nil: keys are not re-checked.
	Keys KeyOwners
}

// Service runs the access workflow.
type Service struct {
	store  store.Store
	policy func() *policy.Policy
	userCA CertSigner
	notify Notifier
	now    func() time.Time
	log    *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever a request changes here

	backlog    auditBacklog
	maxPending int
	keys       KeyOwners
}

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{
		store: cfg.Store, policy: cfg.Policy, userCA: cfg.UserCA, notify: cfg.Notifier,
		now: cfg.Now, log: cfg.Logger, changed: make(chan struct{}),
		backlog:    auditBacklog{max: cfg.AuditBacklog, wake: make(chan struct{}, 1)},
		maxPending: cfg.MaxPending, keys: cfg.Keys,
	}
	if s.maxPending <= 0 {
		s.maxPending = DefaultMaxPending
	}
	if s.backlog.max <= 0 {
		s.backlog.max = DefaultAuditBacklog
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s
}

// ErrNotFound is returned for requests that do not exist or that the actor
// may not see (the two are not told apart).
var ErrNotFound = errors.New("no such request")

func refusef(format string, args ...any) error {
	return &policy.Refusal{Reason: fmt.Sprintf(format, args...)}
}

// RequestInput is a new access request.
type RequestInput struct {
	Targets  []string
	Logins   []string
	Duration time.Duration
	Reason   string
}

// Request creates an access request, approved at once when the policy
// auto-approves it.
func (s *Service) Request(ctx context.Context, a Actor, in RequestInput) (*store.Request, error) {
	now := s.now()
	env := policy.Env{Now: now, Source: a.Source}
	plan, err := s.policy().PlanRequest(policy.RequestInput{
		User: a.User, Targets: in.Targets, Logins: in.Logins, Duration: in.Duration, Reason: in.Reason,
	}, env)
	if err == nil && !plan.AutoApproved {
		err = s.pendingRoom(ctx, a.User, now)
	}
	if err != nil {
		s.refused(ctx, a, audit.RequestCreate, 0, strings.Join(in.Targets, ","), err)
		return nil, err
	}
	r := &store.Request{
		Requester: a.User, Role: plan.Role, Targets: in.Targets, Logins: plan.Logins,
		Reason: in.Reason, Duration: in.Duration, Source: sourceString(a.Source),
		State: store.Pending, CreatedAt: now, PendingUntil: now.Add(plan.PendingTTL),
		ApprovalsRequired: plan.Approvals, Approvers: plan.Approvers,
	}
	if plan.AutoApproved {
		r.State = store.Approved
		r.DecidedAt, r.DecidedBy, r.DecisionReason = now, "policy", "auto-approved by role "+plan.Role
		r.GrantStart, r.GrantEnd = now, now.Add(in.Duration)
	}
	// The request and its events are stored together, or neither is: a
	// request whose creation cannot be audited is not created. The store
	// sets the events' RequestID.
	events := []audit.Event{s.fill(a, audit.Event{Type: audit.RequestCreate, Subject: a.User,
		Target: strings.Join(r.Targets, ","), Reason: r.Reason,
		Details: map[string]string{"logins": strings.Join(r.Logins, ","), "duration": r.Duration.String(), "role": r.Role}})}
	if plan.AutoApproved {
		events = append(events, s.fill(a, audit.Event{Type: audit.RequestGrant, Actor: "policy", Subject: a.User,
			Target: strings.Join(r.Targets, ","), Reason: r.DecisionReason,
			Details: map[string]string{"grant_end": r.GrantEnd.UTC().Format(time.RFC3339)}}))
	}
	if _, err := s.store.CreateRequest(ctx, r, events...); err != nil {
		err = fmt.Errorf("access: create request: %w", err)
		s.refused(ctx, a, audit.RequestCreate, 0, strings.Join(in.Targets, ","), err)
		return nil, err
	}
	s.notifyRequest(audit.RequestCreate, r)
	if plan.AutoApproved {
		s.notifyRequest(audit.RequestGrant, r)
	}
	s.changedNow()
	return r, nil
}

// Get returns a request the actor may see.
func (s *Service) Get(ctx context.Context, a Actor, id int64) (*store.Request, error) {
	r, err := s.store.Request(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !s.visible(a.User, r)) {
		return nil, fmt.Errorf("request %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("access: get request %d: %w", id, err)
	}
	r.State = r.StateAt(s.now())
	return r, nil
}

// visible reports whether user may see r: their own, one they may approve,
// or any with the audit permission.
func (s *Service) visible(user string, r *store.Request) bool {
	p := s.policy()
	return r.Requester == user || p.HasRole(user, r.Approvers) || p.Has(user, policy.PermAudit)
}

// List returns the requests the actor may see, newest first, with their
// current state (so expired requests show as expired before the sweep).
func (s *Service) List(ctx context.Context, a Actor, f store.RequestFilter) ([]*store.Request, error) {
	want := f.States
	f.States = nil // filter on the effective state below
	limit := f.Limit
	f.Limit = 0
	all, err := s.store.Requests(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("access: list requests: %w", err)
	}
	now := s.now()
	var out []*store.Request
	for _, r := range all {
		r.State = r.StateAt(now)
		if s.visible(a.User, r) && (len(want) == 0 || slices.Contains(want, r.State)) {
			out = append(out, r)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// Approve records the actor's approval; the request is granted when it has
// enough approvals.
func (s *Service) Approve(ctx context.Context, a Actor, id int64, comment string) (*store.Request, error) {
	if _, err := s.decidable(ctx, a, id, audit.RequestApprove); err != nil {
		return nil, err
	}
	r, err := s.store.Approve(ctx, id, store.Approval{Approver: a.User, Comment: comment, At: s.now()})
	if err != nil {
		err = s.storeRefusal(id, err, "you have already approved request %d", id)
		s.refused(ctx, a, audit.RequestApprove, id, "", err)
		return nil, err
	}
	s.emit(ctx, a, audit.Event{Type: audit.RequestApprove, Subject: r.Requester, RequestID: id,
		Target: strings.Join(r.Targets, ","), Reason: comment,
		Details: map[string]string{"approvals": fmt.Sprintf("%d/%d", len(r.Approvals), r.ApprovalsRequired)}})
	if r.State == store.Approved {
		s.emit(ctx, a, audit.Event{Type: audit.RequestGrant, Subject: r.Requester, RequestID: id,
			Target: strings.Join(r.Targets, ","), Details: map[string]string{"grant_end": r.GrantEnd.UTC().Format(time.RFC3339)}})
		s.notifyRequest(audit.RequestGrant, r)
	}
	s.changedNow()
	return r, nil
}

// Deny refuses a pending request.
func (s *Service) Deny(ctx context.Context, a Actor, id int64, reason string) (*store.Request, error) {
	if _, err := s.decidable(ctx, a, id, audit.RequestDeny); err != nil {
		return nil, err
	}
	return s.transition(ctx, a, id, audit.RequestDeny, store.Transition{
		From: []store.State{store.Pending}, To: store.Denied, By: a.User, Reason: reason, At: s.now(),
	})
}

// decidable loads a request the actor may approve or deny now.
func (s *Service) decidable(ctx context.Context, a Actor, id int64, action string) (*store.Request, error) {
	r, err := s.Get(ctx, a, id)
	if err == nil {
		err = s.policy().CheckApprove(a.User, r.Requester, r.Approvers)
	}
	if err == nil && r.State != store.Pending {
		err = refusef("request %d is %s", id, r.State)
	}
	if err != nil {
		s.refused(ctx, a, action, id, "", err)
		return nil, err
	}
	return r, nil
}

// Revoke ends a request early. The requester may withdraw a pending request
// or release an approved grant; an approver may revoke an approved grant.
func (s *Service) Revoke(ctx context.Context, a Actor, id int64, reason string) (*store.Request, error) {
	r, err := s.Get(ctx, a, id)
	t := store.Transition{By: a.User, Reason: reason, At: s.now()}
	action := audit.RequestRevoke
	switch {
	case err != nil:
	case r.Requester == a.User && r.State == store.Pending:
		t.From, t.To, action = []store.State{store.Pending}, store.Cancelled, audit.RequestCancel
	case r.Requester == a.User && r.State == store.Approved:
		t.From, t.To = []store.State{store.Approved}, store.Revoked
	case r.Requester == a.User:
		err = refusef("request %d is %s", id, r.State)
	default:
		err = s.policy().CheckApprove(a.User, r.Requester, r.Approvers)
		if err == nil && r.State != store.Approved {
			err = refusef("request %d is %s; only approved requests can be revoked (deny pending ones)", id, r.State)
		}
		t.From, t.To = []store.State{store.Approved}, store.Revoked
	}
	if err != nil {
		s.refused(ctx, a, action, id, "", err)
		return nil, err
	}
	return s.transition(ctx, a, id, action, t)
}

func (s *Service) transition(ctx context.Context, a Actor, id int64, action string, t store.Transition) (*store.Request, error) {
	r, err := s.store.Transition(ctx, id, t)
	if err != nil {
		err = s.storeRefusal(id, err, "")
		s.refused(ctx, a, action, id, "", err)
		return nil, err
	}
	s.emit(ctx, a, audit.Event{Type: action, Subject: r.Requester, RequestID: id,
		Target: strings.Join(r.Targets, ","), Reason: t.Reason})
	s.notifyRequest(action, r)
	s.changedNow()
	return r, nil
}

// storeRefusal turns the store's conflict errors into refusals the user
// understands; other errors pass through.
func (s *Service) storeRefusal(id int64, err error, duplicate string, args ...any) error {
	var ce *store.ConflictError
	switch {
	case errors.As(err, &ce):
		state := ce.State
		if state == store.Pending { // pending in the store, but past PendingUntil
			state = store.Expired
		}
		return refusef("request %d is %s", id, state)
	case errors.Is(err, store.ErrConflict):
		return refusef("request %d was decided meanwhile", id)
	case errors.Is(err, store.ErrDuplicate) && duplicate != "":
		return refusef(duplicate, args...)
	}
	return fmt.Errorf("access: request %d: %w", id, err)
}

// Wait blocks until request id is no longer pending (or ctx ends).
func (s *Service) Wait(ctx context.Context, a Actor, id int64) (*store.Request, error) {
	ticker := time.NewTicker(waitPoll)
	defer ticker.Stop()
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		r, err := s.Get(ctx, a, id)
		if err != nil || r.State != store.Pending {
			return r, err
		}
		// On the service's clock, not the wall clock: the two differ when
		// Config.Now is set, and a timer computed from the wall clock would
		// then spin or never fire.
		wake := time.NewTimer(r.PendingUntil.Sub(s.now()) + time.Millisecond)
		select {
		case <-ctx.Done():
			wake.Stop()
			return nil, ctx.Err()
		case <-changed:
		case <-ticker.C:
		case <-wake.C:
		}
		wake.Stop()
	}
}

func (s *Service) changedNow() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Certificate is an issued user certificate.
type Certificate struct {
	Cert   *ssh.Certificate
	Serial uint64
}

// Cert issues the requester a user certificate for the key they
// authenticated with, valid from now (less ClockSkew) to the grant's end,
// for the approved logins and SSH targets.
func (s *Service) Cert(ctx context.Context, a Actor, id int64) (*Certificate, error) {
	r, err := s.usableGrant(ctx, a, id)
	if err == nil && a.Key == nil {
		err = refusef("no public key to certify: connect with the SSH key you want certified")
	}
	var sshTargets []string
	if err == nil {
		p := s.policy()
		for _, t := range r.Targets {
			if pt := p.Targets[t]; pt != nil && pt.Kind == policy.KindSSH {
				sshTargets = append(sshTargets, t)
			}
		}
		if len(sshTargets) == 0 {
			err = refusef("request %d is for database targets: use `token %d` instead", id, id)
		}
	}
	if err != nil {
		s.refused(ctx, a, audit.CertIssue, id, "", err)
		return nil, err
	}
	key := a.Key
	if c, ok := key.(*ssh.Certificate); ok { // connected with an earlier certificate
		key = c.Key
	}
	now := s.now()
	rec := &store.Certificate{
		RequestID: id, User: a.User, KeyFingerprint: ssh.FingerprintSHA256(key),
		Principals: r.Logins, Targets: sshTargets,
		ValidAfter: now.Add(-ClockSkew), ValidBefore: r.GrantEnd, IssuedAt: now,
	}
	serial, err := s.store.IssueCertificate(ctx, rec)
	if err != nil {
		err = fmt.Errorf("access: record certificate: %w", err)
		s.refused(ctx, a, audit.CertIssue, id, "", err)
		return nil, err
	}
	// The forwarding the role allows: Bastion's SSH front end honours a
	// certificate's permits and the role's together.
	ext := s.policy().ForwardingFor(a.User, "", r.Role).CertPermits()
	ext["permit-pty"] = ""
	for _, t := range sshTargets {
		ext[ca.TargetExtension(t)] = ""
	}
	cert, err := s.userCA.SignUser(ca.UserCertRequest{
		Key: key, KeyID: fmt.Sprintf("%s/req-%d", a.User, id), Serial: serial,
		Principals: r.Logins, ValidAfter: rec.ValidAfter, ValidBefore: rec.ValidBefore, Extensions: ext,
	})
	if err != nil {
		// The serial stays used: serials are never reused, even for a
		// certificate that was never signed.
		err = fmt.Errorf("access: sign certificate (serial %d): %w", serial, err)
		s.refused(ctx, a, audit.CertIssue, id, "", err)
		return nil, err
	}
	s.emit(ctx, a, audit.Event{Type: audit.CertIssue, Subject: a.User, RequestID: id, Target: strings.Join(sshTargets, ","),
		Details: map[string]string{
			"serial": fmt.Sprint(serial), "key": rec.KeyFingerprint, "principals": strings.Join(r.Logins, ","),
			"valid_before": rec.ValidBefore.UTC().Format(time.RFC3339),
		}})
	return &Certificate{Cert: cert, Serial: serial}, nil
}

// usableGrant loads the actor's own approved, live request and checks the
// role's conditions now (conditions hold at request and at use).
func (s *Service) usableGrant(ctx context.Context, a Actor, id int64) (*store.Request, error) {
	r, err := s.Get(ctx, a, id)
	switch {
	case err != nil:
		return nil, err
	case r.Requester != a.User:
		return nil, refusef("request %d is %s's, not yours", id, r.Requester)
	case r.State != store.Approved:
		return nil, refusef("request %d is %s", id, r.State)
	case r.Command != "":
		return nil, refusef("request %d allows one command in a session, not access", id)
	}
	env := policy.Env{Now: s.now(), Source: a.Source}
	if err := s.policy().CheckGrantUse(a.User, r.Role, r.Targets, r.Logins, env); err != nil {
		return nil, err
	}
	return r, nil
}

// Sweep records as expired every pending request past its approval window
// and every grant past its end.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	live, err := s.store.Requests(ctx, store.RequestFilter{States: []store.State{store.Pending, store.Approved}})
	if err != nil {
		return fmt.Errorf("access: sweep: %w", err)
	}
	system := Actor{User: "bastion"}
	for _, r := range live {
		if r.StateAt(now) != store.Expired {
			continue
		}
		reason := "grant ended"
		if r.State == store.Pending {
			reason = "not approved in time"
		}
		r, err := s.store.Transition(ctx, r.ID, store.Transition{From: []store.State{r.State}, To: store.Expired, By: "bastion", Reason: reason, At: now})
		if errors.Is(err, store.ErrConflict) {
			continue // decided or swept elsewhere meanwhile
		}
		if err != nil {
			return fmt.Errorf("access: expire request: %w", err)
		}
		s.emit(ctx, system, audit.Event{Type: audit.RequestExpire, Subject: r.Requester, RequestID: r.ID,
			Target: strings.Join(r.Targets, ","), Reason: reason})
		s.notifyRequest(audit.RequestExpire, r)
		s.changedNow()
	}
	return nil
}

// Run sweeps expired requests and appends the audit events Record keeps
// while the store fails, until ctx ends; then it makes one last attempt to
// store the events still kept, and returns.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { s.retryAudit(ctx) })
	defer s.flushAtStop()
	defer wg.Wait()
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("sweep failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refused audits a refusal; internal errors are logged, not shown.
func (s *Service) refused(ctx context.Context, a Actor, action string, id int64, target string, err error) {
	outcome := audit.OutcomeRefused
	var ref *policy.Refusal
	var inv *policy.InvalidError
	if !errors.As(err, &ref) && !errors.As(err, &inv) && !errors.Is(err, ErrNotFound) {
		outcome = audit.OutcomeError
		s.log.Error("access action failed", "action", action, "user", a.User, "request", id, "err", err)
	}
	s.emit(ctx, a, audit.Event{Type: action, RequestID: id, Target: target, Outcome: outcome, Reason: err.Error()})
}

func (s *Service) notifyRequest(event string, r *store.Request) {
	if s.notify == nil {
		return
	}
	s.notify.Notify(Notification{Event: event, Text: Describe(event, r), Request: r})
}

// Describe is a one-line human description of a workflow event.
func Describe(event string, r *store.Request) string {
	if r.Command != "" {
		return describeCommand(event, r)
	}
	what := fmt.Sprintf("request #%d by %s for %s", r.ID, r.Requester, strings.Join(r.Targets, ", "))
	if len(r.Logins) > 0 {
		what += " as " + strings.Join(r.Logins, ", ")
	}
	switch event {
	case audit.RequestCreate:
		return fmt.Sprintf("%s (%s): %q — approve with `approve %d` (needs %d from %s)",
			what, r.Duration, r.Reason, r.ID, r.ApprovalsRequired, strings.Join(r.Approvers, ", "))
	case audit.RequestGrant:
		return fmt.Sprintf("%s approved by %s until %s", what, r.DecidedBy, r.GrantEnd.UTC().Format(time.RFC3339))
	case audit.RequestDeny:
		return fmt.Sprintf("%s denied by %s: %s", what, r.DecidedBy, r.DecisionReason)
	case audit.RequestRevoke:
		return fmt.Sprintf("%s revoked by %s: %s", what, r.ClosedBy, r.CloseReason)
	case audit.RequestCancel:
		return fmt.Sprintf("%s withdrawn", what)
	case audit.RequestExpire:
		return fmt.Sprintf("%s expired (%s)", what, r.CloseReason)
	}
	return what
}

func sourceString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}
