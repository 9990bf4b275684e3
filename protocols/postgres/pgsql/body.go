package pgsql

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// maxBodyDepth bounds how deeply code bodies nest (a DO block whose body
// runs another DO, …); deeper ones are not checked.
const maxBodyDepth = 4

// body finds the statements the code of a DO block or of a function or
// procedure being created runs, into s.Inner, or says in s.Unchecked why
// it cannot. A body in SQL is parsed as SQL; one in PL/pgSQL with
// PostgreSQL's own PL/pgSQL parser, then every SQL statement and
// expression in it as SQL. Dynamic SQL (EXECUTE of a string) and other
// languages cannot be checked. A function written with a SQL-standard body
// (BEGIN ATOMIC … END, RETURN …) needs none of this: its statements are in
// the parse tree already.
func body(n *pg_query.Node, text string, s *Statement, depth int) {
	var lang, code string
	var opts []*pg_query.Node
	var create bool
	switch x := inner(n).(type) {
	case *pg_query.DoStmt:
		opts, lang = x.GetArgs(), "plpgsql"
	case *pg_query.CreateFunctionStmt:
		if x.GetSqlBody() != nil {
			return
		}
		opts, lang, create = x.GetOptions(), "sql", true
	default:
		return
	}
	for _, o := range opts {
		d := o.GetDefElem()
		switch d.GetDefname() {
		case "language":
			// As PostgreSQL looks it up: exactly (an unquoted name is
			// already lower case).
			lang = d.GetArg().GetString_().GetSval()
		case "as":
			switch a := d.GetArg(); {
			case a.GetString_() != nil:
				code = a.GetString_().GetSval()
			case a.GetList() != nil:
				items := a.GetList().GetItems()
				if len(items) != 1 {
					// AS 'object file', 'symbol': C code.
					s.Unchecked = "it is compiled code, which cannot be checked"
					return
				}
				code = items[0].GetString_().GetSval()
			}
		}
	}
	if code == "" || strings.IndexByte(text, 0) >= 0 {
		// No code (the server refuses a function without a body), or
		// text the C parser would cut short. The PL/pgSQL parser must never
		// see a function without a body: it aborts the process.
		if code != "" {
			s.Unchecked = "its text holds a NUL byte"
		}
		return
	}
	if depth >= maxBodyDepth {
		s.Unchecked = "its code nests too deeply to be checked"
		return
	}
	switch lang {
	case "sql":
		stmts, err := parse(code, depth+1)
		if err != nil {
			s.Unchecked = "its SQL body does not parse: " + err.Error()
			return
		}
		s.Inner = stmts
	case "plpgsql":
		fn := text
		if !create {
			fn = "CREATE FUNCTION bastion_do() RETURNS void LANGUAGE plpgsql AS " + dollarQuote(code)
		}
		s.Inner, s.Unchecked = plpgsql(fn, depth+1)
	default:
		s.Unchecked = fmt.Sprintf("its language %s cannot be checked", lang)
	}
}

// runs adds to s.Inner the SQL that functions s calls run
// (query_to_xml('SELECT …'), table_to_xml('name')).
func runs(s *Statement, depth int) {
	for _, sql := range s.sqlArgs {
		if depth >= maxBodyDepth {
			s.Unchecked = "the SQL its functions run nests too deeply to be checked"
			break
		}
		in, err := parse(sql, depth+1)
		if err != nil {
			if s.Unchecked == "" {
				s.Unchecked = "the SQL a function in it runs does not parse: " + err.Error()
			}
			continue
		}
		s.Inner = append(s.Inner, in...)
	}
	s.sqlArgs = nil
}

// dollarQuote quotes code as a dollar-quoted string constant, with a tag
// code does not contain.
func dollarQuote(code string) string {
	tag := "$bastion$"
	for i := 0; strings.Contains(code, tag); i++ {
		tag = "$bastion" + strconv.Itoa(i) + "$"
	}
	return tag + code + tag
}

// PL/pgSQL expression parse modes (PostgreSQL's RawParseMode), which say
// how the text of an expression reads as SQL.
const (
	modeDefault = 0 // a whole statement
	modeExpr    = 2 // an expression: SELECT expr
	modeAssign1 = 3 // var := expr
	modeAssign3 = 5 // var.field.field := expr
)

