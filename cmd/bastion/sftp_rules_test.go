package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
)

// sftpRulesRoles: developers may transfer files under pub/ (but not remove
// or rename what is there) and read under ro/, nothing else (their
// command_default is deny); leads have command_default deny and no file
// rule, so no file transfer at all. A command rule allows scp, to show that
// legacy scp still cannot go around the file rules.
const sftpRulesRoles = `
roles:
  developer:
    request:
      - targets: [web01]
        logins: [root]
        approvers: [lead]
    command_default: deny
    commands:
      - {name: scp-ok, action: allow, command: scp}
    files:
      - {name: pub-stays, action: deny, operations: [remove, rename], paths: ["%[1]s/pub/**"], reason: published files stay}
      - {name: pub, action: allow, paths: ["%[1]s/pub/**"]}
      - {name: ro, action: allow, operations: [read, list], paths: ["%[1]s/ro/**"]}
  lead:
    request:
      - targets: [web01]
        logins: [root]
        approvers: [lead]
    command_default: deny
  auditor:
    permissions: [audit]
`

// startSFTPRulesBastion starts a bastion with sftpRulesRoles over remote,
// in front of a real sshd (web01, this machine).
func startSFTPRulesBastion(t *testing.T, remote string) *proxyBastion {
	t.Helper()
	p := &proxyBastion{}
	p.testBastion = startBastionWith(t, options{
		roles: fmt.Sprintf(sftpRulesRoles, remote),
		targets: func(t *testing.T, cas *ca.Set) string {
			p.web01 = harness.NewSSHD(t, harness.SSHDConfig{TrustedUserCAKeys: []string{cas.Upstream.AuthorizedKey()}})
			pinned := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(p.web01.HostPublicKey)))
			return fmt.Sprintf("targets:\n  - {name: web01, kind: ssh, address: %q, host_key: %q}\n", p.web01.Addr, pinned)
		},
	})
	return p
}

