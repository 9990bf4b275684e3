// Command postgres measures Bastion's PostgreSQL front end with pgbench
// against a real PostgreSQL, side by side in one run: directly, through
// pgbouncer, and through Bastion with query rules and recording on. Every
// client connects with TLS (sslmode=require) on every route; the legs from
// pgbouncer and Bastion to PostgreSQL are plain loopback TCP. Routes are
// interleaved round by round; the table gives the median round of each and
// its ratio to direct.
//
//	go run ./bench/postgres [-time 15] [-clients 8] [-rounds 3] [-scale 10]
//
// Workloads: pgbench -S (select-only) with the simple and the prepared
// protocol, and -S -C (a new connection per transaction: the connection
// setup rate). pgbouncer runs in session pool mode, so that -M prepared
// works through it (transaction pooling does not carry prepared statements
// in pgbouncer 1.18); it authenticates clients with SCRAM against the
// verifier copied from pg_authid. It needs postgresql and pgbouncer
// installed; pgbouncer refuses to run as root, so it runs as the postgres
// user (runuser).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bench/internal/benchdb"
	"github.com/bastionhq/bastion/internal/harness"
)

type options struct {
	seconds, clients, rounds, scale int
	only                            string
}

func main() {
	var o options
	flag.IntVar(&o.seconds, "time", 15, "seconds per pgbench run")
	flag.IntVar(&o.clients, "clients", 8, "pgbench clients")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds (each runs every route once)")
	flag.IntVar(&o.scale, "scale", 10, "pgbench scale factor")
	flag.StringVar(&o.only, "only", "", "run only the workloads whose name contains this")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (Bastion runs in this process)")
	flag.Parse()
	benchdb.Run("bench/postgres", *cpuProfile, func() error { return run(o) })
}

// route is a way to the database.
type route struct {
	name, host     string
	port           int
	user, password string
	cpu            func() time.Duration // the proxy's CPU time so far; nil for direct
	procs          int                  // Bastion's GOMAXPROCS for this route; 0: the default
}

func (r route) url() string {
	return fmt.Sprintf("postgres://%s@%s:%d/bench?sslmode=require", r.user, r.host, r.port)
}

// workload is one pgbench invocation, less the route and duration.
type workload struct {
	name string
	args []string
}

func run(o options) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bastion-bench-postgres-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	pg, err := harness.StartPostgres(ctx, harness.PostgresConfig{TLS: true, Databases: []string{"bench"}})
	if err != nil {
		return err
	}
	defer pg.Stop()
	direct := route{name: "direct", host: pg.Host, port: pg.Port, user: pg.User, password: pg.Password}
	if out, err := pgbench(direct, "-i", "-q", "-s", strconv.Itoa(o.scale)); err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}

	bouncer, stopBouncer, err := startPgbouncer(ctx, dir, pg, o.clients)
	if err != nil {
		return err
	}
	defer stopBouncer()

	bastion, stopBastion, err := startBastion(ctx, dir, pg)
	if err != nil {
		return err
	}
	defer stopBastion()
	bastion.cpu = benchdb.SelfCPU

	// The same Bastion with one thread running Go code, as pgbouncer is one
	// thread: on two cores shared with PostgreSQL and pgbench, fewer threads
	// mean fewer sleeps and wake-ups.
	bastion1 := bastion
	bastion1.name, bastion1.procs = "Bastion, GOMAXPROCS=1", 1
	routes := []route{direct, bouncer, bastion, bastion1}
	c := strconv.Itoa(o.clients)
	workloads := []workload{
		{"-S simple", []string{"-S", "-M", "simple", "-c", c, "-j", "2"}},
		{"-S prepared", []string{"-S", "-M", "prepared", "-c", c, "-j", "2"}},
		{"-S -C (connect per transaction)", []string{"-S", "-C", "-c", c, "-j", "2"}},
	}
	fmt.Printf("%s, %d clients, %d s per run, scale %d, %d rounds (median round shown); %d cores; %s, %s\n\n",
		version("pgbench"), o.clients, o.seconds, o.scale, o.rounds, benchdb.Cores(), version("postgres"), version("pgbouncer"))
	fmt.Println("Every route: TLS from pgbench (sslmode=require). pgbouncer: session pooling, SCRAM.")
	fmt.Println("Bastion: SCRAM, query rules on (6 rules, every statement parsed and decided, decisions cached by text), every statement recorded (JSON Lines, local directory).")
	fmt.Println()
	fmt.Println("| workload | route | transactions/s | avg latency | vs direct | vs pgbouncer | proxy CPU per transaction |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, w := range workloads {
		if o.only != "" && !strings.Contains(w.name, o.only) {
			continue
		}
		res := map[string][]result{}
		for round := range o.rounds {
			for _, r := range routes {
				var out string
				used := benchdb.Measure(r.cpu, r.procs, func() { out, err = pgbench(r, append(w.args, "-T", strconv.Itoa(o.seconds))...) })
				if err != nil {
					return fmt.Errorf("pgbench %s via %s: %w\n%s", w.name, r.name, err, out)
				}
				x, err := parse(out)
				if err != nil {
					return fmt.Errorf("%s via %s: %w\n%s", w.name, r.name, err, out)
				}
				if r.cpu != nil && x.transactions > 0 {
					x.cpuPerTx = float64(used.Microseconds()) / x.transactions
				}
				fmt.Fprintf(os.Stderr, "%s round %d %s: %.0f tps\n", w.name, round+1, r.name, x.tps)
				res[r.name] = append(res[r.name], x)
			}
		}
		base, pb := median(res[direct.name]), median(res[bouncer.name])
		for _, r := range routes {
			m := median(res[r.name])
			cpu := "–"
			if r.cpu != nil {
				cpu = fmt.Sprintf("%.0f µs", m.cpuPerTx)
			}
			fmt.Printf("| %s | %s | %.0f | %.3f ms | %.2f× | %.2f× | %s |\n", w.name, r.name, m.tps, m.latency, m.tps/base.tps, m.tps/pb.tps, cpu)
		}
	}
	fmt.Println()
	fmt.Println("Goals: Bastion ≥ 0.75× direct and ahead of pgbouncer (-S, both protocols); connection setup (-C) ≥ pgbouncer.")
	return nil
}

