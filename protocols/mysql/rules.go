package mysql

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/protocols/mysql/mysqlsql"
)

// verdict is the decision on one query string or prepared statement.
type verdict struct {
	stmts []mysqlsql.Statement // as parsed; one unknown statement when unparseable
	// refusal is set when the query may not run: what the client is told,
	// with code, the error number (0: 1142).
	refusal string
	code    uint16
	rule    string
	// approval is set when a rule holds the query for an approver.
	approval *policy.QueryDecision
	text     string // the statements' texts, joined
	// modeChange is set for a prepared statement whose execution may
	// change the session's sql_mode.
	modeChange bool
	// executes is set when a statement EXECUTEs one prepared with SQL's
	// PREPARE (its refusal depends on the session: executeRefusal).
	executes bool
}

// maxCached bounds a connection's decision cache; it is emptied when full.
const maxCached = 4096

// decider decides a connection's statements and caches the verdicts by
// exact text and the way the target reads it (the policy does not change
// while Bastion runs).
type decider struct {
	policy       func() *policy.Policy
	user, target string
	databases    []string // the databases USE may name: the target's
	cache        map[cacheKey]*verdict
	// opts is how the target reads a string: its flavour and version,
	// and the session's sql_mode (setMode); modeErr is set when that mode
	// is one Bastion cannot follow.
	opts    mysqlsql.Options
	modeErr error
	// preparedMode says, by lower-case name, whether each statement
	// prepared with SQL's PREPARE sets sql_mode when executed (or could
	// not be read).
	preparedMode map[string]bool
	// prepared is what the session may have prepared with SQL's PREPARE,
	// so that an EXECUTE is decided as what it runs.
	prepared policy.Prepared
	// tableCase is how the target compares table names (startTableCase);
	// until known, without case.
	tableCase policy.TableCase
	// ownConn is the session's target connection ID, the only one its
	// KILL may name where rules apply (killRefusal).
	ownConn uint32
}

type cacheKey struct {
	opts        mysqlsql.Options
	unsupported bool
	sql         string
}

// newDecider returns the decider of a session, whose server and sql_mode
// are unknown until startMode.
func newDecider(p func() *policy.Policy, user, target string, databases ...string) *decider {
	return &decider{policy: p, user: user, target: target, databases: databases, cache: map[cacheKey]*verdict{},
		opts: mysqlsql.Options{ModeUnknown: true}}
}

// decide parses and decides sql.
func (d *decider) decide(b []byte) *verdict {
	key := cacheKey{opts: d.opts, unsupported: d.modeErr != nil, sql: string(b)}
	v, ok := d.cache[key]
	if !ok {
		v = d.decideNew(key.sql)
		if len(d.cache) >= maxCached {
			clear(d.cache)
		}
		if !v.executes { // an EXECUTE's verdict depends on the session's PREPAREs
			d.cache[key] = v
		}
	}
	if v.refusal == "" {
		d.prepared.Remember(mysqlsql.Statements(v.stmts))
	}
	if v.refusal == "" && v.executes && d.policy().QueriesRestricted(d.user, d.target) {
		if why := d.executeRefusal(v.stmts); why != "" {
			return &verdict{stmts: v.stmts, text: v.text, refusal: why}
		}
	}
	return v
}

