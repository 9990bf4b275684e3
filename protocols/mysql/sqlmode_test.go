package mysql

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
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
		if len(ok) == 0 {
			return
		}
		out := stripSessionState(ok)
		if _, status, good := okInfo(out); good && status&statusSessionStateChg != 0 && !bytes.Equal(out, ok) {
			t.Errorf("stripSessionState(%x) = %x keeps the flag", ok, out)
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

// TestTrackModeMariaDB: a real MariaDB, asked to track sql_mode (Bastion
// asks for session tracking whether or not the client does), reports each
// change in the OK packet of the SET, and answers the mode query.
func TestTrackModeMariaDB(t *testing.T) {
	db := testMariaDB(t)
	u, err := dialUpstream(t.Context(), Target{Address: db.Addr, Database: "shop", Username: db.User, Password: db.Password},
		serverCaps&^capSessionTrack, 45)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.caps&capSessionTrack == 0 {
		t.Fatal("no session tracking asked of the target")
	}
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
	if mode, seen, err := trackedSQLMode(ok); err != nil || !seen || mode != "ANSI_QUOTES,NO_BACKSLASH_ESCAPES" {
		t.Errorf("tracked: %q %v %v", mode, seen, err)
	}
	if mode, err := u.sqlMode(); err != nil || mode != "ANSI_QUOTES,NO_BACKSLASH_ESCAPES" {
		t.Errorf("sql_mode after SET: %q, %v", mode, err)
	}
}

// TestSessionStateToClient: through the front end, a client with session
// tracking sees the target's report of sql_mode; one without gets OK
// packets as the target writes them for it, with no session state.
func TestSessionStateToClient(t *testing.T) {
	f := startFrontEnd(t, pluginNative)
	for _, track := range []bool{true, false} {
		t.Run(fmt.Sprintf("client tracks %v", track), func(t *testing.T) {
			var conn net.Conn
			conn, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			caps := uint32(serverCaps)
			if !track {
				conn, caps = &noTrackConn{Conn: conn}, caps&^capSessionTrack
			}
			u, err := login(conn, Target{Username: "alice", Password: secret, Database: "shop"}, caps, 45)
			if err != nil {
				conn.Close()
				t.Fatalf("login: %v", err)
			}
			defer u.Close()
			ok := roundTrip(t, u, append([]byte{comQuery}, "SET sql_mode = 'ANSI_QUOTES'"...))
			_, status, good := okInfo(ok)
			mode, seen, err := trackedSQLMode(ok)
			switch {
			case !good:
				t.Fatalf("SET: %x", ok)
			case track && (!seen || mode != "ANSI_QUOTES" || err != nil):
				t.Errorf("a tracking client: %x reports %q %v %v", ok, mode, seen, err)
			case !track && (status&statusSessionStateChg != 0 || len(ok) != 7):
				t.Errorf("a client without tracking got %x", ok)
			}
			if u.caps&capSessionTrack != 0 != track {
				t.Fatalf("the client negotiated %#x", u.caps)
			}
			if p := roundTrip(t, u, []byte{comPing}); len(p) != 7 || p[0] != iOK {
				t.Errorf("ping after: %x", p)
			}
		})
	}
}

// noTrackConn hides CLIENT_SESSION_TRACK in the server's greeting, so that
// login, as a client, does not ask for it.
type noTrackConn struct {
	net.Conn
	greeting []byte // what is left of the patched greeting
	read     bool
}

func (c *noTrackConn) Read(p []byte) (int, error) {
	if !c.read {
		c.read = true
		hdr := make([]byte, 4)
		if _, err := io.ReadFull(c.Conn, hdr); err != nil {
			return 0, err
		}
		body := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
		if _, err := io.ReadFull(c.Conn, body); err != nil {
			return 0, err
		}
		// protocol, version NUL, id, nonce, filler, caps low, charset,
		// status, then caps high: bit 23 is its first byte's 0x80.
		if v := bytes.IndexByte(body[1:], 0); v >= 0 && len(body) > 1+v+1+4+9+2+1+2 {
			body[1+v+1+4+9+2+1+2] &^= capSessionTrack >> 16
		}
		c.greeting = append(hdr, body...)
	}
	if len(c.greeting) > 0 {
		n := copy(p, c.greeting)
		c.greeting = c.greeting[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func TestStripSessionState(t *testing.T) {
	state := okWithState("", sysVar("sql_mode", "ANSI"))
	stripped := okPacket(statusAutocommit)
	tests := []struct {
		name    string
		ok, out []byte
	}{
		{name: "state, no info", ok: state, out: stripped},
		{name: "state and info", ok: okWithState("Rows matched: 1", sysVar("sql_mode", "")),
			out: appendLenEncString(okPacket(statusAutocommit), "Rows matched: 1")},
		{name: "no state", ok: okWithState("x"), out: okWithState("x")},
		{name: "plain", ok: stripped, out: stripped},
		{name: "truncated info", ok: append(okPacket(statusAutocommit|statusSessionStateChg), 9, 'a'), out: append(okPacket(statusAutocommit|statusSessionStateChg), 9, 'a')},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stripSessionState(tt.ok); !bytes.Equal(got, tt.out) {
				t.Errorf("stripSessionState(%x) = %x, want %x", tt.ok, got, tt.out)
			}
		})
	}
}
