package mysql

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/protocols/mysql/mysqlsql"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// lingerTimeout is how long a connection that Bastion ended waits for the
// client's next command before closing, so that the client reads the ERR
// packet that says why as the answer to that command.
const lingerTimeout = 2 * time.Second

// prepared is a statement prepared on the target through this session.
type prepared struct {
	v      *verdict
	params int
	types  []byte // the parameter types last bound (2 bytes each)
	long   map[int]bool
}

// commands reads and relays the client's commands until the session ends.
func (c *clientConn) commands() {
	reason := "client closed the connection"
	defer func() { c.finish(reason) }()
	if err := c.startMode(); err != nil {
		c.log.Warn("read sql_mode", "err", err)
		reason = "connection error: " + err.Error()
		return
	}
	if err := c.startWire(); err != nil {
		c.log.Warn("read the connection ID and max_allowed_packet", "err", err)
		reason = "connection error: " + err.Error()
		return
	}
	if err := c.startTableCase(); err != nil {
		c.log.Warn("read lower_case_table_names", "err", err)
		reason = "connection error: " + err.Error()
		return
	}
	for {
		c.mu.Lock()
		c.busy = false
		c.idleSince = time.Now()
		if c.ctx.Err() != nil {
			c.mu.Unlock()
			reason = c.tellEnd(1)
			return
		}
		c.mu.Unlock()
		p, seq, err := c.r.readMessage(c.maxMessage)
		if err == nil {
			err = checkCommandSeq(seq)
		}
		if err != nil {
			switch {
			case c.ctx.Err() != nil:
				reason = c.tellEnd(1)
			case errors.Is(err, errTooLarge):
				c.fail(seq+1, erTooLarge, "08S01", fmt.Sprintf("bastion: %v (the target's max_allowed_packet, or Bastion's limit)", err))
				reason = "client sent a message over the limit"
			case errors.Is(err, errSequence):
				c.fail(1, erPacketsOutOfOrder, "08S01", fmt.Sprintf("bastion: %v", err))
				reason = "protocol violation: " + err.Error()
			case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			default:
				c.log.Debug("read command", "err", err)
			}
			return
		}
		c.mu.Lock()
		c.busy = true
		c.mu.Unlock()
		if c.ctx.Err() != nil {
			reason = c.tellEnd(seq + 1)
			return
		}
		if len(p) == 0 {
			c.fail(seq+1, erUnknownCom, "08S01", "bastion: empty command")
			continue
		}
		if p[0] == comQuit {
			return
		}
		if err := c.command(p, seq); err != nil {
			if c.ctx.Err() != nil {
				reason = c.tellEnd(seq + 1)
				return
			}
			c.log.Info("relay ended", "err", err)
			reason = "connection error: " + err.Error()
			return
		}
	}
}

// tellEnd tells the client why Bastion ends the session (the cause of the
// connection's context), closes the target's side, and lingers for the
// client's next command so that it reads the ERR packet as its answer.
func (c *clientConn) tellEnd(seq byte) string {
	cause := context.Cause(c.ctx)
	why := "the session ended"
	if cause != nil {
		why = cause.Error()
	}
	if c.up != nil {
		c.up.Close()
	}
	c.conn.SetDeadline(time.Now().Add(lingerTimeout))
	if err := c.w.send(seq, errPacket(erConnKilled, "70100", "bastion: "+why)); err != nil {
		return why
	}
	if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.r.readMessage(c.srv.cfg.MaxMessage) // the client's next command, or EOF, or the linger's end
	return why
}

