package linebuf_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/bastionhq/bastion/protocols/ssh/linebuf"
)

// Keys as a terminal sends them.
const (
	enter     = "\r"
	backspace = "\x7f"
	ctrlA     = "\x01"
	ctrlB     = "\x02"
	ctrlC     = "\x03"
	ctrlD     = "\x04"
	ctrlE     = "\x05"
	ctrlF     = "\x06"
	ctrlH     = "\x08"
	tab       = "\t"
	ctrlK     = "\x0b"
	ctrlL     = "\x0c"
	ctrlO     = "\x0f"
	ctrlP     = "\x10"
	ctrlR     = "\x12"
	ctrlT     = "\x14"
	ctrlU     = "\x15"
	ctrlV     = "\x16"
	ctrlW     = "\x17"
	ctrlX     = "\x18"
	ctrlY     = "\x19"
	ctrlUnder = "\x1f"
	left      = "\x1b[D"
	right     = "\x1b[C"
	up        = "\x1b[A"
	down      = "\x1b[B"
	home      = "\x1b[H"
	end       = "\x1b[F"
	del       = "\x1b[3~"
	insert    = "\x1b[2~"
	pasteOn   = "\x1b[200~"
	pasteOff  = "\x1b[201~"
)

// line is an expected line; "?" before the text means Uncertain.
func show(l linebuf.Line) string {
	if l.Uncertain {
		return "?" + l.Text
	}
	return l.Text
}

