package mysql

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/protocols/mysql/mysqlsql"
)

// okWithState builds an OK packet with session tracking: info, then the
// session state changes (each a type and its data) when there are any.
func okWithState(info string, changes ...[]byte) []byte {
	status := uint16(statusAutocommit)
	if len(changes) > 0 {
		status |= statusSessionStateChg
	}
	p := []byte{iOK, 0, 0, byte(status), byte(status >> 8), 0, 0}
	p = appendLenEncString(p, info)
	if len(changes) == 0 {
		return p
	}
	var state []byte
	for _, c := range changes {
		state = append(state, c...)
	}
	return appendLenEncString(p, string(state))
}

func appendLenEncString(b []byte, s string) []byte {
	return append(appendLenEnc(b, uint64(len(s))), s...)
}

// sysVar is a SESSION_TRACK_SYSTEM_VARIABLES change.
func sysVar(name, value string) []byte {
	data := appendLenEncString(appendLenEncString(nil, name), value)
	return appendLenEncString([]byte{sessionTrackSystemVariables}, string(data))
}

// schema is a SESSION_TRACK_SCHEMA change.
func schema(db string) []byte {
	return appendLenEncString([]byte{1}, string(appendLenEncString(nil, db)))
}

func TestTrackedSQLMode(t *testing.T) {
	tests := []struct {
		name  string
		ok    []byte
		mode  string
		found bool
		bad   bool
	}{
		{name: "no state", ok: okWithState("")},
		{name: "plain OK without tracking fields", ok: okPacket(statusAutocommit)},
		{name: "sql_mode", ok: okWithState("", sysVar("sql_mode", "NO_BACKSLASH_ESCAPES")), mode: "NO_BACKSLASH_ESCAPES", found: true},
		{name: "empty sql_mode", ok: okWithState("", sysVar("sql_mode", "")), mode: "", found: true},
		{name: "among others, last wins", ok: okWithState("Rows matched: 0", sysVar("autocommit", "ON"), schema("shop"),
			sysVar("SQL_MODE", "ANSI_QUOTES"), sysVar("sql_mode", "ANSI")), mode: "ANSI", found: true},
		{name: "other variables only", ok: okWithState("", sysVar("time_zone", "+00:00"))},
		{name: "truncated state", ok: okWithState("", sysVar("sql_mode", "ANSI"))[:12], bad: true},
		{name: "truncated header", ok: []byte{iOK, 0}, bad: true},
		{name: "state length past the end", ok: []byte{iOK, 0, 0, statusAutocommit, statusSessionStateChg >> 8, 0, 0, 0, 9, 0}, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode, found, err := trackedSQLMode(tt.ok)
			if mode != tt.mode || found != tt.found || (err != nil) != tt.bad {
				t.Errorf("trackedSQLMode(%x) = %q, %v, %v; want %q, %v, error %v", tt.ok, mode, found, err, tt.mode, tt.found, tt.bad)
			}
		})
	}
}

// FuzzTrackedSQLMode: any OK packet is read or refused, never a panic.
func FuzzTrackedSQLMode(f *testing.F) {
	f.Add(okWithState("", sysVar("sql_mode", "NO_BACKSLASH_ESCAPES")))
	f.Add(okWithState("info", sysVar("autocommit", "OFF"), schema("shop"), sysVar("sql_mode", "ANSI")))
	f.Add(okWithState(""))
	f.Add(okPacket(statusSessionStateChg))
	f.Fuzz(func(t *testing.T, ok []byte) {
		mode, found, err := trackedSQLMode(ok)
		if err != nil && (found || mode != "") {
			t.Errorf("trackedSQLMode(%x) = %q, %v with error %v", ok, mode, found, err)
		}
	})
}

// modePolicy restricts alice's queries on shop (unbounded writes are
// denied); erin has no rules.
func modePolicy() *policy.Policy {
	return &policy.Policy{
		Targets: map[string]*policy.Target{"shop": {Name: "shop", Kind: policy.KindMySQL}},
		Roles: map[string]*policy.Role{
			"careful": {Name: "careful", Queries: []policy.QueryRule{{Name: "bounded-writes", Action: policy.CommandDeny, Unbounded: true}}},
			"plain":   {Name: "plain"},
		},
		Users: map[string]*policy.User{
			"alice": {Name: "alice", Roles: []string{"careful"}},
			"erin":  {Name: "erin", Roles: []string{"plain"}},
		},
	}
}

