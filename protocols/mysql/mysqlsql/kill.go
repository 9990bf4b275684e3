package mysqlsql

import (
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// Kill is a KILL statement: the connection it ends (or whose statement it
// ends, with Query).
type Kill struct {
	Query bool
	// ConnectionID is the connection named; Own is set instead for
	// KILL CONNECTION_ID(), and neither for another expression, whose
	// value is only known when it runs.
	ConnectionID uint64
	Own          bool
	Constant     bool
}

// Kills returns the KILL statements sql runs, as the server o describes
// reads it (every reading when that is not known): at the top, in the
// code of a routine or trigger being created, and in the text
// PREPARE … FROM 'text' prepares. A string that does not parse returns
// its error.
func Kills(sql string, o Options) ([]Kill, error) {
	var out []Kill
	for _, r := range o.readings() {
		code, err := exposeCode(sql, r.mode, r.srv, r.runs)
		if err != nil {
			return nil, err
		}
		nodes, err := parseNodes(code, r.mode)
		if err != nil {
			return nil, err
		}
		v := &killVisitor{o: o}
		for _, n := range nodes {
			n.Accept(v)
		}
		if v.err != nil {
			return nil, v.err
		}
		out = append(out, v.kills...)
	}
	return out, nil
}

// killVisitor collects the KILL statements of a tree.
type killVisitor struct {
	o     Options
	kills []Kill
	err   error
}

func (v *killVisitor) Enter(n ast.Node) (ast.Node, bool) {
	switch x := n.(type) {
	case *ast.KillStmt:
		k := Kill{Query: x.Query, ConnectionID: x.ConnectionID, Constant: x.Expr == nil}
		if f, ok := x.Expr.(*ast.FuncCallExpr); ok && strings.EqualFold(f.FnName.L, "connection_id") && len(f.Args) == 0 {
			k.Own = true
		}
		v.kills = append(v.kills, k)
	case *ast.PrepareStmt:
		if x.SQLVar == nil {
			inner, err := Kills(x.SQLText, v.o)
			if err != nil && v.err == nil {
				v.err = err
			}
			v.kills = append(v.kills, inner...)
		}
	}
	return n, false
}

func (v *killVisitor) Leave(n ast.Node) (ast.Node, bool) { return n, true }
