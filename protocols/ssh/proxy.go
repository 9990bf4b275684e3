package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/internal/frontend"
)

// guard ends the connection, not the process, when a goroutine of it
// panics (decoders and parsers run on what clients send). Deferred first
// in every goroutine the proxy starts.
func (tc *targetConn) guard() {
	if p := recover(); p != nil {
		tc.log.Error("panic in session; closing the connection", "panic", p, "stack", string(debug.Stack()))
		tc.user.Close()
	}
}

// tellTimeout bounds telling open sessions why they end.
const tellTimeout = time.Second

// Grants authorises target sessions and re-checks them while they run.
type Grants interface {
	// CheckTarget decides a login on a target without auditing a refusal;
	// RefuseTarget audits one (see authFailed for when).
	CheckTarget(ctx context.Context, in access.TargetLogin) (*access.Grant, error)
	RefuseTarget(ctx context.Context, in access.TargetLogin, err error)
	CheckGrant(ctx context.Context, g *access.Grant) error
}

// Permits are the optional channel kinds a grant allows (ssh -L/-W, -R, -A,
// -X); all are refused unless allowed.
type Permits = policy.Forwarding

// targetConn is a user's connection to one target through Bastion.
type targetConn struct {
	srv    *Server
	user   *ssh.ServerConn
	up     *ssh.Client
	grant  *access.Grant
	id     string
	role   Permits           // what the role allows
	permit allowed           // what the role and the user's certificate allow
	ext    map[string]string // the connection's permission extensions
	log    *slog.Logger
	actor  access.Actor

	destOnce sync.Once
	dest     *destCheck // forwarding destinations, gathered at the first forward

	mu       sync.Mutex
	sessions map[ssh.Channel]struct{} // open user session channels, to tell them why they end
	agentReq bool                     // the user asked for agent forwarding
	channels int                      // session channels opened so far (numbers recordings)
	refusals int                      // refused requests so far (see auditRefusal)
	why      string                   // why Bastion ended the connection, if it did
}

// endReason is why the connection's sessions end.
func (tc *targetConn) endReason() string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.why != "" {
		return tc.why
	}
	return "exited"
}

// serveTarget proxies an authenticated connection to its target. The
// upstream connection is opened only now, after authentication and
// authorisation.
func (s *Server) serveTarget(fc *frontend.Conn, conn *ssh.ServerConn, chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, g *access.Grant, actor access.Actor, log *slog.Logger) {
	ctx := fc.Context()
	id := frontend.NewSessionID()
	log = log.With("target", g.Target, "login", g.Login, "session", id)
	tc := &targetConn{srv: s, user: conn, grant: g, id: id, log: log, actor: actor, sessions: map[ssh.Channel]struct{}{},
		ext: conn.Permissions.Extensions}
	if s.cfg.Permits != nil {
		tc.role = s.cfg.Permits(g)
	}
	tc.permit = narrow(tc.role, tc.ext)
	sess := tc.auditSession()

	up, err := s.dialUpstream(ctx, g, id, tc.permit.upstreamExtensions())
	if err != nil {
		log.Warn("upstream connection failed", "err", err)
		s.cfg.Audit.Record(ctx, actor, sess.StartFailed(err.Error()))
		refuseAll(chans, "bastion: "+userMessage(err), log)
		return
	}
	tc.up = up
	defer up.Close()
	// A session whose start cannot be audited does not start.
	if err := s.cfg.Audit.Audit(ctx, actor, sess.Start()); err != nil {
		go ssh.DiscardRequests(reqs)
		tellAll(chans, "bastion: the session cannot be audited now, so it may not start (the operator's log has the details)", log)
		return
	}
	log.Info("session start")
	start := time.Now()

	// Bastion ends the connection (the grant ended, shutdown) by telling
	// every open session why, then closing it.
	fc.OnEnd(func(cause error) { tc.end(cause.Error()) })
	stopWatch := s.grants.Watch(g, func(msg string) { fc.End(errors.New(msg)) })
	defer stopWatch()
	fc.Go(func() { tc.globalRequests(ctx, reqs) })
	fc.Go(tc.upstreamChannels)
	// The upstream closing ends the user's connection too.
	fc.Go(func() {
		if err := up.Wait(); err != nil && ctx.Err() == nil {
			log.Debug("upstream closed", "err", err)
		}
		conn.Close()
	})

	var wg sync.WaitGroup
	var open channelCount
	for nch := range chans {
		// A channel opened after the grant ended (in the second before the
		// watcher's next pass) is refused here, however fast it comes.
		if msg, end := s.grants.Holds(ctx, g); msg != "" {
			tc.refuse(ctx, nch, msg) // told before the connection ends
			end()
			continue
		}
		switch nch.ChannelType() {
		case "session":
			release, ok := open.admit(nch, log)
			if !ok {
				continue
			}
			wg.Add(1)
			fc.Go(func() { defer wg.Done(); defer release(); defer tc.guard(); tc.session(ctx, nch) })
		case "direct-tcpip":
			if !tc.permit.Local.Allowed() {
				tc.refuse(ctx, nch, notPermitted("port forwarding (-L)", tc.role.Local.Allowed(), "permit-port-forwarding"))
				continue
			}
			fwd, to, why := tc.checkForward(ctx, nch.ExtraData())
			if why != "" {
				tc.refuse(ctx, nch, why)
				continue
			}
			release, ok := open.admit(nch, log)
			if !ok {
				continue
			}
			wg.Add(1)
			fc.Go(func() { defer wg.Done(); defer release(); defer tc.guard(); tc.relayChannel(nch, fwd, to) })
		default:
			tc.refuse(ctx, nch, fmt.Sprintf("channel type %q is not allowed", nch.ChannelType()))
		}
	}
	// The user's connection is gone: close the upstream too, or a session
	// whose target side never ends by itself (a pty shell) is held forever.
	up.Close()
	wg.Wait()
	reason := "client disconnected"
	tc.mu.Lock()
	if tc.why != "" {
		reason = tc.why
	}
	tc.mu.Unlock()
	log.Info("session end", "reason", reason, "duration", time.Since(start).Round(time.Millisecond).String())
	extra := map[string]string{"duration": time.Since(start).Round(time.Millisecond).String()}
	tc.mu.Lock()
	if tc.refusals > maxRefusalEvents {
		extra["refused_requests"] = fmt.Sprint(tc.refusals) // the first maxRefusalEvents are audited one by one
	}
	tc.mu.Unlock()
	s.cfg.Audit.Record(context.WithoutCancel(ctx), actor, sess.End(reason, extra))
}

