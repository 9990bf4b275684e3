package main

import (
	"strings"
	"testing"
)

// TestLocalCLI runs self-service commands locally on the server (bastion
// --config FILE [--as USER] COMMAND), as the README's walk-through does:
// their output is the command's alone, with no JSON log line before it, and
// whoami shows where the command came from (this machine), not "invalid IP".
func TestLocalCLI(t *testing.T) {
	t.Run("directory recordings", func(t *testing.T) {
		checkLocalCLI(t, startBastion(t, "").local)
	})
	// Recordings into object storage go through a spool; a local command
	// must not log about what is left in it.
	t.Run("s3 recordings", func(t *testing.T) {
		checkLocalCLI(t, startS3Bastion(t).local)
	})
}

func checkLocalCLI(t *testing.T, local func(args ...string) (string, string, int)) {
	t.Helper()
	for _, args := range [][]string{
		{"whoami"},
		{"--as", "alice", "whoami"},
		{"status"},
		{"sessions"},
		{"audit", "--limit", "5"},
		{"ca"},
	} {
		out, errOut, code := local(args...)
		if code != 0 {
			t.Fatalf("bastion %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
		}
		for _, s := range []struct{ name, text string }{{"stdout", out}, {"stderr", errOut}} {
			for line := range strings.Lines(s.text) {
				if strings.HasPrefix(strings.TrimSpace(line), `{"time":`) {
					t.Errorf("bastion %s: a log line on %s: %s", strings.Join(args, " "), s.name, line)
				}
			}
		}
		if args[len(args)-1] != "whoami" {
			continue
		}
		if strings.Contains(out, "invalid IP") || !strings.Contains(out, "source: local\n") {
			t.Errorf("bastion %s: want source: local, got:\n%s", strings.Join(args, " "), out)
		}
	}
	if out, _, _ := local("--as", "alice", "whoami"); !strings.HasPrefix(out, "user:   alice\n") {
		t.Errorf("--as alice whoami: want user alice, got:\n%s", out)
	}
	// A local command has no source address, so a role's condition on
	// source networks never holds for it: sandbox1 is auto-approved from
	// 127.0.0.0/8 over SSH, but a local request of alice's is not.
	out, errOut, code := local("--as", "alice", "request", "sandbox1", "--login", "root", "--for", "30m", "--reason", "local")
	if first, _, _ := strings.Cut(out, "\n"); code != 0 || !strings.HasSuffix(first, " pending") {
		t.Errorf("a local request by network auto-approval: exit %d: %s%s", code, out, errOut)
	}
}
