package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
)

// The SQL policy tests: policies written with ALTER sub-actions, side
// effects, programs, CTE scoping and quoted names, and read-only mode that
// means nothing changes, through real clients against real PostgreSQL and
// MariaDB. They use a database of their own (sqlpolicy) on the shared
// servers, so as not to race the other database tests.

const sqlPolicyPGInit = `
CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL DEFAULT 0, note text);
INSERT INTO orders SELECT g, g * 10 FROM generate_series(1, 10) g;
CREATE TABLE "Orders" (id int);
INSERT INTO "Orders" VALUES (1);
CREATE TABLE secrets (id int, value text);
INSERT INTO secrets VALUES (1, 'the launch codes');
CREATE SEQUENCE s;
CREATE EXTENSION dblink;
`

const sqlPolicyMyInit = `
CREATE TABLE orders (id int PRIMARY KEY, total decimal(10,2) NOT NULL DEFAULT 0, note varchar(100));
INSERT INTO orders (id, total) SELECT seq, seq * 10 FROM seq_1_to_10;
CREATE TABLE secrets (id int, value text);
INSERT INTO secrets VALUES (1, 'the launch codes');
CREATE SEQUENCE s;
CREATE TABLE Items (id int);
INSERT INTO Items VALUES (1);
`

// sqlPolicyRoles: alice (developer) works under "no destructive DDL" and
// the other new criteria; dave (lead) is read-only.
const sqlPolicyRoles = `
roles:
  developer:
    request:
      - targets: [pgpol, mypol]
        approvers: [lead]
    queries:
      - {name: no-destructive-ddl, action: deny, commands: ["DROP *", TRUNCATE, "ALTER * DROP *", "ALTER * TRUNCATE *"]}
      - {name: no-unbounded-writes, action: deny, unbounded: true}
      - {name: no-secrets, action: deny, tables: [secrets]}
      - {name: no-capital-orders, action: deny, targets: [pgpol], tables: ['"Orders"']}
      - {name: no-programs, action: deny, program: true}
      - {name: no-side-effects, action: deny, targets: [mypol], side_effects: true}
      - {name: no-items, action: deny, targets: [mypol], tables: [items]}
  lead:
    read_only: true
    request:
      - targets: [pgpol, mypol]
        approvers: [lead]
  auditor:
    permissions: [audit]
`

// freshSQLPolicyDBs (re)creates the sqlpolicy database on both servers.
func freshSQLPolicyDBs(t *testing.T, pg *harness.Postgres, my *harness.MariaDB) {
	t.Helper()
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	for _, q := range []string{"DROP DATABASE IF EXISTS sqlpolicy WITH (FORCE)", "CREATE DATABASE sqlpolicy"} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db, err := pgx.Connect(ctx, pg.DSN("sqlpolicy"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	if _, err := db.Exec(ctx, sqlPolicyPGInit); err != nil {
		t.Fatalf("seed sqlpolicy: %v", err)
	}
	mdb, err := sql.Open("mysql", my.DSN("")+"?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	defer mdb.Close()
	for _, q := range []string{"DROP DATABASE IF EXISTS sqlpolicy", "CREATE DATABASE sqlpolicy", "USE sqlpolicy;" + sqlPolicyMyInit} {
		if _, err := mdb.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
}

func TestSQLPolicy(t *testing.T) {
	pg, my := testPostgres(t), testMariaDB(t)
	freshSQLPolicyDBs(t, pg, my)
	b := startBastionWith(t, options{postgres: true, mysql: true, roles: sqlPolicyRoles, targets: func(t *testing.T, _ *ca.Set) string {
		return fmt.Sprintf(`
targets:
  - {name: pgpol, kind: postgres, address: %q, database: sqlpolicy, username: postgres, password: %q, tls: require}
  - {name: mypol, kind: mysql, address: %q, database: sqlpolicy, username: %s, password: %q}
`, pg.Addr, pg.Password, my.Addr, my.User, my.Password)
	}})
	t.Run("postgres rules", func(t *testing.T) { testPGSQLPolicy(t, b, pg) })
	t.Run("postgres read-only", func(t *testing.T) { testPGReadOnly(t, b, pg) })
	t.Run("mysql rules", func(t *testing.T) { testMySQLPolicy(t, b) })
	t.Run("mysql read-only", func(t *testing.T) { testMySQLReadOnly(t, b) })
}

// sqlCase is a statement and the rule that refuses it ("" when allowed; a
// rule in parentheses is a phrase of the refusal instead).
type sqlCase struct{ name, sql, rule string }

// checkSQL runs each case with exec; refused reports whether err is the
// refusal that names want.
func checkSQL(t *testing.T, cases []sqlCase, exec func(ctx context.Context, sql string) error, refused func(t *testing.T, err error, want string) bool) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			err := exec(t.Context(), tt.sql)
			switch {
			case tt.rule == "":
				if err != nil {
					t.Fatalf("%s: %v, want it allowed", tt.sql, err)
				}
			case err == nil:
				t.Fatalf("%s ran, want it refused (%s)", tt.sql, tt.rule)
			default:
				want := "rule " + tt.rule + ":"
				if strings.HasPrefix(tt.rule, "(") {
					want = strings.Trim(tt.rule, "()")
				}
				if !refused(t, err, want) {
					t.Fatalf("%s: %v, want a refusal naming %q", tt.sql, err, want)
				}
			}
		})
	}
}