// session is the connection's session as audit events name it.
func (tc *targetConn) auditSession() audit.Session { return tc.grant.AuditSession("ssh", tc.id) }

// end ends the connection because of why: every open session is told,
// then the connection closed. Only the first reason counts.
func (tc *targetConn) end(why string) {
	tc.mu.Lock()
	first := tc.why == ""
	if first {
		tc.why = why
	}
	tc.mu.Unlock()
	if !first {
		return
	}
	tc.log.Info("ending session", "reason", why)
	tc.tellSessions("\r\nbastion: " + why + "\r\n")
	tc.user.Close()
}

// tellSessions writes msg to every open session, giving up after
// tellTimeout: a client that does not read (a full window) must not keep
// its connection open past the end of its grant.
func (tc *targetConn) tellSessions(msg string) {
	tc.mu.Lock()
	chans := make([]ssh.Channel, 0, len(tc.sessions))
	for ch := range tc.sessions {
		chans = append(chans, ch)
	}
	tc.mu.Unlock()
	done := make(chan struct{}, len(chans))
	for _, ch := range chans {
		go func() {
			if _, err := io.WriteString(ch.Stderr(), msg); err != nil {
				tc.log.Debug("tell session", "err", err)
			}
			done <- struct{}{}
		}()
	}
	deadline := time.After(tellTimeout)
	for range chans {
		select {
		case <-done:
		case <-deadline:
			return
		}
	}
}

// globalRequests answers the user's global requests: remote forwarding is
// refused unless allowed, on a bind address allowed, under a grant that
// still holds; keepalives get a reply.
func (tc *targetConn) globalRequests(ctx context.Context, reqs <-chan *ssh.Request) {
	for req := range reqs {
		ok := false
		var payload []byte
		var end func() // the grant ended: after the reply, end its connections
		switch req.Type {
		case "tcpip-forward", "cancel-tcpip-forward":
			var why string
			why, end = tc.checkBind(ctx, req)
			if why == "" {
				var err error
				ok, payload, err = tc.up.SendRequest(req.Type, req.WantReply, req.Payload)
				if err != nil {
					ok = false
				}
			} else {
				tc.log.Info("refused remote forward", "reason", why)
				tc.auditRefusal(audit.Event{Type: audit.Forward, Outcome: audit.OutcomeRefused, Reason: why, Details: map[string]string{"kind": "remote"}})
			}
		case "streamlocal-forward@openssh.com":
			// ssh -R with a Unix socket: Bastion cannot check what it reaches.
			tc.auditRefusal(audit.Event{Type: audit.Forward, Outcome: audit.OutcomeRefused,
				Reason: "remote forwarding of Unix sockets is not allowed", Details: map[string]string{"kind": "remote"}})
		}
		if req.WantReply {
			if err := req.Reply(ok, payload); err != nil {
				tc.log.Debug("reply global request", "err", err)
			}
		}
		if end != nil {
			end()
		}
	}
}

