package pgsql

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// valKind is the type of a constant value, or valUnknown for an expression
// that is not a constant this package evaluates.
type valKind int

const (
	valUnknown valKind = iota
	valNull
	valBool
	valNumber
	valString // a string literal: its type is only known from its use
)

// value is the result of evaluating a constant expression.
type value struct {
	kind valKind
	b    bool
	n    float64
	s    string
}

var unknown = value{}

// isTautology reports whether a WHERE clause is a constant expression that
// is true, so that it selects every row.
func isTautology(n *pg_query.Node) bool {
	v := toBool(eval(n))
	return v.kind == valBool && v.b
}

// eval evaluates n when it is built only from constants, casts to simple
// types, comparisons, AND/OR/NOT, IS [NOT] NULL, IS [NOT] TRUE/FALSE,
// IS [NOT] DISTINCT FROM and IN lists; anything else is unknown.
func eval(n *pg_query.Node) value {
	switch x := n.GetNode().(type) {
	case *pg_query.Node_AConst:
		return constValue(x.AConst)
	case *pg_query.Node_String_:
		return value{kind: valString, s: x.String_.GetSval()}
	case *pg_query.Node_Integer:
		return value{kind: valNumber, n: float64(x.Integer.GetIval())}
	case *pg_query.Node_Boolean:
		return value{kind: valBool, b: x.Boolean.GetBoolval()}
	case *pg_query.Node_TypeCast:
		return cast(eval(x.TypeCast.GetArg()), x.TypeCast.GetTypeName())
	case *pg_query.Node_BoolExpr:
		return boolExpr(x.BoolExpr)
	case *pg_query.Node_AExpr:
		return aExpr(x.AExpr)
	case *pg_query.Node_NullTest:
		v := eval(x.NullTest.GetArg())
		if v.kind == valUnknown {
			return unknown
		}
		isNull := v.kind == valNull
		if x.NullTest.GetNulltesttype() == pg_query.NullTestType_IS_NOT_NULL {
			return value{kind: valBool, b: !isNull}
		}
		return value{kind: valBool, b: isNull}
	case *pg_query.Node_BooleanTest:
		return boolTest(x.BooleanTest)
	}
	return unknown
}

func constValue(c *pg_query.A_Const) value {
	if c.GetIsnull() {
		return value{kind: valNull}
	}
	switch v := c.GetVal().(type) {
	case *pg_query.A_Const_Ival:
		return value{kind: valNumber, n: float64(v.Ival.GetIval())}
	case *pg_query.A_Const_Fval:
		f, err := strconv.ParseFloat(v.Fval.GetFval(), 64)
		if err != nil {
			return unknown
		}
		return value{kind: valNumber, n: f}
	case *pg_query.A_Const_Boolval:
		return value{kind: valBool, b: v.Boolval.GetBoolval()}
	case *pg_query.A_Const_Sval:
		return value{kind: valString, s: v.Sval.GetSval()}
	}
	return unknown
}

// cast applies a cast to a simple type; casts to other types are unknown.
func cast(v value, t *pg_query.TypeName) value {
	if v.kind == valUnknown || v.kind == valNull {
		return v
	}
	names := stringList(t.GetNames())
	if len(names) == 0 || len(t.GetArrayBounds()) > 0 {
		return unknown
	}
	switch names[len(names)-1] {
	case "bool":
		return toBool(v)
	case "int2", "int4", "int8", "numeric", "float4", "float8":
		return toNumber(v)
	case "text", "varchar":
		return toString(v)
	}
	return unknown
}

// toBool converts v as PostgreSQL's boolean input does.
func toBool(v value) value {
	switch v.kind {
	case valBool, valNull:
		return v
	case valNumber:
		return value{kind: valBool, b: v.n != 0}
	case valString:
		switch strings.ToLower(strings.TrimSpace(v.s)) {
		case "t", "tr", "tru", "true", "y", "ye", "yes", "on", "1":
			return value{kind: valBool, b: true}
		case "f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0":
			return value{kind: valBool, b: false}
		}
	}
	return unknown
}

func toNumber(v value) value {
	switch v.kind {
	case valNumber, valNull:
		return v
	case valString:
		f, err := strconv.ParseFloat(strings.TrimSpace(v.s), 64)
		if err == nil {
			return value{kind: valNumber, n: f}
		}
	}
	return unknown
}

func toString(v value) value {
	switch v.kind {
	case valString, valNull:
		return v
	case valNumber:
		return value{kind: valString, s: strconv.FormatFloat(v.n, 'f', -1, 64)}
	case valBool:
		if v.b {
			return value{kind: valString, s: "true"}
		}
		return value{kind: valString, s: "false"}
	}
	return unknown
}

// boolExpr evaluates AND, OR and NOT with SQL's three-valued logic.
func boolExpr(e *pg_query.BoolExpr) value {
	switch e.GetBoolop() {
	case pg_query.BoolExprType_NOT_EXPR:
		if len(e.GetArgs()) != 1 {
			return unknown
		}
		v := toBool(eval(e.GetArgs()[0]))
		if v.kind == valBool {
			v.b = !v.b
		}
		return v
	case pg_query.BoolExprType_AND_EXPR, pg_query.BoolExprType_OR_EXPR:
		or := e.GetBoolop() == pg_query.BoolExprType_OR_EXPR
		// AND: any false decides; OR: any true decides.
		result := value{kind: valBool, b: !or}
		for _, a := range e.GetArgs() {
			v := toBool(eval(a))
			switch {
			case v.kind == valBool && v.b == or:
				return v
			case v.kind == valBool:
			case v.kind == valNull && result.kind != valUnknown:
				result = value{kind: valNull}
			default:
				result = unknown
			}
		}
		return result
	}
	return unknown
}

