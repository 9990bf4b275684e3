package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
)

// ExitDenied is the exit status of an exec command refused by a rule, as a
// shell reports a command it cannot execute.
const ExitDenied = 126

// ExecRules decides command lines (exec commands and typed lines) before
// they reach a target.
type ExecRules interface {
	CheckExec(ctx context.Context, user, target, command string) ExecDecision
}

// ExecDecision is the answer for one command line: allowed (the zero
// value), refused with a message naming the rule, or held for approval.
type ExecDecision struct {
	Refusal  string
	Approval *ApprovalNeeded
}

// ApprovalNeeded says a rule holds the line until an approver allows it.
type ApprovalNeeded struct {
	Rule, Reason string
	Roles        []string // may approve; empty: the approvers of the grant's request
}

// CommandApprovals holds commands for approval.
type CommandApprovals interface {
	RequestCommand(ctx context.Context, a access.Actor, in access.CommandRequest) (*store.Request, error)
	Wait(ctx context.Context, a access.Actor, id int64) (*store.Request, error)
	CommandDone(ctx context.Context, a access.Actor, id int64)
}

// session relays one session channel (shell, exec, sftp/scp) to the target.
func (tc *targetConn) session(ctx context.Context, nch ssh.NewChannel) {
	upch, upreqs, err := tc.up.OpenChannel("session", nil)
	if err != nil {
		rejectChannel(nch, ssh.ConnectionFailed, fmt.Sprintf("bastion: %s refused the session: %v", tc.grant.Target, err), tc.log)
		return
	}
	raw, ureqs, err := nch.Accept()
	if err != nil {
		upch.Close()
		return
	}
	uch := &userChannel{Channel: raw}
	tc.mu.Lock()
	tc.sessions[uch] = struct{}{}
	tc.mu.Unlock()
	defer func() {
		tc.mu.Lock()
		delete(tc.sessions, uch)
		tc.mu.Unlock()
	}()

	rec := tc.newChannelRec()
	rec.onFail = func() { tc.failClosed(uch, upch) }
	defer func() {
		rec.markStarted() // releases the input goroutine of a session that never started
		rec.end(tc.endReason())
	}()
	// answering counts the user's requests forwarded to the target and not
	// yet answered: the channel is not closed under them (a command that
	// ends at once must still get its exec answered first).
	var answering sync.WaitGroup
	go func() {
		defer tc.guard()
		tc.sessionRequests(ctx, uch, upch, ureqs, rec, &answering)
		// The user closed the channel: so does Bastion, towards the target
		// (a session with no command yet would otherwise hold the target's
		// channel, and its slot, until the connection ends).
		upch.Close()
	}()

	// Input: this goroutine is deliberately not waited for. It ends when the
	// user sends EOF (then the target gets EOF too) or when the channels
	// close; waiting for it would keep a finished session open until the
	// user's side closes.
	go func() {
		defer tc.guard()
		if err := tc.copyInput(ctx, uch, gatedUpstream{upch, rec}, rec); err != nil {
			tc.log.Debug("copy input", "err", err)
		}
		if err := upch.CloseWrite(); err != nil && !errors.Is(err, io.EOF) {
			tc.log.Debug("close target input", "err", err)
		}
	}()

	// The target's requests to the user. exit-status and exit-signal are
	// held until the output is drained, then sent before EOF and close (RFC
	// 4254 order; the recording's exit marker lands after the last output).
	// The last of each is held: a target that sends more holds no more of
	// Bastion's memory.
	var held [2]*ssh.Request // exit-status, exit-signal
	reqsDone := make(chan struct{})
	go func() {
		defer close(reqsDone)
		defer tc.guard()
		for r := range upreqs {
			switch r.Type {
			case "exit-status":
				rec.setExit(r.Payload, false)
				held[0] = r
				continue
			case "exit-signal":
				rec.setExit(r.Payload, true)
				held[1] = r
				continue
			}
			ok, err := uch.SendRequest(r.Type, r.WantReply, r.Payload)
			if err != nil {
				tc.log.Debug("forward request to user", "type", r.Type, "err", err)
			}
			if r.WantReply {
				if err := r.Reply(ok, nil); err != nil {
					tc.log.Debug("reply to target", "err", err)
				}
			}
		}
	}()

	// Output, in RFC 4254 order: the target's exit-status is forwarded as it
	// comes (above); all output is drained; then EOF, then close.
	var out sync.WaitGroup
	out.Add(2)
	go func() {
		defer out.Done()
		defer tc.guard()
		tc.copyOut(gatedOutput{recordedWriter{uch, rec, true}, rec}, upch, "stdout")
	}()
	go func() {
		defer out.Done()
		defer tc.guard()
		tc.copyOut(recordedWriter{uch.Stderr(), rec, false}, upch.Stderr(), "stderr")
	}()
	out.Wait()
	<-reqsDone // the target closed the channel: every request it sent is in
	// The target has closed the channel, so a forwarded request still
	// waiting for its answer gets it, or EOF, at once.
	answering.Wait()
	for _, r := range held {
		if r == nil {
			continue
		}
		if _, err := uch.SendRequest(r.Type, false, r.Payload); err != nil {
			tc.log.Debug("forward exit to user", "type", r.Type, "err", err)
		}
	}
	if err := uch.CloseWrite(); err != nil && !errors.Is(err, io.EOF) {
		tc.log.Debug("close user output", "err", err)
	}
	uch.Close()
	upch.Close()
}