func (d *decider) decideNew(sql string) *verdict {
	p := d.policy()
	stmts, err := mysqlsql.ParseWith(sql, d.opts)
	if err != nil {
		v := &verdict{stmts: []mysqlsql.Statement{{Statement: policy.Statement{Text: strings.TrimSpace(sql), Kind: policy.StatementUnknown}}},
			text: strings.TrimSpace(sql)}
		if p.QueriesRestricted(d.user, d.target) {
			var se *mysqlsql.SyntaxError
			why := err.Error()
			if errors.As(err, &se) {
				why = se.Message
			}
			v.refusal = fmt.Sprintf("the statement cannot be checked (%s), and queries are restricted on %s", why, d.target)
		}
		return v
	}
	v := &verdict{stmts: stmts, text: joinTexts(stmts), executes: slices.ContainsFunc(stmts, func(s mysqlsql.Statement) bool { return len(s.Executes) > 0 })}
	for i := range stmts {
		s := &stmts[i]
		if s.Database != "" && !d.databaseAllowed(s.Database) {
			v.refusal = fmt.Sprintf("USE %s: this session is for %s; switching to another database is not allowed", s.Database, d.target)
			v.code = erDBAccessDenied
			return v
		}
		if s.LocalInfile {
			v.refusal = msgLocalInfile
			v.code = erNotAllowedCommand
			return v
		}
		if mysqlsql.BackslashCharset(s.ClientCharset) && p.QueriesRestricted(d.user, d.target) {
			v.refusal = fmt.Sprintf("%s: character set %s can hide a backslash inside a multibyte character, so the statements after it could not be checked, and queries are restricted on %s",
				mysqlsql.Describe(s), s.ClientCharset, d.target)
			return v
		}
		if s.Dynamic && p.QueriesRestricted(d.user, d.target) {
			v.refusal = fmt.Sprintf("%s: %s, and queries are restricted on %s", mysqlsql.Describe(s), mysqlsql.ErrDynamic, d.target)
			return v
		}
	}
	if p.QueriesRestricted(d.user, d.target) {
		if why := d.modeRefusal(stmts); why != "" {
			v.refusal = why
			return v
		}
		if why := d.killRefusal(sql, stmts); why != "" {
			v.refusal = why
			return v
		}
	}
	for i := range stmts {
		stmts[i].TableCase = d.tableCase
	}
	all := mysqlsql.Statements(stmts)
	dec := p.DecideQueries(d.user, d.target, d.prepared.Follow(all, all))
	v.rule = dec.Rule
	switch dec.Action {
	case policy.CommandAllow:
	case policy.CommandRequireApproval:
		v.approval = &dec
	default:
		if dec.Rule != "" {
			v.refusal = fmt.Sprintf("denied by rule %s: %s", dec.Rule, dec.Reason)
		} else {
			v.refusal = "denied: " + dec.Reason
		}
	}
	return v
}

// databaseAllowed reports whether USE or COM_INIT_DB may name db.
func (d *decider) databaseAllowed(db string) bool {
	for _, a := range d.databases {
		if a != "" && a == db {
			return true
		}
	}
	return false
}

// allowed decides a query string or a statement to prepare: "" to let it
// go on, else the refusal the client is told. With hold, a query a rule
// holds for approval waits here until an approver decides (or the session
// ends); a statement being prepared is held at each execution instead.
// Refusals and holds are audited.
func (c *clientConn) allowed(sql []byte, hold bool) (*verdict, string) {
	v := c.dec.decide(sql)
	if v.refusal != "" {
		c.audit(v, "denied", v.refusal)
		return v, v.refusal
	}
	if !hold {
		return v, ""
	}
	d, shown, refusal := c.sqlPrepared(v)
	if refusal != "" {
		c.audit(v, "denied", refusal)
		return v, refusal
	}
	if d == nil {
		return v, ""
	}
	return v, c.approve(v, d, shown)
}

// sqlHold is a statement prepared with SQL's PREPARE … FROM 'text' that
// needs approval.
type sqlHold struct {
	d    *policy.QueryDecision
	text string // the PREPARE statement
}

// maxSQLHolds bounds the held SQL prepared statements of a connection.
const maxSQLHolds = 10000

