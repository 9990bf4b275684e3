package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// shellDrillRan is how many typed lines must have run on the target before
// Bastion is killed: well over a second's worth, the interval at which a
// shell's recording was synced before each line was committed.
const shellDrillRan = 40

// shellDrillLine finds the drill's numbered lines, in the target's file and
// in the recording's line markers.
var shellDrillLine = regexp.MustCompile(`shelldur-(\d+)`)

// TestDurabilityKillShell is issue 17's kill -9 drill for an interactive
// shell under recording: fail-closed: lines typed into a real ssh -tt
// session in a real terminal each append their number to a file on the
// target; Bastion is killed with SIGKILL while they run, and started
// again. Every line the target ran must be among the recording's line
// markers, since a line's Enter reaches the target only once its marker
// is durable: where command rules filter the lines, and where none apply
// (the filter then only records).
func TestDurabilityKillShell(t *testing.T) {
	t.Parallel()
	i := strings.Index(defaultRoles, "    commands:\n")
	j := strings.Index(defaultRoles, "  lead:\n")
	if i < 0 || j < i {
		t.Fatal("the developer role's command rules are not where this test expects them")
	}
	tests := []struct {
		name  string
		roles string
	}{
		{"command rules", defaultRoles},
		{"no command rules", defaultRoles[:i] + defaultRoles[j:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			shellDrill(t, startProxyBastionWith(t, options{roles: tt.roles}))
		})
	}
}

// shellDrill runs the drill on alice's shell on web01.
func shellDrill(t *testing.T, p *proxyBastion) {
	t.Helper()
	_, cert := p.grant(t, "30m", "web01")
	tm := p.shellOnWeb01(t, cert, 200, 30, "")
	file := filepath.Join(t.TempDir(), "ran")

	// Type lines until told to stop (or the terminal is gone: ssh exits
	// when Bastion dies).
	stop := make(chan struct{})
	typed := make(chan int, 1)
	go func() {
		n := 0
		defer func() { typed <- n }()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			line := fmt.Sprintf("echo shelldur-%d >> %s", i, file)
			if exec.Command("tmux", "-S", tm.socket, "send-keys", "-t", tm.name, line, "Enter").Run() != nil {
				return
			}
			n = i
		}
	}()
	waitFor(t, drillWait, func() bool { return len(shellDrillNumbers(t, readIfExists(t, file))) >= shellDrillRan })
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	close(stop)
	t.Logf("%d lines typed", <-typed)
	oldPort := p.sshPort
	p.start() // recovers what the killed process left
	trustNewPort(t, p.testBastion, oldPort)

	// The killed session's row is still live until something seals it; its
	// recording is what the spool holds.
	var sessID string
	for _, s := range p.sessionsOf("carol") {
		if s.Kind == "shell" {
			sessID = s.ID
		}
	}
	if sessID == "" {
		t.Fatalf("no shell session listed after the restart: %+v", p.sessionsOf("carol"))
	}
	cast := p.mustRun("carol", "export", sessID)
	recorded := map[int]bool{}
	for _, line := range strings.Split(cast, "\n") {
		if strings.Contains(line, `"m", "line: echo shelldur-`) {
			for n := range shellDrillNumbers(t, line) {
				recorded[n] = true
			}
		}
	}
	ran := shellDrillNumbers(t, readIfExists(t, file))
	var missing []int
	for n := range ran {
		if !recorded[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d lines the target ran are missing from the recording after kill -9: %v", len(missing), len(ran), missing)
	}
	t.Logf("all %d lines the target ran are recorded (%d line markers)", len(ran), len(recorded))
	// The replay shows each line as Bastion's marker.
	replay := p.mustRun("carol", "replay", sessID, "--speed", "1000", "--idle-limit", "10ms")
	if !strings.Contains(replay, "[bastion] line: echo shelldur-1 >> "+file) {
		t.Errorf("replay lacks the first line's marker:\n%s", replay)
	}
}

// shellDrillNumbers returns the drill numbers in text.
func shellDrillNumbers(t *testing.T, text string) map[int]bool {
	t.Helper()
	got := map[int]bool{}
	for _, m := range shellDrillLine.FindAllStringSubmatch(text, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			t.Fatalf("drill number %q: %v", m[1], err)
		}
		got[n] = true
	}
	return got
}

// readIfExists returns a file's content, "" if it does not exist yet.
func readIfExists(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// trustNewPort points the known_hosts entry of Bastion's host CA at the
// port a restarted Bastion listens on.
func trustNewPort(t *testing.T, b *testBastion, oldPort string) {
	t.Helper()
	kh, err := os.ReadFile(b.knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	kh = []byte(strings.ReplaceAll(string(kh), "[127.0.0.1]:"+oldPort+" ", "[127.0.0.1]:"+b.sshPort+" "))
	if err := os.WriteFile(b.knownHosts, kh, 0o644); err != nil {
		t.Fatal(err)
	}
}
