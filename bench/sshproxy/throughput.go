package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Bounds on one transfer: a fixed allowance plus the time at a floor rate
// far below anything ssh does on loopback.
const (
	transferAllowance = time.Minute
	transferFloorRate = 2e6 // bytes per second
)

// sinkCommand is what the target runs.
const sinkCommand = "cat > /dev/null"

// runThroughput streams -size bytes to `cat > /dev/null` on the target each
// way, -reps times, round robin so that a passing load spike hits every path
// alike, and reports the median rate.
func runThroughput(ctx context.Context, b *bench, o options) error {
	fmt.Printf("### Throughput: %s through `ssh … '%s'`, median of %d\n\n", humanSize(o.size), sinkCommand, o.reps)
	fmt.Printf("`head -c %d /dev/zero | CMD`, timed from start to ssh's exit (session setup included, ~0.1–0.3 s); MB = 10⁶ bytes.\n\n", o.size)
	for _, r := range routes {
		fmt.Printf("- %s: `%s`\n", r, b.display(r, nil, sinkCommand))
	}
	fmt.Println()

	rates := map[route][]float64{}
	var bastionCPU time.Duration
	var bastionTime time.Duration
	err := withCPUProfile(o.cpuProfile, func() error {
		for rep := 0; rep < o.reps; rep++ {
			for _, r := range routes {
				cpu0 := processCPU()
				d, err := transfer(ctx, b, r, o.size)
				if err != nil {
					return err
				}
				if r == viaBastion {
					bastionCPU += processCPU() - cpu0
					bastionTime += d
				}
				rates[r] = append(rates[r], float64(o.size)/d.Seconds()/1e6)
				fmt.Fprintf(os.Stderr, "throughput %d/%d %s: %.1f MB/s\n", rep+1, o.reps, r, rates[r][len(rates[r])-1])
			}
		}
		return nil
	})
	if err != nil {
		return err
	}

	jump, dir := median(rates[jumpHost]), median(rates[direct])
	fmt.Print("| path | runs (MB/s) | median MB/s | vs jump host | vs direct |\n|---|---|---|---|---|\n")
	for _, r := range routes {
		runs := ""
		for i, x := range rates[r] {
			if i > 0 {
				runs += ", "
			}
			runs += fmt.Sprintf("%.0f", x)
		}
		m := median(rates[r])
		fmt.Printf("| %s | %s | **%.0f** | %s | %s |\n", r, runs, m, ratio(m, jump), ratio(m, dir))
	}
	fmt.Printf("\nGoal Bastion ≥ 1.0× the jump host: **%s** (%s). Bastion's process used %.2f CPU-seconds per GiB relayed (%.0f%% of one core while relaying).\n",
		verdict(median(rates[viaBastion]) >= jump), ratio(median(rates[viaBastion]), jump),
		bastionCPU.Seconds()/(float64(o.size)*float64(o.reps)/(1<<30)), 100*bastionCPU.Seconds()/bastionTime.Seconds())
	return nil
}

// transfer runs head -c size /dev/zero | ssh … 'cat > /dev/null' by r and
// returns how long it took.
func transfer(ctx context.Context, b *bench, r route, size int64) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, transferAllowance+time.Duration(float64(size)/transferFloorRate*float64(time.Second)))
	defer cancel()
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	var sshErr, headErr bytes.Buffer
	sshCmd := exec.CommandContext(ctx, "ssh", b.sshArgs(r, nil, sinkCommand)...)
	sshCmd.Stdin, sshCmd.Stderr = pr, &sshErr
	head := exec.CommandContext(ctx, "head", "-c", strconv.FormatInt(size, 10), "/dev/zero")
	head.Stdout, head.Stderr = pw, &headErr

	start := time.Now()
	err = sshCmd.Start()
	if err == nil {
		if err = head.Start(); err != nil {
			_ = sshCmd.Process.Kill() // head never ran: nothing to wait for but ssh
		}
	}
	pr.Close() // the children hold their own copies
	pw.Close()
	if err != nil {
		_ = sshCmd.Wait()
		return 0, err
	}
	sshWait := sshCmd.Wait()
	d := time.Since(start)
	headWait := head.Wait()
	if sshWait != nil {
		return 0, fmt.Errorf("%s: ssh: %v: %s", r, sshWait, sshErr.String())
	}
	if headWait != nil {
		return 0, fmt.Errorf("%s: head: %v: %s", r, headWait, headErr.String())
	}
	return d, nil
}

// processCPU is the user and system CPU time this process (Bastion) used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
