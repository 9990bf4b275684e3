package mysqlsql

import (
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"SELECT 1",
		"SELECT 'DROP TABLE x'; DROP TABLE secrets",
		"SELECT 1 /*!50001 , 2 */ /*M!100100 ; DELETE FROM t */ # x",
		`SELECT 'a\'; DROP TABLE x; -- '`,
		"HANDLER `a`.`b` OPEN AS h",
		"DELETE t1 FROM t1 JOIN t2 WHERE NOT (1 <=> NULL) OR 'a' IN ('A', NULL)",
		"PREPARE p FROM 'UPDATE t SET a = 1'",
		"CREATE USER a IDENTIFIED BY 'hunter2'; SET PASSWORD = 'x'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		// What is kept of a statement is never nothing, and what changed
		// was either masked or not shown.
		if r := Redact(sql); r != sql && r != unreadable && !strings.Contains(r, "***") && !strings.Contains(r, "user ") && !strings.Contains(r, "GRANT") {
			t.Errorf("Redact(%q) = %q: changed, but nothing masked", sql, r)
		}
		stmts, err := Parse(sql)
		if err != nil {
			if stmts != nil {
				t.Errorf("Parse(%q) returned statements and error %v", sql, err)
			}
			return
		}
		for _, s := range stmts {
			if !s.Kind.Valid() {
				t.Errorf("Parse(%q): invalid kind %q", sql, s.Kind)
			}
		}
		if code, err := exposeCode(sql, 0, Server{}, runAll); err == nil && len(code) != len(sql) {
			t.Errorf("exposeCode(%q) changed the length", sql)
		}
	})
}

// FuzzParseWith reads strings under every mode and server flavour: never a
// panic, statements or an error, and the rewrite keeps the length.
func FuzzParseWith(f *testing.F) {
	for _, s := range []string{
		`SELECT 'a\'; DELETE FROM t; SELECT '`,
		"DELETE FROM t /*!90100 WHERE id = 7 */",
		"DELETE FROM t /*M!100000 WHERE id = 7 */ /*!100000 x */",
		"DELETE FROM t /*!90100 /* x */ WHERE id = 7 */",
		`DELETE FROM t WHERE "a" = "a" || 1`,
		"SET sql_mode = CONCAT(@@sql_mode, ',ANSI'); SELECT 1",
	} {
		f.Add(s, uint8(NoBackslashEscapes), true, 101106)
	}
	f.Fuzz(func(t *testing.T, sql string, mode uint8, maria bool, version int) {
		o := Options{Mode: Mode(mode) & (NoBackslashEscapes | ANSIQuotes | PipesAsConcat | HighNotPrecedence | IgnoreSpace),
			ModeUnknown: mode&0x80 != 0, Server: Server{MariaDB: maria, Version: version}}
		stmts, err := ParseWith(sql, o)
		if err != nil && stmts != nil {
			t.Errorf("ParseWith(%q, %+v) returned statements and error %v", sql, o, err)
		}
		if code, err := exposeCode(sql, o.Mode, o.Server, o.Server.runs); err == nil && len(code) != len(sql) {
			t.Errorf("exposeCode(%q, %+v) changed the length", sql, o)
		}
	})
}
