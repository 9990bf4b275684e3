package mysqlsql

import (
	"slices"
	"testing"
)

// one parses a string of one statement as MariaDB with the default mode
// reads it.
func one(t *testing.T, sql string) Statement {
	t.Helper()
	stmts, err := ParseWith(sql, Options{Server: Server{MariaDB: true, Version: 101100}})
	if err != nil || len(stmts) < 1 {
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
		{"drop column bare", "alter table shop.orders drop note", list("ALTER TABLE DROP COLUMN")},
		{"drop index", "ALTER TABLE orders DROP INDEX idx", list("ALTER TABLE DROP INDEX")},
		{"drop key", "ALTER TABLE orders DROP KEY idx", list("ALTER TABLE DROP INDEX")},
		{"drop primary key", "ALTER TABLE orders DROP PRIMARY KEY", list("ALTER TABLE DROP PRIMARY KEY")},
		{"drop foreign key", "ALTER TABLE orders DROP FOREIGN KEY fk", list("ALTER TABLE DROP FOREIGN KEY")},
		{"drop constraint", "ALTER TABLE orders DROP CONSTRAINT c", list("ALTER TABLE DROP CONSTRAINT")},
		{"drop partition", "ALTER TABLE orders DROP PARTITION p0", list("ALTER TABLE DROP PARTITION")},
		{"truncate partition", "ALTER TABLE orders TRUNCATE PARTITION p0", list("ALTER TABLE TRUNCATE PARTITION")},
		{"drop default", "ALTER TABLE orders ALTER COLUMN note DROP DEFAULT", list("ALTER TABLE ALTER COLUMN DROP DEFAULT")},
		{"set default", "ALTER TABLE orders ALTER note SET DEFAULT 'x'", list("ALTER TABLE ALTER COLUMN SET DEFAULT")},
		{"add column", "ALTER TABLE orders ADD COLUMN x INT", list("ALTER TABLE ADD COLUMN")},
		{"add index", "ALTER TABLE orders ADD INDEX i (x)", list("ALTER TABLE ADD INDEX")},
		{"several", "ALTER TABLE orders ADD COLUMN x INT, DROP COLUMN note, ADD COLUMN y INT",
			list("ALTER TABLE ADD COLUMN", "ALTER TABLE DROP COLUMN")},
		{"modify", "ALTER TABLE orders MODIFY note TEXT", list("ALTER TABLE MODIFY COLUMN")},
		{"rename", "ALTER TABLE orders RENAME TO old_orders", list("ALTER TABLE RENAME")},
		{"rename column", "ALTER TABLE orders RENAME COLUMN a TO b", list("ALTER TABLE RENAME COLUMN")},
		{"rename table statement", "RENAME TABLE a TO b", nil},
		{"not an alter", "SELECT 'ALTER TABLE t DROP COLUMN c'", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := one(t, tt.sql)
			if !slices.Equal(s.Actions, tt.want) {
				t.Errorf("Actions of %q = %q, want %q", tt.sql, s.Actions, tt.want)
			}
		})
	}
}

func TestSideEffects(t *testing.T) {
	tests := []struct {
		sql  string
		want bool
	}{
		{"SELECT GET_LOCK('a', 1)", true},
		{"SELECT release_lock('a')", true},
		{"SELECT RELEASE_ALL_LOCKS()", true},
		{"SELECT NEXT VALUE FOR s", true},
		{"SELECT NEXTVAL(s)", true},
		{"SELECT SETVAL(s, 10)", true},
		{"SELECT * FROM t WHERE id = GET_LOCK('a', 0)", true},
		{"SELECT IS_FREE_LOCK('a'), SLEEP(0), COUNT(*) FROM t", false},
		{"SELECT 'GET_LOCK(1)'", false},
		{"EXPLAIN SELECT GET_LOCK('a', 1)", false},
	}
	for _, tt := range tests {
		if got := one(t, tt.sql).SideEffects; got != tt.want {
			t.Errorf("SideEffects of %q = %v, want %v", tt.sql, got, tt.want)
		}
	}
}

func TestExplainUnbounded(t *testing.T) {
	tests := []struct {
		sql       string
		unbounded bool
	}{
		{"EXPLAIN DELETE FROM orders", false},
		{"EXPLAIN UPDATE orders SET x = 1", false},
		{"EXPLAIN FORMAT=JSON DELETE FROM orders", false},
		{"DELETE FROM orders", true},
		{"EXPLAIN DELETE FROM orders WHERE id = 1", false},
	}
	for _, tt := range tests {
		if got := one(t, tt.sql).Unbounded; got != tt.unbounded {
			t.Errorf("Unbounded of %q = %v, want %v", tt.sql, got, tt.unbounded)
		}
	}
}

func TestCTEScope(t *testing.T) {
	tests := []struct {
		name, sql string
		want      []string
	}{
		{"cte shadows", "WITH orders AS (SELECT 1 AS id) SELECT * FROM orders", nil},
		{"cte own query reads the table", "WITH orders AS (SELECT * FROM orders) SELECT * FROM orders", list("orders")},
		{"later cte not visible", "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", list("b")},
		{"earlier cte visible", "WITH b AS (SELECT 1), a AS (SELECT * FROM b) SELECT * FROM a", nil},
		{"recursive", "WITH RECURSIVE orders(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM orders WHERE n < 3) SELECT * FROM orders", nil},
		{"qualified", "WITH orders AS (SELECT 1) SELECT * FROM shop.orders", list("shop.orders")},
		{"subquery", "WITH orders AS (SELECT 1 AS id) SELECT * FROM t WHERE id IN (SELECT id FROM orders)", list("t")},
		{"out of scope", "SELECT * FROM (WITH orders AS (SELECT 1) SELECT * FROM orders) x, orders", list("orders")},
		{"delete target", "WITH orders AS (SELECT 1 AS id) DELETE FROM orders", list("orders")},
		{"other case", "WITH orders AS (SELECT 1) SELECT * FROM ORDERS", list("ORDERS")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := one(t, tt.sql).Tables; !slices.Equal(got, tt.want) {
				t.Errorf("Tables of %q = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
}