// result is one pgbench run.
type result struct {
	tps, latency float64
	transactions float64 // processed in the run
	cpuPerTx     float64 // µs of the proxy's CPU time per transaction
}

var (
	reTPS     = regexp.MustCompile(`tps = ([\d.]+)`)
	reLatency = regexp.MustCompile(`latency average = ([\d.]+) ms`)
	reFailed  = regexp.MustCompile(`number of failed transactions: (\d+)`)
	reDone    = regexp.MustCompile(`number of transactions actually processed: (\d+)`)
)

func parse(out string) (result, error) {
	var r result
	if m := reFailed.FindStringSubmatch(out); m == nil || m[1] != "0" {
		return r, fmt.Errorf("pgbench reports failed transactions")
	}
	m := reTPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no tps in pgbench's output")
	}
	r.tps, _ = strconv.ParseFloat(m[1], 64)
	if m := reDone.FindStringSubmatch(out); m != nil {
		r.transactions, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reLatency.FindStringSubmatch(out); m != nil {
		r.latency, _ = strconv.ParseFloat(m[1], 64)
	}
	return r, nil
}

// median is the round with the median transaction rate.
func median(rs []result) result {
	return benchdb.Median(rs, func(r result) float64 { return r.tps })
}

// pgbenchTimeout bounds one pgbench run beyond its -T.
const pgbenchTimeout = time.Minute

func pgbench(r route, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgbenchTimeout+time.Duration(runSeconds(args))*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "pgbench", append(args, r.url())...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+r.password)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runSeconds is the -T of a pgbench command line, 0 without one.
func runSeconds(args []string) int {
	for i := range len(args) - 1 {
		if args[i] == "-T" {
			n, _ := strconv.Atoi(args[i+1])
			return n
		}
	}
	return 0
}

