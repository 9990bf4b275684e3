package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/internal/harness"
)

const (
	// idleClientCommand, as the first argument, makes this program the
	// client side of the idle test.
	idleClientCommand = "idle-client"
	// idleTimeout bounds the whole idle test, ramp-up included.
	idleTimeout = 15 * time.Minute
	// idleOpenTimeout bounds opening one idle session: connect, handshake,
	// pty, shell, and the shell's first answer.
	idleOpenTimeout = time.Minute
	// idleSettle is how long the sessions sit idle before memory is read.
	idleSettle = 10 * time.Second
	// idleDrainTimeout bounds waiting for Bastion and the target to let go
	// of the sessions after the clients leave.
	idleDrainTimeout = time.Minute
	// shellProbe is typed into each new shell; the shell's answer (RDY42,
	// which the echo of the typed line does not contain) proves that the
	// session reached a shell on the target.
	shellProbe  = "echo RDY$((6*7))\n"
	shellAnswer = "RDY42"
)

// memSnapshot is Bastion's (this process's) memory at one moment.
type memSnapshot struct {
	rss        int64 // VmRSS as the process runs
	rssGC      int64 // VmRSS after a GC and returning free memory to the OS
	heapInuse  int64
	stackInuse int64
	goroutines int
}

func snapshot() memSnapshot {
	var s memSnapshot
	s.rss = vmRSS()
	runtime.GC()
	debug.FreeOSMemory()
	s.rssGC = vmRSS()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s.heapInuse, s.stackInuse = int64(m.HeapInuse), int64(m.StackInuse)
	s.goroutines = runtime.NumGoroutine()
	return s
}

// runIdle opens -sessions idle interactive sessions through Bastion from a
// child process and reports Bastion's memory per session.
func runIdle(ctx context.Context, b *bench, o options) error {
	fmt.Printf("### %d concurrent idle interactive sessions through Bastion\n\n", o.sessions)
	fmt.Printf("A child process (this program, `%s`) opens the sessions with x/crypto/ssh clients, %d at a time: each logs in\n"+
		"as root@web01 with alice's key, requests a pty, starts a shell, waits for the shell to answer `%s`, and then idles.\n"+
		"Bastion's memory is read in its own process before and %s after the last session opened. The target's sshd\n"+
		"and shell processes are separate and not counted (their PSS is shown below for scale).\n\n",
		idleClientCommand, o.batch, strings.TrimSpace(shellProbe), idleSettle)

	ctx, cancel := context.WithTimeout(ctx, idleTimeout)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	before := snapshot()
	cpu0 := processCPU()

	child := exec.CommandContext(ctx, exe, idleClientCommand, "-addr", b.bastionAddr, "-key", b.aliceKey,
		"-hostkey", string(ssh.MarshalAuthorizedKey(b.bastionKey)), "-n", strconv.Itoa(o.sessions), "-batch", strconv.Itoa(o.batch))
	var childErr bytes.Buffer
	child.Stderr = &childErr
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := child.Start(); err != nil {
		return err
	}
	// The child holds its sessions until its stdin closes.
	stopped := false
	stopChild := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stdin.Close()
		return child.Wait()
	}
	defer func() {
		if stopped {
			return
		}
		if err := stopChild(); err != nil {
			fmt.Fprintln(os.Stderr, "sshproxy: idle client:", err, childErr.String())
		}
	}()

	opened := 0
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "open" {
			fmt.Fprintf(os.Stderr, "idle: %s sessions open after %s\n", f[1], time.Since(start).Round(time.Millisecond))
		}
		if len(f) == 2 && f[0] == "ready" {
			opened, _ = strconv.Atoi(f[1])
			break
		}
	}
	if opened != o.sessions {
		err := stopChild()
		return fmt.Errorf("idle client opened %d of %d sessions: %v: %s", opened, o.sessions, err, childErr.String())
	}
	rampUp, rampCPU := time.Since(start), processCPU()-cpu0

	// Idle: Bastion's CPU over the settle time is its cost of holding the
	// sessions (a grant check per session per second).
	settleCPU := processCPU()
	select {
	case <-time.After(idleSettle):
	case <-ctx.Done():
		return ctx.Err()
	}
	idleCPUPct := 100 * (processCPU() - settleCPU).Seconds() / idleSettle.Seconds()
	after := snapshot()
	if o.memProfile != "" {
		if err := writeHeapProfile(o.memProfile); err != nil {
			return err
		}
	}
	target := targetProcesses(b, o.sessions)

	if err := stopChild(); err != nil {
		return fmt.Errorf("idle client: %v: %s", err, childErr.String())
	}
	drained := waitDrained(ctx, b, before.goroutines)

	n := int64(o.sessions)
	kib := func(x int64) string { return fmt.Sprintf("%.1f MiB", float64(x)/(1<<20)) }
	per := func(a, b int64) string { return fmt.Sprintf("%.0f KiB", float64(b-a)/float64(n)/1024) }
	fmt.Printf("Ramp-up: %d sessions in %s; Bastion used %.1f CPU-seconds for it (%.1f ms per session).\n\n",
		o.sessions, rampUp.Round(100*time.Millisecond), rampCPU.Seconds(), float64(rampCPU.Milliseconds())/float64(n))
	fmt.Print("| Bastion process | before | with the sessions | per session |\n|---|---|---|---|\n")
	fmt.Printf("| VmRSS, as it runs | %s | %s | **%s** |\n", kib(before.rss), kib(after.rss), per(before.rss, after.rss))
	fmt.Printf("| VmRSS after GC and scavenge | %s | %s | %s |\n", kib(before.rssGC), kib(after.rssGC), per(before.rssGC, after.rssGC))
	fmt.Printf("| Go heap in use | %s | %s | %s |\n", kib(before.heapInuse), kib(after.heapInuse), per(before.heapInuse, after.heapInuse))
	fmt.Printf("| goroutine stacks | %s | %s | %s |\n", kib(before.stackInuse), kib(after.stackInuse), per(before.stackInuse, after.stackInuse))
	fmt.Printf("| goroutines | %d | %d | %.1f |\n", before.goroutines, after.goroutines, float64(after.goroutines-before.goroutines)/float64(n))
	perSession := float64(after.rss-before.rss) / float64(n) / 1024
	fmt.Printf("\nGoal < 256 KiB of resident memory per session: **%s** (%.0f KiB). Bastion's CPU with all sessions idle: %.1f%% of one core.\n",
		verdict(perSession < 256), perSession, idleCPUPct)
	fmt.Printf("For scale, not counted: on the target, %s.\n", target)
	if !drained {
		fmt.Println("\nWarning: Bastion had not let go of every session a minute after the clients left.")
	}
	return nil
}