// upstreamChannels handles channels the target opens towards the user:
// agent forwarding (when allowed and asked for) and remote-forwarded ports
// (when allowed). Everything else is refused.
func (tc *targetConn) upstreamChannels() {
	agent := tc.up.HandleChannelOpen("auth-agent@openssh.com")
	fwd := tc.up.HandleChannelOpen("forwarded-tcpip")
	x11 := tc.up.HandleChannelOpen("x11")
	for agent != nil || fwd != nil || x11 != nil {
		var nch ssh.NewChannel
		var ok bool
		select {
		case nch, ok = <-agent:
			if !ok {
				agent = nil
				continue
			}
			tc.mu.Lock()
			allowed := tc.permit.Agent && tc.agentReq
			tc.mu.Unlock()
			if !allowed {
				rejectChannel(nch, ssh.Prohibited, "agent forwarding is not allowed", tc.log)
				continue
			}
		case nch, ok = <-fwd:
			if !ok {
				fwd = nil
				continue
			}
			if !tc.permit.Remote.Allowed() {
				rejectChannel(nch, ssh.Prohibited, "remote forwarding is not allowed", tc.log)
				continue
			}
		case nch, ok = <-x11:
			if !ok {
				x11 = nil
				continue
			}
			if !tc.permit.X11 {
				rejectChannel(nch, ssh.Prohibited, "X11 forwarding is not allowed", tc.log)
				continue
			}
		}
		go tc.reverseChannel(nch)
	}
}

// directTCPIP is the payload of a direct-tcpip channel open (RFC 4254 7.2).
type directTCPIP struct {
	Host       string
	Port       uint32
	OriginHost string
	OriginPort uint32
}

// checkForward decides a direct-tcpip channel: the request as the user
// made it and the address the target is to connect to, or why not. What
// does not parse is refused.
func (tc *targetConn) checkForward(ctx context.Context, extra []byte) (fwd directTCPIP, to netip.AddrPort, why string) {
	if err := ssh.Unmarshal(extra, &fwd); err != nil {
		return fwd, to, "a forwarding request that does not parse is refused"
	}
	to, why = tc.destinations(ctx).decide(ctx, fwd.Host, fwd.Port)
	return fwd, to, why
}

// destinations is what the connection's forwards are checked against,
// gathered at its first forward.
func (tc *targetConn) destinations(ctx context.Context) *destCheck {
	tc.destOnce.Do(func() {
		tc.dest = tc.srv.newDestCheck(ctx, tc.permit.Local, []net.Addr{tc.user.LocalAddr(), tc.up.LocalAddr()}, tc.log)
	})
	return tc.dest
}

// checkBind decides a tcpip-forward or cancel-tcpip-forward request (ssh
// -R): "" to pass it to the target, else why not; end, if not nil, ends
// the grant's connections once the refusal is sent.
func (tc *targetConn) checkBind(ctx context.Context, req *ssh.Request) (why string, end func()) {
	if !tc.permit.Remote.Allowed() {
		return notPermitted("remote forwarding (-R)", tc.role.Remote.Allowed(), "permit-port-forwarding"), nil
	}
	var bind struct {
		Addr string
		Port uint32
	}
	if ssh.Unmarshal(req.Payload, &bind) != nil {
		return "a remote forwarding request that does not parse is refused", nil
	}
	if req.Type == "cancel-tcpip-forward" {
		return "", nil // stopping a forward is always allowed
	}
	if msg, end := tc.srv.grants.Holds(ctx, tc.grant); msg != "" {
		return msg, end
	}
	return decideBind(tc.permit.Remote, bind.Addr, bind.Port), nil
}

// reverseChannel relays a channel opened by the target to the user.
func (tc *targetConn) reverseChannel(nch ssh.NewChannel) {
	uch, ureqs, err := tc.user.OpenChannel(nch.ChannelType(), nch.ExtraData())
	if err != nil {
		rejectChannel(nch, ssh.ConnectionFailed, err.Error(), tc.log)
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		uch.Close()
		return
	}
	go ssh.DiscardRequests(ureqs)
	go ssh.DiscardRequests(reqs)
	pipe(ch, uch, tc.log)
}