func boolTest(t *pg_query.BooleanTest) value {
	v := toBool(eval(t.GetArg()))
	if v.kind == valUnknown {
		return unknown
	}
	isTrue := v.kind == valBool && v.b
	isFalse := v.kind == valBool && !v.b
	isNull := v.kind == valNull
	var r bool
	switch t.GetBooltesttype() {
	case pg_query.BoolTestType_IS_TRUE:
		r = isTrue
	case pg_query.BoolTestType_IS_NOT_TRUE:
		r = !isTrue
	case pg_query.BoolTestType_IS_FALSE:
		r = isFalse
	case pg_query.BoolTestType_IS_NOT_FALSE:
		r = !isFalse
	case pg_query.BoolTestType_IS_UNKNOWN:
		r = isNull
	case pg_query.BoolTestType_IS_NOT_UNKNOWN:
		r = !isNull
	default:
		return unknown
	}
	return value{kind: valBool, b: r}
}

// aExpr evaluates comparisons, IS [NOT] DISTINCT FROM and IN lists.
func aExpr(e *pg_query.A_Expr) value {
	switch e.GetKind() {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		op := stringList(e.GetName())
		if len(op) != 1 || e.GetLexpr() == nil || e.GetRexpr() == nil {
			return unknown
		}
		return compare(op[0], eval(e.GetLexpr()), eval(e.GetRexpr()))
	case pg_query.A_Expr_Kind_AEXPR_DISTINCT, pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		l, r := eval(e.GetLexpr()), eval(e.GetRexpr())
		if l.kind == valUnknown || r.kind == valUnknown {
			return unknown
		}
		var same bool
		switch {
		case l.kind == valNull || r.kind == valNull:
			same = l.kind == r.kind
		default:
			eq := compare("=", l, r)
			if eq.kind != valBool {
				return unknown
			}
			same = eq.b
		}
		if e.GetKind() == pg_query.A_Expr_Kind_AEXPR_DISTINCT {
			return value{kind: valBool, b: !same}
		}
		return value{kind: valBool, b: same}
	case pg_query.A_Expr_Kind_AEXPR_IN:
		op := stringList(e.GetName())
		list := e.GetRexpr().GetList()
		if len(op) != 1 || list == nil {
			return unknown
		}
		l := eval(e.GetLexpr())
		// x IN (a, b) is x = a OR x = b; x NOT IN (a, b) is x <> a AND x <> b.
		parts := make([]*pg_query.Node, 0, len(list.GetItems()))
		for _, it := range list.GetItems() {
			v := compare(op[0], l, eval(it))
			parts = append(parts, constNode(v))
		}
		boolop := pg_query.BoolExprType_OR_EXPR
		if op[0] == "<>" {
			boolop = pg_query.BoolExprType_AND_EXPR
		}
		return boolExpr(&pg_query.BoolExpr{Boolop: boolop, Args: parts})
	}
	return unknown
}

// constNode turns an evaluated value back into a node for boolExpr.
func constNode(v value) *pg_query.Node {
	switch v.kind {
	case valBool:
		return &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Val: &pg_query.A_Const_Boolval{Boolval: &pg_query.Boolean{Boolval: v.b}}}}}
	case valNull:
		return &pg_query.Node{Node: &pg_query.Node_AConst{AConst: &pg_query.A_Const{Isnull: true}}}
	}
	return &pg_query.Node{}
}

// compare applies a comparison operator to two constants. A string
// literal compared with a number or boolean takes the other side's type,
// as an unknown-typed literal does in PostgreSQL. Strings are only
// compared for (in)equality: ordering depends on the collation.
func compare(op string, l, r value) value {
	if l.kind == valUnknown || r.kind == valUnknown {
		return unknown
	}
	switch op {
	case "=", "<>", "!=", "<", ">", "<=", ">=":
	default:
		return unknown
	}
	if l.kind == valNull || r.kind == valNull {
		return value{kind: valNull}
	}
	switch {
	case l.kind == valString && r.kind == valNumber:
		l = toNumber(l)
	case l.kind == valNumber && r.kind == valString:
		r = toNumber(r)
	case l.kind == valString && r.kind == valBool:
		l = toBool(l)
	case l.kind == valBool && r.kind == valString:
		r = toBool(r)
	}
	if l.kind != r.kind || l.kind == valUnknown {
		return unknown
	}
	var c int
	switch l.kind {
	case valNumber:
		switch {
		case l.n < r.n:
			c = -1
		case l.n > r.n:
			c = 1
		}
	case valBool:
		if op != "=" && op != "<>" && op != "!=" {
			return unknown
		}
		if l.b != r.b {
			c = 1
		}
	case valString:
		if op != "=" && op != "<>" && op != "!=" {
			return unknown
		}
		if l.s != r.s {
			c = 1
		}
	}
	var b bool
	switch op {
	case "=":
		b = c == 0
	case "<>", "!=":
		b = c != 0
	case "<":
		b = c < 0
	case ">":
		b = c > 0
	case "<=":
		b = c <= 0
	case ">=":
		b = c >= 0
	}
	return value{kind: valBool, b: b}
}
