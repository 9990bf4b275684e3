package frontend

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Limits caps connections. Each applies to every front end of the process
// together (a Gate is shared): the file descriptors they protect are the
// process's.
type Limits struct {
	// Unauthenticated caps connections that have not finished
	// authentication (handshake, TLS, login), in total.
	Unauthenticated int
	// UnauthenticatedPerSource caps them per source address (per /64 for
	// IPv6, where one host holds a whole prefix).
	UnauthenticatedPerSource int
	// PerUser caps a user's authenticated connections.
	PerUser int
}

// DefaultLimits are the caps used where the configuration sets none. With
// handshakes bounded by server.handshake_timeout, 1024 unfinished
// handshakes hold at most 1024 descriptors for that long; 128 from one
// source leave room for a busy NAT or a connection pool warming up; 256
// sessions are far more than one person opens by hand and few enough that
// one user's runaway script cannot take the others' share.
var DefaultLimits = Limits{Unauthenticated: 1024, UnauthenticatedPerSource: 128, PerUser: 256}

// ErrTooManyConnections is the refusal of a user's login over the per-user
// cap; its text is safe to show.
var ErrTooManyConnections = errors.New("too many connections open for this user")

// Gate counts connections against Limits.
type Gate struct {
	lim Limits

	mu       sync.Mutex
	unauth   int
	bySource map[netip.Prefix]int
	byUser   map[string]int

	refused    atomic.Uint64
	lastReport atomic.Int64 // unix nanoseconds of the last refusal logged
}

// NewGate returns a Gate enforcing lim; a zero field takes its default.
func NewGate(lim Limits) *Gate {
	if lim.Unauthenticated <= 0 {
		lim.Unauthenticated = DefaultLimits.Unauthenticated
	}
	if lim.UnauthenticatedPerSource <= 0 {
		lim.UnauthenticatedPerSource = DefaultLimits.UnauthenticatedPerSource
	}
	if lim.PerUser <= 0 {
		lim.PerUser = DefaultLimits.PerUser
	}
	return &Gate{lim: lim, bySource: map[netip.Prefix]int{}, byUser: map[string]int{}}
}

// GateStats is what a Gate has counted.
type GateStats struct {
	Unauthenticated int    // connections not yet authenticated, now
	Authenticated   int    // authenticated connections, now
	Refused         uint64 // connections and logins refused over a cap, ever
	Limits          Limits
}

// Stats returns the gate's counts.
func (g *Gate) Stats() GateStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, k := range g.byUser {
		n += k
	}
	return GateStats{Unauthenticated: g.unauth, Authenticated: n, Refused: g.refused.Load(), Limits: g.lim}
}

// sourceKey is what the per-source cap counts by.
func sourceKey(a netip.Addr) netip.Prefix {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p
	}
	return netip.PrefixFrom(a, a.BitLen())
}

// admit takes an unauthenticated slot for a connection from src, or says
// why not.
func (g *Gate) admit(src netip.Addr) string {
	k := sourceKey(src)
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.unauth >= g.lim.Unauthenticated:
		return fmt.Sprintf("%d connections are not yet authenticated (limit)", g.unauth)
	case g.bySource[k] >= g.lim.UnauthenticatedPerSource:
		return fmt.Sprintf("%d connections from this source are not yet authenticated (limit)", g.bySource[k])
	}
	g.unauth++
	g.bySource[k]++
	return ""
}

// leave gives back an unauthenticated slot.
func (g *Gate) leave(src netip.Addr) {
	k := sourceKey(src)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unauth--
	if g.bySource[k]--; g.bySource[k] <= 0 {
		delete(g.bySource, k)
	}
}

// login takes a slot of user's.
func (g *Gate) login(user string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byUser[user] >= g.lim.PerUser {
		return ErrTooManyConnections
	}
	g.byUser[user]++
	return nil
}

// logout gives back a slot of user's.
func (g *Gate) logout(user string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byUser[user]--; g.byUser[user] <= 0 {
		delete(g.byUser, user)
	}
}

// refusalReportInterval spaces the log lines about refused connections: a
// flood is one line a second, not one per connection.
const refusalReportInterval = time.Second

// refusal counts a refusal and logs it, at most once per interval.
func (g *Gate) refusal(log *slog.Logger, src netip.Addr, why string) {
	n := g.refused.Add(1)
	now := time.Now().UnixNano()
	last := g.lastReport.Load()
	if now-last < int64(refusalReportInterval) || !g.lastReport.CompareAndSwap(last, now) {
		return
	}
	log.Warn("connection refused over a limit", "source", src.String(), "reason", why, "refused_total", n)
}

// temporary reports whether an accept error passes: out of descriptors or
// buffers, a connection aborted before it was accepted, a timeout. The
// listener is still good; net/http retries the same way.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS,
		syscall.ENOMEM, syscall.EINTR, syscall.EAGAIN, syscall.ECONNRESET, syscall.EPROTO, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
