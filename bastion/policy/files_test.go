package policy

import "testing"

func TestCleanPath(t *testing.T) {
	tests := []struct {
		name, dir, p, want string
		ok                 bool
	}{
		{"absolute", "", "/srv/a", "/srv/a", true},
		{"double slash", "", "/srv//a", "/srv/a", true},
		{"leading double slash", "", "//etc/passwd", "/etc/passwd", true},
		{"trailing slash", "", "/srv/a/", "/srv/a", true},
		{"dot", "", "/srv/./a", "/srv/a", true},
		{"dot dot escape", "", "/srv/pub/../../etc/shadow", "/etc/shadow", true},
		{"dot dot above root", "", "/../../etc", "/etc", true},
		{"relative with home", "/root", "pub/../x", "/root/x", true},
		{"relative escaping home", "/home/a", "../../etc/passwd", "/etc/passwd", true},
		{"relative dot", "/root", ".", "/root", true},
		{"empty is the working directory", "/root", "", "/root", true},
		{"relative without home", "", "pub/x", "", true},
		{"tilde is a name to the server", "/root", "~/x", "/root/~/x", true},
		{"NUL byte", "", "/etc/shadow\x00/../../srv/pub/x", "", false},
		{"NUL in relative", "/root", "a\x00b", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := CleanPath(tc.dir, tc.p)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("CleanPath(%q, %q) = %q, %v; want %q, %v", tc.dir, tc.p, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestMatchPath(t *testing.T) {
	tests := []struct {
		pattern, p string
		want       bool
	}{
		{"/srv/**", "/srv", true},
		{"/srv/**", "/srv/a", true},
		{"/srv/**", "/srv/a/b/c", true},
		{"/srv/**", "/srvx", false},
		{"/srv/**", "/", false},
		{"/srv/*", "/srv/a", true},
		{"/srv/*", "/srv/a/b", false},
		{"/srv/*", "/srv", false},
		{"/srv/*.log", "/srv/x.log", true},
		{"/srv/*.log", "/srv/.log", true},
		{"/srv/**/*.key", "/srv/a/b/c.key", true},
		{"/srv/**/*.key", "/srv/c.key", true},
		{"/srv/**/*.key", "/srv/c.pem", false},
		{"/home/*/.ssh/**", "/home/alice/.ssh/authorized_keys", true},
		{"/home/*/.ssh/**", "/home/alice/ssh/x", false},
		{"/**", "/", true},
		{"/**", "/etc/shadow", true},
		{"/etc/passwd", "/etc/passwd", true},
		{"/etc/passwd", "/etc/passwd2", false},
		{"/etc/p?sswd", "/etc/passwd", true},
		{"/etc/[ps]*", "/etc/shadow", true},
		{"/etc/[", "/etc/[", false}, // malformed: matches nothing
		{"/**/x/**/y/**/z", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w", false},
	}
	for _, tc := range tests {
		if got := MatchPath(tc.pattern, tc.p); got != tc.want {
			t.Errorf("MatchPath(%q, %q) = %v; want %v", tc.pattern, tc.p, got, tc.want)
		}
	}
}

func TestValidPathPattern(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "/srv/**", want: "/srv/**"},
		{in: "/srv//pub/", want: "/srv/pub"},
		{in: "/srv/pub/../x", want: "/srv/x"},
		{in: "srv/**", bad: true},
		{in: "", bad: true},
		{in: "/srv/a**", bad: true},
		{in: "/srv/[", bad: true},
		{in: "/**/**/**/**/**", bad: true},
	}
	for _, tc := range tests {
		got, err := ValidPathPattern(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ValidPathPattern(%q) = %q, %v; want %q (bad %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func filesPolicy(roles ...*Role) *Policy {
	p := &Policy{Users: map[string]*User{"alice": {Name: "alice"}}, Roles: map[string]*Role{},
		Targets: map[string]*Target{"web01": {Name: "web01", Kind: KindSSH}, "db1": {Name: "db1", Kind: KindSSH}}}
	for _, r := range roles {
		p.Roles[r.Name] = r
		p.Users["alice"].Roles = append(p.Users["alice"].Roles, r.Name)
	}
	return p
}

func TestDecideFile(t *testing.T) {
	rules := &Role{Name: "dev", CommandDefault: CommandDeny, Files: []FileRule{
		{Name: "keep-pub", Action: CommandDeny, Ops: []FileOp{FileRemove, FileRename}, Paths: []string{"/srv/pub/**"}, Reason: "pub is append-only"},
		{Name: "pub", Action: CommandAllow, Paths: []string{"/srv/pub/**"}},
		{Name: "logs", Action: CommandAllow, Ops: []FileOp{FileRead, FileList}, Paths: []string{"/var/log/**"}},
		{Name: "db-only", Action: CommandAllow, Paths: []string{"/data/**"}, Targets: Selector{Names: []string{"db1"}}},
	}}
	open := &Role{Name: "ops", Files: []FileRule{
		{Name: "no-keys", Action: CommandDeny, Ops: []FileOp{FileRead}, Paths: []string{"/etc/ssh/*_key"}},
	}}
	tests := []struct {
		name   string
		role   *Role
		target string
		op     FileOp
		paths  []string
		want   CommandAction
		rule   string
	}{
		{"allowed write under glob", rules, "web01", FileWrite, []string{"/srv/pub/a"}, CommandAllow, "pub"},
		{"allowed list of the glob's root", rules, "web01", FileList, []string{"/srv/pub"}, CommandAllow, "pub"},
		{"deny rule before allow", rules, "web01", FileRemove, []string{"/srv/pub/a"}, CommandDeny, "keep-pub"},
		{"rename out of pub", rules, "web01", FileRename, []string{"/srv/pub/a", "/tmp/a"}, CommandDeny, "keep-pub"},
		{"default deny", rules, "web01", FileWrite, []string{"/etc/passwd"}, CommandDeny, ""},
		{"op not in rule", rules, "web01", FileWrite, []string{"/var/log/syslog"}, CommandDeny, ""},
		{"read allowed", rules, "web01", FileRead, []string{"/var/log/syslog"}, CommandAllow, "logs"},
		{"rule for another target", rules, "web01", FileWrite, []string{"/data/x"}, CommandDeny, ""},
		{"rule for this target", rules, "db1", FileWrite, []string{"/data/x"}, CommandAllow, "db-only"},
		{"unknown path under deny default", rules, "web01", FileRead, []string{""}, CommandDeny, ""},
		{"symlink checks both ends", rules, "web01", FileSymlink, []string{"/srv/pub/l", "/etc/shadow"}, CommandDeny, ""},
		{"symlink inside", rules, "web01", FileSymlink, []string{"/srv/pub/l", "/srv/pub/x"}, CommandAllow, ""},
		{"open role allows by default", open, "web01", FileWrite, []string{"/etc/passwd"}, CommandAllow, ""},
		{"open role deny rule", open, "web01", FileRead, []string{"/etc/ssh/ssh_host_ed25519_key"}, CommandDeny, "no-keys"},
		{"open role unknown path and a deny that could match", open, "web01", FileRead, []string{""}, CommandDeny, "no-keys"},
		{"open role unknown path, no deny for the op", open, "web01", FileWrite, []string{""}, CommandAllow, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := filesPolicy(tc.role).DecideFile("alice", tc.target, tc.op, tc.paths...)
			if d.Action != tc.want || (tc.rule != "" && d.Rule != tc.rule) {
				t.Fatalf("DecideFile(%s %v) = %+v; want %s by %q", tc.op, tc.paths, d, tc.want, tc.rule)
			}
			if !d.Allowed() && d.Reason == "" {
				t.Fatalf("a refusal without a reason: %+v", d)
			}
		})
	}
	// Across roles the most restrictive answer wins.
	if d := filesPolicy(open, rules).DecideFile("alice", "web01", FileWrite, "/etc/passwd"); d.Allowed() {
		t.Fatalf("two roles: %+v", d)
	}
	if d := filesPolicy(rules).DecideFile("nobody", "web01", FileRead, "/srv/pub/a"); d.Allowed() {
		t.Fatalf("unknown user allowed: %+v", d)
	}
}

func TestFilesClosedAndRestricted(t *testing.T) {
	denyNoFiles := &Role{Name: "locked", CommandDefault: CommandDeny, Commands: []CommandRule{{Name: "ls", Action: CommandAllow, Command: "ls"}}}
	denyWithFiles := &Role{Name: "dev", CommandDefault: CommandDeny, Files: []FileRule{{Name: "pub", Action: CommandAllow, Paths: []string{"/srv/**"}}}}
	elsewhere := &Role{Name: "db", CommandDefault: CommandDeny, Files: []FileRule{{Name: "pub", Action: CommandAllow, Paths: []string{"/srv/**"}, Targets: Selector{Names: []string{"db1"}}}}}
	plain := &Role{Name: "plain"}
	approval := &Role{Name: "appr", CommandDefault: CommandRequireApproval}
	tests := []struct {
		name               string
		roles              []*Role
		closed, restricted bool
	}{
		{"command_default deny, no files rule", []*Role{denyNoFiles}, true, true},
		{"command_default deny with an allow rule", []*Role{denyWithFiles}, false, true},
		{"allow rule for another target only", []*Role{elsewhere}, true, true},
		{"no rules at all", []*Role{plain}, false, false},
		{"require-approval default", []*Role{approval}, true, true},
		{"one locked role among others", []*Role{plain, denyNoFiles}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filesPolicy(tc.roles...)
			if got := p.FilesClosed("alice", "web01"); got != tc.closed {
				t.Errorf("FilesClosed = %v; want %v", got, tc.closed)
			}
			if got := p.FilesRestricted("alice", "web01"); got != tc.restricted {
				t.Errorf("FilesRestricted = %v; want %v", got, tc.restricted)
			}
		})
	}
}
