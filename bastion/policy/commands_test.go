package policy_test

import (
	"path"
	"strings"
	"testing"

	"github.com/bastionhq/bastion/bastion/policy"
)

// commandPolicy builds the policy of the command-rule tests.
//
//	alice: dev              bob: locked           carol: dev + locked
//	dave: approve-all       erin: plain           frank: web02-only
//	gina: dev + approve-all hank: broken          ivan: (no roles)
//	judy: weird             olga: order           pete: dev + ghost (undefined)
func commandPolicy() *policy.Policy {
	prod := policy.Selector{Labels: map[string]string{"env": "prod"}}
	return &policy.Policy{
		Targets: map[string]*policy.Target{
			"web01": {Name: "web01", Kind: policy.KindSSH, Labels: map[string]string{"env": "prod"}},
			"web02": {Name: "web02", Kind: policy.KindSSH, Labels: map[string]string{"env": "staging"}},
		},
		Roles: map[string]*policy.Role{
			"dev": {Name: "dev", Commands: []policy.CommandRule{
				{Name: "no-rm-rf", Action: policy.CommandDeny, Command: "rm", Args: "-rf *", Reason: "recursive deletes are not allowed"},
				{Name: "rm-needs-ok", Action: policy.CommandRequireApproval, Command: "rm"},
				{Name: "prod-no-restart", Action: policy.CommandDeny, Command: "systemctl", Args: "restart *", Targets: prod},
				{Name: "packages", Action: policy.CommandRequireApproval, Command: "apt*", Reason: "package changes need a second pair of eyes"},
			}},
			"locked": {Name: "locked", CommandDefault: policy.CommandDeny, Commands: []policy.CommandRule{
				{Name: "ls-ok", Action: policy.CommandAllow, Command: "ls"},
				{Name: "cat-ok", Action: policy.CommandAllow, Command: "cat"},
			}},
			"approve-all": {Name: "approve-all", CommandDefault: policy.CommandRequireApproval},
			"plain":       {Name: "plain"},
			"web02-only": {Name: "web02-only", Commands: []policy.CommandRule{
				{Name: "no-curl", Action: policy.CommandDeny, Command: "curl", Targets: policy.Selector{Names: []string{"web02"}}},
			}},
			"broken": {Name: "broken", Commands: []policy.CommandRule{
				{Name: "bad-pattern", Action: policy.CommandAllow, Command: "[rm"},
			}},
			"weird": {Name: "weird", Commands: []policy.CommandRule{
				{Name: "unknown-action", Action: "explode", Command: "rm"},
			}},
			"order": {Name: "order", Commands: []policy.CommandRule{
				{Name: "first", Action: policy.CommandAllow, Command: "rm"},
				{Name: "second", Action: policy.CommandDeny, Command: "rm"},
			}},
		},
		Users: map[string]*policy.User{
			"alice": {Name: "alice", Roles: []string{"dev"}},
			"bob":   {Name: "bob", Roles: []string{"locked"}},
			"carol": {Name: "carol", Roles: []string{"dev", "locked"}},
			"dave":  {Name: "dave", Roles: []string{"approve-all"}},
			"erin":  {Name: "erin", Roles: []string{"plain"}},
			"frank": {Name: "frank", Roles: []string{"web02-only"}},
			"gina":  {Name: "gina", Roles: []string{"dev", "approve-all"}},
			"hank":  {Name: "hank", Roles: []string{"broken"}},
			"ivan":  {Name: "ivan"},
			"judy":  {Name: "judy", Roles: []string{"weird"}},
			"olga":  {Name: "olga", Roles: []string{"order"}},
			"pete":  {Name: "pete", Roles: []string{"dev", "ghost"}},
		},
	}
}

// cmd builds a literal command.
func cmd(name string, args ...string) policy.Command {
	return policy.Command{Name: name, Args: args}
}

// dyn builds a command that cannot be known in advance.
func dyn(name string, args ...string) policy.Command {
	return policy.Command{Name: name, Args: args, Dynamic: true}
}

