package main

import (
	"strings"
	"testing"
	"time"
)

// TestAuditorScreenCannotBeHijacked: an exec whose command holds escape
// sequences (set the window title, clear the screen) runs through the real
// OpenSSH client; an auditor's `sessions` and the [bastion] lines of
// `replay` show the command escaped, while --json keeps it exact and the
// replay plays the recorded output as it was.
func TestAuditorScreenCannotBeHijacked(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	const payload = "\x1b]0;pwned\a\x1b[2J"
	const shown = `\x1b]0;pwned\a\x1b[2J`
	command := "echo hi '" + payload + "'"
	if out, stderr, code := p.target("alice", cert, "root@web01", command); code != 0 || out != "hi "+payload+"\n" {
		t.Fatalf("exec: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	var sess sessionJSON
	waitFor(t, 10*time.Second, func() bool {
		for _, s := range p.sessionsOf("carol") {
			if s.Command == command && s.State == "ended" { // --json: exact
				sess = s
				return true
			}
		}
		return false
	})

	list := p.mustRun("carol", "sessions")
	if strings.ContainsAny(list, "\x1b\a") || !strings.Contains(list, "echo hi '"+shown+"'") {
		t.Fatalf("sessions shows the command raw or not at all:\n%q", list)
	}
	replay := p.mustRun("carol", "replay", sess.ID, "--speed", "1000")
	var markers []string
	for _, line := range strings.Split(replay, "\n") {
		if i := strings.Index(line, "[bastion] "); i >= 0 {
			markers = append(markers, line[i:])
		}
	}
	joined := strings.Join(markers, "\n")
	if strings.ContainsAny(joined, "\x1b\a") || !strings.Contains(joined, "[bastion] exec: echo hi '"+shown+"'") {
		t.Fatalf("replay's [bastion] lines show the command raw or not at all:\n%q", replay)
	}
	if !strings.Contains(replay, "hi "+payload) {
		t.Fatalf("replay does not play the recorded output as it was:\n%q", replay)
	}
}