func version(program string) string {
	path, err := exec.LookPath(program)
	if err != nil {
		for _, p := range []string{"/usr/sbin/" + program, "/usr/lib/postgresql/15/bin/" + program} {
			if _, err := os.Stat(p); err == nil {
				path = p
			}
		}
	}
	out, _ := exec.Command(path, "--version").Output()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

// startPgbouncer runs pgbouncer as the postgres user in front of pg, with
// TLS for clients (PostgreSQL's own certificate) and SCRAM; stop ends it by
// its PID.
func startPgbouncer(ctx context.Context, dir string, pg *harness.Postgres, poolSize int) (route, func(), error) {
	bdir := filepath.Join(dir, "pgbouncer")
	if err := os.MkdirAll(bdir, 0o700); err != nil {
		return route{}, nil, err
	}
	for _, f := range []string{"server.crt", "server.key"} {
		b, err := os.ReadFile(filepath.Join(pg.Dir, "data", f))
		if err != nil {
			return route{}, nil, err
		}
		if err := os.WriteFile(filepath.Join(bdir, f), b, 0o600); err != nil {
			return route{}, nil, err
		}
	}
	verifier, err := exec.CommandContext(ctx, "psql", "-X", "-A", "-t", strings.Replace(direct(pg), "/bench?", "/postgres?", 1),
		"-c", "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'").Output()
	if err != nil {
		return route{}, nil, fmt.Errorf("read the SCRAM verifier: %w", err)
	}
	users := fmt.Sprintf("%q %q\n", "postgres", strings.TrimSpace(string(verifier)))
	if err := os.WriteFile(filepath.Join(bdir, "users.txt"), []byte(users), 0o600); err != nil {
		return route{}, nil, err
	}
	port, err := harness.FreePort()
	if err != nil {
		return route{}, nil, err
	}
	ini := fmt.Sprintf(`[databases]
bench = host=127.0.0.1 port=%d dbname=bench
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = %[3]s/users.txt
pool_mode = session
default_pool_size = %d
max_client_conn = 200
client_tls_sslmode = require
client_tls_cert_file = %[3]s/server.crt
client_tls_key_file = %[3]s/server.key
logfile = %[3]s/pgbouncer.log
pidfile = %[3]s/pgbouncer.pid
log_connections = 0
log_disconnections = 0
`, pg.Port, port, bdir, poolSize+2)
	path := filepath.Join(bdir, "pgbouncer.ini")
	if err := os.WriteFile(path, []byte(ini), 0o600); err != nil {
		return route{}, nil, err
	}
	if out, err := exec.Command("chown", "-R", "postgres:postgres", dir).CombinedOutput(); err != nil {
		return route{}, nil, fmt.Errorf("chown: %w: %s", err, out)
	}
	// pgbouncer refuses to run as root: it runs as the postgres user, as
	// this process's direct child, so that it is stopped by its PID.
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		return route{}, nil, err
	}
	uid, _ := strconv.ParseUint(pgUser.Uid, 10, 32)
	gid, _ := strconv.ParseUint(pgUser.Gid, 10, 32)
	cmd := exec.Command("/usr/sbin/pgbouncer", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	if err := cmd.Start(); err != nil {
		return route{}, nil, fmt.Errorf("pgbouncer: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	pid := cmd.Process.Pid
	r := route{name: "pgbouncer 1.18 (session pool)", host: "127.0.0.1", port: port, user: "postgres", password: pg.Password,
		cpu: func() time.Duration { return benchdb.ProcCPU(pid) }}
	err = harness.WaitFor(ctx, 10*time.Second, func(ctx context.Context) error {
		return exec.CommandContext(ctx, "psql", "-X", "-A", "-t", strings.Replace(r.url(), "postgres://postgres@", "postgres://postgres:"+pg.Password+"@", 1), "-c", "SELECT 1").Run()
	})
	if err != nil {
		stop()
		log, _ := os.ReadFile(filepath.Join(bdir, "pgbouncer.log"))
		return route{}, nil, fmt.Errorf("pgbouncer did not start: %w\n%s", err, log)
	}
	return r, stop, nil
}

func direct(pg *harness.Postgres) string { return pg.DSN("bench") }

// startBastion runs Bastion in this process with the bench target, query
// rules and recording, and returns the route through it with a fresh token.
func startBastion(ctx context.Context, dir string, pg *harness.Postgres) (route, func(), error) {
	b, err := benchdb.StartBastion(ctx, dir, benchdb.Target{Kind: policy.KindPostgres, Name: "bench", Address: pg.Addr, Database: "bench", Username: "postgres", Password: pg.Password,
		Rules: `      - {name: no-drop, action: deny, commands: ["DROP *", "TRUNCATE"], reason: no drops}
      - {name: no-unbounded-writes, action: deny, unbounded: true, reason: UPDATE and DELETE need a WHERE clause}
      - {name: no-secrets, action: deny, tables: [public.secrets], reason: off limits}
      - {name: no-server-files, action: deny, file_access: true, reason: off limits}
      - {name: no-dangerous-functions, action: deny, functions: [pg_read_file, "lo_*"], reason: off limits}
      - {name: no-role-change, action: deny, role_change: true, reason: the role is fixed}
`})
	if err != nil {
		return route{}, nil, err
	}
	return route{name: "Bastion (rules + recording)", host: b.Host, port: b.Port, user: b.User, password: b.Password}, b.Stop, nil
}
