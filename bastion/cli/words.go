package cli

import (
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
				return nil, fmt.Errorf("unterminated single quote")
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
				return nil, fmt.Errorf("unterminated double quote")
			}
		case c == '\\':
			if i+1 >= len(line) {
				return nil, fmt.Errorf("trailing backslash")
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
