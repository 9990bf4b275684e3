// Command sshproxy measures Bastion's SSH proxy against OpenSSH, side by
// side in one run, and prints Markdown tables for BENCHMARKS.md:
//
//  1. throughput of `head -c SIZE /dev/zero | ssh … 'cat > /dev/null'`
//     direct to a real sshd, through an OpenSSH jump host (ssh -J), and
//     through Bastion (ssh root@web01@bastion);
//  2. session setup (`ssh … true`) the same three ways;
//  3. the keystroke round trip through a pty (`ssh -tt` running cat);
//  4. Bastion's resident memory with many idle interactive sessions.
//
// Everything is real and on loopback: the target and the jump host are
// OpenSSH sshd processes started by internal/harness, Bastion runs in this
// process (internal/server), the clients are the real OpenSSH ssh except for
// the idle sessions, which come from x/crypto/ssh clients in a child process
// (this program re-executed) so that they do not count against Bastion's
// memory.
//
//	go run ./bench/sshproxy [-size 1GiB] [-n 20] [-samples 500] [-sessions 1000]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	size       int64
	reps       int
	n          int
	samples    int
	sessions   int
	batch      int
	only       map[string]bool
	sshOpts    sshOptions // ssh_config lines for every host
	bastionOpt sshOptions // ssh_config lines for the Bastion host only
	cpuProfile string
	memProfile string
	quietBusy  float64
	quietWait  time.Duration
	keep       bool
}

// sections, in the order they run.
var sections = []string{"throughput", "setup", "keystroke", "idle"}

func main() {
	if len(os.Args) > 1 && os.Args[1] == idleClientCommand {
		os.Exit(idleClient(os.Args[2:]))
	}
	var o options
	size := flag.String("size", "1GiB", "bytes per throughput transfer (KiB, MiB, GiB, KB, MB, GB suffixes)")
	only := flag.String("only", strings.Join(sections, ","), "comma-separated sections to run")
	flag.IntVar(&o.reps, "reps", 3, "throughput transfers per path (the median is reported)")
	flag.IntVar(&o.n, "n", 20, "session setups (ssh … true) per path")
	flag.IntVar(&o.samples, "samples", 500, "keystroke round trips per path")
	flag.IntVar(&o.sessions, "sessions", 1000, "concurrent idle interactive sessions through Bastion")
	flag.IntVar(&o.batch, "batch", 50, "idle sessions opened concurrently per ramp-up batch")
	flag.Var(&o.sshOpts, "o", "an ssh_config option KEY=VALUE for every client connection, e.g. -o Ciphers=aes128-gcm@openssh.com (repeatable)")
	flag.Var(&o.bastionOpt, "bastion-o", "an ssh_config option KEY=VALUE for the connection to Bastion only (repeatable)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (Bastion) during the throughput section")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile of this process (Bastion) while the idle sessions are open")
	flag.Float64Var(&o.quietBusy, "quiet", 0.35, "before each section, wait until the machine's CPUs are less busy than this fraction")
	flag.DurationVar(&o.quietWait, "quiet-wait", time.Minute, "the longest wait for a quiet machine before each section")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, logs) after the run")
	flag.Parse()
	var err error
	if o.size, err = parseSize(*size); err != nil {
		fmt.Fprintln(os.Stderr, "sshproxy:", err)
		os.Exit(2)
	}
	o.only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(sections, s) {
			fmt.Fprintf(os.Stderr, "sshproxy: -only: unknown section %q (have %s)\n", s, strings.Join(sections, ", "))
			os.Exit(2)
		}
		o.only[s] = true
	}
	if o.reps < 1 || o.n < 1 || o.samples < 1 || o.sessions < 1 || o.batch < 1 {
		fmt.Fprintln(os.Stderr, "sshproxy: -reps, -n, -samples, -sessions and -batch must be positive")
		os.Exit(2)
	}

	// SIGPIPE too: when the reader of the tables goes away (| head), stop
	// everything cleanly instead of dying with the servers still running.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGPIPE)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "sshproxy:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	if err := raiseFileLimit(4*o.sessions + 1024); err != nil {
		return err
	}
	b, err := start(ctx, o)
	if err != nil {
		return err
	}
	defer b.stop()

	fmt.Printf("SSH proxy benchmark, %s, %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), machine())
	fmt.Printf("Bastion source: %s.\n", sourceRevision())
	fmt.Printf("Clients and peers: %s; sshd from %s; %s; Bastion in-process (x/crypto/ssh).\n", sshVersion(), sshdVersion(), runtime.Version())
	fmt.Printf("`ssh_config` (written to the run's temp dir) names three hosts: `target` (the target sshd, logging in as root with a\n" +
		"certificate from a test user CA), `jump` (a second sshd, the OpenSSH jump host) and `bastion` (Bastion, where alice has\n" +
		"standing access to web01 as root with her registered key).\n\n")
	if len(o.sshOpts)+len(o.bastionOpt) > 0 {
		fmt.Printf("Client options changed from OpenSSH's defaults: every host: `%s`; Bastion only: `%s`.\n\n", o.sshOpts.String(), o.bastionOpt.String())
	}
	if err := b.printCiphers(ctx); err != nil {
		return err
	}

	for _, name := range sections {
		if !o.only[name] {
			continue
		}
		before := waitQuiet(ctx, o.quietBusy, o.quietWait)
		if err := ctx.Err(); err != nil {
			return err
		}
		switch name {
		case "throughput":
			err = runThroughput(ctx, b, o)
		case "setup":
			err = runSetup(ctx, b, o)
		case "keystroke":
			err = runKeystroke(ctx, b, o)
		case "idle":
			err = runIdle(ctx, b, o)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Printf("\n_Machine load: before — %s; after — load average %s._\n\n", before, loadavg())
	}
	return nil
}

// sshOptions are ssh_config options given as KEY=VALUE flags.
type sshOptions []string

func (o *sshOptions) String() string { return strings.Join(*o, " ") }

func (o *sshOptions) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" || val == "" || strings.ContainsAny(v, "\n") {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	*o = append(*o, k+" "+val)
	return nil
}

