package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/bastionhq/bastion/bastion/policy"
)

// relayBufferSize is the read and write buffer of each side: a message
// up to this size is forwarded straight from the read buffer, larger ones
// are streamed.
const relayBufferSize = 64 << 10

// maxServerMessage bounds a message from the target that the relay reads
// whole (CommandComplete, ErrorResponse, …): PostgreSQL's own limit.
const maxServerMessage = 1 << 30

// poisonSQL replaces a denied statement: the target rejects it with a
// syntax error, so it runs nothing, skips the rest of the extended-protocol
// batch up to Sync and aborts an open transaction — what PostgreSQL does
// for any failed statement — and the relay rewrites that error into
// Bastion's. The marker makes the error recognisable.
const (
	poisonMarker = "bastion_statement_denied"
	poisonSQL    = poisonMarker + " -- this statement was denied by Bastion"
	// codeSyntaxError is what the target answers poisonSQL with.
	codeSyntaxError = "42601"
	// codeUndefinedPortal is what the target answers an Execute of the
	// portal named poisonMarker with: a denied execution.
	codeUndefinedPortal = "34000"
)

// poisonExecute replaces the Execute of a held statement that was not
// approved: the portal does not exist, so the target runs nothing and skips
// to Sync, and nothing of the session's state changes.
var poisonExecute = appendMsg(nil, msgExecute, cstr(poisonMarker), []byte{0, 0, 0, 0})

// entryKind is the kind of a pending entry.
type entryKind uint8

const (
	entryExec   entryKind = iota // a statement that will complete or fail
	entryPoison                  // a denied statement whose error is rewritten
	entrySync                    // the end of a batch: ReadyForQuery
)

// entry is what the client-to-target loop told the target to do, in
// order, so that the target-to-client loop can match the answers.
type entry struct {
	kind   entryKind
	text   string
	params []string
	rule   string
	start  time.Time
	denial []byte // entryPoison: the ErrorResponse the client gets
}

// The pending queue's bounds: the client-to-target loop reads no further
// client message while the queue is at either, so that a client that
// sends without reading (a million Syncs, Executes pipelined without end)
// holds at most this much of Bastion's memory, plus one message of up to
// Config.MaxMessageSize that may take it over. It reads again as the
// target answers (targetToClient takes entries), which the target does
// only while the client reads what it is sent.
const (
	// maxPendingEntries bounds the entries pending per connection. It is
	// well over what PostgreSQL may answer without sending (its 8 KiB
	// output buffer of 5-byte answers, 1,639), although waitRoom asks the
	// target to flush anyway.
	maxPendingEntries = 4096
	// maxPendingBytes bounds the statement texts, parameters and denials
	// the pending entries hold, each entry counted with entryOverhead.
	maxPendingBytes = 4 << 20
	// entryOverhead is what an entry costs besides the strings it holds.
	entryOverhead = int(unsafe.Sizeof(entry{}))
)

// size is what e holds of memory, counted against maxPendingBytes.
func (e *entry) size() int {
	n := entryOverhead + len(e.text) + len(e.rule) + len(e.denial)
	for _, p := range e.params {
		n += int(unsafe.Sizeof(p)) + len(p)
	}
	return n
}

// queue is the pending entries, pushed by the client-to-target loop before
// it forwards a message, taken by the target-to-client loop. Its size is
// bounded (full, room).
type queue struct {
	mu    sync.Mutex
	items []entry
	head  int
	bytes int // the size of items[head:]
	syncs int // the syncs in items[head:]
	// failed: the target failed a statement of the current batch, and
	// skips the rest of it up to Sync. Set by failBatch, cleared by
	// endBatch.
	failed bool
	// status is the transaction status of the last batch ended.
	status byte
	// room is signalled when entries are removed.
	room chan struct{}
}

// push queues es and returns the statements of es that the target will
// skip because they come after a failure in the current batch: they are
// not queued (poison entries neither), so that a batch that failed does
// not hold entries until its Sync.
func (q *queue) push(es ...entry) (skipped []entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head > 64 && q.head*2 > len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	for _, e := range es {
		switch {
		case e.kind == entrySync:
			q.syncs++
		case q.failed && q.syncs == 0:
			if e.kind == entryExec {
				skipped = append(skipped, e)
			}
			continue
		}
		q.bytes += e.size()
		q.items = append(q.items, e)
	}
	return skipped
}

