package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExecCommandRules: every simple command of an exec line is checked as
// a shell would parse it; a denied command never reaches the target.
func TestExecCommandRules(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	dir := t.TempDir() // the target is this machine
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	denied := []struct{ name, command, stderr string }{
		{"plain", "rm " + victim, "denied by rule no-rm: deleting files on servers is not allowed"},
		{"absolute path", "/bin/rm " + victim, "denied by rule no-rm"},
		{"escaped name", `\rm ` + victim, "denied by rule no-rm"},
		{"quoted name", `r''m ` + victim, "denied by rule no-rm"},
		{"after another command", "echo hi; rm " + victim, "denied by rule no-rm"},
		{"in a pipeline", "ls | rm " + victim, "denied by rule no-rm"},
		{"in a subshell", "(rm " + victim + ")", "denied by rule no-rm"},
		{"in a command substitution", "echo $(rm " + victim + ")", "denied by rule no-rm"},
		{"through sh -c", "sh -c 'rm " + victim + "'", "denied by rule no-rm"},
		{"through bash -c and env", "env bash -c \"true && rm " + victim + "\"", "denied by rule no-rm"},
		{"through sudo", "sudo -u root rm " + victim, "denied by rule no-rm"},
		{"through xargs", "echo " + victim + " | xargs rm", "denied by rule no-rm"},
		{"through find -exec", "find " + dir + " -name victim -exec rm {} \\;", "denied by rule no-rm"},
		{"dynamic name", "$(printf rm) " + victim, "cannot be checked"},
		{"unparseable", "echo 'unterminated", "cannot be checked"},
		{"second rule", "shutdown -h now", "denied by rule no-shutdown: ask the on-call lead"},
	}
	for _, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := p.target("alice", cert, "root@web01", tc.command)
			if code != 126 || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("%q: exit %d, stdout %q, stderr %q; want 126 and %q", tc.command, code, out, stderr, tc.stderr)
			}
			if _, err := os.Stat(victim); err != nil {
				t.Fatalf("%q reached the target: %v", tc.command, err)
			}
		})
	}
	// A shell without a terminal fed a script cannot be checked line by
	// line: where rules apply it is refused, and the script never runs.
	args := append(p.sshArgs("alice", "-o", "CertificateFile="+cert), "-T", "root@web01@127.0.0.1")
	if out, stderr, code := runCmd(t, strings.NewReader("rm "+victim+"\n"), "ssh", args...); code != 126 || !strings.Contains(stderr, "a shell without a terminal cannot be checked") {
		t.Fatalf("ssh -T with a piped script: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("the piped rm ran: %v", err)
	}
	allowed := []struct{ command, stdout string }{
		{"echo rm", "rm\n"},
		{"echo 'rm -rf /'", "rm -rf /\n"},
		{"grep -c rm " + victim + " || true", "0\n"},
		{"echo $((6*7)) $HOME", "42 /root\n"},
	}
	for _, tc := range allowed {
		out, stderr, code := p.target("alice", cert, "root@web01", tc.command)
		if code != 0 || out != tc.stdout {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q; want %q", tc.command, code, out, stderr, tc.stdout)
		}
	}
	audit := p.mustRun("carol", "audit", "--type", "command", "--json")
	if !strings.Contains(audit, `"outcome":"refused","reason":"denied by rule no-rm`) {
		t.Fatalf("refused commands are not audited:\n%s", audit)
	}
	// The refused exec's session is marked, and its replay shows the
	// command and the refusal (it has no output).
	type session struct {
		ID, Command string
		Refused     int
	}
	var list []session
	if out := p.mustRun("carol", "sessions", "--json"); json.Unmarshal([]byte(out), &list) != nil {
		t.Fatalf("sessions --json: %s", out)
	}
	i := slices.IndexFunc(list, func(s session) bool { return s.Command == "shutdown -h now" })
	if i < 0 || list[i].Refused != 1 {
		t.Fatalf("the refused shutdown's session is not marked: %+v", list)
	}
	replay := p.mustRun("carol", "replay", list[i].ID, "--speed", "1000")
	if !strings.Contains(replay, "[bastion] exec: shutdown -h now") || !strings.Contains(replay, "[bastion] denied: denied by rule no-shutdown") {
		t.Fatalf("replay of the refused exec: %q", replay)
	}
}

