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

// CheckExec decides a command line. A line that cannot be parsed is
// refused where command rules apply.
func (r PolicyRules) CheckExec(_ context.Context, user, target, command string) ExecDecision {
	p := r.Policy()
	cmds, err := shellcmd.Parse(command)
	if err != nil {
		if p.CommandsRestricted(user, target) {
			return ExecDecision{Refusal: fmt.Sprintf("the command cannot be checked (%v), and commands are restricted on %s", err, target)}
		}
		return ExecDecision{}
	}
	d := p.DecideCommands(user, target, cmds)
	switch d.Action {
	case policy.CommandAllow:
		return ExecDecision{}
	case policy.CommandRequireApproval:
		return ExecDecision{Approval: &ApprovalNeeded{Rule: d.Rule, Reason: d.Reason, Roles: d.Approvers}}
	}
	return ExecDecision{Refusal: refusal("denied", d)}
}

func refusal(what string, d policy.CommandDecision) string {
	if d.Rule != "" {
		return fmt.Sprintf("%s by rule %s: %s", what, d.Rule, d.Reason)
	}
	return fmt.Sprintf("%s: %s", what, d.Reason)
}

// ReadsInput reports whether a command line starts a shell or another
// interpreter that reads its commands from the session's input (bash,
// su -, sudo -i, python3, psql). A line that cannot be parsed is not one:
// CheckExec refuses it where it matters.
func (r PolicyRules) ReadsInput(command string) bool {
	res, err := shellcmd.ParseLine(command)
	return err == nil && res.ReadsInput
}

// CommandsRestricted reports whether command rules apply to user on target.
func (r PolicyRules) CommandsRestricted(user, target string) bool {
	return r.Policy().CommandsRestricted(user, target)
}
