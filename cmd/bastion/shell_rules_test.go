package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// victimFile makes a file that a refused rm would have removed.
func victimFile(t *testing.T) string {
	t.Helper()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return victim
}

func mustExist(t *testing.T, path, what string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s reached the target: %v", what, err)
	}
}

// restrictedShell opens alice's shell on web01, where rule no-rm applies,
// and makes a file for a refused rm to miss.
func restrictedShell(t *testing.T) (victim string, tm *tmuxSession) {
	t.Helper()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	return victimFile(t), p.shellOnWeb01(t, cert, 120, 30, "")
}

// commandOnWeb01 runs command with a terminal (ssh -tt … root@web01
// COMMAND) in a real terminal, sets the prompt of the shell it starts and
// waits for it.
func (p *proxyBastion) commandOnWeb01(t *testing.T, cert, command string) *tmuxSession {
	t.Helper()
	ssh := "ssh " + strings.Join(p.sshArgs("alice", "-o", "CertificateFile="+cert), " ") + " -tt root@web01@127.0.0.1 " + command
	tm := newTmux(t, 120, 30, ssh)
	tm.send("export PS1='rea''dy> '", "Enter")
	tm.waitScreen("ready>")
	return tm
}

// TestShellNamedAsCommand: a shell named as the exec command (ssh -t host
// bash, su -) gets the line filter a shell request gets; a shell or
// interpreter reading commands from the exec channel without a terminal
// (ssh host sh < script) is refused where command rules apply.
func TestShellNamedAsCommand(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	victim := victimFile(t)
	for _, shell := range []string{"bash", "'su -'"} {
		t.Run(shell, func(t *testing.T) {
			tm := p.commandOnWeb01(t, cert, shell)
			tm.send("rm "+victim, "Enter")
			tm.waitScreen("bastion: denied by rule no-rm")
			tm.send("echo still-$((40+2))", "Enter")
			tm.waitScreen("still-42")
			mustExist(t, victim, "rm typed into "+shell)
			tm.send("exit", "Enter")
		})
	}
	for _, command := range []string{"sh", "bash -s", "sudo -i", "python3", "nice sh"} {
		t.Run(command+" without a terminal", func(t *testing.T) {
			args := append(p.sshArgs("alice", "-o", "CertificateFile="+cert), "root@web01@127.0.0.1", command)
			script := "rm " + victim + "\n"
			if command == "python3" {
				script = "import os; os.remove('" + victim + "')\n"
			}
			out, stderr, code := runCmd(t, strings.NewReader(script), "ssh", args...)
			if code != 126 || !strings.Contains(stderr, "a shell or interpreter reading its input without a terminal cannot be checked") {
				t.Fatalf("%s < script: exit %d, stdout %q, stderr %q", command, code, out, stderr)
			}
			mustExist(t, victim, command+" < script")
		})
	}
	audit := p.mustRun("carol", "audit", "--type", "command", "--json")
	if !strings.Contains(audit, "reading its input without a terminal") {
		t.Fatalf("the refused shell is not audited:\n%s", audit)
	}
}

