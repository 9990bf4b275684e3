package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/protocols/ssh/linebuf"
	"github.com/bastionhq/bastion/protocols/ssh/shellcmd"
)

// CommandsRestricted tells whether command rules apply to a user on a
// target: only then are typed lines filtered.
type CommandsRestricted interface {
	CommandsRestricted(user, target string) bool
}

// refuseLine is what the target's shell receives instead of Enter for a
// refused line: Ctrl-\, Ctrl-E, Ctrl-U, Enter.
//   - Ctrl-\ makes the terminal discard the input its reader has not read
//     yet (and send SIGQUIT, which interactive shells ignore). A line typed
//     ahead while the shell switches its terminal from raw to canonical mode
//     to run the previous command is already committed: Ctrl-U cannot reach
//     it, and Enter would run it; only this discards it. (A command still
//     running when the refused line was typed ahead gets the SIGQUIT.)
//     Ctrl-C would discard it too, but bash may act on its SIGINT only later,
//     dropping what the user types next, so that the shell would run other
//     text than the filter decided.
//   - Ctrl-E (end of line) and Ctrl-U (kill the line) then empty what a line
//     editor had already read of the line; a terminal in canonical mode
//     kills its line on Ctrl-U too.
//   - Enter then gives a fresh prompt on an empty line.
var refuseLine = []byte{0x1c, 0x05, 0x15, '\r'}

// lineFilter checks the lines typed into an interactive shell against the
// command rules, best effort: each Enter is held back until the line it
// ends has been decided. Pasted text is typed text: a bracketed paste is
// held back whole, from its start marker to its end marker; at its end the
// complete lines it made are decided (a shell without a line editor runs
// them as they arrive), and one refused line refuses the paste; a line
// editor keeps them in the line, which is decided whole at Enter. It is an
// aid, not a sandbox — a program that reads its own input (an editor, a
// REPL, a shell started with different key bindings) can run what the
// filter never sees as a line; the README says so.
type lineFilter struct {
	tc  *targetConn
	rec *channelRec
	uch ssh.Channel // the user's terminal, for messages
	buf linebuf.Buffer

	// The paste being held back (pasting): its bytes, and whether it
	// outgrew maxPaste (then it is refused whole at its end, and its bytes
	// are dropped as they come).
	pasting  bool
	held     []byte
	overflow bool
	// pasted is the text a paste's end decided (allowed, or approved) as
	// a whole, "" if none: the Enter that follows with the line unchanged
	// runs what was decided, and is not decided (nor held for approval)
	// again.
	pasted string
	// recordOnly: no command rules apply, and the filter is there only so
	// that, under recording: fail-closed, each line's record is durable
	// before its Enter reaches the target. Nothing is decided.
	recordOnly bool
}

// maxPaste bounds a paste held back until its end marker.
const maxPaste = 64 << 10

// refusePaste ends a refused paste at the target, whose start marker has
// gone through (none of the paste has), and empties the line: Ctrl-E,
// Ctrl-U, Enter. Not Ctrl-\: the terminal could discard the end marker
// unread, and leave the line editor reading a paste that never ends.
var refusePaste = []byte("\x1b[201~\x05\x15\r")