func TestFeed(t *testing.T) {
	tests := []struct {
		name  string
		feeds []string // given to Feed one after the other
		want  []string // "?" marks an Uncertain line
	}{
		// Lines.
		{name: "one line", feeds: []string{"ls -l" + enter}, want: []string{"ls -l"}},
		{name: "line feed enters too", feeds: []string{"ls\n"}, want: []string{"ls"}},
		{name: "two lines in one feed", feeds: []string{"a\rb\r"}, want: []string{"a", "b"}},
		{name: "no line until enter", feeds: []string{"rm -rf /"}, want: nil},
		{name: "empty line", feeds: []string{enter}, want: []string{""}},
		{name: "CR LF is two lines", feeds: []string{"ls\r\n"}, want: []string{"ls", ""}},
		{name: "line over several feeds", feeds: []string{"r", "m -r", "f /", enter}, want: []string{"rm -rf /"}},

		// Editing.
		{name: "backspace", feeds: []string{"lx" + backspace + "s" + enter}, want: []string{"ls"}},
		{name: "ctrl-h", feeds: []string{"lx" + ctrlH + "s" + enter}, want: []string{"ls"}},
		{name: "backspace at the start", feeds: []string{backspace + "ls" + enter}, want: []string{"ls"}},
		{name: "backspace in the middle", feeds: []string{"lxs" + left + backspace + enter}, want: []string{"ls"}},
		{name: "ctrl-u kills the line", feeds: []string{"rm -rf /" + ctrlU + "ls" + enter}, want: []string{"ls"}},
		{name: "ctrl-u kills to the start", feeds: []string{"abcdef" + left + left + left + ctrlU + enter}, want: []string{"def"}},
		{name: "ctrl-k kills to the end", feeds: []string{"ls foo" + ctrlA + ctrlF + ctrlF + ctrlK + enter}, want: []string{"ls"}},
		{name: "ctrl-w kills a word", feeds: []string{"ls -l /tmp" + ctrlW + enter}, want: []string{"ls -l "}},
		{name: "ctrl-w skips spaces first", feeds: []string{"ls -l /tmp   " + ctrlW + enter}, want: []string{"ls -l "}},
		{name: "ctrl-w in the middle", feeds: []string{"echo rm x" + left + left + ctrlW + enter}, want: []string{"echo  x"}},
		{name: "ctrl-w at the start", feeds: []string{"ls" + ctrlA + ctrlW + enter}, want: []string{"ls"}},
		{name: "ctrl-a inserts at the start", feeds: []string{"s" + ctrlA + "l" + enter}, want: []string{"ls"}},
		{name: "ctrl-e goes to the end", feeds: []string{"s" + ctrlA + "l" + ctrlE + "x" + enter}, want: []string{"lsx"}},
		{name: "ctrl-b and ctrl-f", feeds: []string{"lx" + ctrlB + "s" + ctrlF + ctrlF + "y" + enter}, want: []string{"lsxy"}},
		{name: "left arrow", feeds: []string{"lx" + left + "s" + enter}, want: []string{"lsx"}},
		{name: "right arrow", feeds: []string{"lx" + left + left + right + "s" + enter}, want: []string{"lsx"}},
		{name: "application-mode arrows", feeds: []string{"lx\x1bODs\x1bOC\x1bOCy" + enter}, want: []string{"lsxy"}},
		{name: "left at the start stays", feeds: []string{"s" + left + left + "l" + enter}, want: []string{"ls"}},
		{name: "home and end", feeds: []string{"s" + home + "l" + end + "x" + enter}, want: []string{"lsx"}},
		{name: "home and end, SS3", feeds: []string{"s\x1bOHl\x1bOFx" + enter}, want: []string{"lsx"}},
		{name: "home and end, VT220", feeds: []string{"s\x1b[1~l\x1b[4~x" + enter}, want: []string{"lsx"}},
		{name: "delete", feeds: []string{"xls" + home + del + enter}, want: []string{"ls"}},
		{name: "delete at the end", feeds: []string{"ls" + del + enter}, want: []string{"ls"}},
		{name: "ctrl-d on an empty line is ignored", feeds: []string{ctrlD + "ls" + enter}, want: []string{"ls"}},
		{name: "ctrl-d deletes under the cursor", feeds: []string{"xls" + ctrlA + ctrlD + enter}, want: []string{"ls"}},
		{name: "ctrl-d at the end", feeds: []string{"ls" + ctrlD + enter}, want: []string{"ls"}},
		{name: "ctrl-c discards the line", feeds: []string{"rm -rf /" + ctrlC + "ls" + enter}, want: []string{"ls"}},
		{name: "ctrl-c discards uncertainty", feeds: []string{"rm" + tab + ctrlC + "ls" + enter}, want: []string{"ls"}},
		{name: "ctrl-l keeps the line", feeds: []string{"ls" + ctrlL + enter}, want: []string{"ls"}},
		{name: "reset", feeds: []string{"rm -rf", "\x00reset", "ls" + enter}, want: []string{"ls"}},

		// Text.
		{name: "utf-8", feeds: []string{"echo héllo 日本" + enter}, want: []string{"echo héllo 日本"}},
		{name: "cursor moves by rune", feeds: []string{"日本" + left + backspace + enter}, want: []string{"本"}},
		{name: "utf-8 split across feeds", feeds: []string{"echo \xe6\x97", "\xa5" + enter}, want: []string{"echo 日"}},
		{name: "invalid byte", feeds: []string{"a\xffb" + enter}, want: []string{"?ab"}},
		{name: "truncated sequence", feeds: []string{"a\xe6\x97b" + enter}, want: []string{"?ab"}},
		{name: "surrogate", feeds: []string{"a\xed\xa0\x80b" + enter}, want: []string{"?ab"}},
		{name: "C1 control", feeds: []string{"a\xc2\x85b" + enter}, want: []string{"?ab"}},
		{name: "overlong line is truncated", feeds: []string{strings.Repeat("a", linebuf.MaxLine+10) + enter}, want: []string{"?" + strings.Repeat("a", linebuf.MaxLine)}},
		{name: "overlong multibyte line", feeds: []string{strings.Repeat("日", linebuf.MaxLine/3+5) + enter}, want: []string{"?" + strings.Repeat("日", linebuf.MaxLine/3)}},

		// What the buffer cannot know.
		{name: "tab completion", feeds: []string{"ls /et" + tab + "c" + enter}, want: []string{"?ls /etc"}},
		{name: "history up", feeds: []string{up + enter}, want: []string{"?"}},
		{name: "history down", feeds: []string{"ls" + down + enter}, want: []string{"?ls"}},
		{name: "ctrl-p", feeds: []string{ctrlP + enter}, want: []string{"?"}},
		{name: "ctrl-r search", feeds: []string{ctrlR + "rm" + enter}, want: []string{"?rm"}},
		{name: "ctrl-x ctrl-e", feeds: []string{"ls" + ctrlX + "\x05" + enter}, want: []string{"?ls"}},
		{name: "ctrl-y yank", feeds: []string{"rm" + ctrlW + ctrlY + enter}, want: []string{"?"}},
		{name: "ctrl-t transpose", feeds: []string{"mr" + ctrlT + enter}, want: []string{"?mr"}},
		{name: "ctrl-v quoted insert", feeds: []string{ctrlV + tab + enter}, want: []string{"?"}},
		{name: "undo", feeds: []string{"ls" + ctrlUnder + enter}, want: []string{"?ls"}},
		{name: "alt-b word motion", feeds: []string{"ls\x1bbx" + enter}, want: []string{"?lsx"}},
		{name: "ctrl-right", feeds: []string{"ls\x1b[1;5C" + enter}, want: []string{"?ls"}},
		{name: "function key", feeds: []string{"ls\x1bOP" + enter}, want: []string{"?ls"}},
		{name: "page up", feeds: []string{"ls\x1b[5~" + enter}, want: []string{"?ls"}},
		{name: "escape then enter", feeds: []string{"ls\x1b" + enter}, want: []string{"?ls"}},
		{name: "escape escape", feeds: []string{"l\x1b\x1b[Ds" + enter}, want: []string{"?sl"}},
		{name: "over-long escape sequence", feeds: []string{"\x1b[" + strings.Repeat("1", 40) + "ls" + enter}, want: []string{"?" + strings.Repeat("1", 9) + "ls"}},
		{name: "escape interrupted by ctrl-c", feeds: []string{"rm\x1b[" + ctrlC + "ls" + enter}, want: []string{"ls"}},
		{name: "uncertainty lasts one line", feeds: []string{"ls" + tab + enter + "pwd" + enter}, want: []string{"?ls", "pwd"}},
		{name: "ctrl-o enters and loads history", feeds: []string{"ls" + ctrlO, enter + "pwd" + enter}, want: []string{"ls", "?", "pwd"}},
		{name: "keypad enter", feeds: []string{"ls\x1bOM"}, want: []string{"?ls"}},
		{name: "insert toggles overwrite mode for every line", feeds: []string{insert + "ls" + enter + "pwd" + enter + insert + "id" + enter + "w" + enter}, want: []string{"?ls", "?pwd", "?id", "w"}},

		// Escape sequences split across feeds.
		{name: "arrow split", feeds: []string{"lx", "\x1b", "[", "D", "s" + enter}, want: []string{"lsx"}},
		{name: "delete split", feeds: []string{"xls" + home + "\x1b[3", "~" + enter}, want: []string{"ls"}},

		// Bracketed paste.
		{name: "paste", feeds: []string{pasteOn + "rm -rf /tmp/x" + pasteOff + enter}, want: []string{"rm -rf /tmp/x"}},
		{name: "paste with newlines", feeds: []string{pasteOn + "ls\npwd\r\nid" + pasteOff + enter}, want: []string{"ls\npwd\n\nid"}},
		{name: "paste is inserted at the cursor", feeds: []string{"echo x" + home + pasteOn + "sudo " + pasteOff + enter}, want: []string{"sudo echo x"}},
		{name: "paste keeps editing keys literal", feeds: []string{pasteOn + "a\x15b" + pasteOff + enter}, want: []string{"?ab"}},
		{name: "paste tab is a space", feeds: []string{pasteOn + "a\tb" + pasteOff + enter}, want: []string{"a b"}},
		{name: "escape sequence in a paste", feeds: []string{pasteOn + "a\x1b[Db" + pasteOff + enter}, want: []string{"?ab"}},
		{name: "ctrl-c in a paste", feeds: []string{pasteOn + "rm -rf /" + ctrlC + "ls" + pasteOff + enter}, want: []string{"?ls"}},
		{name: "paste markers split", feeds: []string{"\x1b[20", "0~a\x7f", "b\x1b[2", "01~" + backspace + enter}, want: []string{"?a"}},
		{name: "paste end without start", feeds: []string{"ls" + pasteOff + enter}, want: []string{"ls"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b linebuf.Buffer
			var got []string
			for _, f := range tt.feeds {
				if f == "\x00reset" {
					b.Reset()
					continue
				}
				for _, l := range b.Feed([]byte(f)) {
					got = append(got, show(l))
				}
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
				t.Errorf("lines\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

// End tells where in the fed slice each line was entered.
func TestFeedEnd(t *testing.T) {
	var b linebuf.Buffer
	lines := b.Feed([]byte("ab\rcd\nef"))
	if len(lines) != 2 || lines[0].End != 3 || lines[1].End != 6 {
		t.Errorf("lines = %+v, want ends 3 and 6", lines)
	}
	lines = b.Feed([]byte("\x1bO"))
	if len(lines) != 0 {
		t.Errorf("lines = %+v, want none", lines)
	}
	lines = b.Feed([]byte("Mx"))
	if len(lines) != 1 || lines[0].End != 1 || lines[0].Text != "ef" {
		t.Errorf("lines = %+v, want ef ending at 1", lines)
	}
}

// FuzzFeed checks that Feed never panics, that every line is valid UTF-8
// without control characters and within MaxLine, that End is in bounds, and
// that splitting the input between two calls changes nothing.
func FuzzFeed(f *testing.F) {
	for _, seed := range []string{
		"ls -l\r", "rm -rf /" + ctrlU + "ls\r", "a\x1b[Db\x1b[3~\r", pasteOn + "a\nb\tc" + pasteOff + "\r",
		"\x1b[2~x\r", "日本\x7f\r", "\xe6\x97", "\x1b[" + strings.Repeat("9", 40), "a\x0fb\r", "\x1b\x1b\x1bOM",
		"x\xc2\x85\xed\xa0\x80\r", ctrlR + tab + ctrlX + ctrlY + "\r", "\x03\x04\x05\x06\x17\x0b\r",
		pasteOn + "rm x\recho\r" + pasteOff + "\r" + pasteOn + "a",
	} {
		f.Add([]byte(seed), uint16(len(seed)/2))
	}
	f.Fuzz(func(t *testing.T, p []byte, split uint16) {
		cut := int(split) % (len(p) + 1)
		var whole, parts, marked linebuf.Buffer
		all := whole.Feed(p)
		// FeedMarks gives the same lines, and marks in order within p.
		mlines, marks := marked.FeedMarks(p)
		if len(mlines) != len(all) {
			t.Fatalf("FeedMarks: %d lines, Feed: %d", len(mlines), len(all))
		}
		for i, m := range marks {
			if m.End < 1 || m.End > len(p) || (i > 0 && m.End <= marks[i-1].End) || (i > 0 && m.Begin == marks[i-1].Begin) {
				t.Fatalf("mark %d: %+v (input %d bytes, marks %+v)", i, m, len(p), marks)
			}
			if m.Begin && m.Lines != "" {
				t.Fatalf("a start marker with lines: %+v", m)
			}
		}
		first := parts.Feed(p[:cut])
		second := parts.Feed(p[cut:])
		for i, l := range all {
			if !utf8.ValidString(l.Text) || len(l.Text) > linebuf.MaxLine {
				t.Fatalf("line %q: invalid or too long", l.Text)
			}
			if strings.ContainsFunc(l.Text, func(r rune) bool { return r != '\n' && unicode.IsControl(r) }) {
				t.Fatalf("line %q has a control character", l.Text)
			}
			if l.End < 1 || l.End > len(p) || (i > 0 && l.End <= all[i-1].End) {
				t.Fatalf("line %d ends at %d (input %d bytes, lines %+v)", i, l.End, len(p), all)
			}
		}
		split2 := append(first, second...)
		if len(split2) != len(all) {
			t.Fatalf("split at %d: %d lines, whole: %d", cut, len(split2), len(all))
		}
		for i := range all {
			a, s := all[i], split2[i]
			if i >= len(first) {
				s.End += cut
			}
			if a != s {
				t.Fatalf("split at %d: line %d is %+v, whole: %+v", cut, i, s, a)
			}
		}
	})
}

// TestFeedMarks: the paste markers are reported where they end, split or
// not, with the complete lines the paste made; a pasted newline is part of
// the line (a line editor inserts it), and the line is Pasted, typed
// markers included.
func TestFeedMarks(t *testing.T) {
	var b linebuf.Buffer
	in := "ab" + pasteOn + "cd" + enter + "ef" + pasteOff + "g" + enter + "h" + enter
	lines, marks := b.FeedMarks([]byte(in))
	type got struct {
		text   string
		pasted bool
	}
	var gl []got
	for _, l := range lines {
		gl = append(gl, got{l.Text, l.Pasted})
	}
	want := []got{{"abcd\nefg", true}, {"h", false}}
	if fmt.Sprint(gl) != fmt.Sprint(want) {
		t.Errorf("lines %+v, want %+v", gl, want)
	}
	begin := strings.Index(in, pasteOn) + len(pasteOn)
	endAt := strings.Index(in, pasteOff) + len(pasteOff)
	if len(marks) != 2 || !marks[0].Begin || marks[0].End != begin || marks[1].Begin || marks[1].End != endAt || marks[1].Lines != "abcd" {
		t.Errorf("marks %+v, want begin at %d, end at %d with the lines abcd", marks, begin, endAt)
	}

	// A marker split across calls is reported in the call that ends it.
	var s linebuf.Buffer
	if _, marks := s.FeedMarks([]byte("x\x1b[20")); len(marks) != 0 || s.Pasting() {
		t.Errorf("half a marker: %+v", marks)
	}
	if _, marks := s.FeedMarks([]byte("0~rm")); len(marks) != 1 || marks[0].End != 2 || !s.Pasting() {
		t.Errorf("the marker's end: %+v", marks)
	}
	lines, marks = s.FeedMarks([]byte(pasteOff + " y" + enter))
	if len(lines) != 1 || !lines[0].Pasted || lines[0].Text != "xrm y" || len(marks) != 1 || marks[0].Lines != "" {
		t.Errorf("line after a paste: %+v %+v", lines, marks)
	}
}
