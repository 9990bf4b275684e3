package ascii

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s as it may be shown on a terminal: every character a
// terminal would act on rather than print is replaced by its Go escape, as
// %q writes it, so that text a user supplied (a command, a reason, a file
// name) cannot move the cursor, clear the screen, set the window title or
// reorder what follows it:
//
//   - C0 controls and DEL: \a, \b, \t, \n, \r, \v, \f, or \xNN (\x1b for ESC);
//   - C1 controls U+0080–U+009F (U+009B is an 8-bit CSI): \u009b;
//   - format characters, among them the bidirectional overrides and
//     isolates U+202A–U+202E and U+2066–U+2069: \u202e;
//   - line and paragraph separators and every other character that
//     unicode.IsPrint rejects (non-ASCII spaces too): \u2028, \u00a0;
//   - bytes that are not UTF-8: \xff.
//
// Printable text, non-ASCII letters included, is returned unchanged, and so
// is the backslash: an escape in the output can be told from text only by
// context, which is the price of showing ordinary text as it was typed.
// Text without anything to escape is returned as is, without allocating.
func Escape(s string) string {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !shown(r, size) {
			break
		}
		i += size
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case shown(r, size):
			b.WriteString(s[i : i+size])
		case r == utf8.RuneError: // a byte that is not UTF-8
			b.WriteString(`\x`)
			b.WriteString(strconv.FormatUint(uint64(s[i])>>4, 16))
			b.WriteString(strconv.FormatUint(uint64(s[i])&0xf, 16))
		default:
			q := strconv.QuoteRune(r) // '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// shown reports whether the rune r, size bytes of UTF-8, is written as it
// is: printable, and not the replacement of a byte that is not UTF-8 (a
// U+FFFD spelled out in UTF-8 is printable and shown).
func shown(r rune, size int) bool {
	if r < utf8.RuneSelf {
		return r >= 0x20 && r < 0x7f
	}
	if r == utf8.RuneError && size == 1 {
		return false
	}
	return unicode.IsPrint(r)
}
