package main

import (
	"bufio"

	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var heldRE = regexp.MustCompile(`waiting for approval of request #(\d+)`)

// TestCommandApproval: a command a rule holds for approval waits while the
// approvers are asked; it runs once approved, and not when denied.
func TestCommandApproval(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	dir := t.TempDir()
	tests := []struct {
		name    string
		decide  func(id string)
		code    int
		stderr  string
		created bool
	}{
		{"approved", func(id string) { p.mustRun("bob", "approve", id) }, 0, "approved by bob", true},
		{"denied", func(id string) { p.mustRun("dave", "deny", id, "--reason", "not now") }, 126, "denied by dave: not now", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, tc.name)
			args := append(p.sshArgs("alice", "-o", "CertificateFile="+cert), "root@web01@127.0.0.1", "touch "+file)
			cmd := exec.Command("ssh", args...)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(stderr)
			var id string
			for id == "" && sc.Scan() {
				if m := heldRE.FindStringSubmatch(sc.Text()); m != nil {
					id = m[1]
				}
			}
			if id == "" {
				t.Fatal("no waiting message")
			}
			if _, err := os.Stat(file); err == nil {
				t.Fatal("the held command ran before a decision")
			}
			// The approver sees the command in the request.
			if out := p.mustRun("bob", "show", id); !strings.Contains(out, "command:  touch "+file) {
				t.Fatalf("show %s: %s", id, out)
			}
			tc.decide(id)
			var rest strings.Builder
			for sc.Scan() {
				rest.WriteString(sc.Text() + "\n")
			}
			err = cmd.Wait()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.code || !strings.Contains(rest.String(), tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, rest.String(), tc.code, tc.stderr)
			}
			if _, err := os.Stat(file); (err == nil) != tc.created {
				t.Fatalf("file created = %v, want %v", err == nil, tc.created)
			}
		})
	}
	// An approval allows one command: it is closed once used, and cannot
	// be turned into a certificate.
	out := p.mustRun("carol", "requests", "--json")
	if !strings.Contains(out, `"close_reason":"the command ran"`) {
		t.Fatalf("used approval not closed:\n%s", out)
	}
}

// TestCommandApprovalInteractive: a typed line held for approval runs once
// an approver allows it.
func TestCommandApprovalInteractive(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	file := filepath.Join(t.TempDir(), "typed")
	tm := p.shellOnWeb01(t, cert, 160, 30, "")
	tm.send("touch "+file, "Enter")
	tm.waitScreen("waiting for approval of request #")
	id := heldRE.FindStringSubmatch(tm.screen())[1]
	p.mustRun("bob", "approve", id)
	tm.waitScreen("approved by bob")
	waitFor(t, 10*time.Second, func() bool { _, err := os.Stat(file); return err == nil })
	tm.send("echo after-approval", "Enter")
	tm.waitScreen("\nafter-approval")
}
