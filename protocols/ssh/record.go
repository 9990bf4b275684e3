package ssh

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/asciicast"
)

// Sessions records sessions for listing and replay.
type Sessions interface {
	CreateSession(ctx context.Context, sess *store.Session) error
	EndSession(ctx context.Context, id string, state store.SessionState, at time.Time, reason string, exitStatus int) error
}

// DefaultExecOutputLimit caps how much of an exec command's output is
// recorded (file transfers would otherwise be recorded whole).
const DefaultExecOutputLimit = 1 << 20

// channelRec is the recording of one session channel. It starts with the
// channel's first shell, exec or subsystem request; until then there is
// nothing to record.
type channelRec struct {
	tc  *targetConn
	id  string
	mu  sync.Mutex
	pty *ptyRequest

	term  *recorder.Terminal
	echo  *echoTracker    // pty sessions: redacts what the target does not echo
	lines *lineFilter     // pty shells under command rules: checks typed lines
	xfer  transferDecoder // sftp and scp sessions: reports file operations
	files *sessionGate    // sftp sessions under file rules: decides each request
	kind  string
	exit  int
	// started is closed once the first shell, exec or subsystem request has
	// been handled; input waits for it, so that nothing typed ahead reaches
	// a shell before its line filter exists.
	started   chan struct{}
	startOnce sync.Once
	failErr   error  // the first recording failure: the session ends (fail closed)
	onFail    func() // called once, when the recording first fails
	failOpen  bool   // the role lets the session go on unrecorded instead
	// unrecorded is set when a fail-open session's recording failed: it
	// goes on, and nothing more is recorded.
	unrecorded bool
	ended      bool // end has run: a late start must not reopen the recording
}

func (tc *targetConn) newChannelRec() *channelRec {
	tc.mu.Lock()
	tc.channels++
	n := tc.channels
	tc.mu.Unlock()
	return &channelRec{tc: tc, id: fmt.Sprintf("%s-%d", tc.id, n), exit: -1, started: make(chan struct{})}
}

// markStarted says the session's kind is settled (and, for a shell under
// command rules, its line filter is in place): typed input may flow.
func (r *channelRec) markStarted() {
	r.startOnce.Do(func() { close(r.started) })
}

// start begins recording a channel: a shell, an exec command or a
// subsystem. An error means the session cannot be recorded and must not run.
func (r *channelRec) start(ctx context.Context, kind, command string) error {
	tc := r.tc
	srv := tc.srv
	if srv.cfg.Recordings == nil || srv.cfg.Sessions == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return fmt.Errorf("the session has ended")
	}
	if r.term != nil {
		return nil
	}
	r.failOpen = srv.cfg.FailOpen != nil && srv.cfg.FailOpen(tc.grant)
	if g, ok := srv.cfg.Recordings.(recorder.Guarantor); ok && !r.failOpen {
		if err := g.Guarantee(ctx); err != nil {
			return fmt.Errorf("recording cannot be guaranteed: %w", err)
		}
	}
	now := time.Now()
	h := asciicast.Header{Version: 2, Width: 80, Height: 24, Timestamp: now.Unix(),
		Title: fmt.Sprintf("%s as %s@%s", tc.grant.User, tc.grant.Login, tc.grant.Target)}
	if r.pty != nil {
		// A client without a terminal (ssh -tt with a pipe) asks for 0x0:
		// record the classic size instead.
		if r.pty.Cols > 0 && r.pty.Rows > 0 {
			h.Width, h.Height = int(r.pty.Cols), int(r.pty.Rows)
		}
		h.Env = map[string]string{"TERM": r.pty.Term}
	}
	if command != "" {
		h.Title += ": " + command
	}
	name := recorder.DailyName("ssh", now, r.id, "cast")
	var opts []recorder.TerminalOption
	if kind != "shell" {
		limit := srv.cfg.ExecOutputLimit
		if limit == 0 {
			limit = DefaultExecOutputLimit
		}
		opts = append(opts, recorder.OutputLimit(limit))
	}
	info := map[string]string{"session": r.id, "user": tc.grant.User, "target": tc.grant.Target, "login": tc.grant.Login,
		"protocol": "ssh", "kind": kind, "source": tc.actor.Source.String()}
	if command != "" {
		info["command"] = command
	}
	term, err := recorder.NewTerminal(recorder.WithInfo(ctx, info), srv.cfg.Recordings, name, h, now, opts...)
	if err != nil {
		return fmt.Errorf("start recording: %w", err)
	}
	sess := &store.Session{
		ID: r.id, User: tc.grant.User, Target: tc.grant.Target, Login: tc.grant.Login, Protocol: "ssh",
		Kind: kind, Command: command, RequestID: tc.grant.RequestID, Source: tc.actor.Source.String(),
		Recording: name, State: store.SessionLive, StartedAt: now, ExitStatus: -1,
	}
	if err := srv.cfg.Sessions.CreateSession(ctx, sess); err != nil {
		term.Close()
		return fmt.Errorf("record session: %w", err)
	}
	if command != "" {
		err := term.Marker("exec: " + command)
		if err == nil && !r.failOpen {
			// Fail closed: the command reaches the target only once its
			// record is durable (one group commit, once per session).
			err = term.Commit(ctx)
		}
		if err != nil {
			r.failErr = err
		}
	}
	r.term, r.kind = term, kind
	if r.failErr != nil && !r.failOpen {
		// The command did not reach the spool: it may not run. The
		// channel's end closes the recording and the session's row.
		return fmt.Errorf("record the command: %w", r.failErr)
	}
	if r.pty != nil && kind == "shell" {
		r.echo = newEchoTracker(func(p []byte) { r.write(func() error { return r.term.Input(p) }) })
	}
	return nil
}