func TestDecideCommands(t *testing.T) {
	const (
		allow   = policy.CommandAllow
		deny    = policy.CommandDeny
		approve = policy.CommandRequireApproval
	)
	tests := []struct {
		name   string
		user   string
		target string
		cmds   []policy.Command
		action policy.CommandAction
		rule   string
		reason string // substring of the reason (which is empty when the line is allowed)
		named  int    // index in cmds of the command the decision names
	}{
		// One role, first matching rule.
		{name: "empty line is allowed", user: "alice", target: "web01", action: allow},
		{name: "empty line is allowed even for an unknown user", user: "nobody", target: "nowhere", action: allow},
		{name: "no rule matches: default allow", user: "alice", target: "web01", cmds: []policy.Command{cmd("ls", "-l")}, action: allow},
		{name: "deny rule with reason", user: "alice", target: "web01", cmds: []policy.Command{cmd("rm", "-rf", "/tmp/x")}, action: deny, rule: "no-rm-rf", reason: "recursive deletes are not allowed"},
		{name: "args star matches slashes and spaces", user: "alice", target: "web01", cmds: []policy.Command{cmd("rm", "-rf", "/var/log", "/etc")}, action: deny, rule: "no-rm-rf"},
		{name: "args pattern is on the joined arguments as written", user: "alice", target: "web01", cmds: []policy.Command{cmd("rm", "-r", "-f", "/")}, action: approve, rule: "rm-needs-ok"},
		{name: "require-approval rule without reason gets one", user: "alice", target: "web01", cmds: []policy.Command{cmd("rm", "x")}, action: approve, rule: "rm-needs-ok", reason: `"rm": rule rm-needs-ok says require-approval`},
		{name: "empty args pattern matches no arguments", user: "alice", target: "web01", cmds: []policy.Command{cmd("rm")}, action: approve, rule: "rm-needs-ok"},
		{name: "args pattern needs arguments to match", user: "alice", target: "web01", cmds: []policy.Command{cmd("systemctl")}, action: allow},
		{name: "command glob", user: "alice", target: "web01", cmds: []policy.Command{cmd("apt-get", "install", "nginx")}, action: approve, rule: "packages", reason: "second pair of eyes"},
		{name: "command glob is anchored", user: "alice", target: "web01", cmds: []policy.Command{cmd("xapt")}, action: allow},
		{name: "first rule in file order decides (allow before deny)", user: "olga", target: "web01", cmds: []policy.Command{cmd("rm", "x")}, action: allow, rule: "first"},
		{name: "allow rule on a default-deny role", user: "bob", target: "web01", cmds: []policy.Command{cmd("ls", "-la")}, action: allow, rule: "ls-ok"},
		{name: "default deny", user: "bob", target: "web01", cmds: []policy.Command{cmd("lsblk")}, action: deny, reason: `"lsblk" is not allowed: no rule of role locked allows it`},
		{name: "default require-approval", user: "dave", target: "web01", cmds: []policy.Command{cmd("ls")}, action: approve, reason: `"ls" needs approval: no rule of role approve-all allows it`},
		{name: "no roles: everything allowed", user: "ivan", target: "web01", cmds: []policy.Command{cmd("rm", "-rf", "/")}, action: allow},
		{name: "role without rules", user: "erin", target: "web01", cmds: []policy.Command{cmd("rm", "-rf", "/")}, action: allow},

		// Targets.
		{name: "label-scoped rule applies on a matching target", user: "alice", target: "web01", cmds: []policy.Command{cmd("systemctl", "restart", "nginx")}, action: deny, rule: "prod-no-restart"},
		{name: "label-scoped rule does not apply elsewhere", user: "alice", target: "web02", cmds: []policy.Command{cmd("systemctl", "restart", "nginx")}, action: allow},
		{name: "name-scoped rule applies on its target", user: "frank", target: "web02", cmds: []policy.Command{cmd("curl", "x")}, action: deny, rule: "no-curl", reason: `"curl": rule no-curl says deny`},
		{name: "name-scoped rule does not apply elsewhere", user: "frank", target: "web01", cmds: []policy.Command{cmd("curl", "x")}, action: allow},

		// Across roles: deny > require-approval > allow.
		{name: "two roles both allow: the rule is named", user: "carol", target: "web01", cmds: []policy.Command{cmd("ls")}, action: allow, rule: "ls-ok"},
		{name: "other role's default deny beats require-approval", user: "carol", target: "web01", cmds: []policy.Command{cmd("rm", "x")}, action: deny, reason: "no rule of role locked allows it"},
		{name: "allowed by one role, default-denied by the other", user: "carol", target: "web01", cmds: []policy.Command{cmd("vim")}, action: deny},
		{name: "require-approval default beats allow", user: "gina", target: "web01", cmds: []policy.Command{cmd("ls")}, action: approve, reason: "role approve-all"},
		{name: "deny rule beats require-approval default", user: "gina", target: "web01", cmds: []policy.Command{cmd("rm", "-rf", "/")}, action: deny, rule: "no-rm-rf"},
		{name: "undefined role is ignored", user: "pete", target: "web01", cmds: []policy.Command{cmd("rm", "-rf", "/")}, action: deny, rule: "no-rm-rf"},

		// The whole line.
		{name: "most restrictive command of the line wins", user: "alice", target: "web01",
			cmds:   []policy.Command{cmd("ls"), cmd("rm", "a"), cmd("apt", "install", "x"), cmd("rm", "-rf", "/"), cmd("cat")},
			action: deny, rule: "no-rm-rf", named: 3},
		{name: "first command with the most restrictive answer is named", user: "alice", target: "web01",
			cmds:   []policy.Command{cmd("ls"), cmd("rm", "a"), cmd("apt-get", "install", "x")},
			action: approve, rule: "rm-needs-ok", named: 1},
		{name: "all allowed: the first command is named", user: "alice", target: "web01",
			cmds:   []policy.Command{cmd("ls"), cmd("grep", "rm")},
			action: allow},

		// Commands that cannot be checked.
		{name: "dynamic command denied when rules apply", user: "alice", target: "web01", cmds: []policy.Command{dyn("")}, action: deny, reason: "this command cannot be checked"},
		{name: "dynamic argument denied when rules apply", user: "alice", target: "web01", cmds: []policy.Command{dyn("ls", "$HOME")}, action: deny, reason: `"ls" cannot be checked`},
		{name: "dynamic command in an otherwise allowed line", user: "alice", target: "web01", cmds: []policy.Command{cmd("ls"), dyn("r")}, action: deny, named: 1, reason: "cannot be checked"},
		{name: "dynamic command denied under a default-deny role", user: "bob", target: "web01", cmds: []policy.Command{dyn("ls")}, action: deny, reason: "cannot be checked"},
		{name: "dynamic command allowed when no rules exist", user: "erin", target: "web01", cmds: []policy.Command{dyn("")}, action: allow},
		{name: "dynamic command allowed when no rules apply to the target", user: "frank", target: "web01", cmds: []policy.Command{dyn("")}, action: allow},
		{name: "dynamic command denied when a target-scoped rule applies", user: "frank", target: "web02", cmds: []policy.Command{dyn("")}, action: deny, reason: "restricted on web02"},
		{name: "dynamic command under a rule-less default goes by the default", user: "dave", target: "web01", cmds: []policy.Command{dyn("")}, action: approve},

		// Fail closed.
		{name: "unknown target", user: "alice", target: "web09", cmds: []policy.Command{cmd("ls")}, action: deny, reason: `unknown target "web09"`},
		{name: "unknown user", user: "mallory", target: "web01", cmds: []policy.Command{cmd("ls")}, action: deny, reason: `unknown user "mallory"`},
		{name: "malformed pattern denies", user: "hank", target: "web01", cmds: []policy.Command{cmd("ls")}, action: deny, rule: "bad-pattern", reason: "invalid pattern"},
		{name: "unknown action denies", user: "judy", target: "web01", cmds: []policy.Command{cmd("rm")}, action: deny, rule: "unknown-action"},
	}
	pol := commandPolicy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := pol.DecideCommands(tt.user, tt.target, tt.cmds)
			if d.Action != tt.action || d.Rule != tt.rule {
				t.Errorf("decision = %s by rule %q (%q), want %s by rule %q", d.Action, d.Rule, d.Reason, tt.action, tt.rule)
			}
			if tt.action == policy.CommandAllow && d.Reason != "" {
				t.Errorf("reason = %q, want none for an allowed line", d.Reason)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Errorf("reason = %q, want it to contain %q", d.Reason, tt.reason)
			}
			var want policy.Command
			if len(tt.cmds) > 0 {
				want = tt.cmds[tt.named]
			}
			if d.Command.Name != want.Name || strings.Join(d.Command.Args, " ") != strings.Join(want.Args, " ") || d.Command.Dynamic != want.Dynamic {
				t.Errorf("named command = %+v, want %+v", d.Command, want)
			}
		})
	}
}