// vmRSS reads this process's resident set size from /proc/self/status.
func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return -1
			}
			return kb * 1024
		}
	}
	return -1
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	g, err := os.Create(path + ".goroutine")
	if err != nil {
		return err
	}
	defer g.Close()
	return pprof.Lookup("goroutine").WriteTo(g, 0)
}

// waitDrained waits until Bastion's goroutines are back near where they
// were before the test and the target's session processes are gone.
func waitDrained(ctx context.Context, b *bench, goroutines int) bool {
	deadline := time.Now().Add(idleDrainTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if runtime.NumGoroutine() <= goroutines+10 && len(descendants(b.target)) == 0 {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// targetProcesses describes the target sshd's session processes: how many
// sshd and shell processes, and their total proportional set size.
func targetProcesses(b *bench, sessions int) string {
	var sshds, others int
	var pss int64
	for _, pid := range descendants(b.target) {
		comm, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		if strings.TrimSpace(string(comm)) == "sshd" {
			sshds++
		} else {
			others++
		}
		pss += smapsPSS(pid)
	}
	return fmt.Sprintf("%d sshd and %d shell processes, %.0f MiB PSS in all (%.0f KiB per session)",
		sshds, others, float64(pss)/(1<<20), float64(pss)/1024/float64(sessions))
}

// descendants lists the processes below the target sshd's listener: the
// per-connection sshd processes and their shells.
func descendants(s *harness.SSHD) []int {
	b, err := os.ReadFile(filepath.Join(s.Dir, "sshd.pid"))
	if err != nil {
		return nil
	}
	root, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid …; comm may contain spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := children[root]
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	return out
}

func smapsPSS(pid int) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "smaps_rollup"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// idleClient is the child process: it opens n idle interactive sessions
// through Bastion, prints "open K" after each batch and "ready N" when all
// are open, and holds them until its stdin closes. Then every shell is told
// to exit, so that each session ends from the target's side as a user's
// would, and the connections close.
func idleClient(args []string) int {
	fs := flag.NewFlagSet(idleClientCommand, flag.ContinueOnError)
	addr := fs.String("addr", "", "Bastion's address")
	keyFile := fs.String("key", "", "alice's private key")
	hostKey := fs.String("hostkey", "", "Bastion's host key, authorized_keys format")
	n := fs.Int("n", 1000, "sessions")
	batch := fs.Int("batch", 50, "sessions opened at once")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sessions, err := openIdleSessions(*addr, *keyFile, *hostKey, *n, *batch)
	defer closeIdleSessions(sessions)
	if err != nil {
		fmt.Fprintln(os.Stderr, "idle-client:", err)
		return 1
	}
	fmt.Printf("ready %d\n", len(sessions))
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "idle-client: stdin:", err)
	}
	return 0
}

// idleSession is a shell on the target through Bastion.
type idleSession struct {
	client  *ssh.Client
	session *ssh.Session
	stdin   io.WriteCloser
}

// closeIdleSessions exits every shell, waits (bounded) for the sessions to
// end, and closes the connections.
func closeIdleSessions(sessions []*idleSession) {
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan error, 1)
			go func() {
				if _, err := io.WriteString(s.stdin, "exit\n"); err != nil {
					done <- err
					return
				}
				done <- s.session.Wait()
			}()
			select {
			case err := <-done:
				if err != nil {
					failed.Add(1)
				}
			case <-time.After(idleOpenTimeout):
				failed.Add(1)
			}
			s.client.Close() // also ends the Wait above if it timed out
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "idle-client: %d sessions did not end cleanly\n", n)
	}
}