func (tc *targetConn) copyOut(dst io.Writer, src io.Reader, stream string) {
	if _, err := io.Copy(dst, src); err != nil && !errors.Is(err, io.EOF) {
		tc.log.Debug("copy output", "stream", stream, "err", err)
	}
}

// userChannel serialises Bastion's writes to a user's session channel with
// its CloseWrite: x/crypto/ssh does not allow them concurrently, and notices
// (grant ended, command refused) come from other goroutines than the relay.
type userChannel struct {
	ssh.Channel
	mu sync.Mutex
}

func (c *userChannel) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Channel.Write(p)
}

func (c *userChannel) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Channel.CloseWrite()
}

func (c *userChannel) Stderr() io.ReadWriter { return userStderr{c} }

type userStderr struct{ c *userChannel }

func (s userStderr) Read(p []byte) (int, error) { return s.c.Channel.Stderr().Read(p) }

func (s userStderr) Write(p []byte) (int, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.c.Channel.Stderr().Write(p)
}

// recordedWriter records output before the user sees it: nothing reaches
// the user unrecorded. A recording failure stops the output.
type recordedWriter struct {
	w      io.Writer
	rec    *channelRec
	stdout bool
}

func (w recordedWriter) Write(p []byte) (int, error) {
	if err := w.rec.output(p, w.stdout); err != nil {
		return 0, fmt.Errorf("recording: %w", err)
	}
	return w.w.Write(p)
}

// failClosed ends a session whose recording failed, telling the user why.
func (tc *targetConn) failClosed(uch, upch ssh.Channel) {
	if _, err := io.WriteString(uch.Stderr(), "\r\nbastion: the session cannot be recorded and has ended\r\n"); err != nil {
		tc.log.Debug("tell user", "err", err)
	}
	upch.Close()
}