// TestForwardingAllowedByRole: a role that allows local and agent
// forwarding gets them; the forward is audited.
func TestForwardingAllowedByRole(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	r := p.mustRequest("bob", "web01", "--login", "root", "--for", "30m", "--reason", "forwarding")
	p.mustRun("dave", "approve", fmt.Sprint(r.ID))
	cert := filepath.Join(p.dir, "bob-cert.pub")
	if err := os.WriteFile(cert, []byte(p.mustRun("bob", "cert", fmt.Sprint(r.ID))), 0o644); err != nil {
		t.Fatal(err)
	}
	// -W to the target's own SSH server would go around Bastion: refused
	// (it is loopback here; see TestForwardingDestinations for the rest).
	own := append(p.sshArgs("bob", "-o", "LogLevel=INFO", "-o", "CertificateFile="+cert), "-W", p.web01.Addr, "root@web01@127.0.0.1")
	if _, stderr, code := runCmd(t, nil, "ssh", own...); code == 0 || !strings.Contains(stderr, "is refused: a loopback address") {
		t.Fatalf("-W to web01's own sshd: exit %d %q", code, stderr)
	}
	// -W elsewhere: stdio forwarded to a service beyond the target.
	echo := echoServer(t, net.JoinHostPort(hostAddress(t), "0"))
	args := append(p.sshArgs("bob", "-o", "CertificateFile="+cert), "-W", echo, "root@web01@127.0.0.1")
	if out, stderr, code := runCmd(t, strings.NewReader("ping\n"), "ssh", args...); code != 0 || out != "ping\n" {
		t.Fatalf("-W through Bastion: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	sock := startAgent(t)
	args = append(p.sshArgs("bob", "-o", "CertificateFile="+cert), "-A", "root@web01@127.0.0.1", "test -S \"$SSH_AUTH_SOCK\" && echo agent-forwarded")
	acmd := exec.Command("ssh", args...)
	acmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	out, err := acmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "agent-forwarded") {
		t.Fatalf("-A: %v %q", err, out)
	}
	audit := p.mustRun("carol", "audit", "--type", "forward", "--json")
	if !strings.Contains(audit, `"kind":"local"`) {
		t.Fatalf("the forward is not audited:\n%s", audit)
	}
}

// TestInteractiveCommandRules: lines typed into a shell are checked before
// their Enter reaches the target; a refused line never runs and the shell
// stays usable; input typed with echo off is not inspected; a line Bastion
// cannot follow (recalled from history) is refused.
func TestInteractiveCommandRules(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tm := p.shellOnWeb01(t, cert, 120, 30, "")

	tm.send("echo allowed-$((40+2))", "Enter")
	tm.waitScreen("allowed-42")

	tm.send("rm "+victim, "Enter")
	tm.waitScreen("bastion: denied by rule no-rm")
	tm.send("echo still-usable", "Enter")
	tm.waitScreen("\nstill-usable")
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("the refused rm ran: %v", err)
	}

	// A "password" that looks like a command, typed with echo off.
	tm.send("read -s -p 'Pass''word: ' pw; echo; echo length-${#pw}", "Enter")
	tm.waitScreen("Password:")
	tm.send("rm -rf /x", "Enter")
	tm.waitScreen("length-9")

	// History recall: Bastion cannot know what the line is.
	tm.send("Up", "Enter")
	tm.waitScreen("this line cannot be checked")

	tm.send("exit", "Enter")
	audit := p.mustRun("carol", "audit", "--type", "command", "--json")
	if !strings.Contains(audit, `"interactive":"true"`) || !strings.Contains(audit, "denied by rule no-rm") {
		t.Fatalf("typed refusals are not audited:\n%s", audit)
	}
	if strings.Contains(audit, "rm -rf /x") {
		t.Fatalf("input typed with echo off reached the audit log:\n%s", audit)
	}
}
