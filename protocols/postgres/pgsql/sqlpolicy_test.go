package pgsql

import (
	"slices"
	"testing"
)

// parseOne parses a string that holds one statement.
func parseOne(t *testing.T, sql string) Statement {
	t.Helper()
	stmts, err := Parse(sql)
	if err != nil || len(stmts) != 1 {
		t.Fatalf("Parse(%q) = %d statements, %v", sql, len(stmts), err)
	}
	return stmts[0]
}

func TestAlterActions(t *testing.T) {
	tests := []struct {
		name, sql string
		want      []string
	}{
		{"drop column", "ALTER TABLE orders DROP COLUMN note", list("ALTER TABLE DROP COLUMN")},
		{"drop column if exists", "alter table public.orders drop if exists note cascade", list("ALTER TABLE DROP COLUMN")},
		{"drop constraint", "ALTER TABLE orders DROP CONSTRAINT orders_pkey", list("ALTER TABLE DROP CONSTRAINT")},
		{"drop default", "ALTER TABLE orders ALTER COLUMN note DROP DEFAULT", list("ALTER TABLE ALTER COLUMN DROP DEFAULT")},
		{"set default", "ALTER TABLE orders ALTER note SET DEFAULT 'x'", list("ALTER TABLE ALTER COLUMN SET DEFAULT")},
		{"drop not null", "ALTER TABLE orders ALTER note DROP NOT NULL", list("ALTER TABLE ALTER COLUMN DROP NOT NULL")},
		{"add column", "ALTER TABLE orders ADD COLUMN x int", list("ALTER TABLE ADD COLUMN")},
		{"several", "ALTER TABLE orders ADD COLUMN x int, DROP COLUMN note, ADD COLUMN y int",
			list("ALTER TABLE ADD COLUMN", "ALTER TABLE DROP COLUMN")},
		{"type", "ALTER TABLE orders ALTER COLUMN x TYPE bigint", list("ALTER TABLE ALTER COLUMN TYPE")},
		{"detach partition", "ALTER TABLE m DETACH PARTITION m1", list("ALTER TABLE DETACH PARTITION")},
		{"rename table", "ALTER TABLE orders RENAME TO old_orders", list("ALTER TABLE RENAME")},
		{"rename column", "ALTER TABLE orders RENAME COLUMN note TO remark", list("ALTER TABLE RENAME COLUMN")},
		{"rename constraint", "ALTER TABLE orders RENAME CONSTRAINT c TO d", list("ALTER TABLE RENAME CONSTRAINT")},
		{"set schema", "ALTER TABLE orders SET SCHEMA archive", list("ALTER TABLE SET SCHEMA")},
		{"alter index", "ALTER INDEX orders_idx SET TABLESPACE fast", list("ALTER INDEX SET TABLESPACE")},
		{"owner", "ALTER TABLE orders OWNER TO bob", list("ALTER TABLE OWNER TO")},
		{"not an alter", "DROP TABLE orders", nil},
		{"select", "SELECT 'ALTER TABLE t DROP COLUMN c'", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseOne(t, tt.sql).Actions; !slices.Equal(got, tt.want) {
				t.Errorf("Actions of %q = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
}

func TestSideEffects(t *testing.T) {
	tests := []struct {
		sql  string
		want bool
	}{
		{"SELECT nextval('orders_id_seq')", true},
		{"SELECT pg_catalog.setval('s', 10)", true},
		{"SELECT set_config('work_mem', '1MB', false)", true},
		{"SELECT pg_advisory_lock(1)", true},
		{"SELECT pg_try_advisory_xact_lock(1, 2)", true},
		{"SELECT pg_terminate_backend(pid) FROM pg_stat_activity", true},
		{"SELECT lo_from_bytea(0, 'x')", true},
		{"SELECT pg_reload_conf()", true},
		{"SELECT * FROM orders WHERE id = (SELECT nextval('s'))", true},
		{"INSERT INTO t VALUES (nextval('s'))", true},
		// False positives to avoid.
		{"SELECT currval('s'), lastval()", false},
		{"SELECT count(*), now(), pg_sleep(0) FROM orders", false},
		{"SELECT 'nextval(1)'", false},
		{"SELECT current_setting('work_mem')", false},
		// EXPLAIN plans and calls nothing.
		{"EXPLAIN SELECT nextval('s')", false},
		{"EXPLAIN ANALYZE SELECT nextval('s')", true},
	}
	for _, tt := range tests {
		if got := parseOne(t, tt.sql).SideEffects; got != tt.want {
			t.Errorf("SideEffects of %q = %v, want %v", tt.sql, got, tt.want)
		}
	}
}

func TestExplainUnbounded(t *testing.T) {
	tests := []struct {
		sql             string
		unbounded, runs bool
	}{
		{"EXPLAIN DELETE FROM orders", false, false},
		{"EXPLAIN (COSTS off) UPDATE orders SET x = 1", false, false},
		{"EXPLAIN (ANALYZE false) DELETE FROM orders", false, false},
		{"EXPLAIN ANALYZE DELETE FROM orders", true, true},
		{"EXPLAIN (ANALYZE, BUFFERS) UPDATE orders SET x = 1 WHERE true", true, true},
		{"EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1", false, true},
		{"DELETE FROM orders", true, false},
	}
	for _, tt := range tests {
		s := parseOne(t, tt.sql)
		if s.Unbounded != tt.unbounded || s.ExplainAnalyze != tt.runs {
			t.Errorf("%q: Unbounded %v, ExplainAnalyze %v; want %v, %v", tt.sql, s.Unbounded, s.ExplainAnalyze, tt.unbounded, tt.runs)
		}
	}
}

func TestCTEScope(t *testing.T) {
	tests := []struct {
		name, sql string
		want      []Table
	}{
		{"cte shadows", "WITH orders AS (SELECT 1 AS id) SELECT * FROM orders", nil},
		{"cte in join", "WITH orders AS (SELECT 1 AS id) SELECT * FROM t JOIN orders USING (id)", tables("t")},
		{"cte own query reads the table", "WITH orders AS (SELECT * FROM orders) SELECT * FROM orders", tables("orders")},
		{"later cte not visible to earlier", "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", tables("b")},
		{"earlier cte visible to later", "WITH b AS (SELECT 1), a AS (SELECT * FROM b) SELECT * FROM a", nil},
		{"recursive sees itself", "WITH RECURSIVE orders(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM orders WHERE n < 3) SELECT * FROM orders", nil},
		{"qualified is the table", "WITH orders AS (SELECT 1) SELECT * FROM public.orders", tables("public.orders")},
		{"subquery sees outer cte", "WITH orders AS (SELECT 1 AS id) SELECT * FROM t WHERE id IN (SELECT id FROM orders)", tables("t")},
		{"cte out of scope", "SELECT * FROM (WITH orders AS (SELECT 1) SELECT * FROM orders) x, orders", tables("orders")},
		{"delete target is the table", "WITH orders AS (SELECT 1 AS id) DELETE FROM orders WHERE id IN (SELECT id FROM orders)", tables("orders")},
		{"update from cte", "WITH o AS (SELECT 1 AS id) UPDATE orders SET x = 1 FROM o WHERE orders.id = o.id", tables("orders")},
		{"insert target is the table", "WITH orders AS (SELECT 1) INSERT INTO orders SELECT * FROM orders", tables("orders")},
		{"union arm", "WITH orders AS (SELECT 1) SELECT * FROM orders UNION SELECT * FROM secrets", tables("secrets")},
		{"case matters", `WITH orders AS (SELECT 1) SELECT * FROM "Orders"`, tables("Orders")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseOne(t, tt.sql).Tables; !slices.Equal(got, tt.want) {
				t.Errorf("Tables of %q = %v, want %v", tt.sql, got, tt.want)
			}
		})
	}
}

func TestQuotedTables(t *testing.T) {
	tests := []struct{ sql, want string }{
		{`SELECT * FROM "Orders"`, "Orders"},
		{`SELECT * FROM Orders`, "orders"},
		{`SELECT * FROM ORDERS`, "orders"},
		{`SELECT * FROM "orders"`, "orders"},
		{`SELECT * FROM Shop."Orders"`, "shop.Orders"},
	}
	for _, tt := range tests {
		got := parseOne(t, tt.sql).Tables
		if len(got) != 1 || got[0].String() != tt.want {
			t.Errorf("Tables of %q = %v, want %s", tt.sql, got, tt.want)
		}
	}
}

func TestSQLFromText(t *testing.T) {
	tests := []struct {
		name, sql string
		inner     []Table // tables of the statements run from text
		kind      Kind    // kind of the first one
		unchecked bool
	}{
		{name: "dblink", sql: "SELECT * FROM dblink('dbname=shop', 'select id from secrets') AS t(id int)",
			inner: tables("secrets"), kind: KindRead},
		{name: "dblink default connection", sql: "SELECT * FROM dblink('select id from secrets') AS t(id int)",
			inner: tables("secrets"), kind: KindRead},
		{name: "dblink fail flag", sql: "SELECT * FROM dblink('select id from secrets', false) AS t(id int)",
			inner: tables("secrets"), kind: KindRead},
		{name: "dblink three", sql: "SELECT * FROM dblink('c', 'select id from secrets', true) AS t(id int)",
			inner: tables("secrets"), kind: KindRead},
		{name: "dblink_exec", sql: "SELECT dblink_exec('dbname=shop', 'DELETE FROM orders')",
			inner: tables("orders"), kind: KindWrite},
		{name: "dblink_open", sql: "SELECT dblink_open('c', 'select * from secrets')",
			inner: tables("secrets"), kind: KindRead},
		{name: "dblink_send_query", sql: "SELECT dblink_send_query('c', 'select * from secrets')",
			inner: tables("secrets"), kind: KindRead},
		{name: "query_to_xml", sql: "SELECT query_to_xml('select * from secrets', true, false, '')",
			inner: tables("secrets"), kind: KindRead},
		{name: "dblink not constant", sql: "SELECT * FROM dblink('dbname=shop', 'select ' || 'x') AS t(x text)", unchecked: true},
		{name: "dblink ambiguous", sql: "SELECT * FROM q, dblink(q.a, q.b) AS t(x text)", unchecked: true},
		{name: "dblink_exec not constant", sql: "SELECT dblink_exec(c) FROM q", unchecked: true},
		{name: "dblink inner does not parse", sql: "SELECT dblink_exec('DELETE FROM')", unchecked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := parseOne(t, tt.sql)
			if (s.Unchecked != "") != tt.unchecked {
				t.Fatalf("Unchecked = %q, want set: %v", s.Unchecked, tt.unchecked)
			}
			if tt.unchecked {
				return
			}
			if len(s.Inner) != 1 || !slices.Equal(s.Inner[0].Tables, tt.inner) || s.Inner[0].Kind != tt.kind {
				t.Fatalf("Inner = %+v, want one %s of %v", s.Inner, tt.kind, tt.inner)
			}
		})
	}
}

func TestProgram(t *testing.T) {
	tests := []struct {
		sql           string
		program, file bool
	}{
		{"COPY t FROM PROGRAM 'id'", true, false},
		{"COPY t TO '/tmp/x'", false, true},
		{"COPY t TO STDOUT", false, false},
		{"CREATE FOREIGN TABLE f (a text) SERVER s OPTIONS (program 'id')", true, true},
		{"CREATE FOREIGN TABLE f (a text) SERVER s OPTIONS (filename '/etc/passwd')", false, true},
	}
	for _, tt := range tests {
		s := parseOne(t, tt.sql)
		if s.Program != tt.program || (s.CopyFile || s.ServerFiles) != tt.file {
			t.Errorf("%q: Program %v, file %v; want %v, %v", tt.sql, s.Program, s.CopyFile || s.ServerFiles, tt.program, tt.file)
		}
	}
}