// sessionRequests forwards the user's session requests to the target,
// checking exec commands against the rules first and refusing what the
// role does not allow.
func (tc *targetConn) sessionRequests(ctx context.Context, uch, upch ssh.Channel, reqs <-chan *ssh.Request, rec *channelRec, answering *sync.WaitGroup) {
	for req := range reqs {
		forward := false
		switch req.Type {
		case "pty-req":
			if !tc.permit.PTY {
				tc.auditRefusal(audit.Event{Type: audit.Forward, Outcome: audit.OutcomeRefused, Reason: notPermitted("a terminal (pty)", true, "permit-pty")})
				break
			}
			var p ptyRequest
			if ssh.Unmarshal(req.Payload, &p) == nil {
				rec.setPTY(&p)
				forward = true
			}
		case "window-change":
			var wc struct{ Cols, Rows, Width, Height uint32 }
			if ssh.Unmarshal(req.Payload, &wc) == nil {
				rec.resize(wc.Cols, wc.Rows)
			}
			forward = true
		case "shell":
			forward = tc.startRecording(ctx, uch, upch, req, rec, "shell", "")
			if !forward {
				continue
			}
			filter := tc.newLineFilter(rec)
			if filter != nil && !rec.hasPTY() {
				// Without a terminal there are no lines to hold back safely
				// (a script piped into a shell): refuse rather than let
				// commands through unchecked.
				msg := noTerminalShell
				rec.marker("denied: " + msg)
				tc.audit(audit.Event{Type: audit.Command, Outcome: audit.OutcomeRefused, Reason: msg, Details: map[string]string{"shell": "no terminal"}})
				tc.denyExec(uch, upch, req, msg)
				continue
			}
			rec.setFilter(filter)
			rec.markStarted()
		case "signal", "break":
			forward = true
		case "env":
			forward = tc.checkEnvRequest(req.Payload)
		case "subsystem":
			var sub struct{ Name string }
			forward = ssh.Unmarshal(req.Payload, &sub) == nil && sub.Name == "sftp"
			if forward {
				tc.audit(audit.Event{Type: audit.Command, Details: map[string]string{"subsystem": "sftp"}})
				if forward = tc.startRecording(ctx, uch, upch, req, rec, "sftp", ""); !forward {
					continue
				}
				if msg := tc.checkSFTP(); msg != "" {
					tc.refuseTransfer(uch, upch, req, rec, "sftp", msg)
					continue
				}
				rec.watchTransfers("sftp", "")
				rec.markStarted()
			}
		case "exec":
			var ex struct{ Command string }
			if ssh.Unmarshal(req.Payload, &ex) != nil {
				break
			}
			if !tc.startRecording(ctx, uch, upch, req, rec, "exec", ex.Command) {
				continue
			}
			if msg := tc.checkTransferExec(ex.Command); msg != "" {
				tc.refuseTransfer(uch, upch, req, rec, "exec", msg)
				continue
			}
			filter, msg := tc.execShell(rec, ex.Command)
			if msg != "" {
				rec.marker("denied: " + msg)
				tc.audit(audit.Event{Type: audit.Command, Outcome: audit.OutcomeRefused, Reason: msg, Details: map[string]string{"command": ex.Command}})
				tc.denyExec(uch, upch, req, msg)
				continue
			}
			if msg := tc.checkExec(ctx, uch, ex.Command); msg != "" {
				rec.marker("denied: " + msg)
				tc.denyExec(uch, upch, req, msg)
				continue
			}
			rec.setFilter(filter)
			rec.watchTransfers("exec", ex.Command)
			rec.markStarted()
			forward = true
		case "auth-agent-req@openssh.com":
			if tc.permit.Agent {
				tc.mu.Lock()
				tc.agentReq = true
				tc.mu.Unlock()
				forward = true
			} else {
				tc.auditRefusal(audit.Event{Type: audit.Forward, Outcome: audit.OutcomeRefused, Reason: notPermitted("agent forwarding", tc.role.Agent, "permit-agent-forwarding")})
			}
		case "x11-req":
			forward = tc.permit.X11
			if !forward {
				tc.auditRefusal(audit.Event{Type: audit.Forward, Outcome: audit.OutcomeRefused, Reason: notPermitted("X11 forwarding", tc.role.X11, "permit-X11-forwarding")})
			}
		}
		tc.forwardRequest(upch, req, forward, answering)
	}
}

// checkEnvRequest decides an env request: true to pass it on. A refused
// value is audited (the variable's name and the reason; never the value)
// and logged; a refused name only logged, as clients send their whole
// SendEnv list by habit.
func (tc *targetConn) checkEnvRequest(payload []byte) bool {
	var kv struct{ Name, Value string }
	if ssh.Unmarshal(payload, &kv) != nil {
		return false
	}
	why := checkEnv(kv.Name, kv.Value)
	if why == "" {
		return true
	}
	tc.log.Info("environment variable refused", "reason", why)
	if envRule(kv.Name) != nil {
		tc.auditRefusal(audit.Event{Type: audit.Forward, Outcome: audit.OutcomeRefused, Reason: why, Details: map[string]string{"env": kv.Name}})
	}
	return false
}

// forwardRequest sends req to the target if forward, and answers the user
// with the target's answer (or a refusal).
func (tc *targetConn) forwardRequest(upch ssh.Channel, req *ssh.Request, forward bool, answering *sync.WaitGroup) {
	answering.Add(1)
	defer answering.Done()
	ok := false
	if forward {
		var err error
		ok, err = upch.SendRequest(req.Type, req.WantReply, req.Payload)
		if err != nil {
			tc.log.Debug("forward request", "type", req.Type, "err", err)
			ok = false
		}
	}
	if req.WantReply {
		if err := req.Reply(ok, nil); err != nil {
			tc.log.Debug("reply to user", "type", req.Type, "err", err)
		}
	}
}