// command handles one client command.
func (c *clientConn) command(p []byte, seq byte) error {
	switch p[0] {
	case comStmtSendLongData, comStmtClose, comStmtReset, comStmtFetch:
		if id, st := c.stmtOf(p); st == nil {
			c.unknownStmt(p, seq, id)
			return nil
		}
	}
	switch p[0] {
	case comQuery:
		return c.query(p, seq)
	case comStmtPrepare:
		return c.prepare(p, seq)
	case comStmtExecute:
		return c.execute(p, seq)
	case comStmtSendLongData:
		if len(p) >= 7 {
			// Only the statement's own parameters are marked: the map
			// holds no more entries than it has.
			if st, i := c.stmts[binary.LittleEndian.Uint32(p[1:])], int(binary.LittleEndian.Uint16(p[5:])); st != nil && i < st.params {
				st.long[i] = true
			}
		}
		return c.forward(seq, p) // no response
	case comStmtClose:
		if len(p) >= 5 {
			delete(c.stmts, binary.LittleEndian.Uint32(p[1:]))
		}
		return c.forward(seq, p) // no response
	case comStmtReset:
		if len(p) >= 5 {
			if st := c.stmts[binary.LittleEndian.Uint32(p[1:])]; st != nil {
				clear(st.long)
			}
		}
		return c.simple(p, seq)
	case comStmtFetch:
		if err := c.forward(seq, p); err != nil {
			return err
		}
		_, err := c.relayUntilEnd()
		return err
	case comInitDB:
		db := string(p[1:])
		if !c.dec.databaseAllowed(db) {
			msg := fmt.Sprintf("bastion: this session is for %s; switching to database %q is not allowed", c.grant.Target, db)
			c.record(querylog.Event{Statement: "USE " + db, Decision: querylog.Deny, Error: msg})
			c.fail(seq+1, erDBAccessDenied, "42000", msg)
			return nil
		}
		// The target's own name stands for its database upstream.
		up := append([]byte{comInitDB}, c.upstreamDB(db)...)
		return c.simple(up, seq)
	case comFieldList:
		return c.fieldList(p, seq)
	case comPing, comSetOption, comStatistics:
		return c.simple(p, seq)
	case comResetConnection:
		clear(c.stmts)
		if err := c.simple(p, seq); err != nil {
			return err
		}
		return c.refreshMode() // the login's default again
	case comChangeUser:
		c.fail(seq+1, erUnknownCom, "08S01", "bastion: COM_CHANGE_USER is not allowed: the session is bound to your grant; reconnect instead")
		return nil
	case comBinlogDump, comBinlogDumpGTID, comRegisterSlave:
		c.fail(seq+1, erUnknownCom, "08S01", "bastion: replication commands are not allowed through Bastion")
		return nil
	}
	c.fail(seq+1, erUnknownCom, "08S01", fmt.Sprintf("bastion: command %#x is not allowed through Bastion", p[0]))
	return nil
}

// upstreamDB maps a database the client names to the target's.
func (c *clientConn) upstreamDB(db string) string {
	if db == c.grant.Target && c.target.Database != "" {
		return c.target.Database
	}
	return db
}

// simple forwards a command whose answer is one packet.
func (c *clientConn) simple(p []byte, seq byte) error {
	if err := c.forward(seq, p); err != nil {
		return err
	}
	_, err := c.relayOne()
	return err
}

// refuse answers a refused query: an ERR packet naming the rule; the
// session goes on.
func (c *clientConn) refuse(seq byte, v *verdict, msg string) {
	for _, s := range v.stmts {
		if !s.Alternate {
			c.record(querylog.Event{Statement: s.Text, Decision: querylog.Deny, Rule: v.rule, Error: msg})
		}
	}
	code := uint16(erTableAccessDenied)
	if v.code != 0 {
		code = v.code
	}
	c.fail(seq+1, code, "42000", "bastion: "+msg)
}

// query decides and relays COM_QUERY: every statement of the string is
// decided first; one refusal refuses them all.
func (c *clientConn) query(p []byte, seq byte) error {
	v, refusal := c.allowed(p[1:], true)
	if refusal != "" {
		c.refuse(seq, v, refusal)
		return nil
	}
	if err := c.forwardingQuery(v); err != nil {
		return err
	}
	start := time.Now()
	if err := c.forward(seq, p); err != nil {
		return err
	}
	i, last := 0, start
	stmts := recorded(v.stmts)
	mode := modeReport{change: c.dec.ran(v.stmts)}
	err := c.relayResponse(func(r result) {
		now := time.Now()
		if i < len(stmts) {
			c.record(querylog.Event{Statement: stmts[i].Text, Decision: querylog.Allow, Rule: v.rule,
				DurationMS: ms(now.Sub(last)), Rows: r.rows, Error: r.err})
		}
		i++
		last = now
		mode.note(r)
	})
	if err != nil {
		return err
	}
	return c.followMode(mode)
}

