// Command recording measures Bastion's session recording into S3-compatible
// storage, everything real and on loopback, and prints Markdown tables for
// BENCHMARKS.md:
//
//  1. load: SESSIONS concurrent interactive SSH sessions through Bastion,
//     each printing RATE bytes per second without pause, recorded into a
//     bucket of a real versitygw through the spool: the recorder's
//     throughput, the upload lag (from a chunk's first byte written to its
//     upload), Bastion's CPU and peak memory;
//  2. throughput of one terminal session printing SIZE bytes: direct to
//     sshd (not recorded) and through Bastion recording into a directory
//     and into the bucket, in the same run.
//
// Bastion runs in this process; the SSH clients run in a child process
// (this program re-executed), so that their CPU and memory do not count as
// Bastion's.
//
//	go run ./bench/recording [-sessions 200] [-rate 16KiB] [-duration 30s] [-size 64MiB] [-reps 3]
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/internal/server"
	"github.com/bastionhq/bastion/recorder/spool"
)

// clientCommand is the first argument of the child process.
const clientCommand = "bench-recording-client"

// readyLine is what the child prints once every session is open.
const readyLine = "ready"

// drainTimeout bounds waiting for the spool to upload everything after the
// load ends.
const drainTimeout = 2 * time.Minute

func main() {
	if len(os.Args) > 1 && os.Args[1] == clientCommand {
		os.Exit(clientMain())
	}
	sessions := flag.Int("sessions", 200, "concurrent recorded sessions in the load test")
	rate := flag.String("rate", "16KiB", "bytes per second each session prints")
	duration := flag.Duration("duration", 30*time.Second, "how long the load runs")
	size := flag.String("size", "64MiB", "bytes the throughput session prints")
	reps := flag.Int("reps", 3, "throughput runs per path (the median is reported)")
	flag.Parse()
	r, err1 := parseSize(*rate)
	s, err2 := parseSize(*size)
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintln(os.Stderr, "recording:", err)
		os.Exit(2)
	}
	if err := run(*sessions, r, *duration, s, *reps); err != nil {
		fmt.Fprintln(os.Stderr, "recording:", err)
		os.Exit(1)
	}
}

// env is the running set-up.
type env struct {
	dir       string
	gw        *harness.S3
	target    *harness.SSHD
	aliceKey  string
	aliceCert string // for the direct path: signed by a bench CA the target trusts
	s3, local *bastion
	stops     []func() error
}

// bastion is one Bastion running in this process.
type bastion struct {
	addr    string
	hostKey string // authorized_keys line
	spool   *spool.Store
}

func run(sessions int, rate int64, duration time.Duration, size int64, reps int) error {
	ctx := context.Background()
	e, err := setUp(ctx)
	if e != nil {
		defer e.tearDown()
	}
	if err != nil {
		return err
	}
	fmt.Printf("Machine: %d CPUs (%s), load average %s at the start; versitygw, OpenSSH sshd and the clients share it with Bastion.\n\n",
		runtime.NumCPU(), runtime.Version(), loadavg())
	if err := e.load(sessions, rate, duration); err != nil {
		return err
	}
	return e.throughput(size, reps)
}

