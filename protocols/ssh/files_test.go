package ssh

import (
	"strings"
	"testing"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/protocols/ssh/transfer"
)

// TestDecideSFTP: paths are normalised before the rules see them (.., //,
// relative paths against the working directory, a symlink's target
// against the link's directory); what cannot be checked is refused.
func TestDecideSFTP(t *testing.T) {
	p := &policy.Policy{
		Users:   map[string]*policy.User{"alice": {Name: "alice", Roles: []string{"dev"}}},
		Targets: map[string]*policy.Target{"web01": {Name: "web01", Kind: policy.KindSSH}},
		Roles: map[string]*policy.Role{"dev": {Name: "dev", CommandDefault: policy.CommandDeny, Files: []policy.FileRule{
			{Name: "pub", Action: policy.CommandAllow, Paths: []string{"/srv/pub/**"}},
			{Name: "home", Action: policy.CommandAllow, Ops: []policy.FileOp{policy.FileRead, policy.FileList}, Paths: []string{"/root/**"}},
		}}},
	}
	rules := PolicyRules{Policy: func() *policy.Policy { return p }}
	tests := []struct {
		name string
		q    transfer.Request
		deny string // "" allowed, else a part of the refusal
	}{
		{"allowed upload", transfer.Request{Name: "open", Ops: []string{"write", "create"}, Paths: []string{"/srv/pub/a"}}, ""},
		{"dot dot escape", transfer.Request{Name: "open", Ops: []string{"write"}, Paths: []string{"/srv/pub/../../etc/cron.d/x"}}, "write of /etc/cron.d/x is not allowed"},
		{"double slashes", transfer.Request{Name: "remove", Ops: []string{"remove"}, Paths: []string{"//srv//pub//a/"}}, ""},
		{"relative with a working directory", transfer.Request{Name: "open", Ops: []string{"read"}, Paths: []string{"notes.txt"}, Dir: "/root"}, ""},
		{"relative escaping it", transfer.Request{Name: "open", Ops: []string{"read"}, Paths: []string{"../etc/shadow"}, Dir: "/root"}, "read of /etc/shadow"},
		{"relative before the working directory is known", transfer.Request{Name: "open", Ops: []string{"read"}, Paths: []string{"notes.txt"}}, "read of a relative path is not allowed"},
		{"symlink inside pub", transfer.Request{Name: "symlink", Ops: []string{"symlink"}, Paths: []string{"/srv/pub/l", "x"}, LinkTarget: true}, ""},
		{"symlink pointing out of pub", transfer.Request{Name: "symlink", Ops: []string{"symlink"}, Paths: []string{"/srv/pub/l", "../../etc/shadow"}, LinkTarget: true}, "symlink of /etc/shadow"},
		{"rename out of pub", transfer.Request{Name: "rename", Ops: []string{"rename"}, Paths: []string{"/srv/pub/a", "/tmp/a"}}, "rename of /tmp/a"},
		{"NUL byte", transfer.Request{Name: "remove", Ops: []string{"remove"}, Paths: []string{"/etc/shadow\x00/../../srv/pub/a"}}, "NUL byte"},
		{"unchecked", transfer.Request{Name: "evil@example.com", Unchecked: "unknown"}, "evil@example.com cannot be checked (unknown)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := decideSFTP(rules, "alice", "web01", tc.q)
			if (got == "") != (tc.deny == "") || !strings.Contains(got, tc.deny) {
				t.Fatalf("decideSFTP = %q; want %q", got, tc.deny)
			}
		})
	}
}
