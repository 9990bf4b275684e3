// Package linebuf reconstructs the lines a user types into a terminal from
// the raw bytes of the session's input, for the best-effort filtering of
// interactive shells.
//
// A Buffer follows the editing keys a shell's line editor (readline, in its
// default emacs mode) gives a fixed meaning: insertion at the cursor,
// backspace, delete, cursor movement, the kill commands, Ctrl-C, bracketed
// paste. What it cannot follow — completion (Tab), history (arrows up and
// down, Ctrl-R, Ctrl-P/N), yanking, undo, Ctrl-X sequences, vi mode, any
// escape sequence it does not know — makes the line Uncertain: its Text is
// then a guess, and a caller enforcing rules must treat it as unparseable.
// It does not know the shell's state (a continuation line, a program
// reading its own input, echo turned off); the caller tracks what it can of
// that. It is an aid, not a sandbox.
package linebuf

import (
	"unicode"
	"unicode/utf8"
)

// MaxLine is the longest line kept, in bytes of UTF-8. Input beyond it is
// dropped and the line marked Uncertain.
const MaxLine = 16 << 10

// maxEscape bounds a pending escape sequence; longer ones are abandoned.
const maxEscape = 32

// Line is a line the user entered.
type Line struct {
	// Text is the line as the shell would see it: valid UTF-8 without
	// control characters, except the newlines of a paste (a line editor
	// inserts them into the line: what a paste's lines run is decided
	// with all of the line when Enter is pressed). A Tab inside a paste is
	// a space.
	Text string
	// Uncertain is set when Text may differ from what the shell has.
	Uncertain bool
	// End is the offset, in the slice given to the Feed call that returned
	// the line, just after the byte that entered it: a caller holding the
	// line back forwards p[:End] minus that byte.
	End int
	// Pasted is set when some of the line came inside bracketed-paste
	// markers (or the Enter did). The markers are input like any other: a
	// user can type them.
	Pasted bool
}

// Mark is a bracketed-paste marker (ESC[200~ or ESC[201~) in the input.
type Mark struct {
	Begin bool // the start of a paste; false: its end
	// End is the offset, in the slice given to FeedMarks, just after the
	// marker's last byte (its first bytes may have come in an earlier call).
	End int
	// Lines, at the end of a paste, is the current line up to its last
	// newline: the complete lines that a shell without a line editor
	// (reading a terminal in canonical mode) runs as soon as they arrive.
	// Empty when the paste brought no newline.
	Lines string
	// Uncertain is set when Lines may differ from what the shell has.
	Uncertain bool
}

// Buffer reconstructs typed lines. The zero value is ready to use. It is not
// safe for concurrent use.
type Buffer struct {
	line      []rune
	size      int // bytes of line in UTF-8
	cursor    int // index in line
	uncertain bool

	// overwrite is set after an odd number of Insert keys: readline may be
	// in overwrite mode, so every line is uncertain until the next Insert.
	overwrite bool
	// paste is set between the bracketed-paste markers.
	paste bool
	// pasted is set when the current line has had pasted input.
	pasted bool
	marks  []Mark // the markers found by the current FeedMarks call
	// nextUncertain makes the next line uncertain (after Ctrl-O, which
	// enters a line and loads the next one from history).
	nextUncertain bool

	esc  []byte // a pending escape sequence, from its ESC
	utf8 []byte // a pending incomplete UTF-8 sequence
}

// Reset discards the current line and any pending sequence, as when the
// caller stops following the input (the terminal's echo is off) and starts
// again.
func (b *Buffer) Reset() {
	*b = Buffer{overwrite: b.overwrite}
}

// Feed processes input bytes and returns the lines they completed, in
// order. Escape and UTF-8 sequences may be split across calls.
func (b *Buffer) Feed(p []byte) []Line {
	lines, _ := b.FeedMarks(p)
	return lines
}

