package mysqlsql

import (
	"strings"

	"github.com/bastionhq/bastion/bastion/policy"
)

// exposeCode rewrites sql, keeping its length and every byte's position, so
// that the parser treats as code what MariaDB executes: /*M!NNNNNN … */ and
// /*!NNNNN … */ become /*! … */ with the version digits blanked. Strings,
// quoted identifiers and comments are skipped as MariaDB's lexer skips them.
func exposeCode(sql string) string {
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
			i = skipQuoted(sql, i)
		case c == '#':
			i = skipLine(sql, i)
		case c == '-' && strings.HasPrefix(sql[i:], "--") && (i+2 == n || sql[i+2] <= ' '):
			i = skipLine(sql, i)
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			j := i + 2
			switch {
			case strings.HasPrefix(sql[j:], "M!"):
				// "/*M!" → " /*!": the same length, now MySQL's form.
				set(i, ' ')
				set(i+1, '/')
				set(i+2, '*')
				set(i+3, '!')
				j += 2
			case strings.HasPrefix(sql[j:], "!"):
				j++
			default:
				end := strings.Index(sql[j:], "*/")
				if end < 0 {
					return string(orBytes(b, sql))
				}
				i = j + end + 2
				continue
			}
			// Version digits (five for MySQL, six for MariaDB) are blanked:
			// the guarded code is checked whatever the server's version.
			for k := 0; k < 6 && j < n && sql[j] >= '0' && sql[j] <= '9'; k++ {
				set(j, ' ')
				j++
			}
			i = j // inside executable code: go on lexing it
		default:
			i++
		}
	}
	return string(orBytes(b, sql))
}

func orBytes(b []byte, s string) []byte {
	if b == nil {
		return []byte(s)
	}
	return b
}

// skipQuoted returns the index after the quoted string or identifier that
// starts at i. Quotes double to escape; in strings a backslash escapes too.
func skipQuoted(s string, i int) int {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if q != '`' {
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
func parseHandler(code string) (Statement, bool) {
	toks := words(code)
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
func words(code string) []string {
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
			j := skipQuoted(code, i)
			cur.WriteString(strings.ReplaceAll(strings.TrimSuffix(code[i+1:j], "`"), "``", "`"))
			i = j
		case c == '\'' || c == '"':
			flush()
			j := skipQuoted(code, i)
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
