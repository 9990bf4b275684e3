package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type sessionJSON struct {
	ID         string `json:"id"`
	User       string `json:"user"`
	Target     string `json:"target"`
	Kind       string `json:"kind"`
	Command    string `json:"command"`
	State      string `json:"state"`
	ExitStatus *int   `json:"exit_status"`
	EndReason  string `json:"end_reason"`
}

func (p *proxyBastion) sessionsOf(user string, args ...string) []sessionJSON {
	p.t.Helper()
	var list []sessionJSON
	out := p.mustRun(user, append([]string{"sessions", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		p.t.Fatalf("sessions --json: %v: %s", err, out)
	}
	return list
}

// TestRecordingExec: an exec session is listed, exported as asciicast that
// the real asciinema plays, and replayed; replays are audited; users see
// only their own sessions unless they audit.
func TestRecordingExec(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	if _, _, code := p.target("alice", cert, "root@web01", "echo hello-recorded; echo oops >&2; exit 3"); code != 3 {
		t.Fatalf("exec exit %d", code)
	}
	var sess sessionJSON
	waitFor(t, 10*time.Second, func() bool {
		list := p.sessionsOf("carol")
		if len(list) == 1 && list[0].State == "ended" {
			sess = list[0]
			return true
		}
		return false
	})
	if sess.User != "alice" || sess.Target != "web01" || sess.Kind != "exec" || sess.ExitStatus == nil || *sess.ExitStatus != 3 ||
		!strings.Contains(sess.Command, "hello-recorded") {
		t.Fatalf("session: %+v", sess)
	}
	cast := p.mustRun("carol", "export", sess.ID)
	lines := strings.Split(strings.TrimSpace(cast), "\n")
	var header struct {
		Version int `json:"version"`
		Width   int `json:"width"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &header); err != nil || header.Version != 2 {
		t.Fatalf("header %q: %v", lines[0], err)
	}
	for _, want := range []string{`"o", "hello-recorded`, `"o", "oops`, `"m", "exec: echo hello-recorded`, `"m", "exit status 3"`} {
		if !strings.Contains(cast, want) {
			t.Errorf("recording lacks %s:\n%s", want, cast)
		}
	}
	// The real asciinema accepts the file unchanged.
	file := filepath.Join(t.TempDir(), "s.cast")
	if err := os.WriteFile(file, []byte(cast), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("script", "-qec", "asciinema cat "+file, "/dev/null").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello-recorded") {
		t.Fatalf("asciinema cat: %v: %q", err, out)
	}
	if out := p.mustRun("carol", "replay", sess.ID, "--speed", "50"); !strings.Contains(out, "hello-recorded") {
		t.Fatalf("replay: %q", out)
	}
	// Alice sees her session; bob (a lead, not an auditor) does not.
	if list := p.sessionsOf("alice"); len(list) != 1 {
		t.Fatalf("alice's sessions: %+v", list)
	}
	if list := p.sessionsOf("bob"); len(list) != 0 {
		t.Fatalf("bob sees: %+v", list)
	}
	if _, stderr, code := p.ssh("bob", "export", sess.ID); code != 1 || !strings.Contains(stderr, "no such session") {
		t.Fatalf("bob export: %d %s", code, stderr)
	}
	audit := p.mustRun("carol", "audit", "--type", "replay", "--json")
	if strings.Count(audit, `"session":"`+sess.ID+`"`) != 2 {
		t.Fatalf("replays not audited:\n%s", audit)
	}
}

// TestRecordingPTY: a terminal session records output, resizes and input,
// with what was typed at a no-echo prompt redacted.
func TestRecordingPTY(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	tm := p.shellOnWeb01(t, cert, 90, 25, "")
	tm.send("read -s -p 'Pass''word: ' pw; echo; echo length-${#pw}", "Enter")
	tm.waitScreen("Password:")
	tm.send("hunter2", "Enter")
	tm.waitScreen("length-7")
	tm.run("resize-window", "-t", tm.name, "-x", "100", "-y", "30")
	tm.send("echo visible-typing", "Enter")
	tm.waitScreen("\nvisible-typing\n")
	tm.send("exit", "Enter")
	var sess sessionJSON
	waitFor(t, 10*time.Second, func() bool {
		list := p.sessionsOf("alice")
		if len(list) == 1 && list[0].State == "ended" {
			sess = list[0]
			return true
		}
		return false
	})
	if sess.Kind != "shell" {
		t.Fatalf("session: %+v", sess)
	}
	cast := p.mustRun("carol", "export", sess.ID)
	var inputs strings.Builder
	sc := bufio.NewScanner(strings.NewReader(cast))
	for sc.Scan() {
		var ev []any
		if json.Unmarshal(sc.Bytes(), &ev) == nil && len(ev) == 3 && ev[1] == "i" {
			inputs.WriteString(ev[2].(string))
		}
	}
	in := inputs.String()
	if strings.Contains(cast, "hunter2") {
		t.Fatalf("the password is in the recording:\n%s", cast)
	}
	if !strings.Contains(in, "*******") || !strings.Contains(in, "echo visible-typing") {
		t.Fatalf("recorded input %q: want the password redacted and the echoed command kept\n%s", in, cast)
	}
	if !strings.Contains(cast, `"r", "100x30"`) || !strings.Contains(cast, `"width":90`) {
		t.Fatalf("resize or initial size not recorded:\n%s", cast)
	}
}

// TestWatchLiveSession: an auditor watches a running session and sees its
// output as it happens; watch returns when the session ends.
func TestWatchLiveSession(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	args := append(p.sshArgs("alice", "-o", "CertificateFile="+cert), "root@web01@127.0.0.1",
		"for i in $(seq 1 30); do echo tick-$i; sleep 0.1; done; read x")
	session := exec.Command("ssh", args...)
	stdin, err := session.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := session.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = session.Process.Kill(); _ = session.Wait() }()
	var id string
	waitFor(t, 10*time.Second, func() bool {
		list := p.sessionsOf("carol", "--live")
		if len(list) == 1 {
			id = list[0].ID
		}
		return id != ""
	})
	watch := exec.Command("ssh", append(append(p.sshArgs("carol"), "carol@127.0.0.1"), "watch", id)...)
	out, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watch.Process.Kill(); _ = watch.Wait() }()
	sc := bufio.NewScanner(out)
	seen := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "tick-30") {
			seen = true
			break
		}
	}
	if !seen {
		t.Fatal("watch never showed tick-30")
	}
	fmt.Fprintln(stdin, "done") // ends the session
	done := make(chan error, 1)
	go func() { done <- watch.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("watch did not return after the session ended")
	}
}