// removed accounts for e leaving the queue (q.mu held).
func (q *queue) removed(e *entry) {
	q.bytes -= e.size()
	if e.kind == entrySync {
		q.syncs--
	}
	select {
	case q.roomLocked() <- struct{}{}:
	default:
	}
}

// roomLocked is the room channel (q.mu held).
func (q *queue) roomLocked() chan struct{} {
	if q.room == nil {
		q.room = make(chan struct{}, 1)
	}
	return q.room
}

// full reports whether the queue is at one of its bounds; an empty queue
// never is, whatever its one message held.
func (q *queue) full() (bool, <-chan struct{}) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items) - q.head
	return n > 0 && (n >= maxPendingEntries || q.bytes >= maxPendingBytes), q.roomLocked()
}

// take removes the first entry of kind k in the current batch (before the
// first sync).
func (q *queue) take(k entryKind) (entry, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := q.head; i < len(q.items) && q.items[i].kind != entrySync; i++ {
		if q.items[i].kind != k {
			continue
		}
		e := q.items[i]
		if i == q.head {
			q.items[i] = entry{}
			q.head++
		} else {
			q.items = slices.Delete(q.items, i, i+1)
		}
		q.removed(&e)
		return e, true
	}
	return entry{}, false
}

// failBatch marks the current batch failed and removes its statements and
// poisons: the target skips them up to the batch's Sync, or, in a Query,
// runs none after the one that failed. It returns the statements.
func (q *queue) failBatch() []entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.failed = true
	var left []entry
	i := q.head
	for i < len(q.items) && q.items[i].kind != entrySync {
		e := q.items[i]
		q.removed(&e)
		if e.kind == entryExec {
			left = append(left, e)
		}
		i++
	}
	if i > q.head {
		q.items = slices.Delete(q.items, q.head, i)
	}
	return left
}

// endBatch removes the current batch through its sync, which the target
// answered with transaction status status, and returns the statements left
// in it.
func (q *queue) endBatch(status byte) []entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.failed = false
	q.status = status
	var left []entry
	for q.head < len(q.items) {
		e := q.items[q.head]
		q.items[q.head] = entry{}
		q.head++
		q.removed(&e)
		if e.kind == entrySync {
			break
		}
		if e.kind == entryExec {
			left = append(left, e)
		}
	}
	return left
}

// idle reports whether the target has answered everything and is out of
// any transaction.
func (q *queue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head == len(q.items) && q.status == 'I'
}

// empty reports whether nothing is pending.
func (q *queue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head == len(q.items)
}

// drain removes every entry, for the end of the connection, and lets
// their memory go.
func (q *queue) drain() []entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	var left []entry
	for _, e := range q.items[q.head:] {
		if e.kind == entryExec {
			left = append(left, e)
		}
	}
	q.items, q.head, q.bytes, q.syncs, q.failed = nil, 0, 0, 0, false
	return left
}

// extendedState is the client's prepared statements and portals, as the
// client-to-target loop tracks them for recording.
type extendedState struct {
	stmts   map[string]prepared
	portals map[string]portal
	// sqlHolds are the statements prepared with SQL PREPARE that need
	// approval, by name: each EXECUTE of one is held.
	sqlHolds map[string]sqlHold
	// inBatch is set once an extended-protocol message has gone to the
	// target since the last Sync (or Query): if one of them fails, the
	// target skips the rest up to Sync.
	inBatch bool
}

// sqlHold is a statement prepared with SQL PREPARE that needs approval.
type sqlHold struct {
	d    policy.QueryDecision
	text string // the PREPARE statement
}

type prepared struct {
	text string
	rule string
	// hold is the require-approval decision of the statement: each
	// execution of it waits for an approver, not its Parse. shown is the
	// statement as the approver sees it.
	hold  *policy.QueryDecision
	shown string
}

type portal struct {
	prepared
	params []string
	// shown is what the approver of a held statement sees: its text and
	// this portal's parameters.
	shown string
	// approved: this portal's execution was approved; a later Execute of
	// the same portal fetches more of its rows.
	approved bool
}

// maxTracked bounds the statements and portals tracked per connection; a
// client that makes more loses their texts in the recording, not their
// checks: denials happen at Parse, and a statement that needs approval is
// refused when it cannot be tracked.
const maxTracked = 10000

