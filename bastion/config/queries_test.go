package config_test

import (
	"slices"
	"testing"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
)

// queriesHead is a valid config whose developer role ends in a queries
// list, so that an error case appends one rule (line 11 on).
const queriesHead = `data_dir: /data
users:
  - {name: alice, roles: [developer, lead]}
targets:
  - {name: orders, kind: postgres, address: db:5432, username: bastion, tls: require}
roles:
  lead: {read_only: true, query_default: deny}
  developer:
    queries:
      - {name: no-drop, action: deny, kinds: [DDL], commands: ["DROP *"], tables: [public.secrets], functions: ["lo_*"], unbounded: true, file_access: true, role_change: true, targets: [orders], reason: no}
`

func TestParseQueryRules(t *testing.T) {
	cfg, err := config.Parse("bastion.yaml", []byte(queriesHead+
		"      - {name: held, action: require-approval, commands: [DELETE], approvers: [lead]}\n"), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	lead, dev := cfg.Policy.Roles["lead"], cfg.Policy.Roles["developer"]
	if !lead.ReadOnly || lead.QueryDefault != policy.CommandDeny || dev.ReadOnly || dev.QueryDefault != "" {
		t.Errorf("lead %+v, developer %+v", lead, dev)
	}
	if len(dev.Queries) != 2 {
		t.Fatalf("queries = %+v", dev.Queries)
	}
	r := dev.Queries[0]
	if r.Name != "no-drop" || r.Action != policy.CommandDeny || !slices.Equal(r.Kinds, []policy.StatementKind{policy.StatementDDL}) ||
		!slices.Equal(r.Commands, []string{"DROP *"}) || !slices.Equal(r.Tables, []string{"public.secrets"}) ||
		!slices.Equal(r.Functions, []string{"lo_*"}) || !r.Unbounded || !r.FileAccess || !r.RoleChange ||
		!slices.Equal(r.Targets.Names, []string{"orders"}) || r.Reason != "no" {
		t.Errorf("rule 0 = %+v", r)
	}
	if h := dev.Queries[1]; h.Action != policy.CommandRequireApproval || !slices.Equal(h.Approvers, []string{"lead"}) {
		t.Errorf("rule 1 = %+v", h)
	}
	o := cfg.Targets["orders"]
	if o.Database != "orders" || o.TLS != config.TLSRequire {
		t.Errorf("target defaults: %+v", o)
	}
}

func TestParseQueryRuleErrors(t *testing.T) {
	const rule1 = "roles.developer.queries[1]"
	tests := []struct{ name, yaml, want string }{
		{"missing name", queriesHead + "      - {action: deny}\n",
			`bastion.yaml:11: ` + rule1 + `.name: required: a name for the rule (shown to users and in the audit log)`},
		{"duplicate name", queriesHead + "      - {name: no-drop, action: deny}\n",
			`bastion.yaml:11: ` + rule1 + `.name: duplicate rule name "no-drop" (also queries[0])`},
		{"missing action", queriesHead + "      - {name: x}\n",
			`bastion.yaml:11: ` + rule1 + `.action: required: allow, deny or require-approval`},
		{"unknown kind", queriesHead + "      - {name: x, action: deny, kinds: [reads]}\n",
			`bastion.yaml:11: ` + rule1 + `.kinds[0]: unknown statement kind "reads" (known: read, write, ddl, dcl, utility, transaction, unknown)`},
		{"bad table pattern", queriesHead + "      - {name: x, action: deny, tables: [\"a[\"]}\n",
			`bastion.yaml:11: ` + rule1 + `.tables[0]: invalid pattern "a["`},
		{"approval without approvers", queriesHead + "      - {name: x, action: require-approval}\n",
			`bastion.yaml:11: ` + rule1 + `.approvers: required for require-approval: the roles that may allow the statement`},
		{"unknown approver role", queriesHead + "      - {name: x, action: require-approval, approvers: [boss]}\n",
			`bastion.yaml:11: ` + rule1 + `.approvers[0]: unknown role "boss"`},
		{"bad query_default", queriesHead + "    query_default: maybe\n",
			`bastion.yaml:11: roles.developer.query_default: must be allow, deny or require-approval, not "maybe"`},
		{"bad target tls", "data_dir: /data\nusers: [{name: alice}]\ntargets:\n  - {name: db, kind: mysql, address: db:3306, tls: maybe}\n",
			`bastion.yaml:4: targets[0].tls: must be disable, require or verify-full, not "maybe"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkParseError(t, tt.yaml, tt.want) })
	}
}