// recorded are the statements of a verdict that go to the recording.
func recorded(stmts []mysqlsql.Statement) []mysqlsql.Statement {
	n := 0
	for _, s := range stmts {
		if !s.Alternate {
			n++
		}
	}
	return stmts[:n] // Parse appends the alternates last
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// prepare decides COM_STMT_PREPARE on the statement's text.
func (c *clientConn) prepare(p []byte, seq byte) error {
	v, refusal := c.allowed(p[1:], false)
	if refusal != "" {
		c.refuse(seq, v, refusal)
		return nil
	}
	if err := c.forward(seq, p); err != nil {
		return err
	}
	id, params, r, err := c.relayPrepare()
	if err != nil {
		return err
	}
	if r.err != "" {
		c.record(querylog.Event{Statement: v.text, Decision: querylog.Allow, Rule: v.rule, Error: r.err})
		return nil
	}
	v.modeChange = c.dec.ran(v.stmts) // only when executed
	c.stmts[id] = &prepared{v: v, params: params, long: map[int]bool{}}
	return nil
}

// execute relays COM_STMT_EXECUTE of a statement decided when it was
// prepared; a statement held for approval is held again at each run.
func (c *clientConn) execute(p []byte, seq byte) error {
	if len(p) < 10 {
		c.fail(seq+1, erHandshake, "08S01", "bastion: malformed COM_STMT_EXECUTE")
		return nil
	}
	id, st := c.stmtOf(p)
	if st == nil {
		c.unknownStmt(p, seq, id)
		return nil
	}
	ps := st.decode(p)
	if st.v.approval != nil {
		if refusal := c.approve(st.v, st.v.approval, st.v.text+c.shown(ps)); refusal != "" {
			c.refuse(seq, st.v, refusal)
			return nil
		}
	}
	params := c.recorded(ps)
	if err := c.forwarding(st.v.rule, params, st.v.text); err != nil {
		return err
	}
	start := time.Now()
	if err := c.forward(seq, p); err != nil {
		return err
	}
	text := st.v.text
	done := false
	mode := modeReport{change: st.v.modeChange}
	err := c.relayResponse(func(r result) {
		mode.note(r)
		if done {
			return
		}
		done = true
		c.record(querylog.Event{Statement: text, Params: params, Decision: querylog.Allow, Rule: st.v.rule,
			DurationMS: ms(time.Since(start)), Rows: r.rows, Error: r.err})
	})
	if err != nil {
		return err
	}
	return c.followMode(mode)
}

// fieldList relays COM_FIELD_LIST, decided as SHOW COLUMNS of its table.
func (c *clientConn) fieldList(p []byte, seq byte) error {
	table, _, ok := readNulString(p[1:])
	if !ok {
		table = p[1:]
	}
	s := mysqlsql.Statement{Statement: policy.Statement{Text: fmt.Sprintf("SHOW COLUMNS FROM `%s`", table),
		Kind: policy.StatementUtility, Command: "SHOW", Tables: []string{string(table)}}}
	d := c.srv.cfg.Policy().DecideQueries(c.grant.User, c.grant.Target, []policy.Statement{s.Statement})
	if d.Action != policy.CommandAllow {
		v := &verdict{stmts: []mysqlsql.Statement{s}, rule: d.Rule}
		msg := fmt.Sprintf("denied by rule %s: %s", d.Rule, d.Reason)
		if d.Rule == "" {
			msg = "denied: " + d.Reason
		}
		c.audit(v, "denied", msg)
		c.refuse(seq, v, msg)
		return nil
	}
	if err := c.forward(seq, p); err != nil {
		return err
	}
	_, err := c.relayUntilEnd()
	return err
}
