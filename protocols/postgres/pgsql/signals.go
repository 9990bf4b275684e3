package pgsql

import (
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// signalFunctions are the functions that end or cancel another backend,
// named by its process ID.
var signalFunctions = []string{"pg_terminate_backend", "pg_cancel_backend"}

// Signal is a call of pg_terminate_backend or pg_cancel_backend.
type Signal struct {
	Function string
	// PID is the backend named when Constant; Own is set instead for
	// pg_backend_pid(), and neither for another expression (a column of
	// pg_stat_activity, a parameter), whose value is only known when it
	// runs.
	PID      int64
	Constant bool
	Own      bool
}

// BackendSignals returns the calls of pg_terminate_backend and
// pg_cancel_backend sql makes: in its statements and in the code they
// carry (DO blocks, bodies of functions being created, SQL given to
// functions that run it), at any depth. A string that does not parse
// returns its error.
func BackendSignals(sql string) ([]Signal, error) {
	stmts, err := Parse(sql)
	if err != nil {
		return nil, err
	}
	return signalsIn(stmts)
}

func signalsIn(stmts []Statement) ([]Signal, error) {
	var out []Signal
	for i := range stmts {
		s := &stmts[i]
		if slices.ContainsFunc(signalFunctions, func(f string) bool { return slices.Contains(s.Functions, f) }) {
			tree, err := pg_query.Parse(s.Text)
			if err != nil {
				return nil, err
			}
			walk(tree.ProtoReflect(), func(m proto.Message) {
				if fc, ok := m.(*pg_query.FuncCall); ok {
					if sig, ok := signalCall(fc); ok {
						out = append(out, sig)
					}
				}
			})
		}
		inner, err := signalsIn(s.Inner)
		if err != nil {
			return nil, err
		}
		out = append(out, inner...)
	}
	return out, nil
}

// signalCall reads a call of a signal function.
func signalCall(fc *pg_query.FuncCall) (Signal, bool) {
	// Whatever the schema: one that shadows pg_catalog's may well call it.
	name := stringList(fc.GetFuncname())
	if len(name) == 0 {
		return Signal{}, false
	}
	fn := strings.ToLower(name[len(name)-1]) // as Functions has it
	if !slices.Contains(signalFunctions, fn) {
		return Signal{}, false
	}
	sig := Signal{Function: fn}
	arg := argument(fc, 0, "pid")
	if v := eval(arg); v.kind == valNumber && v.n == float64(int64(v.n)) {
		sig.PID, sig.Constant = int64(v.n), true
	} else if inner := arg.GetFuncCall(); inner != nil && len(inner.GetArgs()) == 0 {
		if n := stringList(inner.GetFuncname()); len(n) == 1 && n[0] == "pg_backend_pid" || len(n) == 2 && n[0] == "pg_catalog" && n[1] == "pg_backend_pid" {
			sig.Own = true
		}
	}
	return sig, true
}
