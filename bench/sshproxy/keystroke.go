package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

const (
	// keystrokeWarmup round trips per path are discarded first.
	keystrokeWarmup = 20
	// keystrokeTimeout bounds one round trip.
	keystrokeTimeout = 5 * time.Second
	// keystrokeGap is the pause between two keystrokes, a fast typist's
	// rhythm rather than a tight loop that keeps every CPU hot.
	keystrokeGap = 5 * time.Millisecond
	// ttyStartTimeout bounds starting an interactive session.
	ttyStartTimeout = 30 * time.Second
	// ttyStopTimeout bounds ssh's exit after Ctrl-C, and again after its
	// terminal hangs up.
	ttyStopTimeout = 5 * time.Second
)

// echoCommand makes the target's pty pass each byte on at once without
// echoing it, so that the echo comes from cat (through sshd and the pty)
// rather than from the line discipline, and says when it is ready. Signals
// stay on: Ctrl-C ends cat, and with it the session, from the target's side.
const echoCommand = "stty -icanon -echo min 1 time 0; printf READY; exec cat"

// interrupt is Ctrl-C, which the target's pty turns into SIGINT for cat.
const interrupt = 0x03

const readyMarker = "READY"

// runKeystroke measures the time from writing one byte to an interactive
// `ssh -tt` session until cat on the target has echoed it back, on all
// paths at once, one keystroke per path in turn.
func runKeystroke(ctx context.Context, b *bench, o options) error {
	fmt.Printf("### Keystroke round trip through a pty: %d samples per path\n\n", o.samples)
	fmt.Printf("The real OpenSSH client runs on a pty (its terminal in raw mode, as when a person types); one byte is written to the\n"+
		"pty and timed until the target's `cat` has echoed it back through its own pty. The sessions are open side by side and\n"+
		"sampled in turn, %s apart, after %d warm-up samples each.\n\n", keystrokeGap, keystrokeWarmup)
	for _, r := range routes {
		fmt.Printf("- %s: `%s`\n", r, b.display(r, []string{"-tt"}, echoCommand))
	}
	fmt.Println()

	sessions := map[route]*ttySession{}
	defer func() {
		for _, s := range sessions {
			s.close()
		}
	}()
	for _, r := range routes {
		s, err := startTTY(ctx, b, r)
		if err != nil {
			return err
		}
		sessions[r] = s
	}
	times := map[route][]time.Duration{}
	for i := 0; i < keystrokeWarmup+o.samples; i++ {
		key := byte('a' + i%26)
		for _, r := range routes {
			if err := ctx.Err(); err != nil {
				return err
			}
			d, err := sessions[r].roundTrip(key)
			if err != nil {
				return fmt.Errorf("%s: keystroke %d: %w", r, i, err)
			}
			if i >= keystrokeWarmup {
				times[r] = append(times[r], d)
			}
			time.Sleep(keystrokeGap)
		}
	}

	dir := sorted(times[direct])
	fmt.Print("| path | p50 | p90 | p99 | max | added p50 vs direct | added p99 vs direct |\n|---|---|---|---|---|---|---|\n")
	for _, r := range routes {
		d := sorted(times[r])
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", r, us(pct(d, 50)), us(pct(d, 90)), us(pct(d, 99)), us(d[len(d)-1]),
			us(pct(d, 50)-pct(dir, 50)), us(pct(d, 99)-pct(dir, 99)))
	}
	bst := sorted(times[viaBastion])
	added := pct(bst, 99) - pct(dir, 99)
	fmt.Printf("\nGoal added p99 < 1 ms over direct: **%s** (%s).\n", verdict(added < time.Millisecond), us(added))
	return nil
}

// ttySession is an interactive ssh on a pty.
type ttySession struct {
	route  route
	cmd    *exec.Cmd
	done   chan struct{} // closed when ssh has exited
	master *os.File
	seen   bytes.Buffer // output not yet consumed
}

func startTTY(ctx context.Context, b *bench, r route) (*ttySession, error) {
	master, tty, err := openPTY()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ssh", b.sshArgs(r, []string{"-tt"}, echoCommand)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = cmd.Start()
	tty.Close() // ssh has its own copy
	if err != nil {
		master.Close()
		return nil, err
	}
	s := &ttySession{route: r, cmd: cmd, master: master, done: make(chan struct{})}
	// ssh's exit status is not checked: Ctrl-C ends the session by design.
	go func() { defer close(s.done); _ = cmd.Wait() }()
	if err := s.waitFor(ctx, []byte(readyMarker), ttyStartTimeout); err != nil {
		out := s.seen.String()
		s.close()
		return nil, fmt.Errorf("%s: interactive session did not start: %w (output %q)", r, err, out)
	}
	s.seen.Reset()
	return s, nil
}

// waitFor reads until want has arrived, then drops what came up to it.
func (s *ttySession) waitFor(ctx context.Context, want []byte, timeout time.Duration) error {
	if err := s.master.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	var buf [256]byte
	for {
		if i := bytes.Index(s.seen.Bytes(), want); i >= 0 {
			s.seen.Next(i + len(want))
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := s.master.Read(buf[:])
		s.seen.Write(buf[:n])
		if err != nil {
			return err
		}
	}
}

// roundTrip writes key and returns how long its echo took.
func (s *ttySession) roundTrip(key byte) (time.Duration, error) {
	if s.seen.Len() > 0 {
		return 0, fmt.Errorf("unexpected output %q", s.seen.String())
	}
	if err := s.master.SetReadDeadline(time.Now().Add(keystrokeTimeout)); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := s.master.Write([]byte{key}); err != nil {
		return 0, err
	}
	var buf [64]byte
	for {
		n, err := s.master.Read(buf[:])
		if i := bytes.IndexByte(buf[:n], key); i >= 0 {
			d := time.Since(start)
			s.seen.Write(buf[i+1 : n])
			return d, nil
		}
		s.seen.Write(buf[:n])
		if err != nil {
			return 0, fmt.Errorf("%w (output %q)", err, s.seen.String())
		}
	}
}

// close ends the session from the target's side (Ctrl-C ends cat, sshd
// closes the channel, ssh exits), then hangs up the terminal; it kills ssh
// if it has not exited in time.
func (s *ttySession) close() {
	_, err := s.master.Write([]byte{interrupt})
	if err == nil {
		select {
		case <-s.done:
		case <-time.After(ttyStopTimeout):
			fmt.Fprintf(os.Stderr, "sshproxy: %s: the interactive session did not end on Ctrl-C\n", s.route)
		}
	}
	s.master.Close()
	select {
	case <-s.done:
		return
	case <-time.After(ttyStopTimeout):
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		fmt.Fprintln(os.Stderr, "sshproxy: kill ssh:", err)
	}
	<-s.done
}
