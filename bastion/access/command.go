package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
)

// DefaultCommandApprovalTimeout is how long a command held by a
// require-approval rule waits for an approver.
const DefaultCommandApprovalTimeout = 5 * time.Minute

// CommandRequest asks approval for one command in a live session.
type CommandRequest struct {
	Grant   *Grant
	Command string
	Rule    string
	Reason  string   // the rule's reason
	Roles   []string // roles that may approve; empty: the approvers of the grant's request
	Timeout time.Duration
}

// RequestCommand creates a pending request to run one command, held by a
// rule that requires approval, and notifies the approvers. Approving it
// allows that command once, in that session; it grants nothing else.
func (s *Service) RequestCommand(ctx context.Context, a Actor, in CommandRequest) (*store.Request, error) {
	now := s.now()
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = DefaultCommandApprovalTimeout
	}
	roles := in.Roles
	role := in.Grant.Role
	if len(roles) == 0 && in.Grant.RequestID != 0 {
		g, err := s.store.Request(ctx, in.Grant.RequestID)
		if err != nil {
			return nil, fmt.Errorf("access: command approval: %w", err)
		}
		roles = g.Approvers
	}
	if len(roles) == 0 {
		err := refusef("rule %s requires approval, but names no approvers", in.Rule)
		s.refused(ctx, a, audit.RequestCreate, 0, in.Grant.Target, err)
		return nil, err
	}
	if role == "" {
		role = "standing"
	}
	r := &store.Request{
		Requester: a.User, Role: role, Targets: []string{in.Grant.Target}, Logins: []string{in.Grant.Login},
		Reason: fmt.Sprintf("rule %s: %s", in.Rule, in.Reason), Duration: timeout, Source: sourceString(a.Source),
		State: store.Pending, CreatedAt: now, PendingUntil: now.Add(timeout),
		ApprovalsRequired: 1, Approvers: roles, Command: in.Command,
	}
	// Stored with its event, or not at all (see Request).
	created := s.fill(a, audit.Event{Type: audit.RequestCreate, Subject: a.User, Target: in.Grant.Target,
		Reason: r.Reason, Details: map[string]string{"command": in.Command, "rule": in.Rule, "login": in.Grant.Login}})
	if _, err := s.store.CreateRequest(ctx, r, created); err != nil {
		err = fmt.Errorf("access: command approval: %w", err)
		s.refused(ctx, a, audit.RequestCreate, 0, in.Grant.Target, err)
		return nil, err
	}
	s.notifyRequest(audit.RequestCreate, r)
	s.changedNow()
	return r, nil
}

// CommandDone closes an approved command request once its command has run:
// the approval is used up.
func (s *Service) CommandDone(ctx context.Context, a Actor, id int64) {
	_, err := s.store.Transition(ctx, id, store.Transition{
		From: []store.State{store.Approved}, To: store.Expired, By: "bastion", Reason: "the command ran", At: s.now(),
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		s.log.Error("close command request", "request", id, "err", err)
		return
	}
	if err == nil {
		s.emit(ctx, a, audit.Event{Type: audit.RequestExpire, Subject: a.User, RequestID: id, Reason: "the command ran"})
		s.changedNow()
	}
}

// describeCommand is the notification text of a command request.
func describeCommand(event string, r *store.Request) string {
	what := fmt.Sprintf("command request #%d: %s wants to run `%s` on %s as %s",
		r.ID, r.Requester, r.Command, strings.Join(r.Targets, ","), strings.Join(r.Logins, ","))
	switch event {
	case audit.RequestCreate:
		return fmt.Sprintf("%s (%s) — allow with `approve %d`, refuse with `deny %d --reason …` (roles: %s)",
			what, r.Reason, r.ID, r.ID, strings.Join(r.Approvers, ", "))
	case audit.RequestGrant:
		return what + " — allowed by " + r.DecidedBy
	case audit.RequestDeny:
		return what + " — refused by " + r.DecidedBy + ": " + r.DecisionReason
	}
	return what + " — " + event
}