// failed is the recording's first failure, if any.
func (r *channelRec) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failErr
}

// write runs one recording write, keeping the first failure.
func (r *channelRec) write(fn func() error) {
	if r.term == nil || r.unrecorded {
		return
	}
	err := fn()
	if err != nil && r.failOpen {
		// Fail open: the role lets the session go on unrecorded.
		r.unrecorded = true
		r.tc.log.Error("recording failed; the session goes on unrecorded (fail-open role)", "session", r.id, "err", err)
		r.tc.audit(audit.Event{Type: audit.SessionStart, Outcome: audit.OutcomeError,
			Reason: "recording failed, session continues unrecorded (fail-open): " + err.Error()})
		return
	}
	if err != nil && r.failErr == nil {
		r.failErr = err
		r.tc.log.Error("recording failed; ending the session", "session", r.id, "err", err)
		if r.onFail != nil {
			go r.onFail() // fail closed now: nothing more may run unrecorded
		}
	}
}

// output records target output; it reports whether the session may go on.
// stdout says whether p is the channel's data (not its stderr).
func (r *channelRec) output(p []byte, stdout bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if stdout && r.xfer != nil {
		r.xfer.FromServer(p)
	}
	if r.echo != nil {
		r.echo.Output(p)
	}
	r.write(func() error { return r.term.Output(p) })
	return r.failErr
}

// input records what the user typed (terminal sessions only: the input of
// exec and file transfers is data, not keystrokes).
func (r *channelRec) input(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.xfer != nil {
		r.xfer.FromClient(p)
	}
	if r.echo != nil {
		r.echo.Input(p)
	}
}

func (r *channelRec) resize(cols, rows uint32) {
	if cols == 0 || rows == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.write(func() error { return r.term.Resize(int(cols), int(rows)) })
}

func (r *channelRec) marker(label string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.write(func() error { return r.term.Marker(label) })
}

// durableLines reports whether typed lines must be durable in the
// recording before they run: the session is recorded, fail-closed.
func (r *channelRec) durableLines() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.term != nil && !r.failOpen
}

// commitLine records that a typed line runs, as the marker "line: TEXT",
// and under fail-closed returns once the marker is durable (one group
// commit): the caller forwards the line's Enter only then. An error means
// the line must not run: the recording has failed (kept, as any write
// failure), and the session ends. The commit runs outside the lock, so
// that output goes on being recorded while it waits.
func (r *channelRec) commitLine(ctx context.Context, text string) error {
	r.mu.Lock()
	durable := r.term != nil && !r.failOpen
	if durable {
		r.write(func() error { return r.term.Marker("line: " + text) })
	}
	term, err := r.term, r.failErr
	r.mu.Unlock()
	if !durable || err != nil {
		return err
	}
	if err := term.Commit(ctx); err != nil {
		if ctx.Err() == nil {
			r.mu.Lock()
			r.write(func() error { return err })
			r.mu.Unlock()
		}
		return err
	}
	return nil
}

func (r *channelRec) hasPTY() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pty != nil
}

func (r *channelRec) setFilter(f *lineFilter) {
	r.mu.Lock()
	r.lines = f
	r.mu.Unlock()
}

func (r *channelRec) filter() *lineFilter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lines
}

// typedHidden reports whether the last n characters typed were typed with
// echo off. Without an echo tracker (nothing recorded) nothing is hidden.
func (r *channelRec) typedHidden(n int) bool {
	r.mu.Lock()
	e := r.echo
	r.mu.Unlock()
	return e != nil && e.lastTypedHidden(n)
}

func (r *channelRec) setPTY(p *ptyRequest) {
	r.mu.Lock()
	r.pty = p
	r.mu.Unlock()
}

func (r *channelRec) setExit(payload []byte, signal bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if signal {
		// RFC 4254 6.10: the signal's name, whether core was dumped, an
		// error message and its language tag.
		var sig struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}
		if ssh.Unmarshal(payload, &sig) == nil {
			r.write(func() error { return r.term.Marker("killed by signal " + sig.Signal) })
			r.exit = 128
		}
		return
	}
	var st struct{ Status uint32 }
	if ssh.Unmarshal(payload, &st) == nil {
		r.exit = int(st.Status)
	}
}

// end closes the recording and the session record.
func (r *channelRec) end(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = true
	if r.term == nil {
		return
	}
	if r.echo != nil {
		r.echo.Flush()
	}
	if r.xfer != nil {
		r.xfer.End()
	}
	if r.exit >= 0 {
		r.write(func() error { return r.term.Marker(fmt.Sprintf("exit status %d", r.exit)) })
	}
	if err := r.term.Close(); err != nil && r.failErr == nil {
		r.failErr = err
	}
	if r.failErr != nil {
		reason = strings.TrimSpace(reason + "; recording failed: " + r.failErr.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.tc.srv.cfg.Sessions.EndSession(ctx, r.id, store.SessionEnded, time.Now(), reason, r.exit); err != nil {
		r.tc.log.Error("record session end", "session", r.id, "err", err)
	}
}
