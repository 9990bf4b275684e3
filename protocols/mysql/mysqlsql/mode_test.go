package mysqlsql

import (
	"errors"
	"slices"
	"testing"
)

var (
	maria1011 = Server{MariaDB: true, Version: 101106}
	mysql80   = Server{Version: 80040}
)

func TestParseServerVersion(t *testing.T) {
	tests := []struct {
		name, version string
		want          Server
	}{
		{name: "mariadb 10 with the 5.5.5 prefix", version: "5.5.5-10.11.6-MariaDB-0+deb12u1", want: maria1011},
		{name: "mariadb 11 without it", version: "11.4.2-MariaDB-log", want: Server{MariaDB: true, Version: 110402}},
		{name: "mysql 8", version: "8.0.40", want: mysql80},
		{name: "mysql with a suffix", version: "5.7.44-log", want: Server{Version: 50744}},
		{name: "garbage", version: "Bastion", want: Server{}},
		{name: "two parts", version: "8.0", want: Server{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseServerVersion(tt.version); got != tt.want {
				t.Errorf("ParseServerVersion(%q) = %+v, want %+v", tt.version, got, tt.want)
			}
		})
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		name, value string
		want        Mode
		err         bool
	}{
		{name: "mariadb default", value: "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION", want: 0},
		{name: "empty", value: "", want: 0},
		{name: "no backslash escapes", value: "STRICT_TRANS_TABLES,NO_BACKSLASH_ESCAPES", want: NoBackslashEscapes},
		{name: "lower case and spaces", value: " no_backslash_escapes , ansi_quotes", want: NoBackslashEscapes | ANSIQuotes},
		{name: "ansi as the server reports it", value: "REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ONLY_FULL_GROUP_BY,ANSI", want: PipesAsConcat | ANSIQuotes | IgnoreSpace},
		{name: "ansi alone", value: "ANSI", want: PipesAsConcat | ANSIQuotes | IgnoreSpace},
		{name: "high not precedence", value: "HIGH_NOT_PRECEDENCE", want: HighNotPrecedence},
		{name: "oracle changes the grammar", value: "PIPES_AS_CONCAT,ORACLE", err: true},
		{name: "mssql", value: "MSSQL", err: true},
		{name: "unknown name", value: "STRICT_TRANS_TABLES,SOMETHING_NEW", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMode(tt.value)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("ParseMode(%q) = %v, %v; want %v, error %v", tt.value, got, err, tt.want, tt.err)
			}
		})
	}
}

// unbounded reports whether any statement (of any reading) is unbounded.
func unbounded(stmts []Statement) bool {
	for _, s := range stmts {
		if s.Unbounded {
			return true
		}
	}
	return false
}

// TestExecutableComments: a versioned comment is run or skipped as the
// target's server does, and read both ways when the server is unknown.
func TestExecutableComments(t *testing.T) {
	tests := []struct {
		name      string
		sql       string
		srv       Server
		unbounded bool
		err       bool
	}{
		{name: "mariadb skips a mysql 5.7+ version", sql: "DELETE FROM t /*!90100 WHERE id = 7 */", srv: maria1011, unbounded: true},
		{name: "mariadb skips 80000", sql: "DELETE FROM t /*!80000 WHERE id = 7 */", srv: maria1011, unbounded: true},
		{name: "mysql runs 80000", sql: "DELETE FROM t /*!80000 WHERE id = 7 */", srv: mysql80},
		{name: "mysql skips a later version", sql: "DELETE FROM t /*!90100 WHERE id = 7 */", srv: mysql80, unbounded: true},
		{name: "both run an old version", sql: "DELETE FROM t /*!40101 WHERE id = 7 */", srv: maria1011},
		{name: "mysql runs an old version", sql: "DELETE FROM t /*!40101 WHERE id = 7 */", srv: mysql80},
		{name: "no version runs", sql: "DELETE FROM t /*! WHERE id = 7 */", srv: maria1011},
		{name: "mariadb runs its own comment", sql: "DELETE FROM t /*M!100000 WHERE id = 7 */", srv: maria1011},
		{name: "mariadb runs its own comment in the 5.7 range", sql: "DELETE FROM t /*M!90100 WHERE id = 7 */", srv: maria1011},
		{name: "mariadb skips a later version of its own", sql: "DELETE FROM t /*M!110000 WHERE id = 7 */", srv: maria1011, unbounded: true},
		{name: "mysql skips a mariadb comment", sql: "DELETE FROM t /*M!100000 WHERE id = 7 */", srv: mysql80, unbounded: true},
		{name: "mariadb reads six digits", sql: "DELETE FROM t /*!100000 WHERE id = 7 */", srv: maria1011},
		{name: "six digits are ambiguous on mysql", sql: "DELETE FROM t /*!100000 WHERE id = 7 */", srv: mysql80, err: true},
		{name: "a skipped comment swallows one nested comment", sql: "DELETE FROM t /*!90100 /* x */ WHERE id = 7 */", srv: maria1011, unbounded: true},
		{name: "unknown server reads both", sql: "DELETE FROM t /*!90100 WHERE id = 7 */", unbounded: true},
		{name: "unknown server reads both, mariadb form", sql: "DELETE FROM t /*M!100000 WHERE id = 7 */", unbounded: true},
		{name: "a comment inside a string is text", sql: "DELETE FROM t WHERE id = '/*!90100' AND 1", srv: maria1011},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWith(tt.sql, Options{Server: tt.srv})
			var se *SyntaxError
			if tt.err {
				if !errors.As(err, &se) {
					t.Fatalf("ParseWith(%q, %v) = %+v, %v; want a *SyntaxError", tt.sql, tt.srv, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWith(%q, %v): %v", tt.sql, tt.srv, err)
			}
			if unbounded(got) != tt.unbounded {
				t.Errorf("ParseWith(%q, %v): unbounded %v, want %v: %+v", tt.sql, tt.srv, !tt.unbounded, tt.unbounded, got)
			}
		})
	}
}