// TestDecideUnderMode: the decider reads a string under the session's
// sql_mode and the target's flavour, and refuses what it cannot follow
// where rules apply; without rules, nothing is refused.
func TestDecideUnderMode(t *testing.T) {
	const bypass = `SELECT 'a\'; DELETE FROM t; SELECT '`
	maria := mysqlsql.Server{MariaDB: true, Version: 101106}
	mysql8 := mysqlsql.Server{Version: 80040}
	tests := []struct {
		name    string
		user    string
		srv     mysqlsql.Server
		mode    string // "?" unknown
		sql     string
		refused string // in the refusal; "" allowed
	}{
		{name: "bypass under no_backslash_escapes", user: "alice", srv: maria, mode: "NO_BACKSLASH_ESCAPES", sql: bypass, refused: "cannot be checked"},
		{name: "bypass with the mode unknown", user: "alice", srv: maria, mode: "?", sql: bypass, refused: "cannot be checked"},
		{name: "the same string under the default mode is one select", user: "alice", srv: maria, mode: "STRICT_TRANS_TABLES", sql: bypass},
		{name: "a path under no_backslash_escapes", user: "alice", srv: maria, mode: "NO_BACKSLASH_ESCAPES", sql: `SELECT 'C:\dir\'`},
		{name: "an escaped quote under the default mode", user: "alice", srv: maria, mode: "", sql: `SELECT 'it\'s'`},
		{name: "no rules: the bypass is forwarded", user: "erin", srv: maria, mode: "NO_BACKSLASH_ESCAPES", sql: bypass},
		{name: "mariadb skips a mysql-versioned where", user: "alice", srv: maria, mode: "", sql: "DELETE FROM t /*!90100 WHERE id = 7 */", refused: "bounded-writes"},
		{name: "mariadb runs its own where", user: "alice", srv: maria, mode: "", sql: "DELETE FROM t /*M!100000 WHERE id = 7 */"},
		{name: "mysql runs the versioned where", user: "alice", srv: mysql8, mode: "", sql: "DELETE FROM t /*!80000 WHERE id = 7 */"},
		{name: "pipes as concat bounds it", user: "alice", srv: maria, mode: "PIPES_AS_CONCAT", sql: "DELETE FROM t WHERE id = 7 || 1"},
		{name: "or 1 without it", user: "alice", srv: maria, mode: "", sql: "DELETE FROM t WHERE id = 7 || 1", refused: "bounded-writes"},
		{name: "ansi quotes: a column", user: "alice", srv: maria, mode: "ANSI", sql: `DELETE FROM t WHERE "id" = "id2"`},
		{name: "set mode then more", user: "alice", srv: maria, mode: "", sql: "SET sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 1", refused: "send them separately"},
		{name: "set mode last", user: "alice", srv: maria, mode: "", sql: "SELECT 1; SET sql_mode = 'NO_BACKSLASH_ESCAPES'"},
		{name: "set mode alone", user: "alice", srv: maria, mode: "", sql: "SET SESSION sql_mode = 'ANSI_QUOTES'"},
		{name: "set mode from a variable", user: "alice", srv: maria, mode: "", sql: "SET sql_mode = @m", refused: "expression"},
		{name: "set mode from concat", user: "alice", srv: maria, mode: "", sql: "SET @@session.sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')", refused: "expression"},
		{name: "no rules: set mode from a variable", user: "erin", srv: maria, mode: "", sql: "SET sql_mode = @m; SELECT 1"},
		{name: "execute of an unknown statement, then more", user: "alice", srv: maria, sql: "EXECUTE p; SELECT 1", refused: "send them separately"},
		{name: "execute of an unknown statement, last", user: "alice", srv: maria, sql: "SELECT 1; EXECUTE p"},
		{name: "prepare, execute, more", user: "alice", srv: maria, sql: "PREPARE p FROM 'SELECT 1'; EXECUTE p; SELECT 2"},
		{name: "prepare a mode change, execute, more", user: "alice", srv: maria,
			sql: "PREPARE p FROM 'SET sql_mode = ''NO_BACKSLASH_ESCAPES'''; EXECUTE p; SELECT 1", refused: "send them separately"},
		{name: "prepare a mode change alone", user: "alice", srv: maria, sql: "PREPARE p FROM 'SET sql_mode = ''ANSI'''; SELECT 1"},
		{name: "prepare a mode from an expression", user: "alice", srv: maria, sql: "PREPARE p FROM 'SET sql_mode = @m'", refused: "expression"},
		{name: "oracle mode refuses statements", user: "alice", srv: maria, mode: "PIPES_AS_CONCAT,ORACLE", sql: "SELECT 1", refused: "ORACLE"},
		{name: "oracle mode lets a set of sql_mode run", user: "alice", srv: maria, mode: "ORACLE", sql: "SET sql_mode = DEFAULT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := modePolicy()
			d := newDecider(func() *policy.Policy { return p }, tt.user, "shop", "shop")
			d.opts.Server = tt.srv
			if tt.mode == "?" {
				d.setMode("", errors.New("unknown"))
			} else {
				d.setMode(tt.mode, nil)
			}
			v := d.decide([]byte(tt.sql))
			switch {
			case tt.refused == "" && v.refusal != "":
				t.Errorf("%q refused: %s", tt.sql, v.refusal)
			case tt.refused != "" && !strings.Contains(v.refusal, tt.refused):
				t.Errorf("%q: refusal %q, want one saying %q", tt.sql, v.refusal, tt.refused)
			}
		})
	}
}

