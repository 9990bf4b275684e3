// Package benchdb is what the database benchmarks share: Bastion run in the
// benchmark's own process in front of one database target, with query rules
// and recording on, and the CPU accounting of the routes.
package benchdb

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/internal/server"
)

// Bastion is a running in-process Bastion and alice's way through it.
type Bastion struct {
	Host     string
	Port     int
	User     string
	Password string // a fresh database secret
	// Stop stops Bastion and waits for it.
	Stop func()
}

// Target is the database target a benchmark puts behind Bastion.
type Target struct {
	Kind     policy.Kind
	Name     string // also the database name clients ask for
	Address  string
	Database string
	Username string
	Password string
	// Rules is the YAML list under the developer role's `queries:`,
	// indented by six spaces.
	Rules string
}

// StartBastion writes a config under dir with alice (role developer,
// auto-approved on t) and t, runs Bastion in this process with only SSH and
// t's front end listening, and returns a fresh token of alice's.
func StartBastion(ctx context.Context, dir string, t Target) (*Bastion, error) {
	pub, err := harness.WriteKeyPair(filepath.Join(dir, "alice"), "")
	if err != nil {
		return nil, err
	}
	// sysbench talks to every route in clear (direct and haproxy too), so
	// Bastion's MySQL listener, which requires TLS by default, allows
	// plaintext here, as it may on loopback.
	plaintext := ""
	if t.Kind == policy.KindMySQL {
		plaintext = ", mysql_plaintext: true"
	}
	yaml := fmt.Sprintf(`data_dir: %s/data
listen: {ssh: "127.0.0.1:0", %s: "127.0.0.1:0"%s}
server: {hostnames: [127.0.0.1]}
users:
  - {name: alice, roles: [developer], keys: [%q]}
targets:
  - {name: %s, kind: %s, address: %q, database: %s, username: %s, password: %q}
roles:
  developer:
    request:
      - targets: [%s]
        auto_approve:
          networks: [127.0.0.0/8]
    durability: %s
    queries:
%s`, dir, t.Kind, plaintext, pub, t.Name, t.Kind, t.Address, t.Database, t.Username, t.Password, t.Name, durability(), t.Rules)
	path := filepath.Join(dir, "bastion.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	b, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, err
	}
	sshL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Close()
		return nil, err
	}
	dbL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		sshL.Close()
		b.Close()
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.Run(runCtx, &server.Listeners{SSH: sshL, Databases: map[policy.Kind]net.Listener{t.Kind: dbL}})
	}()
	stopAll := func() { stop(); <-done }
	actor := access.Actor{User: "alice", Source: netip.MustParseAddr("127.0.0.1")}
	req, err := b.Access.Request(ctx, actor, access.RequestInput{Targets: []string{t.Name}, Duration: time.Hour, Reason: "benchmark"})
	if err != nil {
		stopAll()
		return nil, err
	}
	sec, err := b.Access.IssueDBSecret(ctx, actor, req.ID)
	if err != nil {
		stopAll()
		return nil, err
	}
	return &Bastion{Host: "127.0.0.1", Port: dbL.Addr().(*net.TCPAddr).Port, User: "alice", Password: sec.Secret, Stop: stopAll}, nil
}

// durability is the role's durability: BENCH_DURABILITY (statement or
// second), else statement, the default of a fail-closed role. Run a
// benchmark once with each to compare them.
func durability() string {
	if d := os.Getenv("BENCH_DURABILITY"); d != "" {
		return d
	}
	return "statement"
}

// SelfCPU is this process's CPU time (Bastion runs in it).
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcCPU is a process's CPU time, from /proc/PID/stat.
func ProcCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ
}

// Measure runs f with GOMAXPROCS set to procs (Bastion runs in this
// process; 0 leaves it alone) and returns the CPU time cpu counted
// meanwhile: a proxy's, when f drives load through it. A nil cpu gives 0.
func Measure(cpu func() time.Duration, procs int, f func()) time.Duration {
	if procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	}
	if cpu == nil {
		f()
		return 0
	}
	before := cpu()
	f()
	return cpu() - before
}

// Cores is the number of CPUs (nproc).
func Cores() int {
	out, _ := exec.Command("nproc").Output()
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

// Run runs a benchmark's body, with a CPU profile of the whole run written
// to cpuProfile when it is not empty, and exits 1 with the error, prefixed
// by name, if the body fails.
func Run(name, cpuProfile string, body func() error) {
	fail := func(err error) {
		pprof.StopCPUProfile()
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
	}
	if err := body(); err != nil {
		fail(err)
	}
	pprof.StopCPUProfile()
}

// Median is the median of rs by rate (the upper one of an even count).
func Median[T any](rs []T, rate func(T) float64) T {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b T) int { return cmp.Compare(rate(a), rate(b)) })
	return s[len(s)/2]
}
