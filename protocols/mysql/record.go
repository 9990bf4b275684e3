package mysql

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// recordBufferSize is the write buffer in front of a recording: events
// reach the storage at the recording's once-a-second Sync, not one system
// call each.
const recordBufferSize = 32 << 10

// maxRecordedParam bounds one recorded parameter; longer ones are cut, with
// a note of their length.
const maxRecordedParam = 1024

// queryRecorder is a connection's recording and session row.
type queryRecorder struct {
	id     string
	name   string
	log    *recorder.QueryLog
	redact bool
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
	now := time.Now()
	id := newSessionID()
	name := recorder.DailyName("mysql", now, id, "jsonl")
	g := c.grant
	info := map[string]string{"session": id, "user": g.User, "target": g.Target, "login": c.target.Username,
		"protocol": "mysql", "kind": "query", "source": c.conn.RemoteAddr().String()}
	ql, err := recorder.NewQueryLog(recorder.WithInfo(ctx, info), recorder.Buffered(c.srv.cfg.Recordings, recordBufferSize), name, now)
	if err != nil {
		if c.failOpen() {
			c.unrecorded(ctx, err)
			return nil
		}
		return err
	}
	req := ""
	if g.RequestID != 0 {
		req = strconv.FormatInt(g.RequestID, 10)
	}
	database := c.target.Database
	if database == "" {
		database = c.target.Name
	}
	if err := ql.Write(querylog.Event{Time: now, Type: querylog.TypeStart, User: g.User, Target: g.Target, Database: database,
		RequestID: req, ClientAddr: c.conn.RemoteAddr().String(), Protocol: querylog.ProtocolMySQL}); err != nil {
		ql.Close()
		return err
	}
	sess := &store.Session{ID: id, User: g.User, Target: g.Target, Login: c.target.Username, Protocol: "mysql", Kind: "query",
		RequestID: g.RequestID, Source: c.conn.RemoteAddr().String(), Recording: name, State: store.SessionLive,
		StartedAt: now, ExitStatus: -1}
	if err := c.srv.cfg.Sessions.CreateSession(ctx, sess); err != nil {
		ql.Close()
		return fmt.Errorf("record session: %w", err)
	}
	c.rec = &queryRecorder{id: id, name: name, log: ql, redact: c.target.RedactParameters}
	return nil
}

// errRecording ends a session whose recording failed (fail closed).
var errRecording = errors.New("the session can no longer be recorded")

// record writes a query event. A failure ends the session.
func (c *clientConn) record(e querylog.Event) {
	if c.rec == nil {
		return
	}
	e.Type = querylog.TypeQuery
	if err := c.rec.log.Write(e); err != nil {
		if c.failOpen() {
			c.rec.log.Close()
			c.rec = nil
			c.unrecorded(context.WithoutCancel(c.ctx), err)
			return
		}
		c.log.Error("record query", "err", err)
		c.end(errRecording)
	}
}

// failOpen reports whether the grant's role lets the session go on
// unrecorded when recording fails.
func (c *clientConn) failOpen() bool {
	g := c.grant
	return c.srv.cfg.Policy().RecordingFor(g.User, g.Target, g.Role) == policy.FailOpen
}

// guaranteeRecording asks storage that can tell (the spool in front of
// object storage) whether a fail-closed session's recording would be kept.
func (c *clientConn) guaranteeRecording(ctx context.Context) error {
	gu, ok := c.srv.cfg.Recordings.(recorder.Guarantor)
	if !ok || c.srv.cfg.Sessions == nil || c.failOpen() {
		return nil
	}
	return gu.Guarantee(ctx)
}

// unrecorded logs and audits that a fail-open session goes on without a
// recording.
func (c *clientConn) unrecorded(ctx context.Context, err error) {
	g := c.grant
	c.log.Error("recording failed; the session goes on unrecorded (fail-open role)", "err", err)
	c.srv.cfg.Access.Record(ctx, c.actor, audit.Event{Type: audit.SessionStart, Subject: g.User, Target: g.Target,
		RequestID: g.RequestID, Outcome: audit.OutcomeError,
		Reason:  "recording failed, session continues unrecorded (fail-open): " + err.Error(),
		Details: map[string]string{"protocol": "mysql"}})
}

// finish records the session's end.
func (c *clientConn) finish(reason string) {
	ctx := context.WithoutCancel(c.ctx)
	if c.grant != nil {
		c.srv.cfg.Access.Record(ctx, c.actor, audit.Event{Type: audit.SessionEnd, Subject: c.grant.User, Target: c.grant.Target,
			RequestID: c.grant.RequestID, Reason: reason, Details: map[string]string{"protocol": "mysql", "session": c.sessionID()}})
	}
	c.log.Info("session ended", "reason", reason)
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
	if len(s) > maxRecordedParam {
		return fmt.Sprintf("%s… (%d bytes)", s[:maxRecordedParam], len(s))
	}
	return s
}