// Bounds on the buffer of a message read whole that is larger than the
// read buffer (a long statement from the client, a long error from the
// target).
const (
	// readChunk is how much the buffer grows by before the bytes to fill
	// it have come: a header announcing the largest message a client may
	// send costs Bastion what the client sent, not what it announced.
	readChunk = 64 << 10
	// maxRetainedMessage is the largest such buffer a connection keeps
	// for its next message; a larger one is let go after use.
	maxRetainedMessage = 1 << 20
)

// readWhole returns the message at the front of r, header included, read
// whole: from r's buffer when it fits, else into *big (or, over
// maxRetainedMessage, a buffer that is not kept). The caller discards it
// from r when done (discard).
func readWhole(r *bufio.Reader, n int, big *[]byte) (msg []byte, discard int, err error) {
	total := headerLen + n
	if total <= r.Size() {
		msg, err = r.Peek(total)
		return msg, total, err
	}
	buf := (*big)[:0]
	if total > maxRetainedMessage {
		buf = nil
	}
	for len(buf) < total {
		k := min(total-len(buf), readChunk)
		start := len(buf)
		buf = slices.Grow(buf, k)[:start+k]
		if _, err := io.ReadFull(r, buf[start:]); err != nil {
			return nil, 0, err
		}
	}
	if total <= maxRetainedMessage {
		*big = buf
	}
	return buf, 0, nil
}

// forward copies the message at the front of r (n body bytes) to w
// without decoding it.
func forward(w *bufio.Writer, r *bufio.Reader, n int) error {
	total := headerLen + n
	if total <= r.Size() {
		msg, err := r.Peek(total)
		if err != nil {
			return err
		}
		if _, err := w.Write(msg); err != nil {
			return err
		}
		_, err = r.Discard(total)
		return err
	}
	if _, err := io.CopyN(w, r, int64(total)); err != nil {
		return err
	}
	return nil
}

// clientToTarget relays the client's messages to the target, deciding
// each statement on the way. It returns nil when the client terminates.
func (c *conn) clientToTarget() error {
	limit := c.srv.cfg.MaxMessageSize
	for {
		if err := c.waitRoom(); err != nil {
			return err
		}
		if c.br.Buffered() == 0 {
			if err := c.ubw.Flush(); err != nil {
				return err
			}
			c.touch() // once per read from the client, not per message
		}
		hdr, err := c.br.Peek(headerLen)
		if err != nil {
			return err
		}
		if !c.ext.inBatch && c.ext.portals != nil && c.pending.idle() {
			// Nothing was sent since the last Sync or Query, and the
			// target answered it out of any transaction: a portal lasts
			// until the end of its transaction, so the target has none,
			// and none is tracked (those the client never closed would
			// otherwise stay, with their parameters, up to maxTracked).
			c.ext.portals = nil
		}
		typ := hdr[0]
		if err := checkClientType(typ); err != nil {
			return err
		}
		c.copy.clientMessage(typ)
		switch typ {
		case msgQuery, msgParse, msgBind, msgExecute, msgClose, msgFunctionCall:
			n, err := bodyLen(hdr, limit)
			if err != nil {
				return err
			}
			msg, discard, err := readWhole(c.br, n, &c.bigIn)
			if err != nil {
				return err
			}
			if err := c.clientMessage(typ, msg); err != nil {
				return err
			}
			if _, err := c.br.Discard(discard); err != nil {
				return err
			}
		case msgSync:
			c.push(entry{kind: entrySync})
			if err := forward(c.ubw, c.br, 0); err != nil {
				return err
			}
		case msgTerminate:
			// Not forwarded: the target connection may serve another
			// session (pool.go).
			return c.ubw.Flush()
		default:
			if isCopyMessage(typ) {
				if err := c.copy.check(typ); err != nil {
					return err
				}
			}
			n, err := bodyLen(hdr, maxServerMessage)
			if err != nil {
				return err
			}
			if err := forward(c.ubw, c.br, n); err != nil {
				return err
			}
		}
		c.ext.inBatch = typ != msgSync && typ != msgQuery && typ != msgFunctionCall
	}
}

// msgFlush asks the server to send what it has buffered.
const msgFlush = 'H'

// flushMsg is a Flush message, which the target does not answer.
var flushMsg = appendMsg(nil, msgFlush)

// waitRoom waits, while the pending queue is full, for the target to
// answer (or for the connection to end), without reading the client: the
// client's messages stay in the kernel's buffers and, once those are full,
// in the client. What Bastion forwarded is flushed to the target first,
// with a Flush message so that the target sends the answers it holds back
// until a Sync (those of an extended-protocol batch).
func (c *conn) waitRoom() error {
	full, room := c.pending.full()
	if !full {
		return nil
	}
	if _, err := c.ubw.Write(flushMsg); err != nil {
		return err
	}
	if err := c.ubw.Flush(); err != nil {
		return err
	}
	for full {
		select {
		case <-room:
		case <-c.ctx.Done():
			return context.Cause(c.ctx)
		}
		full, room = c.pending.full()
	}
	return nil
}

