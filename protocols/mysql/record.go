package mysql

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/internal/frontend"
	"github.com/bastionhq/bastion/protocols/dbrec"
	"github.com/bastionhq/bastion/protocols/mysql/mysqlsql"
	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// queryRecorder is a connection's recording and session row.
type queryRecorder struct {
	id     string
	name   string
	log    *recorder.QueryLog
	redact bool
	// durable: the role's durability is statement (forwarding).
	durable bool
}

func (c *clientConn) sessionID() string {
	if c.rec == nil {
		return ""
	}
	return c.rec.id
}

// startRecording creates the recording and the session row; the session
// may not start without them (fail closed). Without recording storage
// configured, nothing is recorded.
func (c *clientConn) startRecording(ctx context.Context) error {
	if c.srv.cfg.Recordings == nil || c.srv.cfg.Sessions == nil {
		return nil
	}
	id := frontend.NewSessionID()
	ql, name, err := dbrec.Open(ctx, c.srv.cfg.Recordings, c.srv.cfg.Sessions, dbrec.Session{ID: id, Protocol: querylog.ProtocolMySQL,
		Grant: c.grant, Login: c.target.Username, Database: c.target.Database, Client: c.conn.RemoteAddr().String(), Start: time.Now()})
	if err != nil {
		if c.failOpen() {
			c.unrecorded(ctx, err)
			return nil
		}
		return err
	}
	c.rec = &queryRecorder{id: id, name: name, log: ql, redact: c.target.RedactParameters,
		durable: dbrec.Durable(c.srv.cfg.Policy(), c.grant)}
	return nil
}

// forwarding records, under durability: statement, the statements a
// command is about to run on the target (exec events), and returns once
// they are durable, with the other sessions' records in one group commit.
// When they cannot be made durable the session ends (fail closed) and the
// error says that the command must not be forwarded; a fail-open session
// goes on unrecorded.
func (c *clientConn) forwarding(rule string, params []string, stmts ...string) error {
	if c.rec == nil || !c.rec.durable {
		return nil
	}
	for _, s := range stmts {
		c.recordEvent(querylog.Event{Type: querylog.TypeExec, Statement: s, Params: params, Rule: rule})
		if c.rec == nil { // fail-open, and the recording failed
			return nil
		}
	}
	err := c.rec.log.Commit(c.ctx)
	switch {
	case err == nil:
		return nil
	case c.ctx.Err() != nil:
		return context.Cause(c.ctx)
	}
	c.recordingFailed(err)
	if c.rec == nil {
		return nil
	}
	return errRecording
}

// forwardingQuery is forwarding for the statements of a COM_QUERY.
func (c *clientConn) forwardingQuery(v *verdict) error {
	if c.rec == nil || !c.rec.durable {
		return nil
	}
	stmts := recorded(v.stmts)
	texts := make([]string, len(stmts))
	for i, s := range stmts {
		texts[i] = s.Text
	}
	return c.forwarding(v.rule, nil, texts...)
}

// errRecording ends a session whose recording failed (fail closed).
var errRecording = errors.New("the session can no longer be recorded")

// record writes a query event. A failure ends the session.
func (c *clientConn) record(e querylog.Event) {
	if c.rec == nil {
		return
	}
	e.Type = querylog.TypeQuery
	c.recordEvent(e)
}

// recordEvent writes an event. A failure ends the session (fail closed).
func (c *clientConn) recordEvent(e querylog.Event) {
	if c.rec == nil {
		return
	}
	e.Statement = mysqlsql.Redact(e.Statement)
	if err := c.rec.log.Write(e); err != nil {
		c.recordingFailed(err)
	}
}

// recordingFailed ends the session (fail closed), or lets a fail-open one
// go on unrecorded.
func (c *clientConn) recordingFailed(err error) {
	if c.failOpen() {
		c.rec.log.Close()
		c.rec = nil
		c.unrecorded(context.WithoutCancel(c.ctx), err)
		return
	}
	c.log.Error("record query", "err", err)
	c.end(errRecording)
}

// failOpen reports whether the grant's role lets the session go on
// unrecorded when recording fails.
func (c *clientConn) failOpen() bool {
	return dbrec.FailOpen(c.srv.cfg.Policy(), c.grant)
}

// guaranteeRecording asks storage that can tell (the spool in front of
// object storage) whether a fail-closed session's recording would be kept.
func (c *clientConn) guaranteeRecording(ctx context.Context) error {
	if c.srv.cfg.Sessions == nil {
		return nil
	}
	return dbrec.Guarantee(ctx, c.srv.cfg.Recordings, c.failOpen())
}

// unrecorded logs and audits that a fail-open session goes on without a
// recording.
func (c *clientConn) unrecorded(ctx context.Context, err error) {
	dbrec.Unrecorded(ctx, c.log, c.srv.cfg.Access, c.actor, c.grant, querylog.ProtocolMySQL, err)
}

// finish records the session's end.
func (c *clientConn) finish(reason string) {
	ctx := context.WithoutCancel(c.ctx)
	if c.grant != nil {
		defer dbrec.AuditEnd(ctx, c.srv.cfg.Access, c.actor, c.grant, querylog.ProtocolMySQL, c.sessionID(), reason)()
	}
	c.log.Info("session ended", "reason", reason)
	c.endRecording(ctx, reason)
}

// endRecording writes the recording's end, closes it and ends the
// session's row.
func (c *clientConn) endRecording(ctx context.Context, reason string) {
	if c.rec == nil {
		return
	}
	if err := c.rec.log.Write(querylog.Event{Type: querylog.TypeEnd, Reason: reason}); err != nil {
		c.log.Error("record session end", "err", err)
	}
	if err := c.rec.log.Close(); err != nil {
		c.log.Error("close recording", "err", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.srv.cfg.Sessions.EndSession(ctx, c.rec.id, store.SessionEnded, time.Now(), reason, -1); err != nil {
		c.log.Error("record session end", "session", c.rec.id, "err", err)
	}
}

// recordParam formats one parameter for the recording.
func (r *queryRecorder) param(s string) string {
	if r.redact {
		return "<redacted>"
	}
	if len(s) > dbrec.MaxRecordedParam {
		return fmt.Sprintf("%s… (%d bytes)", s[:dbrec.MaxRecordedParam], len(s))
	}
	return s
}
