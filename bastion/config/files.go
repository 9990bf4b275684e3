package config

import (
	"fmt"
	"path"
	"strings"

	"github.com/bastionhq/bastion/bastion/policy"
)

// rawFileRule is one file-transfer rule of a role (sftp, scp).
type rawFileRule struct {
	Name       string            `yaml:"name"`
	Action     string            `yaml:"action"`
	Operations []string          `yaml:"operations"`
	Paths      []string          `yaml:"paths"`
	Targets    []string          `yaml:"targets"`
	Labels     map[string]string `yaml:"labels"`
	Reason     string            `yaml:"reason"`
}

// files validates a role's file rules.
func (v *validator) files(field string, role *policy.Role, rules []rawFileRule) {
	seen := map[string]int{}
	for i, f := range rules {
		role.Files = append(role.Files, v.fileRule(fmt.Sprintf("%s.files[%d]", field, i), i, f, seen))
	}
}

// fileRule validates rule i of a role's files; seen maps the names of the
// rules before it to their index.
func (v *validator) fileRule(field string, i int, f rawFileRule, seen map[string]int) policy.FileRule {
	v.ruleHead(field, "files", i, f.Name, f.Action, seen)
	if policy.CommandAction(f.Action) == policy.CommandRequireApproval {
		v.errorf(field+".action", "require-approval is not supported for file rules yet: use allow or deny")
	}
	rule := policy.FileRule{Name: f.Name, Action: policy.CommandAction(f.Action),
		Targets: policy.Selector{Names: f.Targets, Labels: f.Labels}, Reason: f.Reason}
	known := make([]string, len(policy.FileOps))
	for j, op := range policy.FileOps {
		known[j] = string(op)
	}
	for j, s := range f.Operations {
		op := policy.FileOp(strings.ToLower(s))
		if !op.Valid() {
			v.errorf(fmt.Sprintf("%s.operations[%d]", field, j), "unknown file operation %q (known: %s)", s, strings.Join(known, ", "))
		}
		rule.Ops = append(rule.Ops, op)
	}
	if len(f.Paths) == 0 {
		v.errorf(field+".paths", "required: absolute path globs the rule is about (e.g. /var/log/**, /srv/app/*.conf)")
	}
	for j, s := range f.Paths {
		clean, err := policy.ValidPathPattern(s)
		if err != nil {
			v.errorf(fmt.Sprintf("%s.paths[%d]", field, j), "%v", err)
		}
		rule.Paths = append(rule.Paths, clean)
	}
	for j, pat := range f.Targets {
		if _, err := path.Match(pat, ""); err != nil {
			v.errorf(fmt.Sprintf("%s.targets[%d]", field, j), "invalid pattern %q", pat)
		}
	}
	return rule
}
