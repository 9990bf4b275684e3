package cli

import (
	"errors"
	"fmt"
	"strings"
)

// MaxLineLength bounds one command line. Longer input is refused before it
// is parsed.
const MaxLineLength = 8 << 10

// MaxArgs bounds the number of words in one command line.
const MaxArgs = 64

// SplitWords splits a command line into words the way a POSIX shell would
// for plain words: blanks separate words, single quotes keep everything
// literal, double quotes keep blanks (with \" \\ \$ \` escapes), and a
// backslash outside quotes escapes the next character. Nothing is expanded.
func SplitWords(line string) ([]string, error) {
	if len(line) > MaxLineLength {
		return nil, fmt.Errorf("the command line is too long (%d bytes, at most %d)", len(line), MaxLineLength)
	}
	// Control characters have no place in a command line; tabs and newlines
	// separate words but may not hide inside quotes (they would forge lines
	// in text output and logs).
	for i := 0; i < len(line); i++ {
		if c := line[i]; (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f {
			return nil, fmt.Errorf("control character %q in the command line", c)
		}
	}
	var (
		words  []string
		cur    strings.Builder
		inWord bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			continue
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, &quoteError{"unterminated single quote"}
			}
			if strings.ContainsAny(line[i+1:i+1+j], "\t\n\r") {
				return nil, fmt.Errorf("tab or newline inside quotes")
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
				}
				if line[i] == '\t' || line[i] == '\n' || line[i] == '\r' {
					return nil, fmt.Errorf("tab or newline inside quotes")
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, &quoteError{"unterminated double quote"}
			}
		case c == '\\':
			if i+1 >= len(line) {
				return nil, &quoteError{"trailing backslash"}
			}
			if c := line[i+1]; c == '\t' || c == '\n' || c == '\r' {
				return nil, fmt.Errorf("escaped tab or newline")
			}
			i++
			cur.WriteByte(line[i])
		default:
			cur.WriteByte(c)
		}
		inWord = true
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) > MaxArgs {
		return nil, fmt.Errorf("too many arguments (%d, at most %d)", len(words), MaxArgs)
	}
	return words, nil
}

// quoteError is a line whose quoting is not balanced. Over ssh it is most
// often a reason with an apostrophe: ssh joins its arguments with spaces and
// drops the user's quotes, so `--reason "can't log in"` arrives as
// `--reason can't log in`.
type quoteError struct{ msg string }

func (e *quoteError) Error() string { return e.msg }

// quoteHint tells a user whose line could not be read how to quote a
// command over ssh, which removes one level of quotes.
const quoteHint = `ssh drops one level of quotes: quote the whole command, e.g. ssh %s@bastion 'request web01 --reason "can'\''t log in"'`

// splitFreeText splits a line whose quoting is not balanced (SplitWords
// returned a *quoteError) for a command with free-text flags (textFlag in
// spec): the words of a free-text flag are taken literally, blanks between
// them made single spaces, up to the next flag the command knows; the rest
// of the line is split as usual. The part before the first free-text flag
// must be balanced. It returns SplitWords' error when that does not help.
func splitFreeText(line string, spec flagSpec) ([]string, error) {
	words, err := SplitWords(line)
	var qe *quoteError
	if !errors.As(err, &qe) {
		return words, err
	}
	return splitLiteralText(line, spec)
}

// splitLiteralText splits line with every free-text flag's words taken
// literally: once a line shows that the user's quotes were dropped, no
// apostrophe in free text is quoting.
func splitLiteralText(line string, spec flagSpec) ([]string, error) {
	fields := blankFields(line)
	for k, f := range fields {
		name, val, hasVal := strings.Cut(strings.TrimPrefix(f.word, "--"), "=")
		if !strings.HasPrefix(f.word, "--") || spec[name] != textFlag {
			continue
		}
		head, err := SplitWords(line[:f.start])
		if err != nil {
			return nil, err
		}
		var text []string
		if hasVal && val != "" {
			text = append(text, val)
		}
		end := k + 1
		for ; end < len(fields) && !spec.known(fields[end].word); end++ {
			text = append(text, fields[end].word)
		}
		words := append(head, "--"+name)
		if len(text) > 0 {
			words[len(words)-1] += "=" + strings.Join(text, " ")
		}
		if end < len(fields) {
			rest, err := splitLiteralText(line[fields[end].start:], spec)
			if err != nil {
				return nil, err
			}
			words = append(words, rest...)
		}
		if len(words) > MaxArgs {
			return nil, fmt.Errorf("too many arguments (%d, at most %d)", len(words), MaxArgs)
		}
		return words, nil
	}
	return SplitWords(line)
}

// blankField is one blank-separated word of a line, as typed.
type blankField struct {
	word  string
	start int // offset in the line
}

func blankFields(line string) []blankField {
	var out []blankField
	start := -1
	for i := 0; i <= len(line); i++ {
		blank := i == len(line) || strings.IndexByte(" \t\n\r", line[i]) >= 0
		switch {
		case blank && start >= 0:
			out = append(out, blankField{word: line[start:i], start: start})
			start = -1
		case !blank && start < 0:
			start = i
		}
	}
	return out
}
