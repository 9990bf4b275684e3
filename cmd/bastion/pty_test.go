package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tmuxSession drives a real terminal: tmux runs the command in a pane whose
// screen the test reads.
type tmuxSession struct {
	t      *testing.T
	socket string
	name   string
}

func newTmux(t *testing.T, cols, rows int, command string) *tmuxSession {
	t.Helper()
	s := &tmuxSession{t: t, socket: filepath.Join(t.TempDir(), "tmux.sock"), name: "bastion"}
	s.run("new-session", "-d", "-s", s.name, "-x", fmt.Sprint(cols), "-y", fmt.Sprint(rows), command)
	t.Cleanup(func() { _ = exec.Command("tmux", "-S", s.socket, "kill-server").Run() })
	return s
}

func (s *tmuxSession) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v: %s", args, err, out)
	}
	return string(out)
}

func (s *tmuxSession) send(keys ...string) {
	s.t.Helper()
	s.run(append([]string{"send-keys", "-t", s.name}, keys...)...)
}

func (s *tmuxSession) screen() string {
	out, _ := exec.Command("tmux", "-S", s.socket, "capture-pane", "-p", "-t", s.name).CombinedOutput()
	return string(out)
}

// shellOnWeb01 opens alice's interactive shell on web01 through Bastion in
// a real terminal of cols x rows, with cert, and waits for its prompt
// "ready>". after, if not empty, runs in the terminal once ssh exits.
func (p *proxyBastion) shellOnWeb01(t *testing.T, cert string, cols, rows int, after string) *tmuxSession {
	t.Helper()
	ssh := "ssh " + strings.Join(p.sshArgs("alice", "-o", "CertificateFile="+cert), " ") + " -tt root@web01@127.0.0.1"
	if after != "" {
		ssh += "; " + after
	}
	tm := newTmux(t, cols, rows, ssh)
	// The prompt is spelled so that the typed command (echoed locally before
	// the remote shell starts) does not itself match it.
	tm.send("export PS1='rea''dy> '", "Enter")
	tm.waitScreen("ready>")
	return tm
}

// startAgent runs an ssh-agent for the test and returns its socket.
func startAgent(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	waitFor(t, 5*time.Second, func() bool { _, err := os.Stat(sock); return err == nil })
	return sock
}

// waitScreen waits until the screen shows want.
func (s *tmuxSession) waitScreen(want string) {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(s.screen(), want) {
		if time.Now().After(deadline) {
			s.t.Fatalf("screen never showed %q:\n%s", want, s.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestProxyPTY: an interactive shell on web01 through Bastion in a real
// terminal: the terminal size reaches the target and follows a resize,
// Ctrl-C interrupts the running command, and the shell's exit status comes
// back.
func TestProxyPTY(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	status := filepath.Join(t.TempDir(), "status")
	tm := p.shellOnWeb01(t, cert, 100, 30, fmt.Sprintf("echo $? > %s", status))
	tm.send("clear; stty size", "Enter")
	tm.waitScreen("30 100")

	tm.run("resize-window", "-t", tm.name, "-x", "120", "-y", "40")
	tm.send("clear; stty size", "Enter")
	tm.waitScreen("40 120")

	// What the commands print differs from what is typed ($((…))), so the
	// screen shows a command's output only if it ran.
	tm.send("clear; echo sleep$((1+1))ing; sleep 100; echo after-$((1+1))", "Enter")
	tm.waitScreen("sleep2ing")
	tm.send("C-c")
	tm.send("echo interrupted-$?", "Enter")
	tm.waitScreen("interrupted-130")
	if strings.Contains(tm.screen(), "after-2") {
		t.Fatal("Ctrl-C did not interrupt sleep")
	}

	tm.send("exit 4", "Enter")
	waitFor(t, 10*time.Second, func() bool {
		b, err := os.ReadFile(status)
		return err == nil && strings.TrimSpace(string(b)) == "4"
	})
}

// TestProxyClientVanishes: when the user's ssh dies in the middle of an
// interactive session, Bastion ends the session on the target too (the
// shell does not live on), and records its end.
func TestProxyClientVanishes(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	marker := filepath.Join(t.TempDir(), "alive")
	args := append(p.sshArgs("alice", "-o", "CertificateFile="+cert), "-tt", "root@web01@127.0.0.1")
	cmd := exec.Command("ssh", args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = writerFunc(out.WriteString), writerFunc(out.WriteString)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("ssh output:\n%s", out.String())
		}
	}()
	// A shell that writes its pid, so the test can see whether it lives on.
	fmt.Fprintf(stdin, "echo $$ > %s\n", marker)
	var pid string
	waitFor(t, 15*time.Second, func() bool {
		b, err := os.ReadFile(marker)
		pid = strings.TrimSpace(string(b))
		return err == nil && pid != ""
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: its error says so
	waitFor(t, 15*time.Second, func() bool {
		_, err := os.Stat("/proc/" + pid)
		return os.IsNotExist(err)
	})
	waitFor(t, 10*time.Second, func() bool {
		list := p.sessionsOf("carol")
		return len(list) == 1 && list[0].State == "ended"
	})
}