func openIdleSessions(addr, keyFile, hostKey string, n, batch int) ([]*idleSession, error) {
	pemBytes, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, err
	}
	hk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hostKey))
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User:              "root@web01",
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(hk),
		HostKeyAlgorithms: []string{hk.Type()},
	}
	sessions := make([]*idleSession, 0, n)
	for len(sessions) < n {
		k := min(batch, n-len(sessions))
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		for range k {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := openIdleSession(addr, cfg)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				sessions = append(sessions, s)
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			return sessions, fmt.Errorf("%d of a batch of %d sessions failed: %w", len(errs), k, errors.Join(errs...))
		}
		fmt.Printf("open %d\n", len(sessions))
	}
	return sessions, nil
}

// openIdleSession opens one session with a pty and a shell and waits for
// the shell to answer; the connection's deadline bounds all of it.
func openIdleSession(addr string, cfg *ssh.ClientConfig) (*idleSession, error) {
	nc, err := net.DialTimeout("tcp", addr, idleOpenTimeout)
	if err != nil {
		return nil, err
	}
	if err := nc.SetDeadline(time.Now().Add(idleOpenTimeout)); err != nil {
		nc.Close()
		return nil, err
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s := &idleSession{client: ssh.NewClient(conn, chans, reqs)}
	if err := s.startShell(); err != nil {
		s.client.Close()
		return nil, err
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		s.client.Close()
		return nil, err
	}
	return s, nil
}

func (s *idleSession) startShell() error {
	var err error
	if s.session, err = s.client.NewSession(); err != nil {
		return err
	}
	if s.stdin, err = s.session.StdinPipe(); err != nil {
		return err
	}
	stdout, err := s.session.StdoutPipe()
	if err != nil {
		return err
	}
	if err := s.session.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		return err
	}
	if err := s.session.Shell(); err != nil {
		return err
	}
	if _, err := io.WriteString(s.stdin, shellProbe); err != nil {
		return err
	}
	var seen []byte
	buf := make([]byte, 512)
	for !bytes.Contains(seen, []byte(shellAnswer)) {
		n, err := stdout.Read(buf)
		seen = append(seen, buf[:n]...)
		if err != nil {
			return fmt.Errorf("shell did not answer: %w (output %q)", err, seen)
		}
	}
	// An idle shell prints nothing more than its prompt and, at the end,
	// the echo of "exit", which fit in the channel's window: nothing needs
	// to read them.
	return nil
}
