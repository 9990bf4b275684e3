package ssh

import (
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/protocols/ssh/linebuf"
)

// CommandsRestricted tells whether command rules apply to a user on a
// target: only then are typed lines filtered.
type CommandsRestricted interface {
	CommandsRestricted(user, target string) bool
}

// refuseLine is what the target's shell receives instead of Enter for a
// refused line: Ctrl-E (end of line) and Ctrl-U (kill the line) empty it,
// and Enter shows a fresh prompt. A shell in canonical mode kills the line
// on Ctrl-U too.
var refuseLine = []byte{0x05, 0x15, '\r'}

// lineFilter checks the lines typed into an interactive shell against the
// command rules, best effort: each Enter is held back until the line it
// ends has been decided. It is an aid, not a sandbox — a program that reads
// its own input (an editor, a REPL, a shell started with different key
// bindings) can run what the filter never sees as a line; the README says
// so.
type lineFilter struct {
	tc  *targetConn
	rec *channelRec
	uch ssh.Channel // the user's terminal, for messages
	buf linebuf.Buffer
}

// forward sends typed bytes to the target, deciding each completed line
// before its Enter goes through.
func (f *lineFilter) forward(ctx context.Context, uch, upch ssh.Channel, p []byte) error {
	f.uch = uch
	start := 0
	for _, line := range f.buf.Feed(p) {
		key := max(line.End-1, start)
		if _, err := upch.Write(p[start:key]); err != nil {
			return err
		}
		start = line.End
		msg := f.check(ctx, line)
		if msg == "" {
			if _, err := upch.Write(p[key:line.End]); err != nil {
				return err
			}
			continue
		}
		f.rec.marker("denied: " + msg)
		if _, err := io.WriteString(uch, "\r\nbastion: "+msg+"\r\n"); err != nil {
			return err
		}
		if _, err := upch.Write(refuseLine); err != nil {
			return err
		}
	}
	_, err := upch.Write(p[start:])
	return err
}

// check decides one typed line: "" to let it run, else the refusal.
func (f *lineFilter) check(ctx context.Context, line linebuf.Line) string {
	// Typed with echo off (a password at a prompt): not a command, and not
	// to be inspected or logged.
	if f.rec.typedHidden(utf8.RuneCountInString(line.Text)) {
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
	default:
		msg = tc.decide(ctx, f.uch, "\r\n", text)
	}
	if msg != "" {
		tc.log.Info("typed line refused", "command", firstWord(text))
		tc.audit(audit.Event{Type: audit.Command, Outcome: audit.OutcomeRefused, Reason: msg,
			Details: map[string]string{"command": text, "interactive": "true"}})
	}
	return msg
}

// newLineFilter returns a filter for a shell session, or nil when no
// command rules apply to the grant.
func (tc *targetConn) newLineFilter(rec *channelRec) *lineFilter {
	rules, ok := tc.srv.cfg.ExecRules.(CommandsRestricted)
	if !ok || !rules.CommandsRestricted(tc.grant.User, tc.grant.Target) {
		return nil
	}
	return &lineFilter{tc: tc, rec: rec}
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
