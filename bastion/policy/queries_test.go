package policy_test

import (
	"strings"
	"testing"

	"github.com/bastionhq/bastion/bastion/policy"
)

// queryPolicy builds the policy of the query-rule tests.
//
//	alice: analyst          bob: reader (read-only)     carol: analyst + reader
//	dave: locked            erin: plain                 frank: approve
func queryPolicy() *policy.Policy {
	return &policy.Policy{
		Targets: map[string]*policy.Target{
			"orders":  {Name: "orders", Kind: policy.KindPostgres, Labels: map[string]string{"env": "prod"}},
			"scratch": {Name: "scratch", Kind: policy.KindPostgres, Labels: map[string]string{"env": "dev"}},
		},
		Roles: map[string]*policy.Role{
			"analyst": {Name: "analyst", Queries: []policy.QueryRule{
				{Name: "no-drop", Action: policy.CommandDeny, Kinds: []policy.StatementKind{policy.StatementDDL}, Commands: []string{"DROP *", "TRUNCATE"}, Reason: "no dropping on prod",
					Targets: policy.Selector{Labels: map[string]string{"env": "prod"}}},
				{Name: "bounded-writes", Action: policy.CommandDeny, Unbounded: true},
				{Name: "secrets", Action: policy.CommandDeny, Tables: []string{"public.secrets"}, Reason: "secrets are off limits"},
				{Name: "files", Action: policy.CommandDeny, Functions: []string{"pg_read_*", "lo_import"}},
				{Name: "copy-program", Action: policy.CommandDeny, FileAccess: true},
				{Name: "roles", Action: policy.CommandDeny, RoleChange: true},
				{Name: "audit-schema", Action: policy.CommandDeny, Tables: []string{"audit.*"}},
				{Name: "bare-name", Action: policy.CommandDeny, Tables: []string{"passwords"}},
			}},
			"reader": {Name: "reader", ReadOnly: true},
			"locked": {Name: "locked", QueryDefault: policy.CommandDeny, Queries: []policy.QueryRule{
				{Name: "reads", Action: policy.CommandAllow, Kinds: []policy.StatementKind{policy.StatementRead, policy.StatementTransaction}},
			}},
			"plain": {Name: "plain"},
			"approve": {Name: "approve", Queries: []policy.QueryRule{
				{Name: "deletes-need-ok", Action: policy.CommandRequireApproval, Commands: []string{"delete"}, Approvers: []string{"lead"}},
			}},
		},
		Users: map[string]*policy.User{
			"alice": {Name: "alice", Roles: []string{"analyst"}},
			"bob":   {Name: "bob", Roles: []string{"reader"}},
			"carol": {Name: "carol", Roles: []string{"analyst", "reader"}},
			"dave":  {Name: "dave", Roles: []string{"locked"}},
			"erin":  {Name: "erin", Roles: []string{"plain"}},
			"frank": {Name: "frank", Roles: []string{"approve"}},
		},
	}
}

func read(tables ...string) policy.Statement {
	return policy.Statement{Kind: policy.StatementRead, Command: "SELECT", Tables: tables}
}

