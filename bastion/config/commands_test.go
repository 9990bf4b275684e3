package config_test

import (
	"testing"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
)

// commandsConfig uses every field of the per-command rules.
const commandsConfig = `data_dir: /data
users:
  - name: alice
    roles: [developer, readonly]
targets:
  - name: web01
    kind: ssh
    address: 10.0.1.1:22
    labels: {env: prod}
  - name: web02
    kind: ssh
    address: 10.0.1.2:22
    labels: {env: staging}
roles:
  developer:
    command_default: allow
    commands:
      - name: no-rm-rf
        action: deny
        command: rm
        args: "-rf *"
        reason: recursive deletes are not allowed
      - name: prod-restarts
        action: require-approval
        command: systemctl
        args: "restart *"
        labels: {env: prod}
        reason: restarts in production need an approver
        approvers: [readonly]
      - name: no-curl-on-web
        action: deny
        command: "curl"
        targets: ["web*"]
  readonly:
    command_default: require-approval
    commands:
      - name: reads
        action: allow
        command: "[a-z]*"
        args: "*"
  plain: {}
`

func TestParseCommandRules(t *testing.T) {
	cfg, err := config.Parse("/etc/bastion/bastion.yaml", []byte(commandsConfig), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	dev := cfg.Policy.Roles["developer"]
	eq(t, dev.CommandDefault, policy.CommandAllow)
	eq(t, dev.Commands, []policy.CommandRule{
		{Name: "no-rm-rf", Action: policy.CommandDeny, Command: "rm", Args: "-rf *", Reason: "recursive deletes are not allowed"},
		{
			Name: "prod-restarts", Action: policy.CommandRequireApproval, Command: "systemctl", Args: "restart *",
			Targets: policy.Selector{Labels: map[string]string{"env": "prod"}}, Reason: "restarts in production need an approver", Approvers: []string{"readonly"},
		},
		{Name: "no-curl-on-web", Action: policy.CommandDeny, Command: "curl", Targets: policy.Selector{Names: []string{"web*"}}},
	})
	ro := cfg.Policy.Roles["readonly"]
	eq(t, ro.CommandDefault, policy.CommandRequireApproval)
	eq(t, ro.Commands, []policy.CommandRule{{Name: "reads", Action: policy.CommandAllow, Command: "[a-z]*", Args: "*"}})
	plain := cfg.Policy.Roles["plain"]
	if plain.CommandDefault != "" || plain.Commands != nil {
		t.Errorf("role without command rules: default %q, rules %v; want none", plain.CommandDefault, plain.Commands)
	}

	// The parsed policy decides.
	for _, tt := range []struct {
		target string
		cmd    policy.Command
		want   policy.CommandAction
		rule   string
	}{
		{"web01", policy.Command{Name: "ls", Args: []string{"-l"}}, policy.CommandAllow, "reads"},
		{"web01", policy.Command{Name: "rm", Args: []string{"-rf", "/"}}, policy.CommandDeny, "no-rm-rf"},
		{"web01", policy.Command{Name: "systemctl", Args: []string{"restart", "nginx"}}, policy.CommandRequireApproval, "prod-restarts"},
		{"web02", policy.Command{Name: "systemctl", Args: []string{"restart", "nginx"}}, policy.CommandAllow, "reads"},
		{"web02", policy.Command{Name: "curl", Args: []string{"x"}}, policy.CommandDeny, "no-curl-on-web"},
		{"web02", policy.Command{Name: "7z"}, policy.CommandRequireApproval, ""},
	} {
		d := cfg.Policy.DecideCommands("alice", tt.target, []policy.Command{tt.cmd})
		if d.Action != tt.want || d.Rule != tt.rule {
			t.Errorf("%s on %s: %s by %q (%s), want %s by %q", tt.cmd.Name, tt.target, d.Action, d.Rule, d.Reason, tt.want, tt.rule)
		}
	}
}

// commandsHead is a valid file whose last line (10) is inside the first
// command rule of role developer, so that a case can add fields to that rule
// from line 11 on, or more rules.
const commandsHead = `data_dir: /data
users:
  - name: alice
    roles: [developer]
roles:
  developer:
    commands:
      - name: no-rm
        action: deny
        command: rm
`

func TestParseCommandRuleErrors(t *testing.T) {
	const rule0, rule1 = "roles.developer.commands[0]", "roles.developer.commands[1]"
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{
			name: "missing name",
			yaml: commandsHead + "      - action: deny\n        command: curl\n",
			want: `bastion.yaml:11: ` + rule1 + `.name: required: a name for the rule (shown to users and in the audit log)`,
		},
		{
			name: "duplicate name",
			yaml: commandsHead + "      - name: no-rm\n        action: allow\n        command: rmdir\n",
			want: `bastion.yaml:11: ` + rule1 + `.name: duplicate rule name "no-rm" (also commands[0])`,
		},
		{
			name: "invalid name",
			yaml: commandsHead + "      - name: no rm!\n        action: allow\n        command: rmdir\n",
			want: `bastion.yaml:11: ` + rule1 + `.name: invalid rule name "no rm!" (letters, digits, . _ -; at most 64)`,
		},
		{
			name: "missing action",
			yaml: commandsHead + "      - name: curl\n        command: curl\n",
			want: `bastion.yaml:11: ` + rule1 + `.action: required: allow, deny or require-approval`,
		},
		{
			name: "unknown action",
			yaml: commandsHead + "      - name: curl\n        action: block\n        command: curl\n",
			want: `bastion.yaml:12: ` + rule1 + `.action: must be allow, deny or require-approval, not "block"`,
		},
		{
			name: "missing command",
			yaml: commandsHead + "      - name: curl\n        action: deny\n",
			want: `bastion.yaml:11: ` + rule1 + `.command: required: a pattern for the command's name (e.g. rm, systemctl, apt*)`,
		},
		{
			name: "invalid command pattern",
			yaml: commandsHead + "      - name: curl\n        action: deny\n        command: \"[curl\"\n",
			want: `bastion.yaml:13: ` + rule1 + `.command: invalid pattern "[curl"`,
		},
		{
			name: "command pattern with a directory",
			yaml: commandsHead + "      - name: curl\n        action: deny\n        command: /usr/bin/curl\n",
			want: `bastion.yaml:13: ` + rule1 + `.command: patterns match the command's name without its directory: use "curl", not "/usr/bin/curl"`,
		},
		{
			name: "invalid args pattern",
			yaml: commandsHead + "        args: \"-rf [\"\n",
			want: `bastion.yaml:11: ` + rule0 + `.args: invalid pattern "-rf ["`,
		},
		{
			name: "invalid target pattern",
			yaml: commandsHead + "        targets: [web01, \"web[\"]\n",
			want: `bastion.yaml:11: ` + rule0 + `.targets[1]: invalid pattern "web["`,
		},
		{
			name: "unknown command_default",
			yaml: commandsHead + "    command_default: block\n",
			want: `bastion.yaml:11: roles.developer.command_default: must be allow, deny or require-approval, not "block"`,
		},
		{
			name: "unknown field in a rule",
			yaml: commandsHead + "        pattern: rm\n",
			want: `bastion.yaml:11: ` + rule0 + `.pattern: unknown field "pattern"`,
		},
		{
			name: "labels of the wrong type",
			yaml: commandsHead + "        labels: [prod]\n",
			want: "bastion.yaml:11: " + rule0 + ".labels[0]: cannot unmarshal !!seq into map[string]string",
		},
		{
			name: "every error of a rule at once",
			yaml: commandsHead + "      - action: maybe\n        command: \"/bin/[\"\n        args: \"[\"\n",
			want: `bastion.yaml:11: ` + rule1 + `.action: must be allow, deny or require-approval, not "maybe"` + "\n" +
				`bastion.yaml:11: ` + rule1 + `.name: required: a name for the rule (shown to users and in the audit log)` + "\n" +
				`bastion.yaml:12: ` + rule1 + `.command: invalid pattern "/bin/["` + "\n" +
				`bastion.yaml:13: ` + rule1 + `.args: invalid pattern "["`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkParseError(t, tt.yaml, tt.want)
		})
	}
}

// The head of the error table is itself valid.
func TestCommandsHeadIsValid(t *testing.T) {
	if _, err := config.Parse("bastion.yaml", []byte(commandsHead), testEnv); err != nil {
		t.Fatal(err)
	}
}
