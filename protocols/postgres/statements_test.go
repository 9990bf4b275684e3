package postgres

import (
	"slices"
	"strings"
	"testing"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
)

const testConfig = `
data_dir: /nonexistent
listen: {ssh: "127.0.0.1:0"}
users:
  - {name: alice, roles: [developer]}
targets:
  - {name: orders, kind: postgres, address: "127.0.0.1:1", database: orders}
roles:
  developer:
    request:
      - targets: [orders]
        auto_approve: {networks: [127.0.0.0/8]}
    queries:
      - {name: no-unbounded-writes, action: deny, unbounded: true}
      - {name: no-role-change, action: deny, role_change: true}
      - {name: no-secrets, action: deny, tables: [public.secrets]}
`

func testDecider(t *testing.T) *decider {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(testConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return &decider{user: "alice", target: "orders", policy: func() *policy.Policy { return cfg.Policy }, parsed: newParseCache()}
}

// TestDecisionCache: statements that differ in constants only must not
// share a decision when a constant decides, and the recorded text is the
// statement's own; asked in both orders, on one cache.
func TestDecisionCache(t *testing.T) {
	tests := []struct {
		sql  string
		rule string // "" for allowed
	}{
		{"DELETE FROM orders WHERE id = 1", ""},
		{"DELETE FROM orders WHERE 1 = 1", "no-unbounded-writes"},
		{"DELETE FROM orders WHERE 1 = 2", ""},
		{"UPDATE orders SET total = 1 WHERE 'a' = 'a'", "no-unbounded-writes"},
		{"UPDATE orders SET total = 1 WHERE 'a' = 'b'", ""},
		{"SELECT set_config('work_mem', '1MB', false)", ""},
		{"SELECT set_config('role', 'postgres', false)", "no-role-change"},
		{"SELECT * FROM orders WHERE id = 1", ""},
		{"SELECT * FROM orders WHERE id = 2", ""},
		{"SELECT * FROM secrets WHERE id = 2", "no-secrets"},
		{"SELECT 'x' FROM orders WHERE 1 = 1", ""},
		{"WITH d AS (DELETE FROM orders WHERE 1 = 1 RETURNING 1) SELECT 1", "no-unbounded-writes"},
		{"WITH d AS (DELETE FROM orders WHERE 1 = 2 RETURNING 1) SELECT 1", ""},
		{"SET standard_conforming_strings = off", ""},
		{"SHOW standard_conforming_strings", ""},
	}
	d := testDecider(t)
	for round := range 2 {
		for i := range tests {
			tt := tests[i]
			if round == 1 {
				tt = tests[len(tests)-1-i]
			}
			v := d.decide(tt.sql)
			denied := v.overall.Action == policy.CommandDeny
			if strings.HasPrefix(tt.sql, "SET standard") {
				if !denied {
					t.Errorf("%q allowed", tt.sql)
				}
				continue
			}
			if denied != (tt.rule != "") || v.overall.Rule != tt.rule {
				t.Errorf("round %d: %q: %s by %q, want rule %q", round, tt.sql, v.overall.Action, v.overall.Rule, tt.rule)
			}
			if len(v.stmts) != 1 || v.stmts[0].Text != tt.sql {
				t.Errorf("round %d: %q recorded as %+v", round, tt.sql, v.stmts)
			}
		}
	}
}

func TestLiteralKey(t *testing.T) {
	tests := []struct {
		sql, key string // key "" when the text is not keyed
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 123;", "SELECT abalance FROM pgbench_accounts WHERE aid = ?;"},
		{"SELECT * FROM t1 WHERE a = 'x''y' AND b = 1.5", "SELECT * FROM t1 WHERE a = ? AND b = ?"},
		{"SELECT $1, 2", "SELECT $1, ?"},
		{"SELECT 1", "SELECT ?"},
		{"SELECT a FROM t", ""}, // nothing to replace
		{"SELECT E'\\x' FROM t", ""},
		{"SELECT 'a\\' FROM secrets --'", ""},
		{"SELECT 1 -- x", ""},
		{"SELECT /* 1 */ 2", ""},
		{`SELECT "1" FROM t`, ""},
		{"SELECT $$1$$", ""},
		{"SELECT $a$1$a$", ""},
		{"SELECT 1e5", ""},
		{"SELECT 0x1F", ""},
		{"SELECT 1_000", ""},
		{"SELECT 1.2.3", ""},
		{"SELECT 'é'", ""},
		{"SELECT 'unterminated", ""},
		{"SELECT X'1F'", ""},
		{"SELECT 'a''b'", "SELECT ?"},
		{"SELECT 'a' 'b'", "SELECT ? ?"},
	}
	for _, tt := range tests {
		key, ok := literalKey(tt.sql)
		if ok != (tt.key != "") || key != tt.key {
			t.Errorf("literalKey(%q) = %q, %v; want %q", tt.sql, key, ok, tt.key)
		}
	}
}

// FuzzLiteralKey: texts with the same key differ in literals only, so a
// constant-free summary of one is the summary of the other.
func FuzzLiteralKey(f *testing.F) {
	f.Add("SELECT * FROM orders WHERE id = 1", "SELECT * FROM orders WHERE id = 2")
	f.Add("SELECT 'a' FROM t", "SELECT 'b''c' FROM t")
	f.Add("SELECT 1 FROM secrets", "SELECT 2 FROM orders")
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, oka := literalKey(a)
		kb, okb := literalKey(b)
		if !oka || !okb || ka != kb || len(a) > 1000 || len(b) > 1000 {
			return
		}
		pa, pb := parseText(a), parseText(b)
		if pa.err != nil || pb.err != nil || len(pa.stmts) != 1 || len(pb.stmts) != 1 || !constantFree(&pa.stmts[0]) {
			return
		}
		x, y := pa.withText(b).stmts[0], pb.stmts[0]
		if x.Command != y.Command || x.Kind != y.Kind || !slices.Equal(x.Tables, y.Tables) || !slices.Equal(x.Functions, y.Functions) ||
			x.Unbounded != y.Unbounded || x.RoleChange != y.RoleChange || x.FileAccess != y.FileAccess || x.WritesInCTE != y.WritesInCTE {
			t.Fatalf("%q and %q share key %q but not their summaries:\n%+v\n%+v", a, b, ka, x, y)
		}
	})
}

// TestLasting: a string that loads a library (wherever the LOAD is) or
// opens a dblink connection, or that does not parse, marks its session's target connection as not to be
// reused; anything else does not.
func TestLasting(t *testing.T) {
	d := testDecider(t)
	for sql, want := range map[string]bool{
		"LOAD 'auto_explain'":                                 true,
		"SELECT 1; load '$libdir/plugins/auto_explain'":       true,
		"DO $$ BEGIN EXECUTE 'LOAD ''auto_explain'''; END $$": true,
		"SELEC 1":         true,
		"SELECT 'LOAD x'": false,
		"SET search_path = x; PREPARE p AS SELECT 1; LISTEN ch":      false,
		"DO $$ BEGIN PERFORM pg_advisory_lock(1); END $$":            false,
		"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'": false,
	} {
		if got := d.decide(sql).lasting; got != want {
			t.Errorf("decide(%q).lasting = %v, want %v", sql, got, want)
		}
	}
}
