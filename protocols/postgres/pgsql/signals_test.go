package pgsql

import (
	"reflect"
	"testing"
)

func TestBackendSignals(t *testing.T) {
	term := func(pid int64) Signal { return Signal{Function: "pg_terminate_backend", PID: pid, Constant: true} }
	for _, tc := range []struct {
		name string
		sql  string
		want []Signal
	}{
		{"terminate", "SELECT pg_terminate_backend(123)", []Signal{term(123)}},
		{"cancel with a cast", "SELECT pg_catalog.pg_cancel_backend(7::int)", []Signal{{Function: "pg_cancel_backend", PID: 7, Constant: true}}},
		{"named argument", "SELECT pg_terminate_backend(pid => 9, timeout => 100)", []Signal{term(9)}},
		{"own backend", "SELECT pg_cancel_backend(pg_backend_pid())", []Signal{{Function: "pg_cancel_backend", Own: true}}},
		{"from pg_stat_activity", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'", []Signal{{Function: "pg_terminate_backend"}}},
		{"parameter", "SELECT pg_terminate_backend($1)", []Signal{{Function: "pg_terminate_backend"}}},
		{"string", "SELECT pg_terminate_backend('5')", []Signal{{Function: "pg_terminate_backend"}}},
		{"in a DO block", "DO $$BEGIN PERFORM pg_terminate_backend(12); END$$", []Signal{term(12)}},
		{"in dblink's SQL", "SELECT dblink('c', 'select pg_terminate_backend(5)')", []Signal{term(5)}},
		{"in a function body", "CREATE FUNCTION f() RETURNS bool LANGUAGE sql AS 'SELECT pg_terminate_backend(7)'", []Signal{term(7)}},
		{"another schema", "SELECT public.pg_terminate_backend(8)", []Signal{term(8)}},
		{"unicode escape", `SELECT U&"pg_terminate\005fbackend"(4)`, []Signal{term(4)}},
		{"none", "SELECT 'pg_terminate_backend(1)'", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BackendSignals(tc.sql)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// FuzzBackendSignals: a string whose statements call a signal function
// has signals, so that no call escapes the check of its target.
func FuzzBackendSignals(f *testing.F) {
	for _, s := range []string{"SELECT pg_terminate_backend(1)", "SELECT pg_cancel_backend(pid) FROM pg_stat_activity",
		"DO $$BEGIN PERFORM pg_cancel_backend(2); END$$", "SELECT 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		stmts, err := Parse(sql)
		if err != nil {
			return
		}
		calls := false
		for _, s := range stmts {
			for _, fn := range s.Functions {
				calls = calls || fn == "pg_terminate_backend" || fn == "pg_cancel_backend"
			}
		}
		sigs, err := BackendSignals(sql)
		if calls && (err != nil || len(sigs) == 0) {
			t.Fatalf("%q calls a signal function; BackendSignals: %v, %v", sql, sigs, err)
		}
	})
}
