package ssh

import (
	"regexp"
	"sync"
	"time"
)

// echoWindow is how long typed input may wait for the target to echo it
// back before it counts as typed at a no-echo prompt (a password).
const echoWindow = 300 * time.Millisecond

// maxPendingInput bounds the input held while waiting for its echo.
const maxPendingInput = 4096

// echoTracker records what a user types into a terminal, redacting what the
// target does not echo: at a password prompt the terminal's echo is off, so
// the typed characters never appear in the output, and they are recorded
// as '*'. Control characters (Enter, arrows) are recorded as typed. This is
// a heuristic from the outside of the target's terminal: input that is
// echoed as something else (asterisks) is redacted too, which errs safe.
type echoTracker struct {
	mu      sync.Mutex
	pending []pendingByte
	record  func([]byte)
	now     func() time.Time
	esc     escState // where the input is in an escape sequence

	// history holds the latest decisions on printable typed bytes (true:
	// echoed), newest last, for lastTypedHidden.
	history []bool
	changed chan struct{} // closed and replaced when output arrives

	// tail is the end of the output as text (escape sequences left out),
	// for secretPrompt; outEsc is where the output is in an escape
	// sequence.
	tail   []byte
	outEsc escState
}

// tailSize bounds the output text kept for secretPrompt.
const tailSize = 256

// secretPromptRE matches the last line of output at a prompt for a secret:
// "Password: ", "[sudo] password for root: ", "Enter passphrase for key
// …: ", "Verification code: ", "PIN: ".
var secretPromptRE = regexp.MustCompile(`(?i)(password|passphrase|pass phrase|passcode|\bpin\b|\btoken\b|\botp\b|verification code|one-time code|secret)[^\r\n]*[:?][ \t]*$`)

// historySize bounds the decisions kept for lastTypedHidden.
const historySize = 512

type pendingByte struct {
	b       byte
	at      time.Time
	echoed  bool
	hidden  bool // decided: typed with echo off
	control bool // a control character or part of an escape sequence (arrows, function keys)
}

// escState follows escape sequences in typed input (ESC [ … final, ESC O x).
type escState int

const (
	escNone  escState = iota
	escStart          // after ESC
	escCSI            // after ESC [
	escSS3            // after ESC O
	escOSC            // after ESC ] (output only: until BEL or ESC)
)

// control reports whether b (the next typed byte) is a control character
// or part of an escape sequence, and advances the state.
func (e *echoTracker) control(b byte) bool {
	switch e.esc {
	case escStart:
		switch b {
		case '[':
			e.esc = escCSI
		case 'O':
			e.esc = escSS3
		default:
			e.esc = escNone
		}
		return true
	case escCSI:
		if b >= 0x40 && b <= 0x7e {
			e.esc = escNone
		}
		return true
	case escSS3:
		e.esc = escNone
		return true
	}
	if b == 0x1b {
		e.esc = escStart
	}
	return b < 0x20 || b == 0x7f
}

func newEchoTracker(record func([]byte)) *echoTracker {
	return &echoTracker{record: record, now: time.Now, changed: make(chan struct{})}
}