// sqlPrepared is the approval a query string needs given the session's SQL
// prepared statements, and the text its approver sees; or the refusal. A
// PREPARE runs nothing, so a string of PREPAREs that need approval is not
// held but remembered, and each EXECUTE of one is held, showing the
// approver what it runs. A name that needs approval cannot be prepared
// again as another statement (in a multi-statement string, the PREPARE
// may not run, and the first would stay).
func (c *clientConn) sqlPrepared(v *verdict) (d *policy.QueryDecision, shown, refusal string) {
	if v.approval == nil && len(c.sqlHolds) == 0 {
		return nil, "", "" // the common case: nothing to hold
	}
	shown = v.text
	onlyPrepares := true
	var prepared map[string]sqlHold
	lookup := func(name string) (sqlHold, bool) {
		if h, ok := c.sqlHolds[name]; ok {
			return h, true
		}
		h, ok := prepared[name]
		return h, ok
	}
	for i := range v.stmts {
		s := &v.stmts[i]
		if s.Alternate {
			continue
		}
		if s.Prepares == "" {
			onlyPrepares = false
			continue
		}
		old, ok := lookup(s.Prepares)
		switch {
		case ok && old.text != s.Text:
			return nil, "", fmt.Sprintf("prepared statement %s needs approval to run and was prepared as another statement; prepare this one under another name", s.Prepares)
		case v.approval == nil || ok:
		case len(c.sqlHolds)+len(prepared) >= maxSQLHolds:
			return nil, "", fmt.Sprintf("held by rule %s, and this session has too many prepared statements to hold another for approval", v.approval.Rule)
		default:
			if prepared == nil {
				prepared = map[string]sqlHold{}
			}
			prepared[s.Prepares] = sqlHold{d: v.approval, text: s.Text}
		}
	}
	if v.approval != nil && !onlyPrepares {
		d = v.approval
	}
	for i := range v.stmts {
		for _, name := range v.stmts[i].Executes {
			if h, ok := lookup(name); ok && !v.stmts[i].Alternate {
				if d == nil {
					d = h.d
				}
				shown += fmt.Sprintf("\n-- %s was prepared as: %s", name, h.text)
			}
		}
	}
	if len(prepared) > 0 {
		if c.sqlHolds == nil {
			c.sqlHolds = map[string]sqlHold{}
		}
		maps.Copy(c.sqlHolds, prepared)
	}
	return d, shown, ""
}

func (c *clientConn) audit(v *verdict, outcome, reason string) {
	text := v.text
	if text == "" {
		text = joinTexts(v.stmts)
	}
	out := audit.OutcomeRefused
	if outcome == "held" {
		out = audit.OutcomeOK
	}
	c.srv.cfg.Access.Record(c.ctx, c.actor, audit.Event{Type: audit.Query, Subject: c.grant.User, Target: c.grant.Target,
		RequestID: c.grant.RequestID, Outcome: out, Reason: reason,
		Details: map[string]string{"statement": truncate(text, 1024), "rule": v.rule, "protocol": "mysql", "session": c.sessionID()}})
	c.log.Info("query "+outcome, "rule", v.rule)
}

func joinTexts(stmts []mysqlsql.Statement) string {
	var b strings.Builder
	for _, s := range stmts {
		if s.Alternate {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s.Text)
	}
	return b.String()
}

// truncate is a statement as audit events and approvers see it: its
// passwords hidden (mysqlsql.Redact), cut at n bytes.
func truncate(s string, n int) string {
	s = mysqlsql.Redact(s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// approve holds a query until an approver allows it (d: the rule that
// holds it; shown: what the approver sees); it returns the refusal, or ""
// once approved. Each run needs its own approval.
func (c *clientConn) approve(v *verdict, d *policy.QueryDecision, shown string) string {
	held := fmt.Sprintf("held by rule %s", d.Rule)
	req, err := c.srv.cfg.Access.RequestCommand(c.ctx, c.actor, access.CommandRequest{
		Grant: c.grant, Command: truncate(shown, 4096), Rule: d.Rule, Reason: d.Reason, Roles: d.Approvers,
	})
	if err != nil {
		c.audit(v, "denied", held+", but it cannot be submitted")
		return fmt.Sprintf("%s, but it cannot be submitted: %v", held, err)
	}
	c.audit(v, "held", fmt.Sprintf("held for approval (request %d)", req.ID))
	wctx, cancel := context.WithTimeout(c.ctx, req.PendingUntil.Sub(req.CreatedAt))
	defer cancel()
	r, err := c.srv.cfg.Access.Wait(wctx, c.actor, req.ID)
	switch {
	case err != nil:
		return fmt.Sprintf("%s: not approved in time (request #%d)", held, req.ID)
	case r.State != store.Approved:
		if r.DecisionReason != "" {
			return fmt.Sprintf("%s: request #%d %s by %s: %s", held, req.ID, r.State, r.DecidedBy, r.DecisionReason)
		}
		return fmt.Sprintf("%s: request #%d %s", held, req.ID, r.State)
	}
	c.srv.cfg.Access.CommandDone(context.WithoutCancel(c.ctx), c.actor, req.ID)
	return ""
}
