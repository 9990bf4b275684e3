package policy_test

import (
	"fmt"
	"testing"

	"github.com/bastionhq/bastion/bastion/policy"
)

// sqlPolicy has one role for each criterion the SQL rules added: no
// destructive DDL, side effects, programs, a table by its SQL name, and
// read-only mode.
func sqlPolicy() *policy.Policy {
	return &policy.Policy{
		Targets: map[string]*policy.Target{"db": {Name: "db", Kind: policy.KindPostgres}},
		Roles: map[string]*policy.Role{
			"ddl": {Name: "ddl", Queries: []policy.QueryRule{
				{Name: "no-destructive-ddl", Action: policy.CommandDeny, Commands: []string{"DROP *", "TRUNCATE", "ALTER * DROP *"}},
			}},
			"effects":  {Name: "effects", Queries: []policy.QueryRule{{Name: "no-effects", Action: policy.CommandDeny, SideEffects: true}}},
			"programs": {Name: "programs", Queries: []policy.QueryRule{{Name: "no-programs", Action: policy.CommandDeny, Program: true}}},
			"tables": {Name: "tables", Queries: []policy.QueryRule{
				{Name: "upper", Action: policy.CommandDeny, Tables: []string{`"Orders"`}},
				{Name: "lower", Action: policy.CommandDeny, Tables: []string{`Shop.Items`}},
			}},
			"reader": {Name: "reader", ReadOnly: true},
		},
		Users: map[string]*policy.User{
			"d": {Name: "d", Roles: []string{"ddl"}}, "e": {Name: "e", Roles: []string{"effects"}},
			"p": {Name: "p", Roles: []string{"programs"}}, "t": {Name: "t", Roles: []string{"tables"}},
			"r": {Name: "r", Roles: []string{"reader"}},
		},
	}
}

func TestSQLCriteria(t *testing.T) {
	p := sqlPolicy()
	alter := func(actions ...string) policy.Statement {
		return policy.Statement{Kind: policy.StatementDDL, Command: "ALTER TABLE", Actions: actions}
	}
	tbl := func(c policy.TableCase, names ...string) policy.Statement {
		return policy.Statement{Kind: policy.StatementRead, Command: "SELECT", Tables: names, TableCase: c}
	}
	sql, exact, anyCase := policy.TablesSQLCase, policy.TablesExactCase, policy.TablesAnyCase
	tests := []struct {
		name, user string
		s          policy.Statement
		want       policy.CommandAction
	}{
		{"drop column", "d", alter("ALTER TABLE DROP COLUMN"), policy.CommandDeny},
		{"drop default", "d", alter("ALTER TABLE ALTER COLUMN DROP DEFAULT"), policy.CommandDeny},
		{"one of several", "d", alter("ALTER TABLE ADD COLUMN", "ALTER TABLE DROP CONSTRAINT"), policy.CommandDeny},
		{"add column", "d", alter("ALTER TABLE ADD COLUMN"), policy.CommandAllow},
		{"rename", "d", alter("ALTER TABLE RENAME"), policy.CommandAllow},
		{"drop table", "d", policy.Statement{Kind: policy.StatementDDL, Command: "DROP TABLE"}, policy.CommandDeny},

		{"side effects", "e", policy.Statement{Kind: policy.StatementRead, Command: "SELECT", SideEffects: true}, policy.CommandDeny},
		{"no side effects", "e", policy.Statement{Kind: policy.StatementRead, Command: "SELECT"}, policy.CommandAllow},

		{"program", "p", policy.Statement{Kind: policy.StatementWrite, Command: "COPY", Program: true, FileAccess: true}, policy.CommandDeny},
		{"server file is not a program", "p", policy.Statement{Kind: policy.StatementWrite, Command: "COPY", FileAccess: true}, policy.CommandAllow},

		{"quoted pattern, exact table", "t", tbl(sql, "Orders"), policy.CommandDeny},
		{"quoted pattern, folded table", "t", tbl(sql, "orders"), policy.CommandAllow},
		{"unquoted pattern folds", "t", tbl(sql, "shop.items"), policy.CommandDeny},
		{"unquoted pattern, quoted table", "t", tbl(sql, "Shop.Items"), policy.CommandAllow},
		{"unquoted pattern, bare name", "t", tbl(sql, "items"), policy.CommandDeny},
		{"any case: case ignored", "t", tbl(anyCase, "ORDERS"), policy.CommandDeny},
		{"any case: unquoted pattern", "t", tbl(anyCase, "SHOP.ITEMS"), policy.CommandDeny},
		{"exact: as written", "t", tbl(exact, "Shop.Items"), policy.CommandDeny},
		{"exact: other case", "t", tbl(exact, "shop.items"), policy.CommandAllow},
		{"exact: quoted pattern", "t", tbl(exact, "Orders"), policy.CommandDeny},
		{"exact: quoted pattern, other case", "t", tbl(exact, "orders"), policy.CommandAllow},

		{"read-only: side effects", "r", policy.Statement{Kind: policy.StatementRead, Command: "SELECT", SideEffects: true}, policy.CommandDeny},
		{"read-only: program", "r", policy.Statement{Kind: policy.StatementRead, Command: "COPY", Program: true}, policy.CommandDeny},
		{"read-only: read", "r", policy.Statement{Kind: policy.StatementRead, Command: "SELECT"}, policy.CommandAllow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := p.DecideQueries(tt.user, "db", []policy.Statement{tt.s}); d.Action != tt.want {
				t.Errorf("got %s (%s), want %s", d.Action, d.Reason, tt.want)
			}
		})
	}
}

