package pgsql

import "testing"

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"SELECT 1",
		"SELECT 'DROP TABLE x'; DROP TABLE public.secrets",
		"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
		"EXPLAIN ANALYZE DELETE FROM t WHERE 1=1 OR NULL",
		"COPY t FROM PROGRAM 'x'",
		`SELECT * FROM U&"s\0065crets" /* /* */ */ -- x`,
		"PREPARE q AS UPDATE t SET a = 1 WHERE 'a' IN ('a', NULL); EXECUTE q",
		"SELECT set_config('role', 'x', false)",
		"DO $f$ BEGIN END $f$",
		"DO $f$ DECLARE a int[]; BEGIN a[f(1)] := g(2); EXECUTE 'x'; DELETE FROM t; END $f$",
		"CREATE FUNCTION f(int) RETURNS int LANGUAGE sql AS 'SELECT $1; DELETE FROM t'",
		`SELECT query_to_xml(query => 'SELECT query_to_xml(''TABLE t'', true, false, '''')', tableforest => true)`,
		"CREATE FUNCTION f() RETURNS SETOF t LANGUAGE plpgsql AS $$ BEGIN RETURN QUERY SELECT * FROM t; END $$",
		"DELETE FROM t WHERE NOT (1 IS DISTINCT FROM '1'::int4) AND true IS NOT FALSE",
		"CREATE TABLE a AS SELECT 1 INTO b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
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
			for i := 1; i < len(s.Tables); i++ {
				a, b := s.Tables[i-1], s.Tables[i]
				if a.Schema > b.Schema || (a.Schema == b.Schema && a.Name >= b.Name) {
					t.Errorf("Parse(%q): tables not sorted and unique: %v", sql, s.Tables)
				}
			}
			for i := 1; i < len(s.Functions); i++ {
				if s.Functions[i-1] >= s.Functions[i] {
					t.Errorf("Parse(%q): functions not sorted and unique: %v", sql, s.Functions)
				}
			}
			if s.CopyDirection != "" && s.CopyDirection != CopyFrom && s.CopyDirection != CopyTo {
				t.Errorf("Parse(%q): copy direction %q", sql, s.CopyDirection)
			}
		}
	})
}