// TestModeReadings: a string is read under the session's sql_mode; when the
// mode is unknown, both backslash readings must parse.
func TestModeReadings(t *testing.T) {
	const bypass = `SELECT 'a\'; DELETE FROM t; SELECT '`
	tests := []struct {
		name      string
		sql       string
		o         Options
		commands  []string // of every reading, in order; nil with err
		unbounded bool
		err       bool
	}{
		{name: "bypass, default mode", sql: bypass, o: Options{Server: maria1011}, commands: list("SELECT")},
		{name: "bypass, no backslash escapes", sql: bypass, o: Options{Mode: NoBackslashEscapes, Server: maria1011}, err: true},
		{name: "bypass, mode unknown", sql: bypass, o: Options{ModeUnknown: true, Server: maria1011}, err: true},
		{name: "no backslash escapes: a path", sql: `SELECT 'C:\dir\', 'x'`, o: Options{Mode: NoBackslashEscapes, Server: maria1011}, commands: list("SELECT")},
		{name: "default: an escaped quote", sql: `SELECT 'it\'s'`, o: Options{Server: maria1011}, commands: list("SELECT")},
		{name: "mode unknown: both readings of a hidden delete", sql: `SELECT 'a\'; DELETE FROM t; -- '`, o: Options{ModeUnknown: true, Server: maria1011},
			commands: list("SELECT", "SELECT", "DELETE"), unbounded: true},
		{name: "pipes as concat bounds the delete", sql: "DELETE FROM t WHERE id = 7 || 1", o: Options{Mode: PipesAsConcat, Server: maria1011}, commands: list("DELETE")},
		{name: "without pipes as concat it is OR 1", sql: "DELETE FROM t WHERE id = 7 || 1", o: Options{Server: maria1011}, commands: list("DELETE"), unbounded: true},
		{name: "ansi quotes: columns", sql: `DELETE FROM t WHERE "a" = "a"`, o: Options{Mode: ANSIQuotes, Server: maria1011}, commands: list("DELETE")},
		{name: "without ansi quotes: strings", sql: `DELETE FROM t WHERE "a" = "a"`, o: Options{Server: maria1011}, commands: list("DELETE"), unbounded: true},
		// TiDB's lexer takes the backslash as an escape where the server
		// does not: a gap that costs a refusal, never a bypass.
		{name: "ansi quotes: a backslash in an identifier", sql: `SELECT "a\" FROM t`, o: Options{Mode: ANSIQuotes, Server: maria1011}, err: true},
		{name: "high not precedence", sql: "SELECT * FROM t WHERE NOT id BETWEEN 1 AND 2", o: Options{Mode: HighNotPrecedence, Server: maria1011}, commands: list("SELECT")},
		{name: "ignore space", sql: "SELECT count (*) FROM t", o: Options{Mode: IgnoreSpace, Server: maria1011}, commands: list("SELECT")},
		{name: "prepare reads its text under the mode", sql: "PREPARE p FROM 'DELETE FROM t WHERE id = 7 || 1'", o: Options{Mode: PipesAsConcat, Server: maria1011},
			commands: list("PREPARE", "DELETE")},
		{name: "prepare reads its text under the default mode", sql: "PREPARE p FROM 'DELETE FROM t WHERE id = 7 || 1'", o: Options{Server: maria1011},
			commands: list("PREPARE", "DELETE"), unbounded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWith(tt.sql, tt.o)
			if tt.err {
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("ParseWith(%q) = %+v, %v; want a *SyntaxError", tt.sql, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWith(%q): %v", tt.sql, err)
			}
			var commands []string
			for _, s := range got {
				commands = append(commands, s.Command)
			}
			if !slices.Equal(commands, tt.commands) || unbounded(got) != tt.unbounded {
				t.Errorf("ParseWith(%q): commands %q unbounded %v, want %q %v", tt.sql, commands, unbounded(got), tt.commands, tt.unbounded)
			}
		})
	}
}

func TestSetsSQLMode(t *testing.T) {
	tests := []struct {
		sql           string
		sets, dynamic bool
	}{
		{sql: "SET sql_mode = 'NO_BACKSLASH_ESCAPES'", sets: true},
		{sql: "SET SESSION sql_mode = ''", sets: true},
		{sql: "SET LOCAL sql_mode = DEFAULT", sets: true},
		{sql: "SET @@session.sql_mode = 'ANSI'", sets: true},
		{sql: "SET @@sql_mode = ANSI_QUOTES", sets: true},
		{sql: "SET GLOBAL sql_mode = ''", sets: true},
		{sql: "SET sql_mode = 4", sets: true},
		{sql: "SET autocommit = 1, SQL_MODE = 'ANSI'", sets: true},
		{sql: "SET sql_mode = @x", sets: true, dynamic: true},
		{sql: "SET sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')", sets: true, dynamic: true},
		{sql: "SET sql_mode = (SELECT 'ANSI')", sets: true, dynamic: true},
		{sql: "SET @sql_mode = CONCAT('a', 'b')"},
		{sql: "SET autocommit = 0"},
		{sql: "SELECT @@sql_mode"},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			got, err := ParseWith(tt.sql, Options{Server: maria1011})
			if err != nil || len(got) != 1 || got[0].SetsSQLMode != tt.sets || got[0].SQLModeDynamic != tt.dynamic {
				t.Errorf("ParseWith(%q) = %+v, %v; want SetsSQLMode %v, SQLModeDynamic %v", tt.sql, got, err, tt.sets, tt.dynamic)
			}
		})
	}
}