// push queues es; statements the target skips after a failure in their
// batch are recorded as such instead.
func (c *conn) push(es ...entry) {
	for _, e := range es {
		c.forwarding(e)
	}
	for _, e := range c.pending.push(es...) {
		c.rec.done(c, e, 0, "", notRun)
	}
}

// notRun is what the recording says of a statement the target skipped.
const notRun = "not run: an earlier statement failed"

// clientMessage handles one message the proxy reads: msg is the whole
// message, header included.
func (c *conn) clientMessage(typ byte, msg []byte) error {
	body := msg[headerLen:]
	switch typ {
	case msgQuery:
		sql, err := parseQuery(body)
		if err != nil {
			return err
		}
		v := c.dec.decide(sql)
		c.lasting = c.lasting || v.lasting
		// Even when denied: the target then drops the data a client
		// sends without waiting for its answer.
		c.copy.expected = startsCopy(v.stmts, sql)
		d, shown := c.sqlPrepared(v, sql)
		d = c.approve(c.checkSignals(sql, d), shown)
		if d.Action != policy.CommandAllow {
			c.deny(d, sql)
			c.push(entry{kind: entryPoison, denial: denial(d)}, entry{kind: entrySync})
			_, err := c.ubw.Write(appendMsg(nil, msgQuery, cstr(poisonSQL)))
			return err
		}
		now := time.Now()
		switch {
		case v.stmts == nil && sql != "":
			c.push(entry{kind: entryExec, text: sql, start: now})
		default:
			for i := range v.stmts {
				c.push(entry{kind: entryExec, text: v.stmts[i].Text, rule: v.each[i].Rule, start: now})
			}
		}
		c.push(entry{kind: entrySync})
	case msgParse:
		m, err := parseParse(body)
		if err != nil {
			return err
		}
		v := c.dec.decide(m.Query)
		c.lasting = c.lasting || v.lasting
		d, shown := c.sqlPrepared(v, m.Query)
		d = c.checkSignals(m.Query, c.parseDecision(m, d))
		if old := c.ext.stmts[""]; m.Name == "" && c.inBatchHeld(old, m.Query) && d.Action != policy.CommandDeny {
			// The target skips this Parse if an earlier message of the
			// batch failed, and keeps the unnamed statement that needs
			// approval: its executions stay held, showing both. (A Parse
			// first in its batch always replaces the unnamed statement.)
			if d.Action != policy.CommandRequireApproval {
				d, shown = *old.hold, m.Query
			}
			if len(shown)+len(old.shown) > maxHeldShown {
				d = tooLongToShow(d)
			} else {
				shown += "\n-- or, if the target kept an earlier statement: " + old.shown
			}
		}
		if d.Action == policy.CommandDeny {
			c.deny(d, m.Query)
			c.push(entry{kind: entryPoison, denial: denial(d)})
			poison := appendMsg(nil, msgParse, cstr(m.Name), cstr(poisonSQL), []byte{0, 0})
			_, err := c.ubw.Write(poison)
			return err
		}
		if c.ext.stmts == nil {
			c.ext.stmts = map[string]prepared{}
		}
		if _, ok := c.ext.stmts[m.Name]; ok || len(c.ext.stmts) < maxTracked || m.Name == "" {
			st := prepared{text: m.Query, rule: v.overall.Rule}
			if d.Action == policy.CommandRequireApproval {
				st.hold, st.shown = &d, shown
			}
			c.ext.stmts[m.Name] = st
		}
	case msgBind:
		m, err := parseBind(body)
		if err != nil {
			return err
		}
		if c.ext.portals == nil {
			c.ext.portals = map[string]portal{}
		}
		st := c.ext.stmts[m.Statement]
		if old, ok := c.ext.portals[m.Portal]; ok || len(c.ext.portals) < maxTracked || m.Portal == "" {
			p := portal{prepared: st, params: c.rec.params(m)}
			if st.hold != nil {
				p.shown = heldText(st.shown, m, c.rec.redact)
			}
			if old.hold != nil && !old.approved {
				// The target may skip this Bind (after an error, up to
				// Sync) and keep the portal that waits for approval: its
				// execution stays held, and the approver sees both.
				if p.hold == nil {
					p.hold, p.shown = old.hold, st.text
				}
				if len(p.shown)+len(old.shown) > maxHeldShown {
					return c.refuseBind(tooLongToShow(*p.hold), st.text)
				}
				p.shown += "\n-- or, if the portal still holds an earlier binding: " + old.shown
			}
			c.ext.portals[m.Portal] = p
		} else if st.hold != nil {
			// An untracked portal of a held statement would run unasked.
			return c.refuseBind(policy.QueryDecision{Action: policy.CommandDeny, Rule: st.hold.Rule,
				Reason: fmt.Sprintf("%s, and this session has too many open portals to hold it for approval", st.hold.Reason)}, st.text)
		}
	case msgExecute:
		name, err := parseExecute(body)
		if err != nil {
			return err
		}
		p := c.ext.portals[name]
		c.copy.expected = startsCopy(nil, p.text)
		if p.hold != nil && !p.approved {
			d := c.approve(*p.hold, p.shown)
			if d.Action != policy.CommandAllow {
				c.deny(d, p.text)
				delete(c.ext.portals, name)
				c.push(entry{kind: entryPoison, denial: denial(d)})
				_, err := c.ubw.Write(poisonExecute)
				return err
			}
			p.approved = true
			c.ext.portals[name] = p
		}
		c.push(entry{kind: entryExec, text: p.text, params: p.params, rule: p.rule, start: time.Now()})
	case msgClose:
		kind, name, err := parseClose(body)
		if err != nil {
			return err
		}
		// A Close the target skips (after an error, up to Sync) leaves the
		// statement or portal there: one that needs approval stays
		// tracked, so that it is still held.
		if kind == 'S' {
			if c.ext.stmts[name].hold == nil {
				delete(c.ext.stmts, name)
			}
		} else if p := c.ext.portals[name]; p.hold == nil || p.approved {
			delete(c.ext.portals, name)
		}
	case msgFunctionCall:
		d := c.dec.decideFunctionCall()
		if d.Action != policy.CommandAllow {
			c.deny(d, "<function call>")
			c.push(entry{kind: entryPoison, denial: denial(d)}, entry{kind: entrySync})
			_, err := c.ubw.Write(appendMsg(nil, msgQuery, cstr(poisonSQL)))
			return err
		}
		c.push(entry{kind: entryExec, text: "<function call>", start: time.Now()}, entry{kind: entrySync})
	}
	// Under durability: statement, what this message runs reaches the
	// target only once its record is durable.
	if err := c.commitForwarded(); err != nil {
		return err
	}
	_, err := c.ubw.Write(msg)
	return err
}

