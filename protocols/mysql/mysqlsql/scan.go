package mysqlsql

import (
	"strconv"
	"strings"

	"github.com/bastionhq/bastion/bastion/policy"
)

// exposeCode rewrites sql, keeping its length and every byte's position, so
// that the parser reads as code exactly what the server runs: an
// executable comment the server runs (runs decides, from whether it is
// MariaDB's /*M! form and its version, 0 for none) becomes /*! … */ with
// its version blanked; one the server skips is blanked whole. Strings,
// quoted identifiers and comments are skipped as the server's lexer skips
// them under mode m. A versioned comment
// whose version the server reads in a way Bastion cannot be sure of is an
// error.
func exposeCode(sql string, m Mode, srv Server, runs func(maria bool, version int) bool) (string, error) {
	var b []byte // nil until the first rewrite
	set := func(i int, c byte) {
		if b == nil {
			b = []byte(sql)
		}
		b[i] = c
	}
	n := len(sql)
	for i := 0; i < n; {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(sql, i, m)
		case c == '#':
			i = skipLine(sql, i)
		case c == '-' && strings.HasPrefix(sql[i:], "--") && (i+2 == n || sql[i+2] <= ' '):
			i = skipLine(sql, i)
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			j := i + 2
			maria := strings.HasPrefix(sql[j:], "M!")
			switch {
			case maria && (srv.MariaDB || runs(true, 0)):
				j += 2
			case strings.HasPrefix(sql[j:], "!"):
				j++
			default:
				// A plain comment (MySQL's reading of /*M!), ended by the
				// first "*/".
				end := strings.Index(sql[j:], "*/")
				if end < 0 {
					return string(orBytes(b, sql)), nil
				}
				i = j + end + 2
				continue
			}
			digits := versionDigits(sql[j:])
			if digits == 6 && srv.Version != 0 && !srv.MariaDB {
				return "", &SyntaxError{Message: "a versioned comment with six digits, which MySQL versions read differently"}
			}
			version := 0
			if digits > 0 {
				version, _ = strconv.Atoi(sql[j : j+digits])
			}
			if !runs(maria, version) {
				end := skipComment(sql, j)
				for k := i; k < end; k++ {
					set(k, ' ')
				}
				i = end
				continue
			}
			if maria {
				// "/*M!" → " /*!": the same length, now MySQL's form.
				set(i, ' ')
				set(i+1, '/')
				set(i+2, '*')
				set(i+3, '!')
			}
			for k := j; k < j+digits; k++ {
				set(k, ' ')
			}
			i = j + digits // inside executable code: go on lexing it
		default:
			i++
		}
	}
	return string(orBytes(b, sql)), nil
}

// versionDigits is the length of the version that s (what follows "/*!"
// or "/*M!") starts with: six digits (MariaDB's form), five, or none when
// fewer than five digits follow (then they are code).
func versionDigits(s string) int {
	k := 0
	for k < 6 && k < len(s) && isDigit(s[k]) {
		k++
	}
	if k < 5 {
		return 0
	}
	return k
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipComment returns the index after a skipped executable comment whose
// body starts at j: it ends at the first "*/" that closes it, with one
// level of nested /* … */ comment inside, as both servers' lexers skip it
// (consume_comment with one recursion); at the end of sql when unclosed.
func skipComment(sql string, j int) int {
	depth := 0
	for k := j; k+1 < len(sql); k++ {
		switch {
		case depth == 0 && sql[k] == '/' && sql[k+1] == '*':
			depth = 1
			k++
		case sql[k] == '*' && sql[k+1] == '/':
			if depth == 0 {
				return k + 2
			}
			depth = 0
			k++
		}
	}
	return len(sql)
}

func orBytes(b []byte, s string) []byte {
	if b == nil {
		return []byte(s)
	}
	return b
}

// skipQuoted returns the index after the quoted string or identifier that
// starts at i. Quotes double to escape; in strings a backslash escapes
// too, unless m has NO_BACKSLASH_ESCAPES (with ANSI_QUOTES, "…" is an
// identifier, where a backslash is a character).
func skipQuoted(s string, i int, m Mode) int {
	escapes := m&NoBackslashEscapes == 0 && (s[i] == '\'' || s[i] == '"' && m&ANSIQuotes == 0)
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if escapes {
				j++
			}
		case q:
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1
		}
	}
	return len(s)
}

func skipLine(s string, i int) int {
	if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
		return i + j + 1
	}
	return len(s)
}

// parseHandler recognises one HANDLER statement, which TiDB's grammar
// lacks: HANDLER tbl OPEN [AS alias] | READ … | CLOSE. Its table (or, after
// OPEN, the alias) is reported as read.
func parseHandler(code string, m Mode) (Statement, bool) {
	toks := words(code, m)
	if len(toks) < 3 || !strings.EqualFold(toks[0], "HANDLER") {
		return Statement{}, false
	}
	switch strings.ToUpper(toks[2]) {
	case "OPEN", "READ", "CLOSE":
	default:
		return Statement{}, false
	}
	for _, t := range toks[3:] {
		if t == ";" {
			return Statement{}, false // more than one statement
		}
	}
	return Statement{Statement: policy.Statement{Kind: policy.StatementRead, Command: "HANDLER", Tables: []string{toks[1]}}}, true
}

// words splits code into identifiers (unquoted, with qualified names joined
// and backticks removed), quoted strings (kept whole) and ";", skipping
// comments. It is enough for HANDLER's few forms.
func words(code string, m Mode) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for i := 0; i < len(code); {
		c := code[i]
		switch {
		case c == '`':
			j := skipQuoted(code, i, m)
			cur.WriteString(strings.ReplaceAll(strings.TrimSuffix(code[i+1:j], "`"), "``", "`"))
			i = j
		case c == '\'' || c == '"':
			flush()
			j := skipQuoted(code, i, m)
			out = append(out, code[i:j])
			i = j
		case c == '#' || (c == '-' && strings.HasPrefix(code[i:], "-- ")):
			flush()
			i = skipLine(code, i)
		case c == '/' && strings.HasPrefix(code[i:], "/*!"):
			i += 3
		case c == '/' && strings.HasPrefix(code[i:], "/*"):
			flush()
			end := strings.Index(code[i+2:], "*/")
			if end < 0 {
				return out
			}
			i += end + 4
		case c == '*' && strings.HasPrefix(code[i:], "*/"):
			flush()
			i += 2
		case c == ';':
			flush()
			out = append(out, ";")
			i++
		case c == '.':
			cur.WriteByte('.')
			i++
		case c <= ' ':
			flush()
			i++
		case c == '(' || c == ')' || c == ',' || c == '=':
			flush()
			out = append(out, string(c))
			i++
		default:
			cur.WriteByte(c)
			i++
		}
	}
	flush()
	if len(out) > 0 && out[len(out)-1] == ";" {
		out = out[:len(out)-1]
	}
	return out
}