// FeedMarks is Feed, and also returns the bracketed-paste markers in p, in
// order, for a caller that holds a paste back until its end.
func (b *Buffer) FeedMarks(p []byte) ([]Line, []Mark) {
	b.marks = b.marks[:0]
	var lines []Line
	for i := 0; i < len(p); i++ {
		c := p[i]
		if len(b.utf8) > 0 {
			if c >= 0x80 && c < 0xc0 { // a continuation byte
				b.utf8 = append(b.utf8, c)
				if utf8.FullRune(b.utf8) {
					r, _ := utf8.DecodeRune(b.utf8)
					b.utf8 = b.utf8[:0]
					b.insert(r)
				}
				continue
			}
			b.utf8 = b.utf8[:0] // truncated: dropped
			b.uncertain = true
		}
		if len(b.esc) > 0 {
			if c < 0x20 {
				// A control character inside a sequence is acted on,
				// and the sequence abandoned: Enter or Ctrl-C must never
				// be swallowed.
				b.esc = b.esc[:0]
				b.uncertain = true
			} else {
				b.esc = append(b.esc, c)
				if b.escapeDone() {
					was := b.paste
					if b.escape() {
						lines = append(lines, b.enter(i+1))
					}
					if b.paste != was {
						b.marks = append(b.marks, b.mark(i+1))
					}
					b.esc = b.esc[:0]
				}
				continue
			}
		}
		switch {
		case c == 0x1b:
			b.esc = append(b.esc, c)
		case c < 0x20 || c == 0x7f:
			if b.control(c) {
				lines = append(lines, b.enter(i+1))
			}
		case c < 0x80:
			b.insert(rune(c))
		case c >= 0xc2 && c <= 0xf4: // starts a multibyte sequence
			b.utf8 = append(b.utf8, c)
		default:
			b.uncertain = true // not UTF-8
		}
	}
	return lines, b.marks
}

// mark reports a paste marker that just ended at end.
func (b *Buffer) mark(end int) Mark {
	m := Mark{Begin: b.paste, End: end, Uncertain: b.uncertain || b.overwrite}
	if !m.Begin {
		for i := len(b.line) - 1; i >= 0; i-- {
			if b.line[i] == '\n' {
				m.Lines = string(b.line[:i])
				break
			}
		}
	}
	return m
}

// Pasting reports whether the input is inside a bracketed paste.
func (b *Buffer) Pasting() bool { return b.paste }

// enter completes the current line.
func (b *Buffer) enter(end int) Line {
	l := Line{Text: string(b.line), Uncertain: b.uncertain || b.overwrite, End: end, Pasted: b.pasted || b.paste}
	b.pasted = false
	b.clear()
	b.uncertain, b.nextUncertain = b.nextUncertain, false
	return l
}

func (b *Buffer) clear() {
	b.line, b.size, b.cursor = b.line[:0], 0, 0
}

// insert puts r at the cursor.
func (b *Buffer) insert(r rune) {
	if r == utf8.RuneError || unicode.IsControl(r) {
		b.uncertain = true
		return
	}
	n := utf8.RuneLen(r)
	if b.size+n > MaxLine {
		b.uncertain = true
		return
	}
	b.pasted = b.pasted || b.paste
	b.line = append(b.line, 0)
	copy(b.line[b.cursor+1:], b.line[b.cursor:])
	b.line[b.cursor] = r
	b.cursor++
	b.size += n
}

// insertNewline puts a pasted newline at the cursor.
func (b *Buffer) insertNewline() {
	if b.size+1 > MaxLine {
		b.uncertain = true
		return
	}
	b.pasted = true
	b.line = append(b.line, 0)
	copy(b.line[b.cursor+1:], b.line[b.cursor:])
	b.line[b.cursor] = '\n'
	b.cursor++
	b.size++
}

// remove deletes line[from:to].
func (b *Buffer) remove(from, to int) {
	for _, r := range b.line[from:to] {
		b.size -= utf8.RuneLen(r)
	}
	b.line = append(b.line[:from], b.line[to:]...)
	if b.cursor > to {
		b.cursor -= to - from
	} else if b.cursor > from {
		b.cursor = from
	}
}

