package postgres

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/internal/frontend"
	"github.com/bastionhq/bastion/protocols/dbrec"
	"github.com/bastionhq/bastion/protocols/postgres/pgsql"
	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// queryRecorder is a connection's recording and session row.
type queryRecorder struct {
	id     string
	name   string
	log    *recorder.QueryLog
	redact bool
	// unrecorded is set when a fail-open role's recording failed: the
	// session goes on and nothing more is written.
	unrecorded bool
	// durable: the role's durability is statement. uncommitted: an exec
	// event was written that is not yet known durable.
	durable, uncommitted bool
}

// startRecording creates the recording and the session row; the session
// may not start without them (fail closed).
func (c *conn) startRecording(ctx context.Context) error {
	id := frontend.NewSessionID()
	ql, name, err := dbrec.Open(ctx, c.srv.cfg.Recordings, c.srv.cfg.Sessions, dbrec.Session{ID: id, Protocol: querylog.ProtocolPostgres,
		Grant: c.grant, Login: c.target.Username, Database: c.target.Database, Client: c.nc.RemoteAddr().String(), Start: time.Now()})
	if err != nil {
		if !c.failOpen() {
			return err
		}
		c.unrecorded(ctx, err)
		c.rec = &queryRecorder{id: id, unrecorded: true}
		return nil
	}
	c.rec = &queryRecorder{id: id, name: name, log: ql, redact: c.target.RedactParameters,
		durable: dbrec.Durable(c.srv.cfg.Policy(), c.grant)}
	return nil
}

// forwarding records, under durability: statement, that the statement of e
// is about to be forwarded (an exec event); commitForwarded makes it durable
// before the message that runs it reaches the target.
func (c *conn) forwarding(e entry) {
	if !c.rec.durable || c.rec.unrecorded || e.kind != entryExec {
		return
	}
	c.write(querylog.Event{Type: querylog.TypeExec, Statement: e.text, Params: e.params, Rule: e.rule})
	c.rec.uncommitted = true
}

// commitForwarded returns once the exec events written are durable, with
// the other sessions' records in one group commit. When they cannot be
// made durable the session ends (fail closed) and the error says that the
// message must not be forwarded; a fail-open session goes on unrecorded.
func (c *conn) commitForwarded() error {
	if !c.rec.uncommitted || c.rec.unrecorded {
		return nil
	}
	c.rec.uncommitted = false
	err := c.rec.log.Commit(c.ctx)
	switch {
	case err == nil:
		return nil
	case c.ctx.Err() != nil:
		return context.Cause(c.ctx)
	case c.failOpen():
		c.rec.unrecorded = true
		c.unrecorded(context.WithoutCancel(c.ctx), err)
		return nil
	}
	c.log.Error("recording failed; ending the session", "session", c.rec.id, "err", err)
	c.end(errNotRecorded)
	return errNotRecorded
}

// errNotRecorded ends a fail-closed session whose recording failed.
var errNotRecorded = errors.New("the session can no longer be recorded")

// params formats a Bind's parameters for the recording: text as is,
// binary in hex, NULL as "NULL"; every one "<redacted>" when the target
// says so.
func (r *queryRecorder) params(m bindMsg) []string {
	if len(m.Params) == 0 {
		return nil
	}
	out := make([]string, len(m.Params))
	for i, p := range m.Params {
		switch {
		case r.redact:
			out[i] = "<redacted>"
		case p == nil:
			out[i] = "NULL"
		case m.Binary[i]:
			out[i] = `\x` + hex.EncodeToString(p[:min(len(p), dbrec.MaxRecordedParam/2)])
		case utf8.Valid(p):
			out[i] = string(p[:min(len(p), dbrec.MaxRecordedParam)])
		default:
			out[i] = `\x` + hex.EncodeToString(p[:min(len(p), dbrec.MaxRecordedParam/2)])
		}
		if len(out[i]) < len(p) && !r.redact {
			out[i] += fmt.Sprintf("… (%d bytes)", len(p))
		}
	}
	return out
}

// write records an event; a recording that fails ends the session (fail
// closed).
func (c *conn) write(e querylog.Event) {
	if c.rec.unrecorded {
		return
	}
	e.Statement = pgsql.Redact(e.Statement)
	if err := c.rec.log.Write(e); err != nil {
		if c.failOpen() {
			c.rec.unrecorded = true
			c.unrecorded(context.WithoutCancel(c.ctx), err)
			return
		}
		c.log.Error("recording failed; ending the session", "session", c.rec.id, "err", err)
		c.end(errNotRecorded)
	}
}

// failOpen reports whether the grant's role lets the session go on
// unrecorded when recording fails.
func (c *conn) failOpen() bool {
	return dbrec.FailOpen(c.srv.cfg.Policy(), c.grant)
}

// unrecorded logs and audits that a fail-open session goes on without
// (the rest of) its recording.
func (c *conn) unrecorded(ctx context.Context, err error) {
	dbrec.Unrecorded(ctx, c.log, c.srv.cfg.Access, c.actor, c.grant, querylog.ProtocolPostgres, err)
}

// done records a statement that completed or failed.
func (r *queryRecorder) done(c *conn, e entry, d time.Duration, tag, errText string) {
	if e.text == "" && tag == "" && errText == "" {
		return
	}
	c.write(querylog.Event{Type: querylog.TypeQuery, Statement: e.text, Params: e.params, Decision: querylog.Allow, Rule: e.rule,
		DurationMS: float64(d.Microseconds()) / 1000, Tag: tag, Rows: commandRows(tag), Error: errText})
}

// end records the end of the session: statements still pending, the end
// event, the session row.
func (r *queryRecorder) end(ctx context.Context, c *conn, reason string) {
	for _, e := range c.pending.drain() {
		r.done(c, e, 0, "", "unfinished: "+reason)
	}
	if r.log == nil { // fail-open, and the recording never started
		return
	}
	if err := r.log.Write(querylog.Event{Type: querylog.TypeEnd, Reason: reason}); err != nil {
		c.log.Error("record session end", "session", r.id, "err", err)
	}
	if err := r.log.Close(); err != nil {
		c.log.Error("close recording", "session", r.id, "err", err)
	}
	if err := c.srv.cfg.Sessions.EndSession(ctx, r.id, store.SessionEnded, time.Now(), reason, -1); err != nil {
		c.log.Error("record session end", "session", r.id, "err", err)
	}
}

// guaranteeRecording asks storage that can tell (the spool in front of
// object storage) whether the recording of a fail-closed role's session
// would be kept, before the target is opened.
func (c *conn) guaranteeRecording(ctx context.Context) error {
	return dbrec.Guarantee(ctx, c.srv.cfg.Recordings, c.failOpen())
}
