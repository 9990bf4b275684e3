package policy

import "strings"

// TableCase is how a database compares table names.
type TableCase uint8

const (
	// TablesAnyCase: without regard to case (MySQL with
	// lower_case_table_names 1 or 2, or unknown).
	TablesAnyCase TableCase = iota
	// TablesSQLCase: as resolved by SQL's rules, unquoted names folded to
	// lower case and quoted ones kept, then exactly (PostgreSQL).
	TablesSQLCase
	// TablesExactCase: exactly, as written (MySQL with
	// lower_case_table_names = 0).
	TablesExactCase
)

// tablePatterns returns pats as they compare with names of case c, and
// how both are normalised.
func tablePatterns(pats []string, c TableCase) ([]string, func(string) string) {
	same := func(s string) string { return s }
	switch c {
	case TablesSQLCase:
		return sqlPatterns(pats), same
	case TablesExactCase:
		return foldPatterns(pats), same
	}
	return foldPatterns(pats), strings.ToLower
}

// sqlPatterns reads table patterns as SQL reads names, for statements
// whose tables the database resolved by SQL's rules (TablesSQLCase): each
// dot-separated part in double quotes is kept as written (without the
// quotes, "" standing for one "), any other part is folded to lower case,
// as PostgreSQL folds an unquoted name. So orders and ORDERS match the
// table orders, and "Orders" only the table Orders.
func sqlPatterns(pats []string) []string {
	out := make([]string, len(pats))
	for i, p := range pats {
		out[i] = sqlPattern(p, true)
	}
	return out
}

// foldPatterns removes the quotes of quoted parts, for statements whose
// tables are matched without regard to case, or exactly as written.
func foldPatterns(pats []string) []string {
	out := make([]string, len(pats))
	for i, p := range pats {
		out[i] = sqlPattern(p, false)
	}
	return out
}

// sqlPattern reads one pattern (see sqlPatterns); with fold, the unquoted
// parts are lower-cased. A pattern with an unbalanced quote is taken as
// written.
func sqlPattern(p string, fold bool) string {
	var b strings.Builder
	for i := 0; i < len(p); {
		if p[i] != '"' {
			j := i
			for j < len(p) && p[j] != '"' {
				j++
			}
			if fold {
				b.WriteString(strings.ToLower(p[i:j]))
			} else {
				b.WriteString(p[i:j])
			}
			i = j
			continue
		}
		// A quoted part: up to the next lone quote.
		j := i + 1
		for {
			k := strings.IndexByte(p[j:], '"')
			if k < 0 {
				return p // unbalanced
			}
			b.WriteString(p[j : j+k])
			j += k + 1
			if j < len(p) && p[j] == '"' {
				b.WriteByte('"')
				j++
				continue
			}
			break
		}
		i = j
	}
	return b.String()
}

// Following returns s as the rules decide it when it runs statements the
// session prepared with SQL's PREPARE (EXECUTE name): with the tables,
// functions and facts of every statement that may have been prepared
// under each name it runs (prepared: by name, all of them, as the front
// end saw them), and, for EXECUTE itself, their kind when they share one;
// so EXECUTE of a prepared read is a read. s is returned as it is when it
// runs none, or a name the session never prepared (the server holds none
// Bastion knows of: read-only mode refuses it).
func Following(s Statement, prepared map[string][]Statement) Statement {
	if len(s.Executes) == 0 {
		return s
	}
	out := s
	out.Tables = append([]string(nil), s.Tables...)
	out.Functions = append([]string(nil), s.Functions...)
	var kind StatementKind
	for i, name := range s.Executes {
		cands := prepared[name]
		if len(cands) == 0 {
			return s
		}
		for j := range cands {
			c := &cands[j]
			if i == 0 && j == 0 {
				kind = c.Kind
			} else if c.Kind != kind {
				kind = ""
			}
			out.Tables = append(out.Tables, c.Tables...)
			out.Functions = append(out.Functions, c.Functions...)
			out.Unbounded = out.Unbounded || c.Unbounded
			out.WritesInCTE = out.WritesInCTE || c.WritesInCTE
			out.FileAccess = out.FileAccess || c.FileAccess
			out.Program = out.Program || c.Program
			out.SideEffects = out.SideEffects || c.SideEffects
			out.RoleChange = out.RoleChange || c.RoleChange
			out.ExplainAnalyze = out.ExplainAnalyze || c.ExplainAnalyze
		}
	}
	if s.Command == "EXECUTE" && kind != "" {
		out.Kind = kind
	}
	return out
}
