package mysqlsql

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/opcode"
	"github.com/pingcap/tidb/pkg/parser/test_driver"
)

// value is a constant as MySQL evaluates it in a WHERE clause: NULL, a
// number or a string. known is false for anything not constant.
type value struct {
	known bool
	null  bool
	num   float64
	str   string
	isStr bool
}

var unknown = value{}

func number(f float64) value { return value{known: true, num: f} }

func boolean(b bool) value {
	if b {
		return number(1)
	}
	return number(0)
}

// isTautology reports whether a WHERE clause is a constant that is true
// (1, TRUE, 'a'='a', 1 OR x, NOT 0, …): only constants are evaluated.
func isTautology(e ast.ExprNode) bool {
	v := eval(e)
	return v.known && !v.null && toNumber(v) != 0
}

func eval(e ast.ExprNode) value {
	switch x := e.(type) {
	case *test_driver.ValueExpr:
		return constant(x.GetValue())
	case *ast.ParenthesesExpr:
		return eval(x.Expr)
	case *ast.UnaryOperationExpr:
		v := eval(x.V)
		if !v.known || v.null {
			return v
		}
		switch x.Op {
		case opcode.Not, opcode.Not2:
			return boolean(toNumber(v) == 0)
		case opcode.Minus:
			return number(-toNumber(v))
		case opcode.Plus:
			return v
		}
		return unknown
	case *ast.BinaryOperationExpr:
		return binary(x.Op, eval(x.L), eval(x.R))
	case *ast.IsNullExpr:
		v := eval(x.Expr)
		if !v.known {
			return unknown
		}
		return boolean(v.null != x.Not)
	case *ast.IsTruthExpr:
		v := eval(x.Expr)
		if !v.known {
			return unknown
		}
		is := !v.null && (toNumber(v) != 0) == (x.True != 0)
		return boolean(is != x.Not)
	case *ast.PatternInExpr:
		if x.Sel != nil {
			return unknown
		}
		l := eval(x.Expr)
		if !l.known {
			return unknown
		}
		found, sawNull := false, false
		for _, item := range x.List {
			v := binary(opcode.EQ, l, eval(item))
			if !v.known {
				return unknown
			}
			if v.null {
				sawNull = true
			} else if toNumber(v) != 0 {
				found = true
			}
		}
		if !found && sawNull {
			return value{known: true, null: true}
		}
		return boolean(found != x.Not)
	case *ast.BetweenExpr:
		v, lo, hi := eval(x.Expr), eval(x.Left), eval(x.Right)
		in := binary(opcode.LogicAnd, binary(opcode.GE, v, lo), binary(opcode.LE, v, hi))
		if x.Not {
			return binary(opcode.LogicXor, in, number(1))
		}
		return in
	}
	return unknown
}

func constant(v any) value {
	switch x := v.(type) {
	case nil:
		return value{known: true, null: true}
	case int64:
		return number(float64(x))
	case uint64:
		return number(float64(x))
	case float64:
		return number(x)
	case float32:
		return number(float64(x))
	case string:
		return value{known: true, str: x, isStr: true}
	case []byte:
		return value{known: true, str: string(x), isStr: true}
	case fmt.Stringer: // decimals
		f, err := strconv.ParseFloat(x.String(), 64)
		if err != nil {
			return unknown
		}
		return number(f)
	}
	return unknown
}

func binary(op opcode.Op, l, r value) value {
	switch op {
	case opcode.LogicOr:
		if isTrue(l) || isTrue(r) {
			return number(1)
		}
		if !l.known || !r.known {
			return unknown
		}
		if l.null || r.null {
			return value{known: true, null: true}
		}
		return number(0)
	case opcode.LogicAnd:
		if isFalse(l) || isFalse(r) {
			return number(0)
		}
		if !l.known || !r.known {
			return unknown
		}
		if l.null || r.null {
			return value{known: true, null: true}
		}
		return number(1)
	}
	if !l.known || !r.known {
		return unknown
	}
	if op == opcode.NullEQ {
		if l.null || r.null {
			return boolean(l.null && r.null)
		}
		op = opcode.EQ
	}
	if l.null || r.null {
		return value{known: true, null: true}
	}
	switch op {
	case opcode.LogicXor:
		return boolean((toNumber(l) != 0) != (toNumber(r) != 0))
	case opcode.EQ, opcode.NE, opcode.LT, opcode.LE, opcode.GT, opcode.GE:
		return boolean(compare(op, order(l, r)))
	case opcode.Plus:
		return number(toNumber(l) + toNumber(r))
	case opcode.Minus:
		return number(toNumber(l) - toNumber(r))
	case opcode.Mul:
		return number(toNumber(l) * toNumber(r))
	}
	return unknown
}

// order compares l and r as MySQL does: two strings by the default
// (case-insensitive) collation, anything else as numbers.
func order(l, r value) int {
	if l.isStr && r.isStr {
		return strings.Compare(strings.ToLower(l.str), strings.ToLower(r.str))
	}
	a, b := toNumber(l), toNumber(r)
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compare(op opcode.Op, c int) bool {
	switch op {
	case opcode.EQ:
		return c == 0
	case opcode.NE:
		return c != 0
	case opcode.LT:
		return c < 0
	case opcode.LE:
		return c <= 0
	case opcode.GT:
		return c > 0
	}
	return c >= 0
}

func isTrue(v value) bool  { return v.known && !v.null && toNumber(v) != 0 }
func isFalse(v value) bool { return v.known && !v.null && toNumber(v) == 0 }

// toNumber converts as MySQL does: a string's longest numeric prefix, 0
// when it has none.
func toNumber(v value) float64 {
	if !v.isStr {
		return v.num
	}
	s := strings.TrimLeft(v.str, " \t\n\r")
	end := 0
	for end < len(s) && strings.IndexByte("+-0123456789.eE", s[end]) >= 0 {
		end++
	}
	for ; end > 0; end-- {
		if f, err := strconv.ParseFloat(s[:end], 64); err == nil && !math.IsInf(f, 0) {
			return f
		}
	}
	return 0
}
