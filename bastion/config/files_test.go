package config_test

import (
	"testing"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
)

// filesHead is a valid file whose developer role's files list starts at
// line 8.
const filesHead = `data_dir: /data
users:
  - {name: alice, roles: [developer]}
targets:
  - {name: web01, kind: ssh, address: "10.0.1.1:22"}
roles:
  developer:
    files:
`

func TestParseFileRules(t *testing.T) {
	yaml := filesHead + `      - name: no-keys
        action: deny
        operations: [read, Write]
        paths: ["/etc/ssh/*_key", "/home//*/.ssh/"]
        reason: keys stay on the server
      - name: uploads
        action: allow
        paths: ["/srv/uploads/**"]
        targets: ["web*"]
    command_default: deny
`
	cfg, err := config.Parse("bastion.yaml", []byte(yaml), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, cfg.Policy.Roles["developer"].Files, []policy.FileRule{
		{Name: "no-keys", Action: policy.CommandDeny, Ops: []policy.FileOp{policy.FileRead, policy.FileWrite},
			Paths: []string{"/etc/ssh/*_key", "/home/*/.ssh"}, Reason: "keys stay on the server"},
		{Name: "uploads", Action: policy.CommandAllow, Paths: []string{"/srv/uploads/**"}, Targets: policy.Selector{Names: []string{"web*"}}},
	})
	p := cfg.Policy
	if d := p.DecideFile("alice", "web01", policy.FileWrite, "/srv/uploads/a/b"); !d.Allowed() {
		t.Errorf("upload under the allowed glob: %+v", d)
	}
	if d := p.DecideFile("alice", "web01", policy.FileRead, "/etc/ssh/ssh_host_rsa_key"); d.Allowed() || d.Rule != "no-keys" {
		t.Errorf("host key read: %+v", d)
	}
	if !p.FilesRestricted("alice", "web01") || p.FilesClosed("alice", "web01") {
		t.Errorf("restricted %v, closed %v; want true, false", p.FilesRestricted("alice", "web01"), p.FilesClosed("alice", "web01"))
	}
}

func TestParseFileRuleErrors(t *testing.T) {
	tests := []struct{ name, rules, want string }{
		{"require-approval", "      - {name: a, action: require-approval, paths: [/srv/**]}\n",
			"bastion.yaml:9: roles.developer.files[0].action: require-approval is not supported for file rules yet: use allow or deny"},
		{"unknown operation", "      - {name: a, action: deny, operations: [read, delete], paths: [/srv/**]}\n",
			"bastion.yaml:9: roles.developer.files[0].operations[1]: unknown file operation \"delete\" (known: read, write, create, remove, rename, mkdir, rmdir, setstat, symlink, readlink, list)"},
		{"no paths", "      - {name: a, action: deny}\n",
			"bastion.yaml:9: roles.developer.files[0].paths: required: absolute path globs the rule is about (e.g. /var/log/**, /srv/app/*.conf)"},
		{"relative path", "      - name: a\n        action: allow\n        paths: [/srv/**, srv/x]\n",
			"bastion.yaml:11: roles.developer.files[0].paths[1]: path pattern \"srv/x\" is not absolute (start it with /)"},
		{"bad double star", "      - {name: a, action: allow, paths: [/srv/a**]}\n",
			"bastion.yaml:9: roles.developer.files[0].paths[0]: path pattern \"/srv/a**\": ** must be a whole part of the path (/srv/**/x)"},
		{"duplicate name", "      - {name: a, action: allow, paths: [/srv/**]}\n      - {name: a, action: deny, paths: [/etc/**]}\n",
			"bastion.yaml:10: roles.developer.files[1].name: duplicate rule name \"a\" (also files[0])"},
		{"bad action", "      - {name: a, action: permit, paths: [/srv/**]}\n",
			"bastion.yaml:9: roles.developer.files[0].action: must be allow, deny or require-approval, not \"permit\""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkParseError(t, filesHead+tc.rules, tc.want)
		})
	}
}
