package postgres

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Target connections are kept for reuse, as pgbouncer's session pooling
// does: opening one costs PostgreSQL a process and both sides a SCRAM
// exchange (4096 PBKDF2 rounds), which dominates short sessions. When a
// client leaves a session cleanly — the target idle, not in a transaction,
// every answer relayed — the target connection is reset with DISCARD ALL
// (which ends the role, session authorization, settings, prepared
// statements, cursors, temporary tables, LISTENs and advisory locks of the
// session) and kept for the next session to the same target with the same
// startup parameters. A connection whose session ended any other way —
// access ended, an error, the target's doing — is closed.
const (
	// poolIdleTimeout closes kept connections that no session took.
	poolIdleTimeout = time.Minute
	// poolMaxIdle bounds the connections kept per target and parameters.
	poolMaxIdle = 32
	// poolResetTimeout bounds DISCARD ALL.
	poolResetTimeout = 5 * time.Second
)

// poolKey is what a kept connection must match to be reused: the target
// as configured (a configuration change makes new connections) and the
// startup parameters.
type poolKey struct {
	name, address, database, username, password, tls string
	params                                           string
	// unpooled: the target gives each grant an account of its own, and a
	// connection logged in as one is never handed to another session.
	unpooled bool
}

func newPoolKey(t Target, params map[string]string) poolKey {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(params[k])
		b.WriteByte(0)
	}
	return poolKey{name: t.Name, address: t.Address, database: t.Database, username: t.Username, password: t.Password,
		tls: t.TLS, params: b.String(), unpooled: t.Accounts != nil}
}

type idleUpstream struct {
	up    *upstream
	since time.Time
}

// pool is the kept target connections.
type pool struct {
	mu     sync.Mutex
	idle   map[poolKey][]idleUpstream
	closed bool
}

func newPool() *pool { return &pool{idle: map[poolKey][]idleUpstream{}} }

// get returns a kept connection for k that is still open, or nil.
func (p *pool) get(k poolKey) *upstream {
	for {
		p.mu.Lock()
		list := p.idle[k]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil
		}
		e := list[len(list)-1] // the most recently used: the least likely to have timed out
		p.idle[k] = list[:len(list)-1]
		if len(p.idle[k]) == 0 {
			delete(p.idle, k)
		}
		p.mu.Unlock()
		if time.Since(e.since) < poolIdleTimeout && quiet(e.up.nc) {
			return e.up
		}
		e.up.close()
	}
}

// put keeps up, which was reset, for k.
func (p *pool) put(k poolKey, up *upstream) {
	p.mu.Lock()
	if p.closed || k.unpooled || len(p.idle[k]) >= poolMaxIdle {
		p.mu.Unlock()
		up.close()
		return
	}
	p.idle[k] = append(p.idle[k], idleUpstream{up: up, since: time.Now()})
	p.mu.Unlock()
}

// expire closes the connections kept for longer than poolIdleTimeout.
func (p *pool) expire(now time.Time) {
	var old []*upstream
	p.mu.Lock()
	for k, list := range p.idle {
		keep := list[:0]
		for _, e := range list {
			if now.Sub(e.since) >= poolIdleTimeout {
				old = append(old, e.up)
			} else {
				keep = append(keep, e)
			}
		}
		if len(keep) == 0 {
			delete(p.idle, k)
		} else {
			clear(list[len(keep):])
			p.idle[k] = keep
		}
	}
	p.mu.Unlock()
	for _, up := range old {
		up.close()
	}
}

// close closes every kept connection, and those put later.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = map[poolKey][]idleUpstream{}
	p.mu.Unlock()
	for _, list := range idle {
		for _, e := range list {
			e.up.close()
		}
	}
}

// quiet reports whether nothing arrived on an idle target connection: no
// end of file, no reset, no message. The target says nothing to an idle
// connection unless it ends it (a FATAL at shutdown, an idle timeout).
func quiet(nc net.Conn) bool {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = err == syscall.EAGAIN
		return true
	})
	return err == nil && ok
}

// reset ends the session on up with DISCARD ALL, and checks that the
// target answers exactly that: the connection is idle and in step.
func (up *upstream) reset() error {
	up.nc.SetDeadline(time.Now().Add(poolResetTimeout))
	if _, err := up.bw.Write(appendMsg(nil, msgQuery, cstr("DISCARD ALL"))); err != nil {
		return err
	}
	if err := up.bw.Flush(); err != nil {
		return err
	}
	discarded := false
	for {
		hdr, err := up.br.Peek(headerLen)
		if err != nil {
			return err
		}
		typ := hdr[0]
		n, err := bodyLen(hdr, maxResetMessage)
		if err != nil {
			return err
		}
		msg, err := up.br.Peek(headerLen + n)
		if err != nil {
			return err
		}
		body := msg[headerLen:]
		switch typ {
		case msgCommandComplete:
			tag, _, err := cstring(body)
			if err != nil || tag != "DISCARD ALL" || discarded {
				return fmt.Errorf("reset: unexpected completion %q", tag)
			}
			discarded = true
		case msgReadyForQuery:
			if !discarded || len(body) != 1 || body[0] != 'I' {
				return errors.New("reset: the target is not idle after DISCARD ALL")
			}
			if _, err := up.br.Discard(headerLen + n); err != nil {
				return err
			}
			if up.br.Buffered() != 0 {
				return errors.New("reset: the target sent more after DISCARD ALL")
			}
			up.txStatus = 'I'
			return up.nc.SetDeadline(time.Time{})
		case msgParameterStatus:
			k, rest, err1 := cstring(body)
			v, _, err2 := cstring(rest)
			if err1 != nil || err2 != nil {
				return errors.New("reset: malformed ParameterStatus")
			}
			up.params[k] = v
		case msgNotice, msgNotification:
		default:
			return fmt.Errorf("reset: unexpected message %q", typ)
		}
		if _, err := up.br.Discard(headerLen + n); err != nil {
			return err
		}
	}
}

// maxResetMessage bounds a message read while resetting: the answers to
// DISCARD ALL are small, and so are notices and notifications.
const maxResetMessage = relayBufferSize - headerLen