// TestExecWrappersAndInterpreters: programs that run other programs are
// unwrapped; inline code for other interpreters cannot be checked and is
// refused where rules apply; an alias definition is not the running of its
// value, but its use in the same line is.
func TestExecWrappersAndInterpreters(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	victim := victimFile(t)
	lock := filepath.Join(t.TempDir(), "lock")
	denied := []struct{ command, stderr string }{
		{"timeout 5 rm " + victim, "denied by rule no-rm"},
		{"flock " + lock + " rm " + victim, "denied by rule no-rm"},
		{"flock " + lock + " -c 'rm " + victim + "'", "denied by rule no-rm"},
		{"setsid -w rm " + victim, "denied by rule no-rm"},
		{"script -qc 'rm " + victim + "' /dev/null", "denied by rule no-rm"},
		{"nice -n 5 ionice -c3 stdbuf -oL rm " + victim, "denied by rule no-rm"},
		{"ssh localhost rm " + victim, "denied by rule no-rm"},
		{"at now <<< 'rm " + victim + "'", "denied by rule no-rm"},
		{"alias x='rm " + victim + "'; x", "denied by rule no-rm"},
		{"python3 -c 'import os; os.remove(\"" + victim + "\")'", "cannot be checked"},
		{"perl -e 'unlink q(" + victim + ")'", "cannot be checked"},
		{"awk 'BEGIN{system(\"rm " + victim + "\")}'", "cannot be checked"},
		{"stty -echo", "cannot be checked"},
		{"timeout 5 python3 -c 'import os; os.remove(\"" + victim + "\")'", "cannot be checked"},
	}
	for _, tc := range denied {
		t.Run(tc.command, func(t *testing.T) {
			out, stderr, code := p.target("alice", cert, "root@web01", tc.command)
			if code != 126 || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("%q: exit %d, stdout %q, stderr %q; want 126 and %q", tc.command, code, out, stderr, tc.stderr)
			}
			mustExist(t, victim, tc.command)
		})
	}
	allowed := []struct{ command, stdout string }{
		{"alias x='rm -rf /'; echo alias-defined", "alias-defined\n"},
		{"timeout 5 echo wrapped-$((6*7))", "wrapped-42\n"},
		{"awk 'BEGIN{print 6*7}'", "42\n"},
		{"python3 -V >/dev/null && echo python-ok", "python-ok\n"},
	}
	for _, tc := range allowed {
		out, stderr, code := p.target("alice", cert, "root@web01", tc.command)
		if code != 0 || out != tc.stdout {
			t.Fatalf("%q: exit %d, stdout %q, stderr %q; want %q", tc.command, code, out, stderr, tc.stdout)
		}
	}
}

// TestPasteIsTyped: a paste is decided line by line before any of it
// reaches the target, and a paste with a refused line is refused whole,
// whether the terminal pasted it (tmux paste-buffer -p, bracketed) or the
// user typed the markers.
func TestPasteIsTyped(t *testing.T) {
	t.Parallel()
	victim, tm := restrictedShell(t)
	paste := func(text string) {
		t.Helper()
		tm.run("set-buffer", "-b", "p", text)
		tm.run("paste-buffer", "-p", "-b", "p", "-t", tm.name)
	}

	// stage clears the screen and waits for a fresh prompt (whose line
	// editor has bracketed paste on again).
	stage := 0
	next := func() {
		t.Helper()
		stage++
		tm.send(fmt.Sprintf("clear; echo stage-$((%d*1))", stage), "Enter")
		tm.waitScreen(fmt.Sprintf("stage-%d\nready>", stage))
	}

	next()
	paste("rm " + victim + "\n")
	tm.waitScreen("denied by rule no-rm: deleting files on servers is not allowed (the whole paste was refused)")

	// Refused whole: the allowed first line does not run either.
	next()
	paste("echo one-$((0+1))\nrm " + victim + "\necho two-$((1+1))\n")
	tm.waitScreen("(the whole paste was refused)")
	next()
	if s := tm.screen(); strings.Contains(s, "one-1") || strings.Contains(s, "two-2") {
		t.Fatalf("a line of the refused paste ran:\n%s", s)
	}

	// Markers typed by hand, around a line and its Enter: not "echo off".
	tm.run("send-keys", "-t", tm.name, "-H", "1b", "5b", "32", "30", "30", "7e")
	tm.send("-l", "rm "+victim)
	tm.run("send-keys", "-t", tm.name, "-H", "0d", "1b", "5b", "32", "30", "31", "7e", "0d")
	tm.waitScreen("bastion: denied by rule no-rm")
	mustExist(t, victim, "the pasted rm")

	// An allowed paste goes through as pasted, and runs at Enter.
	next()
	paste("echo pasted-$((2+3))\n")
	tm.send("Enter")
	tm.waitScreen("pasted-5")
	mustExist(t, victim, "the pasted rm")
}