// TestDecideCacheFollowsMode: a verdict cached under one mode is not
// reused under another.
func TestDecideCacheFollowsMode(t *testing.T) {
	p := modePolicy()
	d := newDecider(func() *policy.Policy { return p }, "alice", "shop", "shop")
	d.opts.Server = mysqlsql.Server{MariaDB: true, Version: 101106}
	const sql = `SELECT 'a\'; DELETE FROM t; SELECT '`
	d.setMode("", nil)
	if v := d.decide([]byte(sql)); v.refusal != "" {
		t.Fatalf("default mode: refused %s", v.refusal)
	}
	d.setMode("NO_BACKSLASH_ESCAPES", nil)
	if v := d.decide([]byte(sql)); v.refusal == "" {
		t.Fatal("NO_BACKSLASH_ESCAPES: the cached verdict of the default mode was reused")
	}
}

// TestExecuteFollowsSessionPrepares: whether an EXECUTE may change
// sql_mode depends on what the session prepared under that name, which a
// cached verdict must not hide.
func TestExecuteFollowsSessionPrepares(t *testing.T) {
	p := modePolicy()
	d := newDecider(func() *policy.Policy { return p }, "alice", "shop", "shop")
	d.opts.Server = mysqlsql.Server{MariaDB: true, Version: 101106}
	d.setMode("", nil)
	const sql = "EXECUTE p; SELECT 1"
	run := func(prepare string) bool {
		v := d.decide([]byte(prepare))
		if v.refusal != "" {
			t.Fatalf("%s: refused %s", prepare, v.refusal)
		}
		return d.ran(v.stmts)
	}
	if run("PREPARE p FROM 'SELECT 1'") {
		t.Error("PREPARE of a SELECT reported as changing sql_mode")
	}
	if v := d.decide([]byte(sql)); v.refusal != "" {
		t.Fatalf("p prepared as a SELECT: %s refused: %s", sql, v.refusal)
	}
	run("PREPARE p FROM 'SET sql_mode = ''NO_BACKSLASH_ESCAPES'''")
	if v := d.decide([]byte(sql)); v.refusal == "" {
		t.Fatalf("p prepared as a SET sql_mode: %s allowed", sql)
	}
	if !run("EXECUTE p") {
		t.Error("EXECUTE of a SET sql_mode not reported as changing it")
	}
}

// TestTrackModeMariaDB: a real MariaDB, asked to track sql_mode, reports
// each change in the OK packet of the SET, and answers the mode query.
func TestTrackModeMariaDB(t *testing.T) {
	db := testMariaDB(t)
	for _, track := range []bool{true, false} {
		t.Run(fmt.Sprintf("session tracking %v", track), func(t *testing.T) {
			caps := uint32(serverCaps &^ capSessionTrack)
			if track {
				caps |= capSessionTrack
			}
			u, err := dialUpstream(t.Context(), Target{Address: db.Addr, Database: "shop", Username: db.User, Password: db.Password}, caps, 45)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			if err := u.trackMode(); err != nil {
				t.Fatal(err)
			}
			if mode, err := u.sqlMode(); err != nil || strings.Contains(mode, "NO_BACKSLASH_ESCAPES") {
				t.Fatalf("login's sql_mode %q, %v", mode, err)
			}
			ok, err := u.command("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES,ANSI_QUOTES'")
			if err != nil || len(ok) == 0 || ok[0] != iOK {
				t.Fatalf("SET: %x %v", ok, err)
			}
			mode, seen, err := trackedSQLMode(ok)
			if track && (err != nil || !seen || mode != "ANSI_QUOTES,NO_BACKSLASH_ESCAPES") {
				t.Errorf("tracked: %q %v %v", mode, seen, err)
			}
			if !track {
				if _, status, _ := okInfo(ok); status&statusSessionStateChg != 0 {
					t.Errorf("session state without the capability: %x", ok)
				}
			}
			if mode, err := u.sqlMode(); err != nil || mode != "ANSI_QUOTES,NO_BACKSLASH_ESCAPES" {
				t.Errorf("sql_mode after SET: %q, %v", mode, err)
			}
		})
	}
}
