package main

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

// The session's sql_mode and the target's executable comments: Bastion
// reads a query string as MariaDB does, through go-sql-driver (no session
// tracking: Bastion asks the target after a statement that may change the
// mode) and through the mariadb client (session tracking).

// myBypass is one string that MariaDB under NO_BACKSLASH_ESCAPES runs as a
// SELECT, an unbounded DELETE and a syntax error, and without it as one
// SELECT.
const myBypass = `SELECT 'a\'; DELETE FROM orders; SELECT '`

func TestMySQLSQLMode(t *testing.T) {
	freshShop(t, testMariaDB(t))
	m := startMyBastion(t)
	shop := m.grant(t, "alice", "shop")
	plain := m.grant(t, "alice", "plain")

	t.Run("driver", func(t *testing.T) { testSQLModeDriver(t, shop) })
	t.Run("executable comments", func(t *testing.T) { testExecutableComments(t, shop) })
	t.Run("mariadb cli", func(t *testing.T) { testSQLModeCLI(t, shop) })
	t.Run("no rules", func(t *testing.T) { testSQLModeNoRules(t, plain) })
}

// myConn is one connection through Bastion with multiStatements=true, so
// that the session's mode holds from one query to the next.
func myConn(t *testing.T, tok dbToken) *sql.Conn {
	t.Helper()
	conn, err := tok.open(t, "multiStatements=true").Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// mustExec runs sql, which must be allowed.
func mustExec(t *testing.T, conn *sql.Conn, sql string) {
	t.Helper()
	if _, err := conn.ExecContext(t.Context(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// refusedWith runs sql, which Bastion must refuse with a message holding
// want.
func refusedWith(t *testing.T, conn *sql.Conn, sql, want string) {
	t.Helper()
	_, err := conn.ExecContext(t.Context(), sql)
	if err == nil {
		t.Fatalf("%s: ran, want a refusal saying %q", sql, want)
	}
	me := myError(t, err)
	if me.Number != 1142 || !strings.Contains(me.Message, "bastion:") || !strings.Contains(me.Message, want) {
		t.Fatalf("%s: %d %q, want 1142 from Bastion saying %q", sql, me.Number, me.Message, want)
	}
}

// queryString returns the one value sql selects.
func queryString(t *testing.T, conn *sql.Conn, q string) string {
	t.Helper()
	var s sql.NullString
	if err := conn.QueryRowContext(t.Context(), q).Scan(&s); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return s.String
}

// wantOrders checks that orders still has its 100 rows.
func wantOrders(t *testing.T, conn *sql.Conn) {
	t.Helper()
	if n := queryString(t, conn, "SELECT count(*) FROM orders"); n != "100" {
		t.Fatalf("orders has %s rows, want 100", n)
	}
}

func testSQLModeDriver(t *testing.T, tok dbToken) {
	t.Run("bypass under NO_BACKSLASH_ESCAPES", func(t *testing.T) {
		conn := myConn(t, tok)
		mustExec(t, conn, "SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
		refusedWith(t, conn, myBypass, "cannot be checked")
		wantOrders(t, conn)
		// False positives: backslashes are characters now.
		if got := queryString(t, conn, `SELECT 'C:\dir\'`); got != `C:\dir\` {
			t.Fatalf(`SELECT 'C:\dir\' = %q`, got)
		}
		mustExec(t, conn, `UPDATE orders SET note = 'a\b' WHERE id = 5`)
		if got := queryString(t, conn, "SELECT note FROM orders WHERE id = 5"); got != `a\b` {
			t.Fatalf("note = %q, want a\\b", got)
		}
		// Back to the default, an escaped quote reads as MariaDB reads it.
		mustExec(t, conn, "SET @@session.sql_mode = DEFAULT")
		if got := queryString(t, conn, `SELECT 'it\'s'`); got != "it's" {
			t.Fatalf(`SELECT 'it\'s' = %q`, got)
		}
		if got := queryString(t, conn, myBypass); got != `a'; DELETE FROM orders; SELECT ` {
			t.Fatalf("the bypass string under the default mode selected %q", got)
		}
		wantOrders(t, conn)
	})
	t.Run("mode set by an EXECUTE", func(t *testing.T) {
		conn := myConn(t, tok)
		mustExec(t, conn, "PREPARE m FROM 'SET sql_mode = ''NO_BACKSLASH_ESCAPES'''")
		// In one string, what follows the EXECUTE is read under its mode.
		refusedWith(t, conn, "EXECUTE m; "+myBypass, "send them separately")
		mustExec(t, conn, "PREPARE s FROM 'SELECT 1'; EXECUTE s; SELECT 2")
		mustExec(t, conn, "EXECUTE m")
		refusedWith(t, conn, myBypass, "cannot be checked")
		wantOrders(t, conn)
	})
	t.Run("mode change with statements after it", func(t *testing.T) {
		conn := myConn(t, tok)
		refusedWith(t, conn, "SET sql_mode = 'NO_BACKSLASH_ESCAPES'; "+myBypass, "send them separately")
		if got := queryString(t, conn, "SELECT @@SESSION.sql_mode"); strings.Contains(got, "NO_BACKSLASH_ESCAPES") {
			t.Fatalf("the refused string ran: sql_mode %s", got)
		}
		mustExec(t, conn, "SELECT 1; SET sql_mode = 'NO_BACKSLASH_ESCAPES'") // the change last
		refusedWith(t, conn, myBypass, "cannot be checked")
		wantOrders(t, conn)
	})
	t.Run("mode from an expression", func(t *testing.T) {
		conn := myConn(t, tok)
		mustExec(t, conn, "SET @m = 'NO_BACKSLASH_ESCAPES'")
		refusedWith(t, conn, "SET sql_mode = @m", "expression")
		refusedWith(t, conn, "SET sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')", "expression")
		if got := queryString(t, conn, "SELECT @@SESSION.sql_mode"); strings.Contains(got, "NO_BACKSLASH_ESCAPES") {
			t.Fatalf("the refused SET ran: sql_mode %s", got)
		}
	})
	t.Run("ANSI and PIPES_AS_CONCAT", func(t *testing.T) {
		conn := myConn(t, tok)
		// Without PIPES_AS_CONCAT, || is OR: every row.
		refusedWith(t, conn, "UPDATE orders SET note = 'x' WHERE id = 7 || 1", "no-unbounded-writes")
		mustExec(t, conn, "SET sql_mode = 'ANSI'")
		mustExec(t, conn, "UPDATE orders SET note = 'pipes' WHERE id = 7 || 1") // id = '71'
		if got := queryString(t, conn, `SELECT count(*) FROM orders WHERE "note" = 'pipes'`); got != "1" {
			t.Fatalf("rows updated under PIPES_AS_CONCAT: %s, want 1", got)
		}
		if got := queryString(t, conn, `SELECT "customer" FROM orders WHERE id = 71`); got != "customer 71" {
			t.Fatalf(`SELECT "customer" under ANSI_QUOTES = %q`, got)
		}
		// ANSI_QUOTES: "secrets" is the table.
		refusedWith(t, conn, `SELECT * FROM "secrets"`, "no-secrets")
	})
	// False positives: ordinary statements under each mode Bastion follows.
	for _, mode := range []string{"NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "PIPES_AS_CONCAT", "HIGH_NOT_PRECEDENCE", "IGNORE_SPACE", "ANSI", "TRADITIONAL", ""} {
		t.Run("ordinary statements under "+mode, func(t *testing.T) {
			conn := myConn(t, tok)
			mustExec(t, conn, "SET SESSION sql_mode = '"+mode+"'")
			for _, q := range []string{
				"SELECT id, customer FROM orders WHERE id = 1",
				"SELECT count(*) FROM orders WHERE customer LIKE 'customer 1%'",
				"SELECT id FROM orders WHERE NOT id BETWEEN 2 AND 99 ORDER BY id",
				"UPDATE orders SET note = 'ok' WHERE id = 3",
				"SELECT 'it''s'; SELECT concat('a', 'b')",
				"PREPARE p FROM 'SELECT id FROM orders WHERE id = ?'; SET @id = 4; EXECUTE p USING @id; DEALLOCATE PREPARE p",
			} {
				mustExec(t, conn, q)
			}
			if mode == "IGNORE_SPACE" {
				mustExec(t, conn, "SELECT count (*) FROM orders")
			}
			refusedWith(t, conn, "DELETE FROM orders", "no-unbounded-writes")
			refusedWith(t, conn, "SELECT * FROM secrets", "no-secrets")
		})
	}
	t.Run("a mode Bastion cannot follow", func(t *testing.T) {
		conn := myConn(t, tok)
		mustExec(t, conn, "SET sql_mode = 'ORACLE'")
		refusedWith(t, conn, "SELECT 1", "ORACLE")
		mustExec(t, conn, "SET sql_mode = DEFAULT")
		if got := queryString(t, conn, "SELECT 1"); got != "1" {
			t.Fatalf("SELECT 1 = %q", got)
		}
	})
}

func testExecutableComments(t *testing.T, tok dbToken) {
	conn := myConn(t, tok)
	// MariaDB skips a MySQL 5.7+ versioned comment: no WHERE.
	refusedWith(t, conn, "DELETE FROM orders /*!90100 WHERE id = 7 */", "no-unbounded-writes")
	refusedWith(t, conn, "UPDATE orders SET note = 'v' /*!80000 WHERE id = 8 */", "no-unbounded-writes")
	wantOrders(t, conn)
	// What MariaDB runs is the WHERE: allowed, and bounded.
	for _, sql := range []string{
		"UPDATE orders SET note = 'm' /*M!100000 WHERE id = 9 */",
		"UPDATE orders SET note = 'm' /*!40101 WHERE id = 10 */",
		"UPDATE orders SET note = 'm' /*M!90100 WHERE id = 11 */",
	} {
		mustExec(t, conn, sql)
	}
	if got := queryString(t, conn, "SELECT group_concat(id ORDER BY id) FROM orders WHERE note = 'm'"); got != "9,10,11" {
		t.Fatalf("rows updated: %s, want 9,10,11", got)
	}
	// A DROP hidden in a comment MariaDB skips does not run, and is not
	// refused.
	if got := queryString(t, conn, "SELECT 'kept' /*!90100 ; DROP TABLE orders */"); got != "kept" {
		t.Fatalf("select = %q", got)
	}
	wantOrders(t, conn)
}

func testSQLModeCLI(t *testing.T, tok dbToken) {
	t.Run("bypass", func(t *testing.T) {
		out, errOut, code := mariadbCLI(t, tok, "-e", "SET sql_mode = 'NO_BACKSLASH_ESCAPES'; "+myBypass+"; SELECT 'after'")
		if code == 0 || strings.Contains(out, "after") || !strings.Contains(errOut, "ERROR 1142 (42000)") {
			t.Fatalf("exit %d: %s%s", code, out, errOut)
		}
		out, errOut, code = mariadbCLI(t, tok, "-e", "SELECT count(*) FROM orders")
		if code != 0 || strings.TrimSpace(out) != "100" {
			t.Fatalf("orders after the bypass: exit %d: %s%s", code, out, errOut)
		}
	})
	t.Run("backslashes under NO_BACKSLASH_ESCAPES", func(t *testing.T) {
		out, errOut, code := mariadbCLI(t, tok, "--raw", "-e", `SET sql_mode = 'NO_BACKSLASH_ESCAPES'; SELECT 'C:\dir\'`)
		if code != 0 || strings.TrimSpace(out) != `C:\dir\` {
			t.Fatalf("exit %d: %q %s", code, out, errOut)
		}
	})
	t.Run("versioned comment", func(t *testing.T) {
		_, errOut, code := mariadbCLI(t, tok, "-e", "DELETE FROM orders /*!90100 WHERE id = 7 */")
		if code == 0 || !strings.Contains(errOut, "no-unbounded-writes") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		out, errOut, code := mariadbCLI(t, tok, "-e", "SELECT note FROM orders WHERE id = 12 /*M!100000 OR id = 13 */ ORDER BY id")
		if code != 0 || strings.Count(out, "\n") != 2 {
			t.Fatalf("a MariaDB comment's code: exit %d: %q %s", code, out, errOut)
		}
	})
}

// testSQLModeNoRules: where a role has no rules, strings are forwarded as
// before, whatever they do to sql_mode.
func testSQLModeNoRules(t *testing.T, tok dbToken) {
	conn := myConn(t, tok)
	mustExec(t, conn, "CREATE TABLE IF NOT EXISTS t (id int)")
	mustExec(t, conn, "SET @m = 'NO_BACKSLASH_ESCAPES'; SET sql_mode = @m; INSERT INTO t VALUES (1)")
	if got := queryString(t, conn, `SELECT concat('a\', count(*)) FROM t`); got != `a\1` {
		t.Fatalf("select = %q", got)
	}
	ctx := context.WithoutCancel(t.Context())
	if _, err := conn.ExecContext(ctx, "DROP TABLE t"); err != nil {
		t.Fatal(err)
	}
}