func setUp(ctx context.Context) (e *env, err error) {
	dir, err := os.MkdirTemp("", "bastion-bench-recording-")
	if err != nil {
		return nil, err
	}
	e = &env{dir: dir}
	if e.gw, err = harness.StartS3(ctx, harness.S3Config{Dir: filepath.Join(dir, "s3")}); err != nil {
		return e, err
	}
	e.stops = append(e.stops, e.gw.Stop)
	if err := e.gw.CreateBucket(ctx, "recordings"); err != nil {
		return e, err
	}
	e.aliceKey = filepath.Join(dir, "alice")
	alicePub, err := harness.WriteKeyPair(e.aliceKey, "")
	if err != nil {
		return e, err
	}
	benchCA, err := ca.LoadOrCreateSSH("bench-ca", filepath.Join(dir, "bench-ca"))
	if err != nil {
		return e, err
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(alicePub))
	if err != nil {
		return e, err
	}
	cert, err := benchCA.SignUser(ca.UserCertRequest{Key: key, KeyID: "bench", Serial: 1, Principals: []string{"root"},
		ValidAfter: time.Now().Add(-time.Minute), ValidBefore: time.Now().Add(48 * time.Hour), Extensions: map[string]string{"permit-pty": ""}})
	if err != nil {
		return e, err
	}
	e.aliceCert = filepath.Join(dir, "alice-cert.pub")
	if err := os.WriteFile(e.aliceCert, ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		return e, err
	}
	// Both Bastions' CAs exist before the target starts, so that it trusts
	// their upstream CAs.
	trusted := []string{benchCA.AuthorizedKey()}
	for _, name := range []string{"s3", "dir"} {
		cas, err := ca.LoadOrCreate(filepath.Join(dir, name, "data", "ca"), ca.Files{})
		if err != nil {
			return e, err
		}
		trusted = append(trusted, cas.Upstream.AuthorizedKey())
	}
	// HOME is an empty directory in the sessions: root's shell start-up
	// files (here pyenv, which takes a lock at every start) would make 200
	// shells starting at once queue behind each other.
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return e, err
	}
	e.target, err = harness.StartSSHD(ctx, harness.SSHDConfig{TrustedUserCAKeys: trusted,
		ExtraConfig: []string{"MaxStartups 2000", "MaxSessions 100", "SetEnv HOME=" + home}})
	if err != nil {
		return e, err
	}
	e.stops = append(e.stops, e.target.Stop)
	s3 := fmt.Sprintf("recordings: s3://recordings/bench\nrecording:\n  endpoint: %q\n  access_key: %q\n  secret_key: %q\n",
		e.gw.Endpoint, e.gw.AccessKey, e.gw.SecretKey)
	if e.s3, err = e.startBastion(ctx, filepath.Join(dir, "s3"), alicePub, s3); err != nil {
		return e, err
	}
	if e.local, err = e.startBastion(ctx, filepath.Join(dir, "dir"), alicePub, ""); err != nil {
		return e, err
	}
	return e, nil
}

// startBastion runs a Bastion in this process with extra config.
func (e *env) startBastion(ctx context.Context, dir, alicePub, extra string) (*bastion, error) {
	cfgYAML := fmt.Sprintf(`data_dir: %s
listen: {ssh: "127.0.0.1:0"}
users:
  - {name: alice, roles: [developer], keys: [%q]}
targets:
  - {name: web01, kind: ssh, address: %q, host_key: %q}
roles:
  developer:
    standing:
      - {targets: [web01], logins: [root]}
%s`, filepath.Join(dir, "data"), alicePub, e.target.Addr, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(e.target.HostPublicKey))), extra)
	cfgPath := filepath.Join(dir, "bastion.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	hostKey, err := ca.LoadOrCreateHostKey(filepath.Join(dir, "data", "ssh_host_ed25519_key"))
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "bastion.log"))
	if err != nil {
		return nil, err
	}
	b, err := server.New(ctx, cfg, slog.New(slog.NewJSONHandler(logFile, nil)))
	if err != nil {
		logFile.Close()
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		logFile.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx, &server.Listeners{SSH: l}) }()
	e.stops = append(e.stops, func() error {
		defer logFile.Close()
		cancel()
		return <-done
	})
	sp, _ := b.Recordings.(*spool.Store)
	return &bastion{addr: l.Addr().String(), hostKey: string(ssh.MarshalAuthorizedKey(hostKey.PublicKey())), spool: sp}, nil
}

func (e *env) tearDown() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		if err := e.stops[i](); err != nil {
			fmt.Fprintln(os.Stderr, "recording: stop:", err)
		}
	}
	os.RemoveAll(e.dir)
}

