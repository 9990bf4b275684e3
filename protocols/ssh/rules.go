package ssh

import (
	"context"
	"fmt"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/protocols/ssh/shellcmd"
)

// PolicyRules decides exec commands with the policy's command rules: the
// command line is parsed as a shell would parse it, and every simple
// command in it is decided.
type PolicyRules struct {
	Policy func() *policy.Policy
}

var _ ExecRules = PolicyRules{}

// CheckExec returns "" to allow command, or the refusal to show the user.
// A line that cannot be parsed is refused where command rules apply.
func (r PolicyRules) CheckExec(_ context.Context, user, target, command string) string {
	p := r.Policy()
	cmds, err := shellcmd.Parse(command)
	if err != nil {
		if p.CommandsRestricted(user, target) {
			return fmt.Sprintf("the command cannot be checked (%v), and commands are restricted on %s", err, target)
		}
		return ""
	}
	d := p.DecideCommands(user, target, cmds)
	switch d.Action {
	case policy.CommandAllow:
		return ""
	case policy.CommandRequireApproval:
		return refusal("needs approval", d) + " (approval of single commands is not available yet: request access without this rule)"
	}
	return refusal("denied", d)
}

func refusal(what string, d policy.CommandDecision) string {
	if d.Rule != "" {
		return fmt.Sprintf("%s by rule %s: %s", what, d.Rule, d.Reason)
	}
	return fmt.Sprintf("%s: %s", what, d.Reason)
}

// CommandsRestricted reports whether command rules apply to user on target.
func (r PolicyRules) CommandsRestricted(user, target string) bool {
	return r.Policy().CommandsRestricted(user, target)
}
