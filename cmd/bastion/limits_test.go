package main

import (
	"bufio"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// flood opens n idle TCP connections to each address from source (another
// loopback address than the real users' 127.0.0.1) and closes them when
// the test ends. Connections the kernel cannot complete are not counted.
func flood(t *testing.T, source string, n int, addrs ...string) int {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 2 * time.Second}
	opened := 0
	for _, a := range addrs {
		for range n {
			c, err := d.Dial("tcp", a)
			if err != nil {
				continue
			}
			opened++
			t.Cleanup(func() { c.Close() })
		}
	}
	return opened
}

// liveShell is a self-service session without a terminal (ssh -T): one
// command per line.
type liveShell struct {
	in  io.WriteCloser
	out *bufio.Scanner
	cmd *exec.Cmd
}

func openShell(t *testing.T, b *testBastion, user string) *liveShell {
	t.Helper()
	cmd := exec.Command("ssh", append(b.sshArgs(user, "-T"), user+"@127.0.0.1")...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	sh := &liveShell{in: in, out: bufio.NewScanner(out), cmd: cmd}
	sh.run(t, "whoami", "user:   "+user)
	return sh
}

// run sends a command line and reads until a line with want.
func (sh *liveShell) run(t *testing.T, line, want string) {
	t.Helper()
	if _, err := io.WriteString(sh.in, line+"\n"); err != nil {
		t.Fatalf("write %q: %v", line, err)
	}
	got := make(chan bool, 1)
	go func() {
		for sh.out.Scan() {
			if strings.Contains(sh.out.Text(), want) {
				got <- true
				return
			}
		}
		got <- false
	}()
	select {
	case ok := <-got:
		if !ok {
			t.Fatalf("%q: the session ended before %q", line, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%q: no %q within 30 s", line, want)
	}
}

// sslAnswer sends PostgreSQL's SSLRequest and returns the one-byte answer
// ('S' when the front end serves).
func sslAnswer(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write([]byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("SSLRequest to %s: %v", addr, err)
	}
	return string(b)
}

// mysqlGreeting reads the MySQL front end's greeting and returns its
// protocol version byte (10).
func mysqlGreeting(t *testing.T, addr string) byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	b := make([]byte, 5)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("greeting from %s: %v", addr, err)
	}
	return b[4]
}

// A flood of idle, unauthenticated connections from one host cannot stop
// Bastion. Over the per-source cap, its connections are closed at once and
// a real user from elsewhere is served straight away; when the flood takes
// every file descriptor the process has (a lowered limit here), accept
// fails with EMFILE, which is retried rather than fatal: live sessions go
// on, and new users are served once handshake timeouts free descriptors.
func TestConnectionFlood(t *testing.T) {
	t.Parallel()
	t.Run("per-source cap", func(t *testing.T) {
		t.Parallel()
		b := startBastionWith(t, options{postgres: true, mysql: true,
			server: "handshake_timeout: 60s, limits: {unauthenticated_per_source: 20}"})
		sh := openShell(t, b, "alice")
		n := flood(t, "127.0.0.2", 100, b.sshAddr, b.dbAddr("postgres"), b.dbAddr("mysql"))
		if n < 250 {
			t.Fatalf("only %d flood connections opened", n)
		}
		// Handshakes last up to 60 s: only the cap can let these in now.
		if out, errOut, code := b.ssh("bob", "whoami"); code != 0 || !strings.Contains(out, "user:   bob") {
			t.Fatalf("a real user during the flood: exit %d: %s %s", code, out, errOut)
		}
		sh.run(t, "whoami", "user:   alice")
		if got := sslAnswer(t, b.dbAddr("postgres")); got != "S" {
			t.Fatalf("postgres during the flood answered %q", got)
		}
		if got := mysqlGreeting(t, b.dbAddr("mysql")); got != 10 {
			t.Fatalf("mysql during the flood greeted with protocol %d", got)
		}
		if !strings.Contains(b.logs.String(), "connection refused over a limit") {
			t.Fatalf("no refusal logged:\n%s", b.logs.String())
		}
	})
	t.Run("out of descriptors", func(t *testing.T) {
		t.Parallel()
		b := startBastionWith(t, options{postgres: true, mysql: true, nofile: 200,
			server: "handshake_timeout: 3s, limits: {unauthenticated: 5000, unauthenticated_per_source: 5000}"})
		sh := openShell(t, b, "alice")
		n := flood(t, "127.0.0.2", 200, b.sshAddr, b.dbAddr("postgres"), b.dbAddr("mysql"))
		if n < 400 {
			t.Fatalf("only %d flood connections opened", n)
		}
		waitFor(t, 30*time.Second, func() bool {
			return strings.Contains(b.logs.String(), "too many open files")
		})
		sh.run(t, "whoami", "user:   alice")
		if out, errOut, code := b.ssh("bob", "whoami"); code != 0 || !strings.Contains(out, "user:   bob") {
			t.Fatalf("a real user after the flood: exit %d: %s %s", code, out, errOut)
		}
		if got := sslAnswer(t, b.dbAddr("postgres")); got != "S" {
			t.Fatalf("postgres after the flood answered %q", got)
		}
		if got := mysqlGreeting(t, b.dbAddr("mysql")); got != 10 {
			t.Fatalf("mysql after the flood greeted with protocol %d", got)
		}
		select {
		case err := <-b.exited:
			t.Fatalf("bastion exited: %v", err)
		default:
		}
	})
	t.Run("per-user cap", func(t *testing.T) {
		t.Parallel()
		b := startBastionWith(t, options{server: "limits: {connections_per_user: 2}"})
		openShell(t, b, "alice")
		openShell(t, b, "alice")
		_, errOut, code := b.ssh("alice", "whoami")
		if code == 0 || !strings.Contains(errOut, "too many connections open for this user") {
			t.Fatalf("a third connection of alice's: exit %d, stderr %q", code, errOut)
		}
		if out, _, code := b.ssh("bob", "whoami"); code != 0 || !strings.Contains(out, "user:   bob") {
			t.Fatalf("bob, while alice is at her cap: exit %d: %s", code, out)
		}
	})
	t.Run("commands per user", func(t *testing.T) {
		t.Parallel()
		b := startBastionWith(t, options{server: "limits: {commands_per_minute: 2}"}) // a burst of 1
		if _, errOut, code := b.ssh("alice", "whoami"); code != 0 {
			t.Fatalf("alice's first command: exit %d: %s", code, errOut)
		}
		for range 3 {
			_, errOut, code := b.ssh("alice", "request", "web01", "--for", "1h", "--reason", "flood")
			if code != 1 || !strings.Contains(errOut, "too many commands: 2 a minute is the limit (server.limits.commands_per_minute); try again in") {
				t.Fatalf("alice past her limit: exit %d, stderr %q", code, errOut)
			}
		}
		if out, _, code := b.ssh("bob", "requests", "--json"); code != 0 || strings.Contains(out, "flood") {
			t.Fatalf("bob, while alice is limited: exit %d, %s (no refused request may have been filed)", code, out)
		}
		out, _, code := b.local("audit", "--type", "command", "--json")
		if code != 0 || strings.Count(out, `"limit":"commands_per_minute"`) != 1 {
			t.Fatalf("audit of the refusals: exit %d, want one event for the burst:\n%s", code, out)
		}
	})
}