// load runs the load test against the S3-recording Bastion.
func (e *env) load(sessions int, rate int64, duration time.Duration) error {
	// Each session prints a 1/10 s worth of text every 100 ms.
	payload := filepath.Join(e.dir, "payload")
	line := strings.Repeat("0123456789abcdef", 4)[:63] + "\n"
	if err := os.WriteFile(payload, []byte(strings.Repeat(line, int(max(rate/10/64, 1)))), 0o644); err != nil {
		return err
	}
	var before spool.Status
	var cpu0 time.Duration
	var t0 time.Time
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sample := func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss := vmRSS(); rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}
	// bash prints and waits with builtins only (read -t on a pipe nobody
	// writes): the target does not fork 10 processes a second per session.
	command := fmt.Sprintf(`exec bash -c 'c=$(cat %s); exec 3<> <(:); while :; do printf "%%s\n" "$c"; read -t 0.1 -u 3; done'`, payload)
	res, err := e.clients(clientSpec{Addr: e.s3.addr, User: "root@web01", HostKey: e.s3.hostKey, Sessions: sessions,
		Duration: duration, Command: command}, func() {
		before, cpu0, t0 = e.s3.spool.Status(), processCPU(), time.Now()
		wg.Go(sample)
	})
	wall := time.Since(t0)
	cpu := processCPU() - cpu0
	close(stop)
	wg.Wait()
	if err != nil {
		return err
	}
	// Wait until every recording is sealed, then read the lags.
	ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := e.s3.spool.Drain(ctx); err != nil {
		return err
	}
	after := e.s3.spool.Status()
	lags := e.s3.spool.Lags()
	uploaded := after.Uploaded - before.Uploaded
	fmt.Printf("### %d concurrent recorded SSH sessions, %s/s each, %s, recordings in S3 (versitygw on loopback)\n\n", sessions, humanSize(rate), duration)
	fmt.Println("| measure | value |")
	fmt.Println("|---|---|")
	fmt.Printf("| sessions that ran the whole time | %d of %d |\n", res.Sessions, sessions)
	fmt.Printf("| output received by the clients | %s (%.2f MB/s) |\n", humanSize(res.Bytes), float64(res.Bytes)/1e6/res.Seconds)
	fmt.Printf("| recorded and uploaded (asciicast, JSON-escaped) | %s in %d chunks (%.2f MB/s over the run) |\n",
		humanSize(uploaded), after.Chunks-before.Chunks, float64(uploaded)/1e6/wall.Seconds())
	fmt.Printf("| upload lag p50 / p99 / max | %s / %s / %s |\n", ms(spool.Percentile(lags, 50)), ms(spool.Percentile(lags, 99)), ms(spool.Percentile(lags, 100)))
	fmt.Printf("| Bastion CPU | %.2f cores (%s over %s) |\n", cpu.Seconds()/wall.Seconds(), cpu.Round(time.Millisecond), wall.Round(time.Millisecond))
	fmt.Printf("| Bastion peak RSS | %s |\n\n", humanSize(peak.Load()))
	return nil
}

// throughput times one terminal session printing size bytes, each way.
func (e *env) throughput(size int64, reps int) error {
	// base64 of size*3/4 zero bytes is size bytes of text in 76-byte lines.
	command := fmt.Sprintf("exec sh -c 'head -c %d /dev/zero | base64'", size*3/4)
	paths := []struct {
		name string
		spec clientSpec
	}{
		{"direct to sshd (not recorded)", clientSpec{Addr: e.target.Addr, User: "root", HostKey: string(ssh.MarshalAuthorizedKey(e.target.HostPublicKey)), Cert: e.aliceCert}},
		{"Bastion, recording to a local directory", clientSpec{Addr: e.local.addr, User: "root@web01", HostKey: e.local.hostKey}},
		{"Bastion, recording to S3 through the spool", clientSpec{Addr: e.s3.addr, User: "root@web01", HostKey: e.s3.hostKey}},
	}
	fmt.Printf("### One terminal session printing %s (`%s` in a pty shell), median of %d\n\n", humanSize(size), command, reps)
	fmt.Println("| path | time | throughput |")
	fmt.Println("|---|---|---|")
	for _, p := range paths {
		var secs []float64
		var bytes int64
		for range reps {
			spec := p.spec
			spec.Sessions, spec.Command = 1, command
			res, err := e.clients(spec, nil)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			secs, bytes = append(secs, res.Seconds), res.Bytes
		}
		slices.Sort(secs)
		med := secs[len(secs)/2]
		fmt.Printf("| %s | %.2f s | %.1f MB/s (%s received) |\n", p.name, med, float64(bytes)/1e6/med, humanSize(bytes))
	}
	fmt.Println()
	return nil
}

// clientSpec tells the child process what to run.
type clientSpec struct {
	Addr, User, HostKey string
	Cert                string // certificate file for alice's key, if any
	Key                 string
	Sessions            int
	Duration            time.Duration // 0: until the command ends
	Command             string
}

// clientResult is what the child reports.
type clientResult struct {
	Sessions int     // sessions that ran to the end
	Bytes    int64   // output received
	Seconds  float64 // from the first session opened to the last closed
}

