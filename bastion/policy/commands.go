package policy

import (
	"fmt"
	"path"
	"strings"
	"unicode/utf8"
)

// Command is one simple command of a command line, as a shell would run it.
// Protocol packages produce it (protocols/ssh/shellcmd parses exec commands
// and typed lines); the policy only reads it.
type Command struct {
	// Name is the program's name, normalised: without its directory and
	// without leading backslashes ("/bin/rm", "\rm" and "'rm'" are "rm").
	Name string
	// Args are the arguments after quote removal, as written (not globbed).
	Args []string
	// Dynamic is set when what the command runs is only known when it runs
	// ($VAR, $(…), a glob in the name, inline code for another interpreter
	// such as python3 -c, a wrapper whose inner command cannot be found):
	// the real command cannot be known in advance. Name is then the literal part before the
	// first expansion, possibly "".
	Dynamic bool
	// DynamicArgs is set when the name is literal but an argument is only
	// known when the command runs (echo $HOME). Such a command is decided
	// by its name, except that a rule matching it that inspects arguments
	// cannot be checked and denies it.
	DynamicArgs bool
}

// CommandAction is what a command rule does with the commands it matches.
type CommandAction string

const (
	// CommandAllow lets the command run.
	CommandAllow CommandAction = "allow"
	// CommandDeny refuses the command: it never reaches the target.
	CommandDeny CommandAction = "deny"
	// CommandRequireApproval holds the command until an approver allows it.
	CommandRequireApproval CommandAction = "require-approval"
)

// Valid reports whether a is one of the known actions ("" is not).
func (a CommandAction) Valid() bool {
	return a == CommandAllow || a == CommandDeny || a == CommandRequireApproval
}

// severity orders actions from the most permissive to the most restrictive.
// An unknown action (only possible in a policy not built by package config)
// counts as deny: the policy fails closed.
func (a CommandAction) severity() int {
	switch a {
	case CommandAllow, "":
		return 0
	case CommandRequireApproval:
		return 1
	default:
		return 2
	}
}

// effective maps "" (an unset default) to allow and unknown actions to deny.
func (a CommandAction) effective() CommandAction {
	switch a {
	case "":
		return CommandAllow
	case CommandAllow, CommandDeny, CommandRequireApproval:
		return a
	default:
		return CommandDeny
	}
}

// CommandRule matches commands by name and arguments on some targets.
//
// Patterns use path.Match syntax (*, ?, [a-z], \ to escape), except that
// * and ? also match "/": the argument pattern "-rf *" matches "-rf /tmp/x".
type CommandRule struct {
	Name   string // unique within its role; shown to users and in the audit log
	Action CommandAction
	// Command is a pattern for the normalised command name ("rm", "apt*").
	Command string
	// Args is a pattern for the arguments joined by single spaces, as
	// written; empty matches any arguments (including none).
	Args string
	// Targets selects the targets the rule applies to; an empty selector
	// (no names, no labels) means every target.
	Targets Selector
	// Reason is shown to the user when the rule denies or holds a command.
	Reason string
	// Approvers are the roles whose members may allow a command this rule
	// holds for approval.
	Approvers []string
}

// appliesTo reports whether the rule is in force on t.
func (r *CommandRule) appliesTo(t *Target) bool {
	if len(r.Targets.Names) == 0 && len(r.Targets.Labels) == 0 {
		return true
	}
	return r.Targets.Matches(t)
}

// matches reports whether c is one of the commands r is about. A malformed
// pattern is reported as an error.
func (r *CommandRule) matches(c Command) (bool, error) {
	ok, err := Glob(r.Command, c.Name)
	if err != nil || !ok {
		return false, err
	}
	if r.Args == "" {
		return true, nil
	}
	return Glob(r.Args, strings.Join(c.Args, " "))
}

// CommandDecision is the policy's answer for a command line.
type CommandDecision struct {
	Action CommandAction
	// Rule names the rule that decided; empty when a role's default, the
	// absence of rules, or a command that cannot be checked decided.
	Rule string
	// Reason is safe to show to the user; empty when the line is allowed.
	Reason string
	// Command is the command that decided: the first of the line's commands
	// with the most restrictive answer.
	Command Command
	// Approvers are the roles that may allow the line when Action is
	// require-approval.
	Approvers []string
}