// checkPG runs each case on conn, with the simple protocol; a refusal is
// SQLSTATE 42501.
func checkPG(t *testing.T, conn *pgx.Conn, cases []sqlCase) {
	t.Helper()
	checkSQL(t, cases, func(ctx context.Context, sql string) error {
		_, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		return err
	}, func(t *testing.T, err error, want string) bool {
		pe := pgError(t, err)
		return pe.Code == "42501" && strings.Contains(pe.Message, want)
	})
}

func testPGSQLPolicy(t *testing.T, b *testBastion, pg *harness.Postgres) {
	tok := b.grantDB(t, "alice", "pgpol")
	conn, err := pgx.Connect(t.Context(), tok.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	// dblink's own connection, from the server to itself.
	link := fmt.Sprintf("host=127.0.0.1 port=%d dbname=sqlpolicy user=postgres password=%s", pg.Port, pg.Password)
	checkPG(t, conn, []sqlCase{
		// No destructive DDL: ALTER … DROP is refused, ADD is not.
		{"add column", "ALTER TABLE orders ADD COLUMN extra int", ""},
		{"drop column", "ALTER TABLE orders DROP COLUMN extra", "no-destructive-ddl"},
		{"drop default", "ALTER TABLE orders ALTER COLUMN total DROP DEFAULT", "no-destructive-ddl"},
		{"drop among adds", "ALTER TABLE orders ADD COLUMN more int, DROP COLUMN note", "no-destructive-ddl"},
		{"rename", "ALTER TABLE orders RENAME COLUMN extra TO extra2", ""},
		// A CTE named like a protected table is not that table.
		{"cte named secrets", "WITH secrets AS (SELECT 1 AS id) SELECT * FROM secrets", ""},
		{"cte reading secrets", "WITH x AS (SELECT * FROM secrets) SELECT * FROM x", "no-secrets"},
		{"cte named secrets reading secrets", "WITH secrets AS (SELECT * FROM secrets) SELECT * FROM secrets", "no-secrets"},
		// Quoted names keep their case, unquoted ones fold.
		{"quoted Orders", `SELECT * FROM "Orders"`, "no-capital-orders"},
		{"orders", "SELECT count(*) FROM orders", ""},
		{"ORDERS unquoted", "SELECT count(*) FROM ORDERS", ""},
		// EXPLAIN runs nothing; EXPLAIN ANALYZE runs the DELETE.
		{"explain unbounded delete", "EXPLAIN DELETE FROM orders", ""},
		{"explain analyze unbounded delete", "EXPLAIN ANALYZE DELETE FROM orders", "no-unbounded-writes"},
		// COPY … PROGRAM.
		{"copy to program", "COPY orders TO PROGRAM 'cat > /dev/null'", "no-programs"},
		// SQL run by a function from text is decided as itself.
		{"dblink read", fmt.Sprintf("SELECT * FROM dblink('%s', 'select count(*) from orders') AS t(n bigint)", link), ""},
		{"dblink secrets", fmt.Sprintf("SELECT * FROM dblink('%s', 'select value from secrets') AS t(v text)", link), "no-secrets"},
		{"dblink_exec unbounded", fmt.Sprintf("SELECT dblink_exec('%s', 'DELETE FROM orders')", link), "no-unbounded-writes"},
		{"dblink not constant", fmt.Sprintf("SELECT * FROM dblink('%s', 'select value ' || 'from secrets') AS t(v text)", link), "(not a constant string)"},
		{"query_to_xml secrets", "SELECT query_to_xml('select * from secrets', true, false, '')", "no-secrets"},
		{"query_to_xml orders", "SELECT query_to_xml('select id from orders', true, false, '')", ""},
	})
	var n int
	var cols []string
	admin, err := pgx.Connect(t.Context(), pg.DSN("sqlpolicy"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 10 {
		t.Fatalf("orders after the cases: %d rows, %v", n, err)
	}
	rows, err := admin.Query(t.Context(), "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position")
	if err != nil {
		t.Fatal(err)
	}
	cols, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || strings.Join(cols, ",") != "id,total,note,extra2" {
		t.Fatalf("orders' columns after the cases: %v, %v; want id,total,note,extra2", cols, err)
	}
}

func testPGReadOnly(t *testing.T, b *testBastion, pg *harness.Postgres) {
	tok := b.grantDB(t, "dave", "pgpol")
	conn, err := pgx.Connect(t.Context(), tok.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	checkPG(t, conn, []sqlCase{
		{"select", "SELECT count(*) FROM orders", ""},
		{"nextval", "SELECT nextval('s')", "(read-only)"},
		{"set_config", "SELECT set_config('work_mem', '1MB', false)", "(read-only)"},
		{"advisory lock", "SELECT pg_advisory_lock(1)", "(read-only)"},
		{"nextval in a subquery", "SELECT id FROM orders WHERE id = (SELECT nextval('s'))", "(read-only)"},
		{"explain", "EXPLAIN SELECT nextval('s')", ""},
		// EXECUTE follows what the session prepared.
		{"prepare read", "PREPARE q AS SELECT id FROM orders WHERE id = $1", ""},
		{"execute read", "EXECUTE q(1)", ""},
		{"prepare write", "PREPARE w AS DELETE FROM orders WHERE id = $1", "(read-only)"},
		{"execute unprepared", "EXECUTE w(1)", "(read-only)"},
		{"prepare side effect", "PREPARE n AS SELECT nextval('s')", "(read-only)"},
	})
	// psql: PREPARE and EXECUTE of a read in one string.
	out, errOut, code := psql(t, tok.URL, "-c", "PREPARE r AS SELECT total FROM orders WHERE id = 2; EXECUTE r")
	if lines := strings.Fields(out); code != 0 || len(lines) == 0 || lines[len(lines)-1] != "20" {
		t.Fatalf("psql PREPARE; EXECUTE: exit %d, %q, %s", code, out, errOut)
	}
	admin, err := pgx.Connect(t.Context(), pg.DSN("sqlpolicy"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var called bool
	if err := admin.QueryRow(t.Context(), "SELECT is_called FROM s").Scan(&called); err != nil || called {
		t.Fatalf("sequence s advanced under read-only: %v, %v", called, err)
	}
}

// checkMy runs each case through go-sql-driver; a refusal is error 1142.
func checkMy(t *testing.T, db *sql.DB, cases []sqlCase) {
	t.Helper()
	checkSQL(t, cases, func(ctx context.Context, sql string) error {
		_, err := db.ExecContext(ctx, sql)
		return err
	}, func(t *testing.T, err error, want string) bool {
		me := myError(t, err)
		return me.Number == 1142 && strings.Contains(me.Message, want)
	})
}

func testMySQLPolicy(t *testing.T, b *testBastion) {
	tok := b.grantDB(t, "alice", "mypol")
	db := tok.open(t, "multiStatements=true")
	db.SetMaxOpenConns(1)
	// MariaDB on Linux compares table names with case: Items and items are
	// two tables, and a rule on items is not about Items.
	var lctn int
	if err := db.QueryRowContext(t.Context(), "SELECT @@lower_case_table_names").Scan(&lctn); err != nil || lctn != 0 {
		t.Fatalf("lower_case_table_names = %d, %v; the cases below are written for 0", lctn, err)
	}
	checkMy(t, db, []sqlCase{
		{"Items", "SELECT * FROM Items", ""},
		{"items", "SELECT * FROM items", "no-items"},
		{"add column", "ALTER TABLE orders ADD COLUMN extra INT", ""},
		{"drop column", "ALTER TABLE orders DROP COLUMN extra", "no-destructive-ddl"},
		{"drop primary key", "ALTER TABLE orders DROP PRIMARY KEY", "no-destructive-ddl"},
		{"drop default", "ALTER TABLE orders ALTER COLUMN total DROP DEFAULT", "no-destructive-ddl"},
		{"drop among adds", "ALTER TABLE orders ADD COLUMN more INT, DROP COLUMN note", "no-destructive-ddl"},
		{"cte named secrets", "WITH secrets AS (SELECT 1 AS id) SELECT * FROM secrets", ""},
		{"cte reading secrets", "WITH x AS (SELECT * FROM secrets) SELECT * FROM x", "no-secrets"},
		{"explain unbounded delete", "EXPLAIN DELETE FROM orders", ""},
		{"get_lock", "SELECT GET_LOCK('bastion-test', 0)", "no-side-effects"},
		{"next value", "SELECT NEXT VALUE FOR s", "no-side-effects"},
		{"is_free_lock", "SELECT IS_FREE_LOCK('bastion-test')", ""},
	})
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 10 {
		t.Fatalf("orders after the cases: %d, %v", n, err)
	}
	var cols string
	if err := db.QueryRowContext(t.Context(), "SELECT group_concat(column_name ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'sqlpolicy' AND table_name = 'orders'").Scan(&cols); err != nil || cols != "id,total,note,extra" {
		t.Fatalf("orders' columns after the cases: %q, %v; want id,total,note,extra", cols, err)
	}
}

func testMySQLReadOnly(t *testing.T, b *testBastion) {
	tok := b.grantDB(t, "dave", "mypol")
	db := tok.open(t, "multiStatements=true")
	db.SetMaxOpenConns(1)
	checkMy(t, db, []sqlCase{
		{"select", "SELECT count(*) FROM orders", ""},
		{"get_lock", "SELECT GET_LOCK('bastion-test', 0)", "(read-only)"},
		{"next value", "SELECT NEXT VALUE FOR s", "(read-only)"},
		{"setval", "SELECT SETVAL(s, 100)", "(read-only)"},
		{"prepare write", "PREPARE w FROM 'DELETE FROM orders WHERE id = 1'", "(read-only)"},
		{"execute unprepared", "EXECUTE w", "(read-only)"},
	})
	// The mariadb client: PREPARE and EXECUTE of a read in one session.
	out, errOut, code := mariadbCLI(t, tok, "-e", "PREPARE q FROM 'SELECT total FROM orders WHERE id = 3'; EXECUTE q")
	if code != 0 || strings.TrimSpace(out) != "30.00" {
		t.Fatalf("mariadb PREPARE; EXECUTE: exit %d, %q, %s", code, out, errOut)
	}
	// go-sql-driver, one string.
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "PREPARE q2 FROM 'SELECT id FROM orders WHERE id = 4'"); err != nil {
		t.Fatalf("PREPARE of a read: %v", err)
	}
	var id int
	if err := conn.QueryRowContext(t.Context(), "EXECUTE q2").Scan(&id); err != nil || id != 4 {
		t.Fatalf("EXECUTE of a prepared read: %d, %v", id, err)
	}
	// The refused GET_LOCK took no lock.
	var free int
	if err := conn.QueryRowContext(t.Context(), "SELECT IS_FREE_LOCK('bastion-test')").Scan(&free); err != nil || free != 1 {
		t.Fatalf("IS_FREE_LOCK after the refused GET_LOCK: %d, %v", free, err)
	}
}
