package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// maxAuditedStatement bounds the statement text in an audit event.
const maxAuditedStatement = 4096

// approve turns a require-approval decision into allow or deny: the
// statement waits while an approver decides, as commands do over SSH.
// Approval allows this statement once.
func (c *conn) approve(d policy.QueryDecision, sql string) policy.QueryDecision {
	if d.Action != policy.CommandRequireApproval {
		return d
	}
	denied := func(why string) policy.QueryDecision {
		return policy.QueryDecision{Action: policy.CommandDeny, Rule: d.Rule, Reason: why}
	}
	held := d.Reason
	if c.srv.cfg.Approvals == nil {
		return denied(held + ", and " + errNoApprovals.Error())
	}
	ctx := c.ctx
	req, err := c.srv.cfg.Approvals.RequestCommand(ctx, c.actor, access.CommandRequest{
		Grant: c.grant, Command: truncate(sql), Rule: d.Rule, Reason: d.Reason, Roles: d.Approvers,
	})
	if err != nil {
		return denied(fmt.Sprintf("%s, but it cannot be submitted: %v", held, err))
	}
	c.log.Info("statement held for approval", "rule", d.Rule, "request", req.ID)
	c.notice(fmt.Sprintf("bastion: statement held for approval by rule %s: %s; waiting for an approver (request #%d)", d.Rule, d.Reason, req.ID))
	c.audit(audit.Event{Type: audit.Query, Outcome: audit.OutcomeOK, Reason: "held for approval",
		Details: map[string]string{"statement": truncate(sql), "rule": d.Rule, "request": fmt.Sprint(req.ID)}})
	wctx, cancel := context.WithTimeout(ctx, req.PendingUntil.Sub(req.CreatedAt))
	defer cancel()
	r, err := c.srv.cfg.Approvals.Wait(wctx, c.actor, req.ID)
	switch {
	case err != nil:
		return denied(fmt.Sprintf("%s: not approved in time (request #%d)", held, req.ID))
	case r.State != store.Approved:
		if r.DecisionReason != "" {
			return denied(fmt.Sprintf("%s: request #%d %s by %s: %s", held, req.ID, r.State, r.DecidedBy, r.DecisionReason))
		}
		return denied(fmt.Sprintf("%s: request #%d %s", held, req.ID, r.State))
	}
	c.srv.cfg.Approvals.CommandDone(context.WithoutCancel(ctx), c.actor, req.ID)
	return policy.QueryDecision{Action: policy.CommandAllow, Rule: d.Rule}
}

// notice sends the client a NoticeResponse now, between the target's
// messages: clients show notices as they come (psql prints them).
func (c *conn) notice(msg string) {
	c.bwMu.Lock()
	defer c.bwMu.Unlock()
	c.bw.Write(noticeResponse(msg))
	c.bw.Flush()
}

// deny audits and records a denied statement (sql is the whole query
// string or Parse).
func (c *conn) deny(d policy.QueryDecision, sql string) {
	c.log.Info("statement denied", "rule", d.Rule)
	c.audit(audit.Event{Type: audit.Query, Outcome: audit.OutcomeRefused, Reason: d.Reason,
		Details: map[string]string{"statement": truncate(sql), "rule": d.Rule}})
	// A query string with one denied statement is refused whole, and
	// recorded whole.
	c.write(querylog.Event{Type: querylog.TypeQuery, Statement: sql, Decision: querylog.Deny, Rule: d.Rule, Error: d.Reason})
}

func (c *conn) audit(e audit.Event) {
	e.Subject, e.Target, e.RequestID = c.grant.User, c.grant.Target, c.grant.RequestID
	if e.Details == nil {
		e.Details = map[string]string{}
	}
	e.Details["protocol"] = "postgres"
	e.Details["session"] = c.rec.id
	c.srv.cfg.Access.Record(context.WithoutCancel(c.ctx), c.actor, e)
}

func truncate(s string) string {
	if len(s) <= maxAuditedStatement {
		return s
	}
	return strings.ToValidUTF8(s[:maxAuditedStatement], "") + "…"
}