// maxHeldShown bounds what the approver of a held execution would be shown
// when the relay cannot tell which of several statements or bindings the
// target runs (a Parse or Bind the target may skip after an error, while
// an earlier one that needs approval stays): each such message adds what
// it may run to what is shown, so without a bound a client could make the
// relay hold a statement's text again for every few bytes it sends. Past
// the bound the message is refused.
const maxHeldShown = 1 << 20

// tooLongToShow is the refusal of a message that would take what an
// approver of the held execution d is shown over maxHeldShown.
func tooLongToShow(d policy.QueryDecision) policy.QueryDecision {
	return policy.QueryDecision{Action: policy.CommandDeny, Rule: d.Rule,
		Reason: d.Reason + ", and what its approver would be shown is too long: the statements this execution may run are over 1 MiB"}
}

// refuseBind denies a Bind by rule d: the target gets an Execute of a
// portal that does not exist instead, which fails the batch.
func (c *conn) refuseBind(d policy.QueryDecision, text string) error {
	c.deny(d, text)
	c.push(entry{kind: entryPoison, denial: denial(d)})
	_, err := c.ubw.Write(poisonExecute)
	return err
}

// inBatchHeld reports whether a Parse of text into the unnamed statement
// may be skipped while old, which needs approval, stays: it comes after
// other messages of its batch, and old is another statement.
func (c *conn) inBatchHeld(old prepared, text string) bool {
	return c.ext.inBatch && old.hold != nil && old.text != text
}

// denial is the error a denied statement gets.
func denial(d policy.QueryDecision) []byte {
	msg := "bastion: permission denied"
	if d.Rule != "" {
		msg += " by rule " + d.Rule
	}
	if d.Reason != "" {
		msg += ": " + d.Reason
	}
	return errorResponse(severityError, codeInsufficientPrivilege, msg, "")
}