// TestEchoOffNeedsAPrompt: input the target does not echo is left unchecked
// only at a prompt for a secret; a line typed while echo is off for any
// other reason (stty -echo, a busy target) is checked like any other.
func TestEchoOffNeedsAPrompt(t *testing.T) {
	t.Parallel()
	victim, tm := restrictedShell(t)
	// stty -echo typed is refused (see TestExecWrappersAndInterpreters);
	// a script file, out of the filter's reach, can still turn echo off.
	script := filepath.Join(t.TempDir(), "quiet.sh")
	if err := os.WriteFile(script, []byte("stty -echo; echo sleep-$((1+1))ing; sleep 3; stty echo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tm.send("bash "+script, "Enter")
	tm.waitScreen("sleep-2ing")
	tm.send("rm "+victim, "Enter")
	tm.waitScreen("bastion: denied by rule no-rm")
	// The refusal's Ctrl-\ may have ended the sleep (and echo be still off).
	tm.send("stty echo; echo after-$((3+3))", "Enter")
	tm.waitScreen("after-6")
	mustExist(t, victim, "rm typed with echo off")
}

// TestInteractiveAliasesAndBindings: in a shell an alias outlives its line,
// so a typed alias whose value is refused is refused, while one whose value
// is allowed works; a key binding that would run code or type text behind
// the filter's back, and history expansion, which runs an edited earlier
// line, cannot be checked and are refused.
func TestInteractiveAliasesAndBindings(t *testing.T) {
	t.Parallel()
	victim, tm := restrictedShell(t)
	tm.send("alias zap='rm "+victim+"'", "Enter")
	tm.waitScreen("bastion: alias zap would run what is refused here: denied by rule no-rm")
	tm.send("alias mk='touch "+victim+".new'", "Enter")
	tm.waitScreen("alias mk would run what rule touch-needs-lead holds for approval")
	tm.send("alias greet='echo hello-$((2+3))'", "Enter")
	tm.send("greet", "Enter")
	tm.waitScreen("hello-5")
	tm.send("-l", `bind -x '"\C-t": rm `+victim+`'`)
	tm.send("Enter")
	tm.waitScreen(`"bind" cannot be checked`)
	tm.send("C-t", "Enter") // Ctrl-T transposes: a line Bastion cannot follow
	tm.waitScreen("this line cannot be checked")
	tm.send("zap; echo after-$((3+4))", "Enter")
	tm.waitScreen("after-7")
	// History expansion runs an earlier line, edited: not what was typed.
	tm.send("echo "+victim, "Enter")
	tm.send("^echo^rm", "Enter")
	tm.waitScreen("history expansion (!!, !x, ^old^new)")
	tm.send("-l", "!!:s/echo/rm/")
	tm.send("Enter")
	tm.send("echo after-$((4+4))", "Enter")
	tm.waitScreen("after-8")
	mustExist(t, victim, "an alias or key binding")
}

// TestRefusedLineTypedAhead: a refused line typed right behind an allowed
// one (while the shell switches its terminal from the line editor's raw
// mode to run the command, and back) is discarded, never run.
func TestRefusedLineTypedAhead(t *testing.T) {
	t.Parallel()
	victim, tm := restrictedShell(t)
	// The refusal discards unread input with Ctrl-\, which may end the
	// command still running: only the refusal is sure to show.
	for i := range 10 {
		tm.send(fmt.Sprintf("echo ahead-$((%d+1000))", i), "Enter", "rm "+victim, "Enter")
		tm.waitScreen("bastion: denied by rule no-rm")
		tm.send(fmt.Sprintf("clear; echo sync-$((%d+2000))", i), "Enter")
		tm.waitScreen(fmt.Sprintf("sync-%d", i+2000))
	}
	tm.send("echo done-$((2*3))", "Enter")
	tm.waitScreen("done-6")
	mustExist(t, victim, "an rm typed ahead")
}

// TestPasteApprovedOnce: a pasted line a rule holds for approval waits at
// the paste's end (a shell without a line editor would run it then), and
// the Enter that runs it in the line editor does not ask again.
func TestPasteApprovedOnce(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	file := filepath.Join(t.TempDir(), "pasted")
	tm := p.shellOnWeb01(t, cert, 160, 30, "")
	tm.send("clear; echo fresh-$((1+1))", "Enter")
	tm.waitScreen("fresh-2\nready>")
	tm.run("set-buffer", "-b", "p", "touch "+file+"\n")
	tm.run("paste-buffer", "-p", "-b", "p", "-t", tm.name)
	tm.waitScreen("waiting for approval of request #")
	id := heldRE.FindStringSubmatch(tm.screen())[1]
	p.mustRun("bob", "approve", id)
	tm.waitScreen("approved by bob")
	tm.send("Enter")
	waitFor(t, 10*time.Second, func() bool { _, err := os.Stat(file); return err == nil })
	tm.send("echo after-$((5+5))", "Enter")
	tm.waitScreen("after-10")
	if n := strings.Count(tm.screen(), "waiting for approval"); n != 1 {
		t.Fatalf("the pasted line was held for approval %d times:\n%s", n, tm.screen())
	}
}