func TestFollowing(t *testing.T) {
	p := sqlPolicy()
	read := policy.Statement{Kind: policy.StatementRead, Command: "PREPARE", Text: "PREPARE q AS SELECT 1", Prepares: "q"}
	write := policy.Statement{Kind: policy.StatementWrite, Command: "PREPARE", Text: "PREPARE w AS DELETE FROM t", Prepares: "w", Unbounded: true, Tables: []string{"t"}}
	effect := policy.Statement{Kind: policy.StatementRead, Command: "PREPARE", Text: "PREPARE n AS SELECT nextval('s')", Prepares: "n", SideEffects: true}
	prepared := map[string][]policy.Statement{"q": {read}, "w": {write}, "n": {effect}, "both": {read, write}}
	exec := func(names ...string) policy.Statement {
		return policy.Statement{Kind: policy.StatementUtility, Command: "EXECUTE", Executes: names}
	}
	tests := []struct {
		name string
		s    policy.Statement
		want policy.CommandAction
	}{
		{"prepared read", exec("q"), policy.CommandAllow},
		{"prepared write", exec("w"), policy.CommandDeny},
		{"prepared side effect", exec("n"), policy.CommandDeny},
		{"prepared twice, once a write", exec("both"), policy.CommandDeny},
		{"never prepared", exec("x"), policy.CommandDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := policy.Following(tt.s, prepared)
			if d := p.DecideQueries("r", "db", []policy.Statement{s}); d.Action != tt.want {
				t.Errorf("read-only: got %s (%s), want %s", d.Action, d.Reason, tt.want)
			}
		})
	}
	if s := policy.Following(exec("w"), prepared); !s.Unbounded || len(s.Tables) != 1 || s.Kind != policy.StatementWrite {
		t.Errorf("EXECUTE of a prepared unbounded DELETE = %+v, want an unbounded write of t", s)
	}
}

func TestPrepared(t *testing.T) {
	p := sqlPolicy()
	prep := func(name, text string, kind policy.StatementKind) policy.Statement {
		return policy.Statement{Kind: kind, Command: "PREPARE", Text: text, Prepares: name}
	}
	exec := policy.Statement{Kind: policy.StatementUtility, Command: "EXECUTE", Executes: []string{"q"}}
	decide := func(s []policy.Statement) policy.CommandAction { return p.DecideQueries("r", "db", s).Action }

	var session policy.Prepared
	if got := decide(session.Follow([]policy.Statement{exec}, nil)); got != policy.CommandDeny {
		t.Fatalf("EXECUTE of nothing prepared: %s, want deny", got)
	}
	// PREPARE q …; EXECUTE q in one string: the string's own PREPARE counts.
	str := []policy.Statement{prep("q", "PREPARE q AS SELECT 1", policy.StatementRead), exec}
	if got := decide(session.Follow(str, str)); got != policy.CommandAllow {
		t.Fatalf("PREPARE; EXECUTE of a read: %s, want allow", got)
	}
	// … but is not remembered until the front end says so.
	if got := decide(session.Follow([]policy.Statement{exec}, nil)); got != policy.CommandDeny {
		t.Fatalf("EXECUTE after an unremembered PREPARE: %s, want deny", got)
	}
	session.Remember(str[:1])
	if got := decide(session.Follow([]policy.Statement{exec}, nil)); got != policy.CommandAllow {
		t.Fatalf("EXECUTE of a remembered read: %s, want allow", got)
	}
	// Prepared again as a write: the name may now hold either.
	session.Remember([]policy.Statement{prep("q", "PREPARE q AS DELETE FROM t", policy.StatementWrite)})
	if got := decide(session.Follow([]policy.Statement{exec}, nil)); got != policy.CommandDeny {
		t.Fatalf("EXECUTE of a name once prepared as a write: %s, want deny", got)
	}
	// Too many versions of a name: unknown.
	var many policy.Prepared
	for i := range 20 {
		many.Remember([]policy.Statement{prep("q", fmt.Sprintf("PREPARE q AS SELECT %d", i), policy.StatementRead)})
	}
	if got := decide(many.Follow([]policy.Statement{exec}, nil)); got != policy.CommandDeny {
		t.Fatalf("EXECUTE of a name prepared 20 times: %s, want deny", got)
	}
}