// control acts on a control character and reports whether it entered the
// line.
func (b *Buffer) control(c byte) bool {
	if b.paste {
		switch c {
		case '\r', '\n':
			b.insertNewline()
		case '\t':
			b.insert(' ')
		case 0x03:
			// The terminal turns Ctrl-C into SIGINT even in a paste:
			// the line is discarded; what follows is a guess.
			b.clear()
			b.uncertain = true
		default:
			b.uncertain = true
		}
		return false
	}
	switch c {
	case '\r', '\n': // Enter, Ctrl-J
		return true
	case 0x0f: // Ctrl-O: enter, then load the next line from history
		b.nextUncertain = true
		return true
	case 0x01: // Ctrl-A
		b.cursor = 0
	case 0x05: // Ctrl-E
		b.cursor = len(b.line)
	case 0x02: // Ctrl-B
		b.cursor = max(b.cursor-1, 0)
	case 0x06: // Ctrl-F
		b.cursor = min(b.cursor+1, len(b.line))
	case 0x7f, 0x08: // Backspace, Ctrl-H
		if b.cursor > 0 {
			b.remove(b.cursor-1, b.cursor)
		}
	case 0x04: // Ctrl-D: end of input on an empty line (ignored), else delete
		if b.cursor < len(b.line) {
			b.remove(b.cursor, b.cursor+1)
		}
	case 0x15: // Ctrl-U: kill to the start
		b.remove(0, b.cursor)
	case 0x0b: // Ctrl-K: kill to the end
		b.remove(b.cursor, len(b.line))
	case 0x17: // Ctrl-W: kill the whitespace-delimited word before the cursor
		i := b.cursor
		for i > 0 && unicode.IsSpace(b.line[i-1]) {
			i--
		}
		for i > 0 && !unicode.IsSpace(b.line[i-1]) {
			i--
		}
		b.remove(i, b.cursor)
	case 0x03: // Ctrl-C: the shell discards the line
		b.clear()
		b.uncertain = false
	case 0x07, 0x0c, 0x1a, 0x1c:
		// Ctrl-G (abort), Ctrl-L (clear screen), Ctrl-Z and Ctrl-\
		// (signals the shell ignores) leave the line as it is.
	default:
		// Tab (completion), Ctrl-P/N/R/S (history), Ctrl-T (transpose),
		// Ctrl-V (quoted insert), Ctrl-X (prefix), Ctrl-Y (yank),
		// Ctrl-_ (undo), Ctrl-] (search), Ctrl-@ (mark), …
		b.uncertain = true
	}
	return false
}

// escapeDone reports whether the pending escape sequence is complete (or
// must be abandoned).
func (b *Buffer) escapeDone() bool {
	s := b.esc
	switch {
	case len(s) > maxEscape:
		return true
	case len(s) == 2:
		return s[1] != '[' && s[1] != 'O'
	case s[1] == 'O':
		return true
	default: // CSI: parameter and intermediate bytes, then a final byte
		return s[len(s)-1] >= 0x40
	}
}

// escape acts on a complete escape sequence and reports whether it entered
// the line.
func (b *Buffer) escape() bool {
	s := string(b.esc)
	switch s {
	case "\x1b[200~":
		b.paste = true
		return false
	case "\x1b[201~":
		b.paste = false
		return false
	}
	if b.paste {
		b.uncertain = true // not something a paste contains
		return false
	}
	switch s {
	case "\x1b[D", "\x1bOD": // Left
		b.cursor = max(b.cursor-1, 0)
	case "\x1b[C", "\x1bOC": // Right
		b.cursor = min(b.cursor+1, len(b.line))
	case "\x1b[H", "\x1bOH", "\x1b[1~", "\x1b[7~": // Home
		b.cursor = 0
	case "\x1b[F", "\x1bOF", "\x1b[4~", "\x1b[8~": // End
		b.cursor = len(b.line)
	case "\x1b[3~": // Delete
		if b.cursor < len(b.line) {
			b.remove(b.cursor, b.cursor+1)
		}
	case "\x1b[2~": // Insert: toggles overwrite mode
		b.overwrite = !b.overwrite
		b.uncertain = true
	case "\x1bOM": // keypad Enter (application mode): may enter the line
		b.uncertain = true
		return true
	default:
		// Up and down (history), Alt- and Ctrl-modified keys (word
		// motions), function keys, vi's command mode, unknown sequences.
		b.uncertain = true
	}
	return false
}