// startRecording starts the channel's recording before what it records may
// run. If the session cannot be recorded it does not run (fail closed): the
// user is told, and the channel ends.
func (tc *targetConn) startRecording(ctx context.Context, uch, upch ssh.Channel, req *ssh.Request, rec *channelRec, kind, command string) bool {
	err := rec.start(ctx, kind, command)
	if err == nil {
		return true
	}
	tc.log.Error("cannot record; refusing the session", "err", err)
	tc.audit(audit.Event{Type: audit.SessionStart, Outcome: audit.OutcomeError, Reason: "recording unavailable: " + err.Error()})
	tc.denyExec(uch, upch, req, "the session cannot be recorded, so it may not start")
	return false
}

// checkExec decides an exec command (waiting for an approver if a rule
// says so), audits it, and returns a refusal message, if any.
func (tc *targetConn) checkExec(ctx context.Context, uch ssh.Channel, command string) string {
	msg := tc.decide(ctx, uch.Stderr(), "\n", command)
	e := audit.Event{Type: audit.Command, Details: map[string]string{"command": command}}
	if msg != "" {
		e.Outcome, e.Reason = audit.OutcomeRefused, msg
	}
	tc.log.Info("exec", "command", firstWord(command), "allowed", msg == "")
	tc.audit(e)
	return msg
}

// decide decides a command line: "" to let it run, else the refusal. A line
// held for approval waits here, telling the user on tell (with line
// endings nl) what it waits for and what came of it.
func (tc *targetConn) decide(ctx context.Context, tell io.Writer, nl, command string) string {
	if tc.srv.cfg.ExecRules == nil {
		return ""
	}
	d := tc.srv.cfg.ExecRules.CheckExec(ctx, tc.grant.User, tc.grant.Target, command)
	if d.Approval == nil {
		return d.Refusal
	}
	held := fmt.Sprintf("held by rule %s", d.Approval.Rule)
	if tc.srv.cfg.Approvals == nil {
		return held + ", and approvals are not available here"
	}
	req, err := tc.srv.cfg.Approvals.RequestCommand(ctx, tc.actor, access.CommandRequest{
		Grant: tc.grant, Command: command, Rule: d.Approval.Rule, Reason: d.Approval.Reason, Roles: d.Approval.Roles,
	})
	if err != nil {
		return fmt.Sprintf("%s, but it cannot be submitted: %v", held, err)
	}
	tc.tell(tell, fmt.Sprintf("%sbastion: %s: waiting for approval of request #%d (approvers: %s)…%s",
		strings.TrimPrefix(nl, "\n"), held, req.ID, strings.Join(req.Approvers, ", "), nl))
	tc.audit(audit.Event{Type: audit.Command, Outcome: audit.OutcomeOK, Reason: "held for approval",
		Details: map[string]string{"command": command, "rule": d.Approval.Rule, "request": fmt.Sprint(req.ID)}})
	wctx, cancel := context.WithTimeout(ctx, req.PendingUntil.Sub(req.CreatedAt))
	defer cancel()
	r, err := tc.srv.cfg.Approvals.Wait(wctx, tc.actor, req.ID)
	switch {
	case err != nil:
		return fmt.Sprintf("%s: not approved in time (request #%d)", held, req.ID)
	case r.State != store.Approved:
		why := r.State
		if r.DecisionReason != "" {
			return fmt.Sprintf("%s: request #%d %s by %s: %s", held, req.ID, why, r.DecidedBy, r.DecisionReason)
		}
		return fmt.Sprintf("%s: request #%d %s", held, req.ID, why)
	}
	tc.srv.cfg.Approvals.CommandDone(context.WithoutCancel(ctx), tc.actor, req.ID)
	tc.tell(tell, fmt.Sprintf("bastion: approved by %s%s", r.DecidedBy, nl))
	return ""
}

func (tc *targetConn) tell(w io.Writer, msg string) {
	if _, err := io.WriteString(w, msg); err != nil {
		tc.log.Debug("tell user", "err", err)
	}
}

// denyExec answers a refused exec: the command never reaches the target;
// the user sees why on stderr and gets exit status 126.
func (tc *targetConn) denyExec(uch, upch ssh.Channel, req *ssh.Request, msg string) {
	if req.WantReply {
		if err := req.Reply(true, nil); err != nil {
			tc.log.Debug("reply to user", "err", err)
		}
	}
	if _, err := fmt.Fprintf(uch.Stderr(), "bastion: %s\n", msg); err != nil {
		tc.log.Debug("write refusal", "err", err)
	}
	status := struct{ Status uint32 }{ExitDenied}
	if _, err := uch.SendRequest("exit-status", false, ssh.Marshal(&status)); err != nil {
		tc.log.Debug("send exit-status", "err", err)
	}
	upch.Close() // no exec was sent: closing ends the relay's copies
}
