package pgsql

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// cteRefs finds the relation names under n that refer to a CTE rather
// than a table, as PostgreSQL scopes them: an unqualified name in a FROM
// item (FROM, JOIN, DELETE's USING, MERGE's USING) of a query that sees a
// CTE of that name. A query sees the CTEs of its own WITH and of the
// queries around it; a CTE's own query sees the CTEs before it in its
// WITH, and all of them, itself included, under WITH RECURSIVE. The
// target of INSERT, UPDATE, DELETE and MERGE is always a table, as is
// any relation outside a FROM item.
//
// So in WITH orders AS (SELECT * FROM orders) SELECT * FROM orders the
// inner orders is the table and the outer one the CTE.
func cteRefs(n *pg_query.Node) map[*pg_query.RangeVar]bool {
	refs := map[*pg_query.RangeVar]bool{}
	scope(n.ProtoReflect(), nil, false, refs)
	return refs
}

// fromFields are the fields of statements whose items are FROM items.
var fromFields = map[protoreflect.Name]bool{"from_clause": true, "using_clause": true, "source_relation": true}

// scope walks m, in which the CTE names visible are visible; from says
// whether m is (or wraps) a FROM item.
func scope(m protoreflect.Message, visible map[string]bool, from bool, refs map[*pg_query.RangeVar]bool) {
	switch x := m.Interface().(type) {
	case *pg_query.RangeVar:
		if from && x.GetSchemaname() == "" && x.GetCatalogname() == "" && visible[x.GetRelname()] {
			refs[x] = true
		}
		return
	case *pg_query.Node:
		// A wrapper: its one field is what it wraps.
		children(m, func(_ protoreflect.FieldDescriptor, c protoreflect.Message) { scope(c, visible, from, refs) })
		return
	case *pg_query.JoinExpr:
		children(m, func(fd protoreflect.FieldDescriptor, c protoreflect.Message) {
			scope(c, visible, from && (fd.Name() == "larg" || fd.Name() == "rarg"), refs)
		})
		return
	case *pg_query.WithClause:
		return // walked by the statement that owns it
	case interface {
		GetWithClause() *pg_query.WithClause
	}:
		visible = withScope(x.GetWithClause(), visible, refs)
		children(m, func(fd protoreflect.FieldDescriptor, c protoreflect.Message) {
			scope(c, visible, fromFields[fd.Name()], refs)
		})
		return
	}
	children(m, func(_ protoreflect.FieldDescriptor, c protoreflect.Message) { scope(c, visible, false, refs) })
}

// withScope walks the CTEs of w, each in its own scope, and returns the
// names visible in the statement that owns w.
func withScope(w *pg_query.WithClause, outer map[string]bool, refs map[*pg_query.RangeVar]bool) map[string]bool {
	if w == nil || len(w.GetCtes()) == 0 {
		return outer
	}
	with := func(names []string) map[string]bool {
		v := make(map[string]bool, len(outer)+len(names))
		for k := range outer {
			v[k] = true
		}
		for _, n := range names {
			v[n] = true
		}
		return v
	}
	var names []string
	for _, c := range w.GetCtes() {
		names = append(names, c.GetCommonTableExpr().GetCtename())
	}
	for i, c := range w.GetCtes() {
		seen := names[:i]
		if w.GetRecursive() {
			seen = names
		}
		if q := c.GetCommonTableExpr().GetCtequery(); q != nil {
			scope(q.ProtoReflect(), with(seen), false, refs)
		}
	}
	return with(names)
}

// children calls f for each message directly under m.
func children(m protoreflect.Message, f func(protoreflect.FieldDescriptor, protoreflect.Message)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					f(fd, mv.Message())
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				l := v.List()
				for i := 0; i < l.Len(); i++ {
					f(fd, l.Get(i).Message())
				}
			}
		case fd.Message() != nil:
			f(fd, v.Message())
		}
		return true
	})
}