func TestDecideQueries(t *testing.T) {
	p := queryPolicy()
	drop := policy.Statement{Kind: policy.StatementDDL, Command: "DROP TABLE", Tables: []string{"orders"}}
	trunc := policy.Statement{Kind: policy.StatementDDL, Command: "TRUNCATE", Tables: []string{"orders"}}
	del := policy.Statement{Kind: policy.StatementWrite, Command: "DELETE", Tables: []string{"orders"}}
	delAll := policy.Statement{Kind: policy.StatementWrite, Command: "DELETE", Tables: []string{"orders"}, Unbounded: true}
	insert := policy.Statement{Kind: policy.StatementWrite, Command: "INSERT", Tables: []string{"public.orders"}}
	set := policy.Statement{Kind: policy.StatementUtility, Command: "SET"}
	do := policy.Statement{Kind: policy.StatementUtility, Command: "DO"}
	begin := policy.Statement{Kind: policy.StatementTransaction, Command: "BEGIN"}
	cteWrite := policy.Statement{Kind: policy.StatementRead, Command: "SELECT", WritesInCTE: true}
	copyProg := policy.Statement{Kind: policy.StatementWrite, Command: "COPY", FileAccess: true}
	setRole := policy.Statement{Kind: policy.StatementUtility, Command: "SET ROLE", RoleChange: true}
	readFile := policy.Statement{Kind: policy.StatementRead, Command: "SELECT", Functions: []string{"pg_read_file"}}
	qualifiedFn := policy.Statement{Kind: policy.StatementRead, Command: "SELECT", Functions: []string{"pg_catalog.lo_import", "lo_import"}}

	tests := []struct {
		name, user, target string
		stmts              []policy.Statement
		want               policy.CommandAction
		rule, reason       string
		index              int
	}{
		{name: "nothing", user: "alice", target: "orders", want: policy.CommandAllow},
		{name: "plain read", user: "alice", target: "orders", stmts: []policy.Statement{read("public.orders")}, want: policy.CommandAllow},
		{name: "drop on prod", user: "alice", target: "orders", stmts: []policy.Statement{drop}, want: policy.CommandDeny, rule: "no-drop", reason: "no dropping on prod"},
		{name: "truncate on prod", user: "alice", target: "orders", stmts: []policy.Statement{trunc}, want: policy.CommandDeny, rule: "no-drop"},
		{name: "drop elsewhere", user: "alice", target: "scratch", stmts: []policy.Statement{drop}, want: policy.CommandAllow},
		{name: "bounded delete", user: "alice", target: "orders", stmts: []policy.Statement{del}, want: policy.CommandAllow},
		{name: "unbounded delete", user: "alice", target: "orders", stmts: []policy.Statement{delAll}, want: policy.CommandDeny, rule: "bounded-writes"},
		{name: "qualified secrets", user: "alice", target: "orders", stmts: []policy.Statement{read("public.secrets")}, want: policy.CommandDeny, rule: "secrets", reason: "secrets are off limits"},
		{name: "unqualified secrets", user: "alice", target: "orders", stmts: []policy.Statement{read("secrets")}, want: policy.CommandDeny, rule: "secrets"},
		{name: "case of table", user: "alice", target: "orders", stmts: []policy.Statement{read("Public.SECRETS")}, want: policy.CommandDeny, rule: "secrets"},
		{name: "other schema's secrets", user: "alice", target: "orders", stmts: []policy.Statement{read("app.secrets")}, want: policy.CommandAllow},
		{name: "schema glob", user: "alice", target: "orders", stmts: []policy.Statement{read("audit.log")}, want: policy.CommandDeny, rule: "audit-schema"},
		{name: "bare pattern any schema", user: "alice", target: "orders", stmts: []policy.Statement{read("app.passwords")}, want: policy.CommandDeny, rule: "bare-name"},
		{name: "function glob", user: "alice", target: "orders", stmts: []policy.Statement{readFile}, want: policy.CommandDeny, rule: "files"},
		{name: "qualified function", user: "alice", target: "orders", stmts: []policy.Statement{qualifiedFn}, want: policy.CommandDeny, rule: "files"},
		{name: "file access", user: "alice", target: "orders", stmts: []policy.Statement{copyProg}, want: policy.CommandDeny, rule: "copy-program"},
		{name: "role change", user: "alice", target: "orders", stmts: []policy.Statement{setRole}, want: policy.CommandDeny, rule: "roles"},
		{name: "one denied statement denies the query", user: "alice", target: "orders", stmts: []policy.Statement{read("orders"), insert, drop, read("x")}, want: policy.CommandDeny, rule: "no-drop", index: 2},
		{name: "read-only read", user: "bob", target: "orders", stmts: []policy.Statement{begin, read("orders"), set}, want: policy.CommandAllow},
		{name: "read-only write", user: "bob", target: "orders", stmts: []policy.Statement{insert}, want: policy.CommandDeny, reason: "INSERT is not allowed: role reader is read-only"},
		{name: "read-only DO", user: "bob", target: "orders", stmts: []policy.Statement{do}, want: policy.CommandDeny},
		{name: "read-only CTE write", user: "bob", target: "orders", stmts: []policy.Statement{cteWrite}, want: policy.CommandDeny},
		{name: "read-only role change", user: "bob", target: "orders", stmts: []policy.Statement{setRole}, want: policy.CommandDeny},
		{name: "most restrictive role wins", user: "carol", target: "scratch", stmts: []policy.Statement{drop}, want: policy.CommandDeny, reason: "DROP TABLE is not allowed: role reader is read-only"},
		{name: "default deny", user: "dave", target: "orders", stmts: []policy.Statement{insert}, want: policy.CommandDeny, reason: "INSERT is not allowed: no rule of role locked allows it"},
		{name: "default deny allows rule", user: "dave", target: "orders", stmts: []policy.Statement{begin, read("orders")}, want: policy.CommandAllow, rule: "reads"},
		{name: "no rules", user: "erin", target: "orders", stmts: []policy.Statement{drop, delAll}, want: policy.CommandAllow},
		{name: "approval, command case", user: "frank", target: "orders", stmts: []policy.Statement{del}, want: policy.CommandRequireApproval, rule: "deletes-need-ok"},
		{name: "unknown user", user: "zed", target: "orders", stmts: []policy.Statement{read()}, want: policy.CommandDeny, reason: `unknown user "zed"`},
		{name: "unknown target", user: "alice", target: "nope", stmts: []policy.Statement{read()}, want: policy.CommandDeny, reason: `unknown target "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.DecideQueries(tt.user, tt.target, tt.stmts)
			if d.Action != tt.want || (tt.rule != "" && d.Rule != tt.rule) || d.Index != tt.index {
				t.Errorf("DecideQueries = %+v, want %s by rule %q at %d", d, tt.want, tt.rule, tt.index)
			}
			if tt.reason != "" && d.Reason != tt.reason {
				t.Errorf("reason = %q, want %q", d.Reason, tt.reason)
			}
			if d.Action != policy.CommandAllow && d.Reason == "" {
				t.Error("a refusal without a reason")
			}
			if d.Action == policy.CommandRequireApproval && strings.Join(d.Approvers, ",") != "lead" {
				t.Errorf("approvers = %v", d.Approvers)
			}
		})
	}
}

func TestQueriesRestricted(t *testing.T) {
	p := queryPolicy()
	for user, want := range map[string]bool{"alice": true, "bob": true, "dave": true, "erin": false, "frank": true, "zed": true} {
		if got := p.QueriesRestricted(user, "orders"); got != want {
			t.Errorf("QueriesRestricted(%s) = %v, want %v", user, got, want)
		}
	}
	if !p.QueriesRestricted("erin", "nope") {
		t.Error("an unknown target is not restricted")
	}
}