// plpgsql parses a CREATE FUNCTION statement in PL/pgSQL and returns the
// SQL its body runs, or why it cannot be checked.
func plpgsql(fn string, depth int) ([]Statement, string) {
	out, err := pg_query.ParsePlPgSqlToJSON(fn)
	if err != nil {
		return nil, "its PL/pgSQL does not parse: " + err.Error()
	}
	var tree any
	if err := json.Unmarshal([]byte(out), &tree); err != nil {
		return nil, "its PL/pgSQL parse cannot be read: " + err.Error()
	}
	var stmts []Statement
	why := ""
	var visit func(v any)
	visit = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				visit(e)
			}
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) { // deterministic
				e := x[k]
				switch k {
				case "PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors":
					// EXECUTE of a string constant runs that SQL, which is
					// checked like the rest; of anything else, cannot be.
					stmt, _ := e.(map[string]any)
					if !dynamic(stmt["query"], depth, &stmts, &why) && why == "" {
						why = "it runs dynamic SQL (EXECUTE of a string that is not a constant), which cannot be checked"
					}
				case "dynquery":
					if !dynamic(e, depth, &stmts, &why) && why == "" {
						why = "it opens a cursor or returns a query on dynamic SQL (EXECUTE of a string that is not a constant), which cannot be checked"
					}
				case "PLpgSQL_expr":
					q, _ := e.(map[string]any)
					texts, err := exprSQL(q)
					for _, sql := range texts {
						var in []Statement
						if in, err = parse(sql, depth); err != nil {
							break
						}
						stmts = append(stmts, in...)
					}
					if err != nil && why == "" {
						why = "a statement in it does not parse: " + err.Error()
					}
					continue
				}
				visit(e)
			}
		}
	}
	visit(tree)
	return stmts, why
}

// dynamic adds to *stmts the statements of the SQL a PL/pgSQL EXECUTE runs
// when expr (a PLpgSQL_expr object) is a string constant, and reports
// whether it was; SQL that does not parse sets *why. The expression itself
// is decided too, as any other (it is visited as one).
func dynamic(expr any, depth int, stmts *[]Statement, why *string) bool {
	e, _ := expr.(map[string]any)
	q, _ := e["PLpgSQL_expr"].(map[string]any)
	text, _ := q["query"].(string)
	if mode, _ := q["parseMode"].(float64); int(mode) != modeExpr {
		return false
	}
	sql, ok := constantExpr(text)
	if !ok {
		return false
	}
	in, err := parse(sql, depth)
	if err != nil {
		if *why == "" {
			*why = "the SQL it runs with EXECUTE does not parse: " + err.Error()
		}
		return true
	}
	*stmts = append(*stmts, in...)
	return true
}

// constantExpr returns the string an expression is when it is nothing but
// a string constant ('…', E'…', $$…$$, cast or not).
func constantExpr(expr string) (string, bool) {
	if strings.IndexByte(expr, 0) >= 0 || checkSize(expr) != nil || checkNesting(expr) != nil {
		return "", false
	}
	tree, err := pg_query.Parse("SELECT " + expr)
	if err != nil || len(tree.GetStmts()) != 1 {
		return "", false
	}
	sel := tree.GetStmts()[0].GetStmt().GetSelectStmt()
	if sel == nil || len(sel.GetTargetList()) != 1 {
		return "", false
	}
	rt := sel.GetTargetList()[0].GetResTarget()
	sql, ok := constString(rt.GetVal())
	// Nothing else in the SELECT: no FROM, WHERE, set operation, … that
	// would make the value something other than the constant.
	rest := proto.Clone(sel).(*pg_query.SelectStmt)
	rest.TargetList = nil
	bare := &pg_query.SelectStmt{Op: pg_query.SetOperation_SETOP_NONE, LimitOption: pg_query.LimitOption_LIMIT_OPTION_DEFAULT}
	return sql, ok && rt.GetName() == "" && proto.Equal(rest, bare)
}

// exprSQL is the SQL text of a PL/pgSQL expression (a PLpgSQL_expr
// object): a statement as it is, an expression as a SELECT of it, an
// assignment as a SELECT of its right-hand side and one of each subscript
// of its target (a[f(x)] := …).
func exprSQL(e map[string]any) ([]string, error) {
	q, _ := e["query"].(string)
	mode, _ := e["parseMode"].(float64)
	switch m := int(mode); {
	case m == modeDefault:
		return []string{q}, nil
	case m == modeExpr:
		return []string{"SELECT " + q}, nil
	case m >= modeAssign1 && m <= modeAssign3:
		rhs, subscripts := assignment(q)
		if rhs < 0 {
			return nil, fmt.Errorf("assignment %q", q)
		}
		out := []string{"SELECT " + q[rhs:]}
		for _, sub := range subscripts {
			out = append(out, "SELECT "+sub)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("expression of parse mode %d", m)
	}
}

// assignment returns where the right-hand side of a PL/pgSQL assignment
// (target := expr, or target = expr) begins, or -1, and the subscripts of
// its target (a variable, with fields and subscripts).
func assignment(q string) (int, []string) {
	depth, open := 0, 0
	var subscripts []string
	for i := 0; i < len(q); i++ {
		switch c := q[i]; {
		case c == '"':
			j := strings.IndexByte(q[i+1:], '"')
			if j < 0 {
				return -1, nil
			}
			i += j + 1
		case c == '[':
			if depth == 0 {
				open = i + 1
			}
			depth++
		case c == ']':
			depth--
			if depth == 0 {
				subscripts = append(subscripts, q[open:i])
			}
		case depth > 0:
		case c == ':' && i+1 < len(q) && q[i+1] == '=':
			return i + 2, subscripts
		case c == '=':
			return i + 1, subscripts
		}
	}
	return -1, nil
}