// relayChannel relays a user's direct-tcpip channel to the target, which
// opens the connection (so the target's network view applies) to the
// address Bastion checked, to.
func (tc *targetConn) relayChannel(nch ssh.NewChannel, fwd directTCPIP, to netip.AddrPort) {
	checked := fwd
	checked.Host, checked.Port = to.Addr().String(), uint32(to.Port())
	upch, upreqs, err := tc.up.OpenChannel(nch.ChannelType(), ssh.Marshal(&checked))
	if err != nil {
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			rejectChannel(nch, oce.Reason, oce.Message, tc.log)
		} else {
			rejectChannel(nch, ssh.ConnectionFailed, err.Error(), tc.log)
		}
		return
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		upch.Close()
		return
	}
	tc.audit(audit.Event{Type: audit.Forward, Details: map[string]string{
		"to": net.JoinHostPort(fwd.Host, fmt.Sprint(fwd.Port)), "addr": to.String(), "kind": "local"}})
	go ssh.DiscardRequests(reqs)
	go ssh.DiscardRequests(upreqs)
	pipe(ch, upch, tc.log)
}

// pipe copies both ways until both directions end, then closes both.
func pipe(a, b ssh.Channel, log *slog.Logger) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); copyHalf(b, a, log) }()
	go func() { defer wg.Done(); copyHalf(a, b, log) }()
	wg.Wait()
	a.Close()
	b.Close()
}

// copyHalf copies src to dst and then signals EOF on dst.
func copyHalf(dst, src ssh.Channel, log *slog.Logger) {
	if _, err := io.Copy(dst, src); err != nil && !errors.Is(err, io.EOF) {
		log.Debug("relay copy", "err", err)
	}
	if err := dst.CloseWrite(); err != nil && !errors.Is(err, io.EOF) {
		log.Debug("relay close write", "err", err)
	}
}

func (tc *targetConn) refuse(ctx context.Context, nch ssh.NewChannel, why string) {
	tc.log.Info("refused channel", "type", nch.ChannelType(), "reason", why)
	tc.auditRefusal(audit.Event{Type: audit.Forward, Outcome: audit.OutcomeRefused, Reason: why, Details: map[string]string{"channel": nch.ChannelType()}})
	rejectChannel(nch, ssh.Prohibited, "bastion: "+why, tc.log)
}

// maxRefusalEvents bounds the refused requests (forwarding, channels) one
// connection writes to the audit log one by one; a client that loops on
// them is counted, and the count is audited when the connection ends.
const maxRefusalEvents = 10

// auditRefusal audits a refused request, up to maxRefusalEvents per
// connection.
func (tc *targetConn) auditRefusal(e audit.Event) {
	tc.mu.Lock()
	tc.refusals++
	n := tc.refusals
	tc.mu.Unlock()
	if n <= maxRefusalEvents {
		tc.audit(e)
	}
}

// audit records an event about something that happened in the session.
func (tc *targetConn) audit(e audit.Event) {
	tc.srv.cfg.Audit.Record(context.Background(), tc.actor, tc.auditSession().About(e))
}

func rejectChannel(nch ssh.NewChannel, reason ssh.RejectionReason, msg string, log *slog.Logger) {
	if err := nch.Reject(reason, msg); err != nil {
		log.Debug("reject channel", "err", err)
	}
}

// refuseAll rejects every channel of a connection that cannot be served.
func refuseAll(chans <-chan ssh.NewChannel, msg string, log *slog.Logger) {
	for nch := range chans {
		rejectChannel(nch, ssh.ConnectionFailed, msg, log)
	}
}

// tellAll answers every session channel with msg on stderr and exit status
// 1, and refuses other channels: a refusal after authentication that the
// user sees whatever ssh's LogLevel (a rejected channel's reason is hidden
// under LogLevel=ERROR and by most programs that run ssh).
func tellAll(chans <-chan ssh.NewChannel, msg string, log *slog.Logger) {
	for nch := range chans {
		if nch.ChannelType() != "session" {
			rejectChannel(nch, ssh.Prohibited, msg, log)
			continue
		}
		ch, reqs, err := nch.Accept()
		if err != nil {
			continue
		}
		go ssh.DiscardRequests(reqs)
		if _, err := io.WriteString(ch.Stderr(), msg+"\r\n"); err != nil {
			log.Debug("tell refusal", "err", err)
		}
		status := struct{ Status uint32 }{1}
		if _, err := ch.SendRequest("exit-status", false, ssh.Marshal(&status)); err != nil {
			log.Debug("send exit-status", "err", err)
		}
		ch.Close()
	}
}