// clients runs spec in a child process; ready (if not nil) is called once
// every session is open, just before the commands start.
func (e *env) clients(spec clientSpec, ready func()) (clientResult, error) {
	spec.Key = e.aliceKey
	in, err := json.Marshal(spec)
	if err != nil {
		return clientResult{}, err
	}
	cmd := exec.Command(os.Args[0], clientCommand)
	cmd.Stdin = strings.NewReader(string(in))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return clientResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return clientResult{}, err
	}
	sc := bufio.NewScanner(stdout)
	var res clientResult
	for sc.Scan() {
		if sc.Text() == readyLine {
			if ready != nil {
				ready()
			}
			continue
		}
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			return res, errors.Join(fmt.Errorf("clients: %q: %w", sc.Text(), err), cmd.Wait())
		}
	}
	if err := cmd.Wait(); err != nil {
		return res, fmt.Errorf("clients: %w", err)
	}
	return res, nil
}

// clientMain is the child: it opens the sessions, runs them, and prints a
// clientResult.
func clientMain() int {
	var spec clientSpec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}
	cfg, err := clientConfig(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client:", err)
		return 1
	}
	var total atomic.Int64
	var ok atomic.Int32
	var opened, wg sync.WaitGroup
	errs := make(chan error, spec.Sessions)
	begin := make(chan struct{})
	for range spec.Sessions {
		opened.Add(1)
		wg.Go(func() {
			n, err := oneSession(spec, cfg, opened.Done, begin)
			total.Add(n)
			if err != nil {
				errs <- err
				return
			}
			ok.Add(1)
		})
	}
	// Every session is open (or failed) before any command starts: the
	// parent measures from here.
	opened.Wait()
	fmt.Println(readyLine)
	t0 := time.Now()
	close(begin)
	wg.Wait()
	close(errs)
	res := clientResult{Sessions: int(ok.Load()), Bytes: total.Load(), Seconds: time.Since(t0).Seconds()}
	n := 0
	for err := range errs {
		if n++; n <= 3 {
			fmt.Fprintln(os.Stderr, "client: session:", err)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 1
	}
	return 0
}

func clientConfig(spec clientSpec) (*ssh.ClientConfig, error) {
	pemBytes, err := os.ReadFile(spec.Key)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, err
	}
	if spec.Cert != "" {
		b, err := os.ReadFile(spec.Cert)
		if err != nil {
			return nil, err
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
		if err != nil {
			return nil, err
		}
		if signer, err = ssh.NewCertSigner(pub.(*ssh.Certificate), signer); err != nil {
			return nil, err
		}
	}
	hk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(spec.HostKey))
	if err != nil {
		return nil, err
	}
	return &ssh.ClientConfig{User: spec.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hk), HostKeyAlgorithms: []string{hk.Type()}, Timeout: time.Minute}, nil
}

// oneSession opens one pty shell session, calls opened, waits for begin,
// runs the command and returns the bytes it received.
func oneSession(spec clientSpec, cfg *ssh.ClientConfig, opened func(), begin <-chan struct{}) (int64, error) {
	once := sync.OnceFunc(opened)
	defer once()
	client, err := ssh.Dial("tcp", spec.Addr, cfg)
	if err != nil {
		return 0, err
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm", 50, 200, ssh.TerminalModes{ssh.ECHO: 0}); err != nil {
		return 0, err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return 0, err
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return 0, err
	}
	if err := sess.Shell(); err != nil {
		return 0, err
	}
	once()
	<-begin
	if _, err := io.WriteString(stdin, spec.Command+"\n"); err != nil {
		return 0, err
	}
	if spec.Duration > 0 {
		timer := time.AfterFunc(spec.Duration, func() { client.Close() })
		defer timer.Stop()
	}
	n, err := io.Copy(io.Discard, bufio.NewReaderSize(stdout, 64<<10))
	if spec.Duration > 0 {
		return n, nil // ended by closing the connection
	}
	return n, err
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func vmRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.SplitSeq(string(b), "\n") {
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

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// parseSize parses 64MiB, 16KiB, 1GiB or a number of bytes.
func parseSize(s string) (int64, error) {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil || v <= 0 {
				return 0, fmt.Errorf("bad size %q", s)
			}
			return v * u.mult, nil
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v, nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// loadavg is the 1-minute load average, from /proc/loadavg.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}