// certFor has user request web01 as root, approver approve it, and writes
// the certificate to a file; it returns the file.
func (p *proxyBastion) certFor(t *testing.T, user, approver string) string {
	t.Helper()
	r := p.mustRequest(user, "web01", "--login", "root", "--for", "30m", "--reason", "test")
	p.mustRun(approver, "approve", fmt.Sprint(r.ID))
	path := filepath.Join(p.dir, fmt.Sprintf("%s-%d-cert.pub", user, r.ID))
	if err := os.WriteFile(path, []byte(p.mustRun(user, "cert", fmt.Sprint(r.ID))), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// transferOpts are the options sftp and scp need to reach web01 through
// the bastion as user with cert.
func (p *proxyBastion) transferOpts(user, cert string) []string {
	return []string{"-F", "/dev/null", "-P", p.sshPort, "-i", filepath.Join(p.dir, "keys", user),
		"-o", "CertificateFile=" + cert, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + p.knownHosts,
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"}
}

// TestSFTPFileRules: the file rules decide every sftp and scp operation.
// A refused one gets "Permission denied" and the session goes on; every
// refusal is audited and recorded; a role with command_default: deny and
// no file rule gets no file transfer at all; legacy scp, which cannot be
// checked file by file, is refused where file rules apply.
func TestSFTPFileRules(t *testing.T) {
	t.Parallel()
	remote := t.TempDir() // the target is this machine
	for _, d := range []string{"pub", "ro"} {
		if err := os.Mkdir(filepath.Join(remote, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(remote, "ro", "f"), []byte("read me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startSFTPRulesBastion(t, remote)
	cert := p.certFor(t, "alice", "bob")
	local := t.TempDir()
	src := filepath.Join(local, "src")
	if err := os.WriteFile(src, []byte("uploaded\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := p.transferOpts("alice", cert)
	dest := "root@web01@127.0.0.1"
	r := func(rel string) string { return filepath.Join(remote, rel) }

	// One sftp session: refusals (prefixed "-" so that the batch goes on)
	// between allowed operations, which keep working.
	batch := strings.Join([]string{
		fmt.Sprintf("put %s %s", src, r("pub/a")),
		fmt.Sprintf("-put %s %s", src, r("ro/x")),            // write outside what ro allows
		fmt.Sprintf("-put %s %s/pub/../ro/y", src, remote),   // a .. escape from pub
		fmt.Sprintf("-put %s %s//ro//z/", src, remote),       // // and a trailing /
		fmt.Sprintf("-rm %s", r("pub/a")),                    // pub-stays
		fmt.Sprintf("-rename %s %s", r("pub/a"), r("pub/b")), // pub-stays
		fmt.Sprintf("-mkdir %s", r("other")),                 // no rule: command_default deny
		fmt.Sprintf("-ln -s %s %s", r("ro/f"), r("pub/l")),   // a link in pub to ro: symlink not allowed on ro
		fmt.Sprintf("get %s %s", r("ro/f"), filepath.Join(local, "f")),
		fmt.Sprintf("get %s %s", r("pub/a"), filepath.Join(local, "a")),
		fmt.Sprintf("ls %s", r("pub")),
	}, "\n") + "\n"
	out, stderr, code := runCmd(t, strings.NewReader(batch), "sftp", append(append([]string{"-b", "-"}, opts...), dest)...)
	if code != 0 {
		t.Fatalf("sftp: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	if n := strings.Count(stderr, "Permission denied"); n != 7 {
		t.Errorf("%d refusals reported; want 7:\n%s", n, stderr)
	}
	if !strings.Contains(out, r("pub/a")) {
		t.Errorf("ls after the refusals: %s", out)
	}
	for _, f := range []string{"ro/x", "ro/y", "ro/z", "pub/b", "other", "pub/l"} {
		if _, err := os.Lstat(r(f)); err == nil {
			t.Errorf("%s was created on the target", f)
		}
	}
	for f, want := range map[string]string{r("pub/a"): "uploaded\n", filepath.Join(local, "f"): "read me\n", filepath.Join(local, "a"): "uploaded\n"} {
		if got, err := os.ReadFile(f); err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", f, got, err, want)
		}
	}

	// scp speaks SFTP: each file is decided the same way.
	if o, e, code := runCmd(t, nil, "scp", append(append([]string{}, opts...), src, dest+":"+r("pub/s"))...); code != 0 {
		t.Fatalf("scp to pub: exit %d %s %s", code, o, e)
	}
	if o, e, code := runCmd(t, nil, "scp", append(append([]string{}, opts...), src, dest+":"+r("ro/s"))...); code == 0 || !strings.Contains(e, "Permission denied") {
		t.Fatalf("scp to ro: exit %d %s %s; want Permission denied", code, o, e)
	}
	if o, e, code := runCmd(t, nil, "scp", append(append([]string{}, opts...), dest+":"+r("ro/f"), filepath.Join(local, "f2"))...); code != 0 {
		t.Fatalf("scp from ro: exit %d %s %s", code, o, e)
	}
	// scp sends relative paths as written: they are resolved against the
	// login's home directory (/root here) before the rules see them.
	rel, err := filepath.Rel("/root", r("ro/f"))
	if err != nil {
		t.Fatal(err)
	}
	if o, e, code := runCmd(t, nil, "scp", append(append([]string{}, opts...), dest+":"+rel, filepath.Join(local, "f3"))...); code != 0 {
		t.Fatalf("scp from ro by a relative path (%s): exit %d %s %s", rel, code, o, e)
	}
	if o, e, code := runCmd(t, nil, "scp", append(append([]string{}, opts...), src, dest+":"+rel+"-new")...); code == 0 || !strings.Contains(e, "Permission denied") {
		t.Fatalf("scp to ro by a relative path: exit %d %s %s; want Permission denied", code, o, e)
	}
	// Legacy scp (-O) cannot be checked file by file: refused, even
	// though a command rule allows scp.
	if o, e, code := runCmd(t, nil, "scp", append(append([]string{"-O"}, opts...), src, dest+":"+r("pub/o"))...); code == 0 || !strings.Contains(e, "cannot be checked against the file rules") {
		t.Fatalf("scp -O: exit %d %s %s; want a refusal", code, o, e)
	}
	for _, f := range []string{"ro/s", "pub/o", "ro/f-new"} {
		if _, err := os.Stat(r(f)); err == nil {
			t.Errorf("%s was created on the target", f)
		}
	}

	// command_default: deny and no file rule: no sftp at all.
	bobCert := p.certFor(t, "bob", "dave")
	o, e, code := runCmd(t, strings.NewReader("ls /\n"), "sftp", append(append([]string{"-b", "-"}, p.transferOpts("bob", bobCert)...), dest)...)
	if code == 0 || !strings.Contains(e, "file transfer (sftp, scp) is not allowed on web01") {
		t.Fatalf("sftp for a role without file rules: exit %d %s %s; want a refusal", code, o, e)
	}

	// Every refusal is audited, with the operation and the path.
	audit := p.mustRun("carol", "audit", "--type", "transfer", "--json")
	for _, want := range []string{
		fmt.Sprintf(`"outcome":"refused","reason":"denied: write of %s is not allowed: no file rule of role developer allows it","details":{"op":"write,create","path":"%s"`, r("ro/x"), r("ro/x")),
		fmt.Sprintf(`"reason":"denied: write of %s is not allowed: no file rule of role developer allows it","details":{"op":"write,create","path":"%s/pub/../ro/y"`, r("ro/y"), remote),
		fmt.Sprintf(`"reason":"denied by rule pub-stays: published files stay","details":{"op":"remove","path":"%s"`, r("pub/a")),
		fmt.Sprintf(`"new_path":"%s","op":"rename","path":"%s"`, r("pub/b"), r("pub/a")),
		fmt.Sprintf(`"op":"mkdir","path":"%s"`, r("other")),
		fmt.Sprintf(`"new_path":"%s","op":"symlink","path":"%s"`, r("ro/f"), r("pub/l")),
		`"outcome":"refused","reason":"scp cannot be checked against the file rules that apply on web01: use sftp, or scp without -O (it speaks SFTP), whose every file is checked","details":{"op":"exec"`,
		`"outcome":"refused","reason":"file transfer (sftp, scp) is not allowed on web01: no file rule of your roles allows any file operation there","details":{"op":"sftp"`,
	} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
	// The sftp session's recording shows each refusal.
	list := p.sessionsOf("carol", "--user", "alice")
	found := false
	for _, s := range list {
		if s.Kind != "sftp" {
			continue
		}
		replay := p.mustRun("carol", "replay", s.ID, "--speed", "1000")
		if strings.Contains(replay, "transfer denied: remove "+r("pub/a")+": denied by rule pub-stays") {
			found = true
		}
	}
	if !found {
		t.Errorf("no sftp recording shows the refused remove (%d sessions)", len(list))
	}
}