// DecideCommands decides whether user may run the commands of one command
// line on target. cmds are all the simple commands of the line (see
// protocols/ssh/shellcmd): pipelines, lists, substitutions and the commands
// run by wrappers such as sudo or sh -c, each as its own Command.
//
//   - Each command is decided separately. Within one role, the first rule
//     (in file order) that applies to the target and matches the command
//     decides; if none does, the role's CommandDefault decides ("" is allow).
//   - Across the user's roles the most restrictive answer wins:
//     deny > require-approval > allow. Every role of the user counts, not
//     only the roles that grant access to target.
//   - A Dynamic command (its name, or a program it runs, is only known at
//     run time) is denied whenever any command rule of the user's roles
//     applies to target, with a reason saying it cannot be checked. A
//     command with only DynamicArgs is decided by its name, but a matching
//     rule that inspects arguments denies it.
//     Otherwise (no rules apply) the roles' defaults decide it like any
//     other command.
//   - The line gets the most restrictive answer of its commands; the first
//     command with that answer is the one named.
//   - An empty command list (a blank line, only assignments or comments) is
//     allowed.
//
// An unknown user or target is denied. A rule whose pattern is malformed
// (only possible in a policy not built by package config) denies what it
// would have decided.
func (p *Policy) DecideCommands(user, target string, cmds []Command) CommandDecision {
	if len(cmds) == 0 {
		return CommandDecision{Action: CommandAllow}
	}
	t := p.Targets[target]
	if t == nil {
		return CommandDecision{Action: CommandDeny, Reason: fmt.Sprintf("unknown target %q", target), Command: cmds[0]}
	}
	if p.Users[user] == nil {
		return CommandDecision{Action: CommandDeny, Reason: fmt.Sprintf("unknown user %q", user), Command: cmds[0]}
	}
	roles := p.roles(user)
	restricted := commandsRestricted(roles, t)
	var best CommandDecision
	for i, c := range cmds {
		d := decideCommand(roles, t, c, restricted)
		if i == 0 || d.Action.severity() > best.Action.severity() {
			best = d
		}
	}
	return best
}

// CommandsRestricted reports whether any command rule of user's roles
// applies to target: then a command line that cannot be parsed or checked
// is refused (fail closed). An unknown user or target is restricted.
func (p *Policy) CommandsRestricted(user, target string) bool {
	t := p.Targets[target]
	if t == nil || p.Users[user] == nil {
		return true
	}
	return commandsRestricted(p.roles(user), t)
}

func commandsRestricted(roles []*Role, t *Target) bool {
	for _, r := range roles {
		for i := range r.Commands {
			if r.Commands[i].appliesTo(t) {
				return true
			}
		}
	}
	return false
}

// decideCommand decides one command under all of roles.
func decideCommand(roles []*Role, t *Target, c Command, restricted bool) CommandDecision {
	if c.Dynamic && restricted {
		return CommandDecision{
			Action:  CommandDeny,
			Reason:  fmt.Sprintf("%s cannot be checked: what it runs is only known when it runs ($VAR, $(…), globs, code given to another interpreter, a wrapper whose command cannot be found), and commands are restricted on %s", describe(c), t.Name),
			Command: c,
		}
	}
	best := CommandDecision{Action: CommandAllow, Command: c}
	for _, r := range roles {
		d := r.decideCommand(t, c)
		// The most restrictive answer; among equals, the first that a
		// rule (rather than a default) gave, so that the audit log can
		// name it.
		if sev, bsev := d.Action.severity(), best.Action.severity(); sev > bsev || (sev == bsev && best.Rule == "" && d.Rule != "") {
			best = d
		}
	}
	return best
}