// forward sends typed bytes to the target, deciding each completed line
// before its Enter goes through, and each paste before any of it does.
func (f *lineFilter) forward(ctx context.Context, uch, upch ssh.Channel, p []byte) error {
	f.uch = uch
	for len(p) > 0 {
		n, err := f.forwardSome(ctx, uch, upch, p)
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// forwardSome forwards p, or the start of it up to a refused paste: the
// line it was in is then gone at the target, so the line buffer starts
// afresh and is fed the rest again. It returns how much of p it used.
func (f *lineFilter) forwardSome(ctx context.Context, uch, upch ssh.Channel, p []byte) (int, error) {
	lines, marks := f.buf.FeedMarks(p)
	start := 0
	for len(lines) > 0 || len(marks) > 0 {
		if len(marks) > 0 && (len(lines) == 0 || marks[0].End < lines[0].End) {
			m := marks[0]
			marks = marks[1:]
			if m.Begin {
				// The start marker goes through: the target's line editor
				// then waits for the paste, which is held here.
				if _, err := upch.Write(p[start:m.End]); err != nil {
					return 0, err
				}
				f.pasting = true
				start = m.End
				continue
			}
			f.hold(p[start:m.End])
			refused, err := f.endPaste(ctx, uch, upch, m)
			if err != nil || refused {
				f.buf.Reset()
				return m.End, err
			}
			start = m.End
			continue
		}
		// A line ends only outside a paste (a pasted newline is part of
		// the line).
		line := lines[0]
		lines = lines[1:]
		key := max(line.End-1, start)
		if _, err := upch.Write(p[start:key]); err != nil {
			return 0, err
		}
		start = line.End
		msg := ""
		decided := f.pasted != "" && !line.Uncertain && strings.TrimRight(line.Text, "\n") == f.pasted
		if !decided {
			msg = f.check(ctx, line)
		}
		f.pasted = ""
		if msg == "" {
			// A paste's lines were recorded at its end.
			if !decided {
				if err := f.record(ctx, line); err != nil {
					return 0, err
				}
			}
			if _, err := upch.Write(p[key:line.End]); err != nil {
				return 0, err
			}
			continue
		}
		if err := f.refuse(uch, upch, msg, refuseLine); err != nil {
			return 0, err
		}
	}
	if f.pasting {
		f.hold(p[start:])
		return len(p), nil
	}
	_, err := upch.Write(p[start:])
	return len(p), err
}

// hold keeps pasted bytes until the paste ends.
func (f *lineFilter) hold(p []byte) {
	if f.overflow {
		return
	}
	if len(f.held)+len(p) > maxPaste {
		f.overflow, f.held = true, nil
		return
	}
	f.held = append(f.held, p...)
}

// endPaste decides a held paste at its end marker m: all of it goes to the
// target, or none of it (refused).
func (f *lineFilter) endPaste(ctx context.Context, uch, upch ssh.Channel, m linebuf.Mark) (refused bool, err error) {
	held, overflow := f.held, f.overflow
	f.pasting, f.held, f.overflow = false, nil, false
	msg := ""
	if overflow {
		msg = fmt.Sprintf("a paste longer than %d bytes cannot be checked, and commands are restricted here: paste less at a time", maxPaste)
		if f.recordOnly {
			msg = fmt.Sprintf("a paste longer than %d bytes cannot be recorded before it runs, and recording is fail-closed here: paste less at a time", maxPaste)
		}
		f.tc.audit(audit.Event{Type: audit.Command, Outcome: audit.OutcomeRefused, Reason: msg, Details: map[string]string{"interactive": "true"}})
	} else {
		var complete bool
		msg, complete = f.checkPaste(ctx, m)
		if msg == "" && complete {
			f.pasted = m.Lines
		}
	}
	if msg == "" {
		// A shell without a line editor runs the paste's lines as they
		// arrive: their record goes first.
		if err := f.record(ctx, linebuf.Line{Text: m.Lines, Uncertain: m.Uncertain, Pasted: true}); err != nil {
			return false, err
		}
		_, err := upch.Write(held)
		return false, err
	}
	f.pasted = ""
	return true, f.refuse(uch, upch, msg+" (the whole paste was refused)", refusePaste)
}

// checkPaste decides the complete lines of the current line at the end of a
// paste. Lines are joined while the shell would read on (an open quote, an
// unfinished if or here-document); what is still open at the end is
// decided with the rest of the line at Enter. complete reports that all of
// m.Lines was decided.
func (f *lineFilter) checkPaste(ctx context.Context, m linebuf.Mark) (msg string, complete bool) {
	if m.Lines == "" {
		return "", false
	}
	if m.Uncertain {
		return f.check(ctx, linebuf.Line{Text: m.Lines, Uncertain: true, Pasted: true}), false
	}
	var pending []string
	for _, l := range strings.Split(m.Lines, "\n") {
		pending = append(pending, l)
		text := strings.Join(pending, "\n")
		if _, err := shellcmd.Parse(text); errors.Is(err, shellcmd.ErrIncomplete) {
			continue
		}
		if msg := f.check(ctx, linebuf.Line{Text: text, Pasted: true}); msg != "" {
			return msg, false
		}
		pending = nil
	}
	return "", len(pending) == 0
}

// refuse tells the user why a line was refused and sends the target keys
// that empty the line (refuseLine or refusePaste).
func (f *lineFilter) refuse(uch, upch ssh.Channel, msg string, keys []byte) error {
	f.rec.marker("denied: " + msg)
	if _, err := io.WriteString(uch, "\r\nbastion: "+msg+"\r\n"); err != nil {
		return err
	}
	_, err := upch.Write(keys)
	return err
}

// record writes an allowed line's marker to the recording and, under
// recording: fail-closed, waits until it is durable (channelRec.commitLine):
// the line's Enter (or a paste's lines) goes to the target only then. An
// error means the line must not run; the session ends. An empty line runs
// nothing and is not recorded.
func (f *lineFilter) record(ctx context.Context, line linebuf.Line) error {
	text := strings.TrimSpace(line.Text)
	if text == "" && !line.Uncertain {
		return nil
	}
	switch {
	case !line.Pasted && f.rec.typedHidden(utf8.RuneCountInString(line.Text)):
		text = hiddenLine
	case line.Uncertain:
		text += " (as Bastion saw it: the shell may have recalled or completed more)"
	}
	if err := f.rec.commitLine(ctx, text); err != nil {
		return fmt.Errorf("record typed line: %w", err)
	}
	return nil
}

// hiddenLine stands for a line typed with echo off (a password) in logs,
// audit events and the recording's line markers.
const hiddenLine = "(typed with echo off: not logged)"

// check decides one typed line: "" to let it run, else the refusal.
func (f *lineFilter) check(ctx context.Context, line linebuf.Line) string {
	if f.recordOnly {
		return ""
	}
	// Typed with echo off (a password at a prompt): not a command, and not
	// to be inspected or logged. Only what the target did counts: a line
	// that was pasted (a paste is not echoed until it ends, and its markers
	// can be typed) is always checked, and so is a line Bastion could not
	// follow (Ctrl-S stops the echo), though its text is then not logged.
	hidden := !line.Pasted && f.rec.typedHidden(utf8.RuneCountInString(line.Text))
	if hidden && !line.Uncertain {
		return ""
	}
	// Uncertain before empty: a line recalled from history has no text
	// Bastion knows, and must not pass as a blank line.
	text := strings.TrimSpace(line.Text)
	tc := f.tc
	msg := ""
	switch {
	case line.Uncertain:
		msg = "this line cannot be checked (history, completion or editing Bastion cannot follow), and commands are restricted here: type the command in full"
	case text == "":
		return ""
	case shellcmd.HistoryExpansion(text):
		msg = "history expansion (!!, !x, ^old^new) runs an earlier line that cannot be checked here, and commands are restricted here: type the command in full"
	default:
		msg = tc.decide(ctx, f.uch, "\r\n", text)
		if msg == "" {
			msg = f.checkAliases(ctx, text)
		}
	}
	if msg != "" {
		logged := text
		if hidden {
			logged = hiddenLine
		}
		tc.log.Info("typed line refused", "command", firstWord(logged))
		tc.audit(audit.Event{Type: audit.Command, Outcome: audit.OutcomeRefused, Reason: msg,
			Details: map[string]string{"command": logged, "interactive": "true"}})
	}
	return msg
}

// checkAliases decides the values of the aliases a typed line defines: in
// an interactive shell an alias outlives its line, and a later line that
// uses it shows only its name.
func (f *lineFilter) checkAliases(ctx context.Context, text string) string {
	res, err := shellcmd.ParseLine(text)
	if err != nil {
		return "" // decided (and refused) as the line itself
	}
	rules := f.tc.srv.cfg.ExecRules
	for _, name := range slices.Sorted(maps.Keys(res.Aliases)) {
		// Decided, not held for approval: an approval now would let every
		// later use of the alias run unapproved.
		d := rules.CheckExec(ctx, f.tc.grant.User, f.tc.grant.Target, res.Aliases[name])
		switch {
		case d.Refusal != "":
			return fmt.Sprintf("alias %s would run what is refused here: %s", name, d.Refusal)
		case d.Approval != nil:
			return fmt.Sprintf("alias %s would run what rule %s holds for approval: run that command itself", name, d.Approval.Rule)
		}
	}
	return ""
}

// InputReaders tells which command lines start a shell or an interpreter
// that reads its commands from the session's input.
type InputReaders interface {
	ReadsInput(command string) bool
}

// noTerminalShell is the refusal of a shell, or an interpreter reading its
// input, without a terminal where command rules apply.
const noTerminalShell = "a shell without a terminal cannot be checked against the command rules that apply here: run commands with ssh … 'COMMAND', or use a terminal"

// execShell handles an exec command that starts a shell or interpreter
// reading the session's input (ssh -t host bash, sudo -i, python3): where
// command rules apply, with a terminal it gets the line filter exactly as
// a shell request does, and without one (sh < script) it is refused, since
// nothing it will run can be checked. It returns the filter to install
// (nil: none), or a refusal.
func (tc *targetConn) execShell(rec *channelRec, command string) (*lineFilter, string) {
	readers, ok := tc.srv.cfg.ExecRules.(InputReaders)
	if !ok || !readers.ReadsInput(command) {
		return nil, ""
	}
	f := tc.newLineFilter(rec)
	if f == nil {
		return nil, ""
	}
	if !rec.hasPTY() {
		return nil, strings.Replace(noTerminalShell, "a shell", "a shell or interpreter reading its input", 1)
	}
	return f, ""
}

// newLineFilter returns a filter for a shell session: one that decides
// each line where command rules apply to the grant; else, for a terminal
// session recorded fail-closed, one that only makes each line's record
// durable before its Enter goes through; else nil. (Without a terminal
// there are no typed lines to split input into: a script piped into a
// shell is recorded as any input is, synced every second.)
func (tc *targetConn) newLineFilter(rec *channelRec) *lineFilter {
	rules, ok := tc.srv.cfg.ExecRules.(CommandsRestricted)
	if ok && rules.CommandsRestricted(tc.grant.User, tc.grant.Target) {
		return &lineFilter{tc: tc, rec: rec}
	}
	if rec.hasPTY() && rec.durableLines() {
		return &lineFilter{tc: tc, rec: rec, recordOnly: true}
	}
	return nil
}

// copyInput relays typed input to the target, through the line filter for
// terminal shells under command rules.
func (tc *targetConn) copyInput(ctx context.Context, uch, upch ssh.Channel, rec *channelRec) error {
	select {
	case <-rec.started:
	case <-ctx.Done():
		return nil
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := uch.Read(buf)
		if rec.failed() != nil {
			return nil // the recording failed: nothing more goes to the target
		}
		if n > 0 {
			p := buf[:n]
			rec.input(p)
			if f := rec.filter(); f != nil {
				if werr := f.forward(ctx, uch, upch, p); werr != nil {
					return werr
				}
			} else if _, werr := upch.Write(p); werr != nil {
				return werr
			}
		}
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("read input: %w", err)
		}
	}
}
