package mysqlsql

import (
	"reflect"
	"testing"
)

func TestKills(t *testing.T) {
	for _, tc := range []struct {
		name string
		sql  string
		want []Kill
	}{
		{"kill", "KILL 23", []Kill{{ConnectionID: 23, Constant: true}}},
		{"kill connection", "kill connection 23", []Kill{{ConnectionID: 23, Constant: true}}},
		{"kill query", "KILL QUERY 7", []Kill{{Query: true, ConnectionID: 7, Constant: true}}},
		{"own", "KILL CONNECTION_ID()", []Kill{{Own: true}}},
		{"expression", "KILL ABS(-5)", []Kill{{}}},
		{"second statement", "SELECT 1; KILL 9", []Kill{{ConnectionID: 9, Constant: true}}},
		{"executable comment", "/*!KILL 9*/", []Kill{{ConnectionID: 9, Constant: true}}},
		{"prepared", "PREPARE s FROM 'KILL 4'", []Kill{{ConnectionID: 4, Constant: true}}},
		{"prepared with an escape", `PREPARE s FROM 'K\ILL 4'`, []Kill{{ConnectionID: 4, Constant: true}}},
		{"none", "SELECT 'KILL 5'", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Kills(tc.sql, Options{Mode: 0, Server: Server{Version: 101100, MariaDB: true}})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := Kills("KILL USER alice", Options{}); err == nil {
		t.Fatal("KILL USER parsed: a form Bastion cannot check must be an error")
	}
}

// FuzzKills: every string Parse reads as a KILL (at any place) is one
// Kills finds, so that no KILL escapes the check of its target.
func FuzzKills(f *testing.F) {
	for _, s := range []string{"KILL 1", "KILL QUERY 2; SELECT 1", "/*M!100000 KILL 3*/", "PREPARE s FROM 'KILL 4'", "KILL CONNECTION_ID()"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		stmts, err := Parse(sql)
		if err != nil {
			return
		}
		n := 0
		for _, s := range stmts {
			if s.Command == "KILL" {
				n++
			}
		}
		kills, err := Kills(sql, Options{ModeUnknown: true})
		if n > 0 && (err != nil || len(kills) == 0) {
			t.Fatalf("Parse(%q) has %d KILL, Kills found %v (%v)", sql, n, kills, err)
		}
	})
}