// decideCommand decides c under one role: its first matching rule, or its
// default.
func (r *Role) decideCommand(t *Target, c Command) CommandDecision {
	for i := range r.Commands {
		rule := &r.Commands[i]
		if !rule.appliesTo(t) {
			continue
		}
		if c.DynamicArgs && rule.Args != "" {
			if named, err := Glob(rule.Command, c.Name); err != nil || named {
				return CommandDecision{Action: CommandDeny, Rule: rule.Name, Command: c,
					Reason: fmt.Sprintf("%s cannot be checked: its arguments are only known when it runs, and rule %s looks at arguments", describe(c), rule.Name)}
			}
			continue
		}
		ok, err := rule.matches(c)
		if err != nil {
			return CommandDecision{Action: CommandDeny, Rule: rule.Name, Reason: fmt.Sprintf("rule %s of role %s has an invalid pattern", rule.Name, r.Name), Command: c}
		}
		if !ok {
			continue
		}
		d := CommandDecision{Action: rule.Action.effective(), Rule: rule.Name, Reason: rule.Reason, Command: c, Approvers: rule.Approvers}
		if d.Action == CommandAllow {
			d.Reason = ""
		} else if d.Reason == "" {
			d.Reason = fmt.Sprintf("%s: rule %s says %s", describe(c), rule.Name, d.Action)
		}
		return d
	}
	d := CommandDecision{Action: r.CommandDefault.effective(), Command: c}
	switch d.Action {
	case CommandDeny:
		d.Reason = fmt.Sprintf("%s is not allowed: no rule of role %s allows it", describe(c), r.Name)
	case CommandRequireApproval:
		d.Reason = fmt.Sprintf("%s needs approval: no rule of role %s allows it", describe(c), r.Name)
	}
	return d
}

// describe names a command in a reason.
func describe(c Command) string {
	if c.Name == "" {
		return "this command"
	}
	return fmt.Sprintf("%q", c.Name)
}

// Glob reports whether s matches pattern, in path.Match syntax except that
// * and ? also match "/" (command arguments are not file paths to split).
// The only error is path.ErrBadPattern, for a malformed pattern.
func Glob(pattern, s string) (bool, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return false, err
	}
	// Iterative matching with one backtracking point: on a mismatch, the
	// last * absorbs one more byte of s (byte by byte, as path.Match does).
	// Quadratic at worst, never exponential.
	pi, si := 0, 0
	starP, starS := -1, 0
	for {
		if pi < len(pattern) {
			if pattern[pi] == '*' {
				starP, starS = pi, si
				pi++
				continue
			}
			if si < len(s) {
				if n, m, ok := matchOne(pattern[pi:], s[si:]); ok {
					pi += n
					si += m
					continue
				}
			}
		} else if si == len(s) {
			return true, nil
		}
		if starP < 0 || starS >= len(s) {
			return false, nil
		}
		starS++
		si, pi = starS, starP+1
	}
}

// matchOne matches the pattern element at the start of pat (a literal byte,
// an escaped byte, ? or a class) against the start of s. It returns the
// bytes used in each. Like path.Match, literals compare bytes, ? and classes
// take one rune. pat is known to be well formed.
func matchOne(pat, s string) (n, m int, ok bool) {
	switch pat[0] {
	case '\\':
		return 2, 1, pat[1] == s[0]
	case '?':
		_, m := utf8.DecodeRuneInString(s)
		return 1, m, true
	case '[':
		return matchClass(pat, s)
	default:
		return 1, 1, pat[0] == s[0]
	}
}

// matchClass matches the class at the start of pat against the first rune
// of s.
func matchClass(pat, s string) (n, m int, ok bool) {
	r, m := utf8.DecodeRuneInString(s)
	i := 1
	negated := false
	if pat[i] == '^' {
		negated = true
		i++
	}
	matched := false
	for first := true; first || pat[i] != ']'; first = false {
		lo, w := classChar(pat[i:])
		i += w
		hi := lo
		if pat[i] == '-' {
			hi, w = classChar(pat[i+1:])
			i += 1 + w
		}
		if lo <= r && r <= hi {
			matched = true
		}
	}
	return i + 1, m, matched != negated
}

// classChar reads one (possibly escaped) character of a class.
func classChar(pat string) (rune, int) {
	if pat[0] == '\\' {
		r, w := utf8.DecodeRuneInString(pat[1:])
		return r, 1 + w
	}
	return utf8.DecodeRuneInString(pat)
}
