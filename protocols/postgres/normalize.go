package postgres

import (
	"slices"
	"strings"

	"github.com/bastionhq/bastion/bastion/policy"
)

// literalKey returns sql with each number and string literal replaced by
// '?', the key under which statements that differ only in their constants
// share a summary (pgbench and ORMs that inline values send a new text for
// every row).
//
// It is deliberately narrow, so that its tokens are PostgreSQL's: ok is
// false for any text with a comment, a quoted identifier, a dollar quote, a
// backslash (whose meaning depends on standard_conforming_strings), a
// prefixed string (E”, B”, X”, N”), a number with an exponent,
// underscore or base prefix, or a non-ASCII byte. Outside literals, the key
// keeps every byte.
func literalKey(sql string) (key string, ok bool) {
	var b strings.Builder
	b.Grow(len(sql))
	replaced := false
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'':
			if i > 0 && (isIdentByte(sql[i-1]) || sql[i-1] == '\'') {
				return "", false
			}
			j := i + 1
			for {
				if j >= len(sql) || sql[j] == '\\' || sql[j] >= 0x80 {
					return "", false
				}
				if sql[j] == '\'' {
					if j+1 < len(sql) && sql[j+1] == '\'' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			b.WriteByte('?')
			replaced = true
			i = j + 1
		case isDigit(c) && (i == 0 || !isIdentByte(sql[i-1]) && sql[i-1] != '.'):
			j := i
			for j < len(sql) && isDigit(sql[j]) {
				j++
			}
			if j < len(sql) && sql[j] == '.' {
				j++
				for j < len(sql) && isDigit(sql[j]) {
					j++
				}
			}
			if j < len(sql) && (isIdentByte(sql[j]) || sql[j] == '.' || sql[j] == '\'') {
				return "", false
			}
			b.WriteByte('?')
			replaced = true
			i = j
		case c == '"' || c == '\\' || c >= 0x80 || c == 0:
			return "", false
		case c == '$' && (i+1 >= len(sql) || !isDigit(sql[i+1])):
			return "", false // a dollar quote ($$, $tag$)
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-', c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			return "", false
		default:
			b.WriteByte(c)
			i++
		}
	}
	if !replaced {
		return "", false
	}
	return b.String(), true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isIdentByte reports whether c may continue an identifier or keyword.
func isIdentByte(c byte) bool {
	return c == '_' || c == '$' || isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// constantFree reports whether no constant in s can change its decision:
// a plain read, without writes in CTEs, file access, role changes or
// set_config. Only then may statements that differ from it in constants
// alone share its summary. (Constants matter to the others: WHERE 1=1
// makes a DELETE unbounded, set_config('role', …) changes the role.)
func constantFree(s *policy.Statement) bool {
	return s.Kind == policy.StatementRead && !s.WritesInCTE && !s.FileAccess && !s.RoleChange && !s.ExplainAnalyze &&
		!s.Unbounded && !slices.Contains(s.Functions, "set_config")
}

// withText is p for a text that differs from the one p was parsed from
// only in constants: one statement, with the new text.
func (p *parsed) withText(sql string) *parsed {
	s := p.stmts[0]
	s.Text = strings.TrimRight(strings.TrimSpace(sql), "; \t\r\n")
	return &parsed{stmts: []policy.Statement{s}}
}
