package ascii

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for _, tt := range []struct {
		name, in, want string
	}{
		{"plain", "echo hi", "echo hi"},
		{"empty", "", ""},
		{"title and clear screen", "echo hi \x1b]0;pwned\a \x1b[2J", `echo hi \x1b]0;pwned\a \x1b[2J`},
		{"newline tab carriage return", "a\nb\tc\rd", `a\nb\tc\rd`},
		{"other C0 and DEL", "\x00\x08\x0b\x0c\x7f", `\x00\b\v\f\x7f`},
		{"C1 controls", "\u0085 \u009b31m \u0080\u009f", `\u0085 \u009b31m \u0080\u009f`},
		{"bidi overrides", "\u202a\u202b\u202c\u202d\u202e", `\u202a\u202b\u202c\u202d\u202e`},
		{"bidi isolates", "\u2066\u2067\u2068\u2069", `\u2066\u2067\u2068\u2069`},
		{"trojan source", "if admin \u202e} \u2066{", `if admin \u202e} \u2066{`},
		{"line separators and odd spaces", "a\u2028b\u2029c\u00a0d", `a\u2028b\u2029c\u00a0d`},
		{"non-ASCII letters kept", "Grüße, 日本語, Ελληνικά", "Grüße, 日本語, Ελληνικά"},
		{"emoji kept", "deploy 🚀", "deploy 🚀"},
		{"backslash kept", `C:\tmp\x1b`, `C:\tmp\x1b`},
		{"quotes kept", `say "it's"`, `say "it's"`},
		{"invalid UTF-8", "a\xffb\xc3", `a\xffb\xc3`},
		{"replacement character kept", "\ufffd", "\ufffd"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Escape(tt.in); got != tt.want {
				t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestEscapeDoesNotAllocateForPlainText(t *testing.T) {
	s := strings.Repeat("SELECT * FROM orders; Grüße ", 4)
	if n := testing.AllocsPerRun(100, func() { _ = Escape(s) }); n != 0 {
		t.Errorf("Escape of plain text allocates %v times", n)
	}
}

// FuzzEscape: the output holds no byte a terminal acts on (below 0x20, DEL),
// is UTF-8 holding no C1 control nor bidirectional override, and text with
// nothing to escape comes back unchanged.
func FuzzEscape(f *testing.F) {
	for _, s := range []string{"echo hi \x1b]0;pwned\a \x1b[2J", "\u009b2J", "\u202eabc", "a\xffb", "Grüße", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("Escape(%q) = %q holds byte %#x", s, out, c)
			}
		}
		if !utf8.ValidString(out) {
			t.Fatalf("Escape(%q) = %q is not UTF-8", s, out)
		}
		for _, r := range out {
			if (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
				t.Fatalf("Escape(%q) = %q holds %U", s, out, r)
			}
		}
		if !strings.Contains(out, `\`) && out != s {
			t.Fatalf("Escape(%q) = %q changed text without escaping anything", s, out)
		}
	})
}
