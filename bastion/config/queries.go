package config

import (
	"fmt"
	"path"
	"strings"

	"github.com/bastionhq/bastion/bastion/policy"
)

// rawQueryRule is one per-statement rule of a role (database sessions).
type rawQueryRule struct {
	Name        string            `yaml:"name"`
	Action      string            `yaml:"action"`
	Kinds       []string          `yaml:"kinds"`
	Commands    []string          `yaml:"commands"`
	Tables      []string          `yaml:"tables"`
	Functions   []string          `yaml:"functions"`
	Unbounded   bool              `yaml:"unbounded"`
	FileAccess  bool              `yaml:"file_access"`
	RoleChange  bool              `yaml:"role_change"`
	Program     bool              `yaml:"program"`
	SideEffects bool              `yaml:"side_effects"`
	Targets     []string          `yaml:"targets"`
	Labels      map[string]string `yaml:"labels"`
	Reason      string            `yaml:"reason"`
	Approvers   []string          `yaml:"approvers"`
}

// queries validates a role's query rules, default and read-only mode.
func (v *validator) queries(field string, role *policy.Role, r rawRole, all map[string]rawRole) {
	role.ReadOnly = r.ReadOnly
	if r.QueryDefault != "" {
		role.QueryDefault = v.commandAction(field+".query_default", r.QueryDefault)
	}
	seen := map[string]int{}
	for i, q := range r.Queries {
		f := fmt.Sprintf("%s.queries[%d]", field, i)
		v.ruleHead(f, "queries", i, q.Name, q.Action, seen)
		rule := policy.QueryRule{
			Name: q.Name, Action: policy.CommandAction(q.Action),
			Targets:   policy.Selector{Names: q.Targets, Labels: q.Labels},
			Unbounded: q.Unbounded, FileAccess: q.FileAccess, RoleChange: q.RoleChange,
			Program: q.Program, SideEffects: q.SideEffects,
			Reason: q.Reason, Approvers: q.Approvers,
		}
		for j, k := range q.Kinds {
			kind := policy.StatementKind(strings.ToLower(k))
			if !kind.Valid() {
				v.errorf(fmt.Sprintf("%s.kinds[%d]", f, j), "unknown statement kind %q (known: read, write, ddl, dcl, utility, transaction, unknown)", k)
			}
			rule.Kinds = append(rule.Kinds, kind)
		}
		rule.Commands = v.patterns(f+".commands", q.Commands)
		rule.Tables = v.patterns(f+".tables", q.Tables)
		rule.Functions = v.patterns(f+".functions", q.Functions)
		v.patterns(f+".targets", q.Targets)
		for j, a := range q.Approvers {
			if _, ok := all[a]; !ok {
				v.errorf(fmt.Sprintf("%s.approvers[%d]", f, j), "unknown role %q", a)
			}
		}
		if rule.Action == policy.CommandRequireApproval && len(q.Approvers) == 0 {
			v.errorf(f+".approvers", "required for require-approval: the roles that may allow the statement")
		}
		role.Queries = append(role.Queries, rule)
	}
}

// patterns checks a list of glob patterns.
func (v *validator) patterns(field string, pats []string) []string {
	for j, p := range pats {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			v.errorf(fmt.Sprintf("%s[%d]", field, j), "invalid pattern %q", p)
		}
	}
	return pats
}

// databaseTarget validates what only database targets have.
func (v *validator) databaseTarget(field string, t rawTarget, target *Target) {
	if target.Kind != policy.KindPostgres && target.Kind != policy.KindMySQL {
		return
	}
	if target.Database == "" {
		target.Database = t.Name
	}
	switch t.TLS {
	case "":
		target.TLS = TLSDisable
	case TLSDisable, TLSRequire, TLSVerifyFull:
		target.TLS = t.TLS
	default:
		v.errorf(field+".tls", "must be disable, require or verify-full, not %q", t.TLS)
	}
	if t.CAFile != "" {
		target.CAFile = v.path(t.CAFile)
	}
	target.RedactParameters = t.RedactParameters
	v.serverPublicKey(field, t, target)
}

// ruleHead validates what every rule of a role starts with: a name, unique
// within its list (seen maps the names before rule i to their index), and
// an action.
func (v *validator) ruleHead(field, list string, i int, name, action string, seen map[string]int) {
	switch j, dup := seen[name]; {
	case name == "":
		v.errorf(field+".name", "required: a name for the rule (shown to users and in the audit log)")
	case !ruleRE.MatchString(name):
		v.errorf(field+".name", "invalid rule name %q (letters, digits, . _ -; at most 64)", name)
	case dup:
		v.errorf(field+".name", "duplicate rule name %q (also %s[%d])", name, list, j)
	default:
		seen[name] = i
	}
	if action == "" {
		v.errorf(field+".action", "required: allow, deny or require-approval")
	} else {
		v.commandAction(field+".action", action)
	}
}
