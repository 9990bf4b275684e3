package mysqlsql

import "github.com/pingcap/tidb/pkg/parser/ast"

// cteScope follows, during a walk, which CTE names a table name may refer
// to, as MySQL scopes them: a query sees the CTEs of its own WITH and of
// the queries around it; a CTE's own query sees the CTEs before it in its
// WITH, and all of them, itself included, under WITH RECURSIVE. Only an
// unqualified name read by a query (SELECT, a set operation) is taken for
// a CTE, compared with case: the target of UPDATE and DELETE, or a name
// written in another case, stays a table (the rules err on the side of
// matching).
type cteScope struct {
	visible []map[string]bool // innermost last
	withs   []*ast.WithClause
	stmts   []scopeStmt
}

// scopeStmt is a statement being walked and the depth of the scopes
// around it, to which its end returns.
type scopeStmt struct {
	n     ast.Node
	depth int
}

// with returns the WITH clause a statement node owns, nil for none, and
// whether n is a statement that may own one.
func with(n ast.Node) (*ast.WithClause, bool) {
	switch x := n.(type) {
	case *ast.SelectStmt:
		return x.With, true
	case *ast.SetOprStmt:
		return x.With, true
	case *ast.SetOprSelectList:
		return x.With, true
	case *ast.DeleteStmt:
		return x.With, true
	case *ast.UpdateStmt:
		return x.With, true
	case *ast.InsertStmt:
		return nil, true
	}
	return nil, false
}

func (c *cteScope) top() map[string]bool {
	if len(c.visible) == 0 {
		return nil
	}
	return c.visible[len(c.visible)-1]
}

// push makes visible the names around plus names.
func (c *cteScope) push(names []string) {
	v := make(map[string]bool, len(c.top())+len(names))
	for k := range c.top() {
		v[k] = true
	}
	for _, n := range names {
		v[n] = true
	}
	c.visible = append(c.visible, v)
}

func (c *cteScope) pop() { c.visible = c.visible[:len(c.visible)-1] }

func cteNames(w *ast.WithClause) []string {
	names := make([]string, len(w.CTEs))
	for i, cte := range w.CTEs {
		names[i] = cte.Name.O
	}
	return names
}

func (c *cteScope) enterScope(n ast.Node) {
	if _, ok := with(n); ok {
		c.stmts = append(c.stmts, scopeStmt{n: n, depth: len(c.visible)})
	}
	switch x := n.(type) {
	case *ast.WithClause:
		c.withs = append(c.withs, x)
	case *ast.CommonTableExpression:
		if len(c.withs) == 0 {
			c.push(nil)
			return
		}
		w := c.withs[len(c.withs)-1]
		names := cteNames(w)
		if !w.IsRecursive {
			for i, cte := range w.CTEs {
				if cte == x {
					names = names[:i]
					break
				}
			}
		}
		c.push(names)
	}
}

func (c *cteScope) leaveScope(n ast.Node) {
	if _, ok := with(n); ok && len(c.stmts) > 0 {
		// Drops the scope its WITH made.
		c.visible = c.visible[:c.stmts[len(c.stmts)-1].depth]
		c.stmts = c.stmts[:len(c.stmts)-1]
	}
	switch n.(type) {
	case *ast.WithClause:
		if len(c.withs) == 0 {
			return
		}
		w := c.withs[len(c.withs)-1]
		c.withs = c.withs[:len(c.withs)-1]
		c.push(cteNames(w))
	case *ast.CommonTableExpression:
		if len(c.visible) > 0 {
			c.pop()
		}
	}
}

// isCTE reports whether t names a CTE rather than a table.
func (c *cteScope) isCTE(t *ast.TableName) bool {
	if t.Schema.O != "" || len(c.stmts) == 0 || !c.top()[t.Name.O] {
		return false
	}
	switch c.stmts[len(c.stmts)-1].n.(type) {
	case *ast.SelectStmt, *ast.SetOprStmt, *ast.SetOprSelectList:
		return true
	}
	return false
}
