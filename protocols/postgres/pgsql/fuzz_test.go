package pgsql

import (
	"strings"
	"testing"
)

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
		"ALTER ROLE a PASSWORD /* x */ E'p\\'w'; CREATE SUBSCRIPTION s CONNECTION 'postgres://u:p@h/d' PUBLICATION p",
		// PL/pgSQL constructs: libpg_query's PL/pgSQL parser is C code that
		// aborts the process on some inputs, so the fuzzer starts from many
		// of its statement kinds.
		`DO $$ <<l>> DECLARE c CURSOR (k int) FOR SELECT * FROM t WHERE a = k; r record; n int := 0;
BEGIN OPEN c(1); LOOP FETCH c INTO r; EXIT l WHEN NOT FOUND; n := n + 1; END LOOP; CLOSE c;
FOREACH n IN ARRAY ARRAY[1,2] LOOP PERFORM f(n); END LOOP;
CASE n WHEN 1 THEN RAISE NOTICE 'x %', n; ELSE RAISE EXCEPTION USING MESSAGE = 'y'; END CASE;
GET DIAGNOSTICS n = ROW_COUNT; ASSERT n > 0, 'z';
EXCEPTION WHEN division_by_zero OR SQLSTATE '22012' THEN GET STACKED DIAGNOSTICS n = PG_EXCEPTION_DETAIL; END $$`,
		`CREATE PROCEDURE p(INOUT a int) LANGUAGE plpgsql AS $$ BEGIN FOR i IN REVERSE 10..1 BY 2 LOOP a := a + i; COMMIT; END LOOP;
WHILE a < 100 LOOP a := a * 2; CONTINUE WHEN a = 8; END LOOP; CALL q(a); RETURN; END $$`,
		`CREATE FUNCTION g() RETURNS SETOF int LANGUAGE plpgsql AS $$ DECLARE r t%ROWTYPE; BEGIN
FOR r IN SELECT * FROM t LOOP RETURN NEXT r.a; END LOOP; RETURN QUERY EXECUTE 'SELECT 1' USING 2;
UPDATE t SET a = 1 WHERE a = 2 RETURNING a INTO STRICT r.a; END $$`,
		"DO LANGUAGE plpgsql $$ DECLARE x CONSTANT int NOT NULL DEFAULT 1; y alias for $1; BEGIN NULL; END $$",
		"SET NAMES 'sjis'; SELECT set_config('client_encoding', 'x' || 'y', false), E'\xc4\x95\\' AS a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		if r := Redact(sql); r != sql && r != unscannable && !strings.Contains(r, redacted) {
			t.Errorf("Redact(%q) = %q: changed, but nothing redacted", sql, r)
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