// targetToClient relays the target's messages to the client, matching
// completions and errors with the pending statements. It returns when the
// target's connection ends.
func (c *conn) targetToClient() error {
	var lastDone time.Time
	var batchErr bool
	c.bwMu.Lock()
	locked := true
	defer func() {
		if locked {
			c.bwMu.Unlock()
		}
	}()
	for {
		if c.ubr.Buffered() == 0 {
			if err := c.bw.Flush(); err != nil {
				return err
			}
			c.touch()
			// Wait for the target without holding the client's writer.
			c.bwMu.Unlock()
			locked = false
			_, err := c.ubr.Peek(headerLen)
			c.bwMu.Lock()
			locked = true
			if err != nil {
				return err
			}
		}
		hdr, err := c.ubr.Peek(headerLen)
		if err != nil {
			return err
		}
		typ := hdr[0]
		n, err := bodyLen(hdr, maxServerMessage)
		if err != nil {
			return err
		}
		switch typ {
		case msgCommandComplete, msgErrorResponse, msgReadyForQuery, msgEmptyQuery, msgPortalSuspended, msgParameterStatus:
		case msgCopyInResponse, msgCopyBothResponse:
			// Before the client sees it: its copy messages follow.
			c.copy.serverOpen.Store(true)
			fallthrough
		default:
			if err := forward(c.bw, c.ubr, n); err != nil {
				return err
			}
			continue
		}
		msg, discard, err := readWhole(c.ubr, n, &c.bigOut)
		if err != nil {
			return err
		}
		out := msg
		now := time.Now()
		switch typ {
		case msgCommandComplete, msgEmptyQuery, msgPortalSuspended:
			if e, ok := c.pending.take(entryExec); ok {
				tag := ""
				if typ == msgCommandComplete {
					tag, _, _ = cstring(msg[headerLen:])
				} else if typ == msgPortalSuspended {
					tag = "portal suspended"
				}
				c.rec.done(c, e, since(e.start, lastDone, now), tag, "")
			}
			lastDone = now
		case msgErrorResponse:
			code, text := errorFields(msg[headerLen:])
			if p, ok := c.takePoison(code, text); ok {
				out = p.denial
			} else {
				if e, ok := c.pending.take(entryExec); ok {
					c.rec.done(c, e, since(e.start, lastDone, now), "", fmt.Sprintf("ERROR: %s (SQLSTATE %s)", text, code))
				}
				lastDone = now
			}
			// The target runs nothing more of the batch: it skips to Sync,
			// or runs nothing after the failed statement of a Query.
			for _, e := range c.pending.failBatch() {
				c.rec.done(c, e, 0, "", notRun)
			}
			batchErr = true
		case msgParameterStatus:
			if why := c.misreads(parameterStatus(msg[headerLen:])); why != "" {
				// Something the rules could not see (a function already
				// in the database) changed how the server reads text: the
				// session ends before the client's next statement is read
				// differently.
				err := errors.New("the target now reads statements differently from the rules' parser: " + why)
				c.end(err)
				return err
			}
		case msgReadyForQuery:
			status := byte(0) // unknown
			if len(msg) == headerLen+1 {
				status = msg[headerLen]
				c.lastStatus = status
			}
			for _, e := range c.pending.endBatch(status) {
				why := ""
				if batchErr {
					why = notRun
				}
				c.rec.done(c, e, since(e.start, lastDone, now), "", why)
			}
			batchErr = false
			lastDone = time.Time{}
		}
		if _, err := c.bw.Write(out); err != nil {
			return err
		}
		if _, err := c.ubr.Discard(discard); err != nil {
			return err
		}
	}
}

// takePoison takes the poison entry of the current batch when the target's
// error (code, text) is its statement's.
func (c *conn) takePoison(code, text string) (entry, bool) {
	if (code != codeSyntaxError && code != codeUndefinedPortal) || !strings.Contains(text, poisonMarker) {
		return entry{}, false
	}
	return c.pending.take(entryPoison)
}

// since is a statement's duration: from when it was sent, or when the one
// before it in the batch completed, whichever is later.
func since(start, lastDone, now time.Time) time.Duration {
	if lastDone.After(start) {
		start = lastDone
	}
	return now.Sub(start)
}

// errNoApprovals is the reason a held statement is denied when approvals
// are not configured.
var errNoApprovals = errors.New("approvals are not available here")
