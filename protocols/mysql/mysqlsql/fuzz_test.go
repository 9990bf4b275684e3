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
		if len(exposeCode(sql)) != len(sql) {
			t.Errorf("exposeCode(%q) changed the length", sql)
		}
	})
}
