package cli

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
		err  string
	}{
		{name: "plain", line: "request web01 --for 30m", want: []string{"request", "web01", "--for", "30m"}},
		{name: "blanks", line: "  a \t b  ", want: []string{"a", "b"}},
		{name: "empty", line: "", want: nil},
		{name: "single quotes keep everything", line: `x 'a "b" \c'`, want: []string{"x", `a "b" \c`}},
		{name: "double quotes keep blanks", line: `--reason "INC-1 disk full"`, want: []string{"--reason", "INC-1 disk full"}},
		{name: "double quote escapes", line: `"a \"b\" \\ \$ \x"`, want: []string{`a "b" \ $ \x`}},
		{name: "backslash outside quotes", line: `a\ b c`, want: []string{"a b", "c"}},
		{name: "adjacent quoting joins", line: `a'b'"c"d`, want: []string{"abcd"}},
		{name: "empty quoted word", line: `a '' b`, want: []string{"a", "", "b"}},
		{name: "unterminated single", line: `'abc`, err: "unterminated single quote"},
		{name: "unterminated double", line: `"abc`, err: "unterminated double quote"},
		{name: "trailing backslash", line: `abc\`, err: "trailing backslash"},
		{name: "control character", line: "a\x00b", err: "control character"},
		{name: "escape sequence", line: "a\x1b[2J", err: "control character"},
		{name: "too long", line: strings.Repeat("a", MaxLineLength+1), err: "too long"},
		{name: "too many words", line: strings.Repeat("a ", MaxArgs+1), err: "too many arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitWords(tc.line)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("SplitWords(%q) = %q, %v; want error %q", tc.line, got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("SplitWords(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
			}
		})
	}
}

// FuzzSplitWords: never panics; on success the words contain no control
// characters, and re-quoting the words splits back to the same words.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{"request web01 --for 30m", `a 'b c' "d \"e\""`, `\ `, `'`, "\"\\", "a\tb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := SplitWords(line)
		if err != nil {
			return
		}
		if len(words) > MaxArgs {
			t.Fatalf("%d words", len(words))
		}
		var quoted []string
		for _, w := range words {
			for _, c := range []byte(w) {
				if c < 0x20 || c == 0x7f {
					t.Fatalf("word %q has a control character", w)
				}
			}
			quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
		}
		again, err := SplitWords(strings.Join(quoted, " "))
		if err != nil && len(strings.Join(quoted, " ")) <= MaxLineLength {
			t.Fatalf("re-split of %q: %v", quoted, err)
		}
		if err == nil && !reflect.DeepEqual(again, words) && !(len(again) == 0 && len(words) == 0) {
			t.Fatalf("round trip: %q -> %q", words, again)
		}
	})
}

func TestParseArgs(t *testing.T) {
	spec := flagSpec{"login": listFlag, "for": stringFlag, "reason": textFlag, "tls": boolFlag}
	tests := []struct {
		name  string
		words []string
		check func(t *testing.T, a *args)
		err   string
	}{
		{name: "text flag takes words up to the next flag", words: []string{"web01", "--reason", "INC-1", "disk", "full", "--for", "30m"},
			check: func(t *testing.T, a *args) {
				if a.str("reason") != "INC-1 disk full" || a.str("for") != "30m" || !reflect.DeepEqual(a.pos, []string{"web01"}) {
					t.Fatalf("%+v", a)
				}
			}},
		{name: "list flag repeated and comma separated", words: []string{"--login", "root,deploy", "--login=admin"},
			check: func(t *testing.T, a *args) {
				if !reflect.DeepEqual(a.list("login"), []string{"root", "deploy", "admin"}) {
					t.Fatalf("%q", a.list("login"))
				}
			}},
		{name: "json and help everywhere", words: []string{"--json", "-h"},
			check: func(t *testing.T, a *args) {
				if !a.bools["json"] || !a.bools["h"] {
					t.Fatalf("%+v", a)
				}
			}},
		{name: "double dash ends flags", words: []string{"--", "--for"},
			check: func(t *testing.T, a *args) {
				if !reflect.DeepEqual(a.pos, []string{"--for"}) || a.has("for") {
					t.Fatalf("%+v", a)
				}
			}},
		{name: "unknown flag", words: []string{"--frob"}, err: "unknown flag --frob"},
		{name: "missing value", words: []string{"--for"}, err: "--for needs a value"},
		{name: "text flag without words", words: []string{"--reason", "--for", "1h"}, err: "--reason needs a value"},
		{name: "bool flag with value", words: []string{"--tls=yes"}, err: "takes no value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseArgs(tc.words, spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, a)
		})
	}
}

