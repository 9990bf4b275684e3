package postgres

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"unicode/utf8"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/protocols/dbrec"
	"github.com/bastionhq/bastion/protocols/postgres/pgsql"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// maxAuditedStatement bounds the statement text in an audit event.
const maxAuditedStatement = 4096

// approve turns a require-approval decision into allow or deny: the
// statement waits while an approver decides, as commands do over SSH.
// Approval allows this statement once: one simple Query, or one Execute of
// a prepared statement (held there, not at its Parse, so that each
// execution, with its parameters, is approved).
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

// parseDecision is the decision on a Parse whose statement the rules
// decided d. A statement that needs approval is held at each Execute, so
// the relay must know which statement every portal runs: it refuses a
// held statement it could not track, and a named statement that would
// replace a tracked one of another text where either is held (the target
// keeps the first unless a Close or DEALLOCATE took effect, which the
// relay cannot tell from one the target skipped).
func (c *conn) parseDecision(m parseMsg, d policy.QueryDecision) policy.QueryDecision {
	if d.Action == policy.CommandDeny || m.Name == "" {
		return d
	}
	held := d.Action == policy.CommandRequireApproval
	old, tracked := c.ext.stmts[m.Name]
	switch {
	case held && !tracked && len(c.ext.stmts) >= maxTracked:
		return policy.QueryDecision{Action: policy.CommandDeny, Rule: d.Rule,
			Reason: d.Reason + ", and this session has too many prepared statements to hold another for approval"}
	case tracked && old.text != m.Query && (held || old.hold != nil):
		rule := d.Rule
		if !held {
			rule = old.hold.Rule
		}
		return policy.QueryDecision{Action: policy.CommandDeny, Rule: rule,
			Reason: fmt.Sprintf("prepared statement %q needs approval to run, so its name stays with it for this session; prepare this one under another name", m.Name)}
	}
	return d
}

// sqlPrepared is the decision on a parsed query string (or Parse), given
// the session's SQL-level prepared statements, and the text its approver
// would see. A PREPARE runs nothing, so one of a statement that needs
// approval is not held but remembered, and each EXECUTE of it is held,
// showing the approver what it runs. A name that needs approval cannot be
// prepared again as another statement: Bastion cannot see whether the
// target deallocated the first.
func (c *conn) sqlPrepared(v *verdict, sql string) (policy.QueryDecision, string) {
	if v.overall.Action == policy.CommandDeny || v.each == nil ||
		v.overall.Action == policy.CommandAllow && len(c.ext.sqlHolds) == 0 {
		return v.overall, sql // the common case: nothing to hold
	}
	holds := c.ext.sqlHolds
	var hold *policy.QueryDecision
	shown := sql
	var prepared map[string]sqlHold
	for i := range v.stmts {
		st, d := &v.stmts[i], v.each[i]
		held := d.Action == policy.CommandRequireApproval
		if st.Prepares != "" {
			old, ok := holds[st.Prepares]
			if !ok {
				old, ok = prepared[st.Prepares]
			}
			switch {
			case ok && old.text != st.Text:
				return policy.QueryDecision{Action: policy.CommandDeny, Rule: old.d.Rule,
					Reason: fmt.Sprintf("prepared statement %q needs approval to run and was prepared as another statement; prepare this one under another name", st.Prepares)}, sql
			case held && !ok && len(holds)+len(prepared) >= maxTracked:
				return policy.QueryDecision{Action: policy.CommandDeny, Rule: d.Rule,
					Reason: d.Reason + ", and this session has too many prepared statements to hold another for approval"}, sql
			case held:
				if prepared == nil {
					prepared = map[string]sqlHold{}
				}
				prepared[st.Prepares] = sqlHold{d: d, text: st.Text}
			}
			continue
		}
		if held && hold == nil {
			hold = &v.each[i]
		}
		for _, name := range st.Executes {
			h, ok := holds[name]
			if !ok {
				h, ok = prepared[name]
			}
			if ok {
				if hold == nil {
					hold = &h.d
				}
				shown += fmt.Sprintf("\n-- %s was prepared as: %s", name, h.text)
			}
		}
	}
	if len(prepared) > 0 {
		if c.ext.sqlHolds == nil {
			c.ext.sqlHolds = map[string]sqlHold{}
		}
		maps.Copy(c.ext.sqlHolds, prepared)
	}
	switch {
	case hold != nil:
		return *hold, shown
	case v.overall.Action == policy.CommandRequireApproval:
		// Only PREPAREs needed approval: their EXECUTEs will be held.
		return policy.QueryDecision{Action: policy.CommandAllow}, sql
	}
	return v.overall, sql
}

// heldText is a held statement as its approver sees it: its text and the
// parameters bound to this execution, as SQL literals (redacted where the
// configuration redacts parameters in recordings).
func heldText(text string, m bindMsg, redact bool) string {
	if len(m.Params) == 0 {
		return text
	}
	var b strings.Builder
	b.WriteString(text)
	b.WriteString("\n-- parameters:")
	for i, p := range m.Params {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " $%d = ", i+1)
		switch {
		case redact:
			b.WriteString("<redacted>")
		case p == nil:
			b.WriteString("NULL")
		case m.Binary[i] || !utf8.Valid(p):
			b.WriteString(`'\x`)
			b.WriteString(hex.EncodeToString(p[:min(len(p), dbrec.MaxRecordedParam/2)]))
			b.WriteString("'")
		default:
			b.WriteString("'")
			b.WriteString(strings.ReplaceAll(string(p[:min(len(p), dbrec.MaxRecordedParam)]), "'", "''"))
			b.WriteString("'")
		}
		if len(p) > dbrec.MaxRecordedParam {
			fmt.Fprintf(&b, " (cut from %d bytes)", len(p))
		}
	}
	return b.String()
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

// truncate is a statement as audit events and approvers see it: its
// secrets redacted (pgsql.Redact), cut at maxAuditedStatement bytes.
func truncate(s string) string {
	s = pgsql.Redact(s)
	if len(s) <= maxAuditedStatement {
		return s
	}
	return strings.ToValidUTF8(s[:maxAuditedStatement], "") + "…"
}