func TestCommandActionValid(t *testing.T) {
	for _, tt := range []struct {
		a    policy.CommandAction
		want bool
	}{
		{policy.CommandAllow, true}, {policy.CommandDeny, true}, {policy.CommandRequireApproval, true},
		{"", false}, {"Allow", false}, {"approve", false},
	} {
		if got := tt.a.Valid(); got != tt.want {
			t.Errorf("%q.Valid() = %v, want %v", tt.a, got, tt.want)
		}
	}
}

func TestGlob(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		s       string
		want    bool
		bad     bool
	}{
		{name: "empty matches empty", pattern: "", s: "", want: true},
		{name: "empty matches nothing else", pattern: "", s: "a"},
		{name: "literal", pattern: "rm", s: "rm", want: true},
		{name: "literal is anchored", pattern: "rm", s: "rmdir"},
		{name: "star matches empty", pattern: "*", s: "", want: true},
		{name: "star crosses slashes and spaces", pattern: "-rf *", s: "-rf /var/log /etc", want: true},
		{name: "star in the middle", pattern: "*/etc/*", s: "-f /etc/passwd", want: true},
		{name: "several stars", pattern: "*a*b*c*", s: "xxaxxbxxcxx", want: true},
		{name: "several stars, wrong order", pattern: "*a*b*c*", s: "xxcxxbxxaxx"},
		{name: "star then suffix", pattern: "*.log", s: "/var/log/x.log", want: true},
		{name: "star then suffix, no match", pattern: "*.log", s: "/var/log/x.log.gz"},
		{name: "double star", pattern: "**", s: "abc", want: true},
		{name: "question mark matches one rune", pattern: "a?c", s: "a/c", want: true},
		{name: "question mark matches a multibyte rune", pattern: "?", s: "é", want: true},
		{name: "question mark needs a rune", pattern: "a?", s: "a"},
		{name: "class", pattern: "[a-c]x", s: "bx", want: true},
		{name: "class miss", pattern: "[a-c]x", s: "dx"},
		{name: "negated class", pattern: "[^a-c]x", s: "bx"},
		{name: "negated class match", pattern: "[^a-c]x", s: "/x", want: true},
		{name: "class with several ranges and an escape", pattern: `[a-cx\-]`, s: "-", want: true},
		{name: "unicode range", pattern: "[é-ê]", s: "ê", want: true},
		{name: "escaped star is literal", pattern: `\*`, s: "*", want: true},
		{name: "escaped star does not match other text", pattern: `\*`, s: "a"},
		{name: "star backtracks over classes", pattern: "*[0-9]", s: "abc9", want: true},
		{name: "no exponential blow-up", pattern: "*a*a*a*a*a*a*a*a*a*b", s: strings.Repeat("a", 4000)},
		{name: "unclosed class", pattern: "[a-", s: "a", bad: true},
		{name: "trailing backslash", pattern: `a\`, s: "a", bad: true},
		{name: "empty class", pattern: "[]", s: "", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := policy.Glob(tt.pattern, tt.s)
			if (err != nil) != tt.bad {
				t.Fatalf("Glob(%q, %q) error = %v, want error: %v", tt.pattern, tt.s, err, tt.bad)
			}
			if got != tt.want {
				t.Errorf("Glob(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
			}
		})
	}
}

// FuzzGlob checks Glob against path.Match on names without slashes, where
// the two must agree.
func FuzzGlob(f *testing.F) {
	for _, seed := range [][2]string{
		{"*", "abc"}, {"a?c", "abc"}, {"[a-c]*", "b"}, {`\[x]`, "[x]"}, {"[^é]", "e"},
		{"*a*b", "aab"}, {"[", "x"}, {"a*", ""}, {"*\xff", "a\xff"},
		// Found by the fuzzer: literals compare bytes, and * may stop
		// inside a multibyte rune, whose bytes ? then takes one by one.
		{"a\xef", "a\xff"}, {"*??", "뀖"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if strings.Contains(s, "/") || len(pattern) > 64 || len(s) > 256 {
			return
		}
		got, err := policy.Glob(pattern, s)
		want, werr := path.Match(pattern, s)
		if (err != nil) != (werr != nil) || got != want {
			t.Fatalf("Glob(%q, %q) = %v, %v; path.Match = %v, %v", pattern, s, got, err, want, werr)
		}
	})
}

// TestDecideDynamicArgs: a command whose name is literal but whose
// arguments are only known at run time is decided by its name, unless a
// rule matching it looks at arguments.
func TestDecideDynamicArgs(t *testing.T) {
	p := &policy.Policy{
		Users:   map[string]*policy.User{"alice": {Name: "alice", Roles: []string{"dev"}}},
		Targets: map[string]*policy.Target{"web01": {Name: "web01", Kind: policy.KindSSH}},
		Roles: map[string]*policy.Role{"dev": {Name: "dev", Commands: []policy.CommandRule{
			{Name: "no-rm", Action: policy.CommandDeny, Command: "rm", Reason: "no deleting"},
			{Name: "no-shadow", Action: policy.CommandDeny, Command: "cat", Args: "*shadow*", Reason: "no secrets"},
		}}},
	}
	tests := []struct {
		name string
		cmd  policy.Command
		want policy.CommandAction
		rule string
	}{
		{"name-only rule denies", policy.Command{Name: "rm", Args: []string{"$X"}, DynamicArgs: true}, policy.CommandDeny, "no-rm"},
		{"no rule for the name allows", policy.Command{Name: "echo", Args: []string{"$HOME"}, DynamicArgs: true}, policy.CommandAllow, ""},
		{"a rule on arguments cannot be checked", policy.Command{Name: "cat", Args: []string{"$F"}, DynamicArgs: true}, policy.CommandDeny, "no-shadow"},
		{"literal arguments are checked", policy.Command{Name: "cat", Args: []string{"/etc/hosts"}}, policy.CommandAllow, ""},
		{"a dynamic name is denied", policy.Command{Name: "", Args: []string{"x"}, Dynamic: true}, policy.CommandDeny, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := p.DecideCommands("alice", "web01", []policy.Command{tc.cmd})
			if d.Action != tc.want || d.Rule != tc.rule {
				t.Fatalf("got %s by %q (%s), want %s by %q", d.Action, d.Rule, d.Reason, tc.want, tc.rule)
			}
		})
	}
	if !p.CommandsRestricted("alice", "web01") || !p.CommandsRestricted("nobody", "web01") {
		t.Fatal("CommandsRestricted: rules apply to alice on web01, and unknown users are restricted")
	}
}
