package transfer

import (
	"path"
	"strings"
)

// scpCommand is what an scp server command line asks for.
type scpCommand struct {
	upload    bool     // -t: the target receives (sink); else -f: it sends (source)
	recursive bool     // -r
	dir       bool     // -d: the target must be a directory
	operands  []string // -t: the one target; -f: the sources
}

// scp's options that take an argument, and those that do not (OpenSSH
// scp.c's getopt string; a server is sent only -d -f -p -r -t -v).
const (
	scpArgOptions  = "DFJMPSciloX"
	scpFlagOptions = "12346ABCTdfOpqRrstv"
)

// parseSCPCommand reads a command line of the form OpenSSH's scp sends:
// "[dir/]scp [options] -t|-f [--] path...". ok is false for anything else,
// including a line a shell would read as more than one simple command.
// Options are found anywhere before "--", as glibc's getopt finds them.
func parseSCPCommand(line string) (c scpCommand, ok bool) {
	words, ok := splitWords(line)
	if !ok || len(words) == 0 || path.Base(words[0]) != "scp" {
		return c, false
	}
	var to, from bool
	options := true
	for i := 1; i < len(words); i++ {
		w := words[i]
		if !options || len(w) < 2 || w[0] != '-' {
			c.operands = append(c.operands, w)
			continue
		}
		if w == "--" {
			options = false
			continue
		}
	letters:
		for j := 1; j < len(w); j++ {
			o := w[j]
			switch {
			case strings.IndexByte(scpArgOptions, o) >= 0:
				if j == len(w)-1 {
					i++ // the argument is the next word
				}
				break letters
			case strings.IndexByte(scpFlagOptions, o) < 0:
				return c, false // scp would print its usage and exit
			case o == 't':
				to = true
			case o == 'f':
				from = true
			case o == 'r':
				c.recursive = true
			case o == 'd':
				c.dir = true
			}
		}
	}
	switch {
	case from: // scp acts on -f before -t
		return c, len(c.operands) > 0
	case to:
		c.upload = true
		return c, len(c.operands) == 1 // scp -t refuses an "ambiguous target"
	}
	return c, false
}

// splitWords splits a command line into words as a POSIX shell would split
// one simple command: quotes and backslashes are removed, and a comment
// ends the line. Parameters ($x), tildes and globs are kept as written. ok
// is false if the line holds anything else: an operator (; & | < > ( )),
// a command substitution, a newline or an unterminated quote.
func splitWords(line string) (words []string, ok bool) {
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch c {
		case ' ', '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			continue
		case ';', '&', '|', '<', '>', '(', ')', '`', '\n':
			return nil, false
		case '#':
			if !inWord {
				return words, true
			}
		case '\\':
			i++
			if i == len(line) {
				return nil, false
			}
			if line[i] != '\n' { // a backslash-newline joins lines
				w.WriteByte(line[i])
				inWord = true
			}
			continue
		case '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, false
			}
			w.WriteString(line[i+1 : i+1+end])
			i += 1 + end
			inWord = true
			continue
		case '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				switch {
				case line[i] == '`' || line[i] == '$' && i+1 < len(line) && line[i+1] == '(':
					return nil, false
				case line[i] == '\\' && i+1 < len(line) && line[i+1] == '\n':
					i++ // a backslash-newline joins lines
					continue
				case line[i] == '\\' && i+1 < len(line) && strings.IndexByte("$`\"\\", line[i+1]) >= 0:
					i++
				}
				w.WriteByte(line[i])
			}
			if i == len(line) {
				return nil, false
			}
			inWord = true
			continue
		case '$':
			if i+1 < len(line) && line[i+1] == '(' {
				return nil, false
			}
		}
		w.WriteByte(c)
		inWord = true
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, true
}