// lines renders the options as indented ssh_config lines.
func (o sshOptions) lines() string {
	var b strings.Builder
	for _, line := range o {
		b.WriteString("  " + line + "\n")
	}
	return b.String()
}

// withCPUProfile runs f under a CPU profile written to path, if path is set.
func withCPUProfile(path string, f func() error) error {
	if path == "" {
		return f()
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		return err
	}
	err = f()
	pprof.StopCPUProfile()
	return err
}

// raiseFileLimit raises the soft open-file limit to at least want (capped
// at the hard limit): Bastion holds two sockets per proxied session, and
// the sshd processes started from here inherit the limit.
func raiseFileLimit(want int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= uint64(want) {
		return nil
	}
	lim.Cur = min(uint64(want), lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise open-file limit: %w", err)
	}
	return nil
}

// sourceRevision names the commit being measured and the files outside
// bench/ that differ from it.
func sourceRevision() string {
	rev, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "not a git checkout"
	}
	desc := "git " + strings.TrimSpace(string(rev))
	out, err := exec.Command("git", "status", "--porcelain", "--", ".", ":!bench").Output()
	if err != nil {
		return desc
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	switch {
	case len(out) == 0:
		return desc + ", clean outside bench/"
	case len(lines) <= 3:
		var paths []string
		for _, l := range lines {
			paths = append(paths, strings.TrimSpace(l[min(2, len(l)):]))
		}
		return desc + " plus uncommitted changes to " + strings.Join(paths, ", ")
	default:
		return fmt.Sprintf("%s plus uncommitted changes to %d paths outside bench/", desc, len(lines))
	}
}