// lastTypedHidden reports whether the latest n printable bytes typed were
// all typed with echo off at a prompt for a secret (a password, which
// interactive filtering must not inspect). It waits, at most until
// echoWindow after the newest of them, for their echo. Input that is not
// echoed without such a prompt (typed ahead while the target is busy, or
// after stty -echo) is not taken for a secret: the target did not ask for
// one.
func (e *echoTracker) lastTypedHidden(n int) bool {
	if n <= 0 {
		return false
	}
	e.mu.Lock()
	prompted := secretPromptRE.Match(e.tail)
	e.mu.Unlock()
	if !prompted {
		return false
	}
	for {
		e.mu.Lock()
		var newest time.Time
		for _, pb := range e.pending {
			if !pb.control && !pb.echoed && !pb.hidden {
				newest = pb.at
			}
		}
		if newest.IsZero() {
			hidden := e.lastHiddenLocked(n) && secretPromptRE.Match(e.tail)
			e.mu.Unlock()
			return hidden
		}
		wait, changed := newest.Add(echoWindow).Sub(e.now()), e.changed
		if wait <= 0 {
			// Past the window with no echo: decided hidden. Only marked
			// here; recording happens on the next Input or Output, which
			// run under the recording's lock.
			for k := range e.pending {
				if pb := &e.pending[k]; !pb.control && !pb.echoed {
					pb.hidden = true
				}
			}
			e.mu.Unlock()
			continue
		}
		e.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// lastHiddenLocked reports whether the latest n decided printable bytes,
// flushed (history) or still pending, were all unechoed.
func (e *echoTracker) lastHiddenLocked(n int) bool {
	var decided []bool
	for _, pb := range e.pending {
		if !pb.control {
			decided = append(decided, pb.echoed)
		}
	}
	all := append(append([]bool{}, e.history...), decided...)
	tail := all[max(0, len(all)-n):]
	if len(tail) == 0 {
		return false
	}
	for _, echoed := range tail {
		if echoed {
			return false
		}
	}
	return true
}

// Input notes bytes the user typed.
func (e *echoTracker) Input(p []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	for _, b := range p {
		if len(e.pending) >= maxPendingInput {
			e.flushLocked(now, true)
		}
		e.pending = append(e.pending, pendingByte{b: b, at: now, control: e.control(b)})
	}
	e.flushLocked(now, false)
}

// minEchoRun is how many typed bytes in a row must appear inside an output
// chunk (rather than at its start) to count as their echo: a shell may
// redraw its prompt in front of the echo, but a single typed character
// found somewhere in later output proves nothing.
const minEchoRun = 4

// Output notes bytes the target sent. A terminal echoes keystrokes at once
// and in order. The undecided typed bytes are taken run by run (a run ends
// at a control key such as Enter); a run counts as echoed when this output
// begins with it, once leading control bytes and escape sequences are
// skipped, or when at least minEchoRun of its bytes appear in a row inside
// the output. When a later run is echoed, the earlier runs that were not
// are decided too: they were typed with echo off.
func (e *echoTracker) Output(p []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keepTail(p)
	var runs [][]*pendingByte
	var cur []*pendingByte
	for k := range e.pending {
		pb := &e.pending[k]
		switch {
		case pb.echoed || pb.hidden:
		case pb.control:
			if len(cur) > 0 {
				runs, cur = append(runs, cur), nil
			}
		default:
			cur = append(cur, pb)
		}
	}
	if len(cur) > 0 {
		runs = append(runs, cur)
	}
	rest := p
	for i, run := range runs {
		n, after := matchRun(run, rest)
		if n == 0 {
			continue
		}
		for _, pb := range run[:n] {
			pb.echoed = true
		}
		for _, earlier := range runs[:i] {
			for _, pb := range earlier {
				if !pb.echoed {
					pb.hidden = true
				}
			}
		}
		rest = after
	}
	e.flushLocked(e.now(), false)
	close(e.changed)
	e.changed = make(chan struct{})
}

// keepTail adds the text of output p to the tail: printable bytes, CR and
// LF, without escape sequences (colours, cursor moves, OSC titles).
func (e *echoTracker) keepTail(p []byte) {
	for _, b := range p {
		switch e.outEsc {
		case escStart:
			switch b {
			case '[':
				e.outEsc = escCSI
			case ']':
				e.outEsc = escOSC
			default:
				e.outEsc = escNone
			}
			continue
		case escCSI:
			if b >= 0x40 && b <= 0x7e {
				e.outEsc = escNone
			}
			continue
		case escOSC:
			if b == 0x07 || b == 0x1b {
				e.outEsc = escNone
			}
			continue
		}
		switch {
		case b == 0x1b:
			e.outEsc = escStart
		case b == '\r' || b == '\n' || b >= 0x20 && b != 0x7f:
			if len(e.tail) == tailSize {
				e.tail = append(e.tail[:0], e.tail[tailSize/2:]...)
			}
			e.tail = append(e.tail, b)
		}
	}
}

// matchRun finds run's echo in p: how many of its bytes were echoed, and
// the output after them.
func matchRun(run []*pendingByte, p []byte) (int, []byte) {
	start := skipControl(p)
	if n := matchPrefix(run, start); n > 0 {
		return n, start[n:]
	}
	best, at := 0, 0
	for i := range p {
		if m := matchPrefix(run, p[i:]); m >= minEchoRun && m > best {
			best, at = m, i
		}
	}
	return best, p[min(at+best, len(p)):]
}

// matchPrefix is how many of run's bytes p begins with.
func matchPrefix(run []*pendingByte, p []byte) int {
	n := 0
	for n < len(run) && n < len(p) && run[n].b == p[n] {
		n++
	}
	return n
}

// skipControl drops leading control bytes and escape sequences.
func skipControl(p []byte) []byte {
	for len(p) > 0 {
		switch {
		case p[0] == 0x1b && len(p) > 1 && p[1] == '[':
			i := 2
			for i < len(p) && (p[i] < 0x40 || p[i] > 0x7e) {
				i++
			}
			p = p[min(i+1, len(p)):]
		case p[0] < 0x20 || p[0] == 0x7f:
			p = p[1:]
		default:
			return p
		}
	}
	return p
}

func (e *echoTracker) remember(echoed bool) {
	if len(e.history) == historySize {
		e.history = append(e.history[:0], e.history[historySize/2:]...)
	}
	e.history = append(e.history, echoed)
}

// Flush records everything still pending (at the end of a session).
func (e *echoTracker) Flush() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.flushLocked(e.now(), true)
}

// flushLocked records the pending bytes that are decided: echoed, control
// characters, or older than echoWindow (redacted). It keeps order: it stops
// at the first undecided byte.
func (e *echoTracker) flushLocked(now time.Time, all bool) {
	var out []byte
	n := 0
	for _, pb := range e.pending {
		switch {
		case pb.control:
			out = append(out, pb.b)
		case pb.echoed:
			out = append(out, pb.b)
			e.remember(true)
		case pb.hidden, all || now.Sub(pb.at) >= echoWindow:
			out = append(out, '*')
			e.remember(false)
		default:
			goto done
		}
		n++
	}
done:
	if n > 0 {
		e.pending = append(e.pending[:0], e.pending[n:]...)
		e.record(out)
	}
}