// TestSplitFreeText: a line whose quoting is not balanced (ssh dropped the
// user's quotes) still reads when the stray quote is in free text.
func TestSplitFreeText(t *testing.T) {
	spec := flagSpec{"for": stringFlag, "login": listFlag, "reason": textFlag, "comment": textFlag}
	tests := []struct {
		name string
		line string
		want []string
		err  string
	}{
		{name: "balanced line splits as usual", line: `request web01 --reason "INC-1 disk"`, want: []string{"request", "web01", "--reason", "INC-1 disk"}},
		{name: "apostrophe in reason", line: "request web01 --for 30m --reason can't log in",
			want: []string{"request", "web01", "--for", "30m", "--reason=can't log in"}},
		{name: "blanks made single spaces", line: "request web01 --reason can't \t log  in ",
			want: []string{"request", "web01", "--reason=can't log in"}},
		{name: "reason with =", line: "request web01 --reason=it's down", want: []string{"request", "web01", "--reason=it's down"}},
		{name: "known flag ends the text", line: "request web01 --reason it's down --for 30m --json",
			want: []string{"request", "web01", "--reason=it's down", "--for", "30m", "--json"}},
		{name: "unknown flag is text", line: `request web01 --reason won't --force "it`,
			want: []string{"request", "web01", `--reason=won't --force "it`}},
		{name: "two free-text flags", line: "x --reason it's --comment don't 'x",
			want: []string{"x", "--reason=it's", "--comment=don't 'x"}},
		{name: "balanced rest after the text", line: `x --reason it's --login 'a b'`,
			want: []string{"x", "--reason=it's", "--login", "a b"}},
		{name: "reason without words", line: "x --login o --reason --for '1h", err: "unterminated single quote"},
		{name: "quote before the free text", line: "request web01 --login o'brien --reason x", err: "unterminated single quote"},
		{name: "no free-text flag", line: `request "web01`, err: "unterminated double quote"},
		{name: "quote in the rest", line: `x --reason it's --login "a`, err: "unterminated double quote"},
		{name: "control character", line: "x --reason it's \x1b[2J", err: "control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitFreeText(tc.line, spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("splitFreeText(%q) = %q, %v; want error %q", tc.line, got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("splitFreeText(%q) = %q, %v; want %q", tc.line, got, err, tc.want)
			}
		})
	}
}

// TestTextFlag: a free-text flag takes words up to the next flag the
// command knows; other words that start with "--" are text.
func TestTextFlag(t *testing.T) {
	spec := flagSpec{"for": stringFlag, "reason": textFlag}
	tests := []struct {
		name   string
		words  []string
		reason string
		pos    []string
	}{
		{name: "words joined", words: []string{"--reason", "INC-1", "disk", "full"}, reason: "INC-1 disk full"},
		{name: "unknown flag is text", words: []string{"--reason", "retry", "--force", "--", "x"}, reason: "retry --force -- x"},
		{name: "known flag ends it", words: []string{"--reason", "a", "--for=1h", "b"}, reason: "a", pos: []string{"b"}},
		{name: "json ends it", words: []string{"--reason=a", "b", "--json"}, reason: "a b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := parseArgs(tc.words, spec)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.str("reason"); got != tc.reason || !reflect.DeepEqual(a.pos, tc.pos) {
				t.Fatalf("parseArgs(%q): reason %q, pos %q; want %q, %q", tc.words, got, a.pos, tc.reason, tc.pos)
			}
		})
	}
}
