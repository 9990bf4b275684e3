package mysqlsql

import "strings"

// stripIntoVars blanks out of code every top-level INTO @var[, @var…]
// clause, which TiDB's grammar lacks (`SELECT id INTO @x FROM t`,
// `SELECT … FROM t WHERE … INTO @a, @b`), so that the statement is read as
// the query it runs. The variables it sets are the session's own, as with
// `SET @x = …`. Positions are kept (the clause becomes spaces). ok is
// false when code has no such clause.
func stripIntoVars(code string, m Mode) (out string, ok bool) {
	b := []byte(code)
	depth := 0
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(code, i, m)
		case c == '/' && i+1 < len(b) && b[i+1] == '*':
			if j := strings.Index(code[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(b)
			}
		case c == '#', c == '-' && strings.HasPrefix(code[i:], "-- "):
			i = skipLine(code, i)
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			i++
		case isWordByte(c):
			j := i
			for j < len(b) && isWordByte(b[j]) {
				j++
			}
			if depth == 0 && strings.EqualFold(code[i:j], "INTO") && (i == 0 || !isWordByte(b[i-1])) {
				if end := intoVarsEnd(code, j, m); end > j {
					for k := i; k < end; k++ {
						if b[k] != '\n' {
							b[k] = ' '
						}
					}
					ok = true
					i = end
					continue
				}
			}
			i = j
		default:
			i++
		}
	}
	return string(b), ok
}

// intoVarsEnd returns the index after a list of user variables that starts
// (after blanks) at i: @name, @`name`, @'name' or @"name", separated by
// commas; i itself when there is none. A comma not followed by a variable
// is left in place (the text then does not parse, as on the server).
func intoVarsEnd(code string, i int, m Mode) int {
	end, next := i, i
	for {
		j := skipBlanks(code, next)
		if j >= len(code) || code[j] != '@' || (j+1 < len(code) && code[j+1] == '@') {
			return end // no variable here (a system variable is not a target)
		}
		j++
		switch {
		case j < len(code) && (code[j] == '`' || code[j] == '\'' || code[j] == '"'):
			j = skipQuoted(code, j, m)
		default:
			k := j
			for k < len(code) && (isWordByte(code[k]) || code[k] == '.' || code[k] == '$') {
				k++
			}
			if k == j {
				return end
			}
			j = k
		}
		end = j
		k := skipBlanks(code, end)
		if k >= len(code) || code[k] != ',' {
			return end
		}
		next = k + 1
	}
}

func skipBlanks(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
