// Command mysql measures Bastion's MySQL front end with sysbench against a
// real MariaDB, side by side in one run: directly, through haproxy in TCP
// mode (the plain-proxy baseline), and through Bastion with query rules and
// recording on. Routes are interleaved round by round; the table gives the
// median round of each and its ratio to direct.
//
//	go run ./bench/mysql [-time 20] [-threads 4] [-rounds 3]
//
// It needs mariadb-server, mariadb-client, sysbench and haproxy installed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bench/internal/benchdb"
	"github.com/bastionhq/bastion/internal/harness"
)

type options struct {
	seconds, threads, rounds, tables, tableSize int
	workloads                                   []string
}

func main() {
	var o options
	flag.IntVar(&o.seconds, "time", 20, "seconds per sysbench run")
	flag.IntVar(&o.threads, "threads", 4, "sysbench threads")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds (each runs every route once)")
	flag.IntVar(&o.tables, "tables", 4, "sysbench tables")
	flag.IntVar(&o.tableSize, "table-size", 10000, "rows per table")
	workloads := flag.String("workloads", "oltp_point_select,oltp_read_only", "sysbench workloads, comma-separated")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (Bastion runs in this process)")
	flag.Parse()
	o.workloads = strings.Split(*workloads, ",")
	benchdb.Run("bench/mysql", *cpuProfile, func() error { return run(o) })
}

// route is a way to the database.
type route struct {
	name, host     string
	port           int
	user, password string
	cpu            func() time.Duration // the proxy's CPU time so far; nil for direct
	procs          int                  // Bastion's GOMAXPROCS for this route; 0: the default
}

func run(o options) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bastion-bench-mysql-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	db, err := harness.StartMariaDB(ctx, harness.MariaDBConfig{Databases: []string{"sbtest"}})
	if err != nil {
		return err
	}
	defer db.Stop()
	direct := route{name: "direct", host: db.Host, port: db.Port, user: db.User, password: db.Password}

	hp, hpPID, stopHAProxy, err := startHAProxy(dir, db.Addr)
	if err != nil {
		return err
	}
	defer stopHAProxy()
	haproxy := direct
	haproxy.name, haproxy.port = "haproxy (TCP mode)", hp
	haproxy.cpu = func() time.Duration { return benchdb.ProcCPU(hpPID) }

	bastion, stopBastion, err := startBastion(ctx, dir, db)
	if err != nil {
		return err
	}
	defer stopBastion()
	bastion.cpu = benchdb.SelfCPU

	common := func(r route) []string {
		return []string{"--db-driver=mysql", "--mysql-host=" + r.host, "--mysql-port=" + strconv.Itoa(r.port),
			"--mysql-user=" + r.user, "--mysql-password=" + r.password, "--mysql-db=sbtest",
			fmt.Sprintf("--tables=%d", o.tables), fmt.Sprintf("--table-size=%d", o.tableSize)}
	}
	if out, err := sysbench(append([]string{"oltp_read_only"}, append(common(direct), "prepare")...)...); err != nil {
		return fmt.Errorf("sysbench prepare: %w\n%s", err, out)
	}
	// The same Bastion with one thread running Go code: on two cores
	// shared with MariaDB and sysbench, fewer threads mean fewer sleeps and
	// wake-ups. (haproxy runs a thread per core, its default.)
	bastion1 := bastion
	bastion1.name, bastion1.procs = "Bastion, GOMAXPROCS=1", 1
	routes := []route{direct, haproxy, bastion, bastion1}
	fmt.Printf("sysbench %s, %d threads, %d s per run, %d tables × %d rows, %d rounds (median round shown); %d cores; %s\n\n",
		sysbenchVersion(), o.threads, o.seconds, o.tables, o.tableSize, o.rounds, benchdb.Cores(), mariadbVersion(db))
	fmt.Println("Bastion: query rules on (6 rules, every statement parsed and decided), every statement recorded (JSON Lines, local directory).")
	fmt.Println()
	fmt.Println("| workload | route | transactions/s | queries/s | avg latency | p95 latency | vs direct | proxy CPU per query |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, workload := range o.workloads {
		res := map[string][]result{}
		for round := range o.rounds {
			for _, r := range routes {
				args := append([]string{workload}, common(r)...)
				args = append(args, fmt.Sprintf("--threads=%d", o.threads), fmt.Sprintf("--time=%d", o.seconds), "--percentile=95", "run")
				var out string
				var err error
				used := benchdb.Measure(r.cpu, r.procs, func() { out, err = sysbench(args...) })
				if err != nil {
					return fmt.Errorf("sysbench %s via %s: %w\n%s", workload, r.name, err, out)
				}
				x, err := parse(out)
				if err != nil {
					return fmt.Errorf("%s via %s: %w\n%s", workload, r.name, err, out)
				}
				if r.cpu != nil && x.queries > 0 {
					x.cpuPerQuery = float64(used.Microseconds()) / x.queries
				}
				fmt.Fprintf(os.Stderr, "%s round %d %s: %.0f tps\n", workload, round+1, r.name, x.tps)
				res[r.name] = append(res[r.name], x)
			}
		}
		base := median(res[direct.name])
		for _, r := range routes {
			m := median(res[r.name])
			cpu := "–"
			if r.cpu != nil {
				cpu = fmt.Sprintf("%.0f µs", m.cpuPerQuery)
			}
			fmt.Printf("| %s | %s | %.0f | %.0f | %.2f ms | %.2f ms | %.2f× | %s |\n", workload, r.name, m.tps, m.qps, m.avg, m.p95, m.tps/base.tps, cpu)
		}
	}
	fmt.Println()
	fmt.Println("Goal: Bastion ≥ 0.8× direct (transactions/s).")
	return nil
}

// result is one sysbench run.
type result struct {
	tps, qps, avg, p95 float64
	queries            float64 // in the run
	cpuPerQuery        float64 // µs of the proxy's CPU time per query
}

var (
	reTPS = regexp.MustCompile(`transactions:\s+\d+\s+\(([\d.]+) per sec`)
	reQPS = regexp.MustCompile(`queries:\s+\d+\s+\(([\d.]+) per sec`)
	reQ   = regexp.MustCompile(`queries:\s+(\d+)`)
	reAvg = regexp.MustCompile(`avg:\s+([\d.]+)`)
	reP95 = regexp.MustCompile(`95th percentile:\s+([\d.]+)`)
)

func parse(out string) (result, error) {
	var r result
	for _, f := range []struct {
		re  *regexp.Regexp
		dst *float64
	}{{reTPS, &r.tps}, {reQPS, &r.qps}, {reQ, &r.queries}, {reAvg, &r.avg}, {reP95, &r.p95}} {
		m := f.re.FindStringSubmatch(out)
		if m == nil {
			return r, fmt.Errorf("no %s in sysbench's output", f.re)
		}
		*f.dst, _ = strconv.ParseFloat(m[1], 64)
	}
	return r, nil
}

// median is the round with the median transaction rate.
func median(rs []result) result {
	return benchdb.Median(rs, func(r result) float64 { return r.tps })
}

func sysbench(args ...string) (string, error) {
	out, err := exec.Command("sysbench", args...).CombinedOutput()
	return string(out), err
}

func sysbenchVersion() string {
	out, _ := exec.Command("sysbench", "--version").Output()
	return strings.TrimSpace(string(out))
}

func mariadbVersion(db *harness.MariaDB) string {
	out, _ := exec.Command("mariadbd", "--version").Output()
	if f := strings.Fields(string(out)); len(f) >= 3 {
		return "MariaDB " + f[2]
	}
	return "MariaDB"
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startHAProxy runs haproxy in TCP mode in front of addr; stop ends it by
// its PID.
func startHAProxy(dir, addr string) (int, int, func(), error) {
	port, err := freePort()
	if err != nil {
		return 0, 0, nil, err
	}
	cfg := fmt.Sprintf(`global
  maxconn 1000
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
frontend db
  bind 127.0.0.1:%d
  default_backend mariadb
backend mariadb
  server m1 %s
`, port, addr)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return 0, 0, nil, err
	}
	cmd := exec.Command("haproxy", "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, nil, fmt.Errorf("haproxy: %w", err)
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return port, cmd.Process.Pid, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return 0, 0, nil, fmt.Errorf("haproxy did not listen: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startBastion runs Bastion in this process with the bench target, query
// rules and recording, and returns the route through it with a fresh token.
func startBastion(ctx context.Context, dir string, db *harness.MariaDB) (route, func(), error) {
	b, err := benchdb.StartBastion(ctx, dir, benchdb.Target{Kind: policy.KindMySQL, Name: "sbtest", Address: db.Addr, Database: "sbtest", Username: db.User, Password: db.Password,
		Rules: `      - {name: no-drop, action: deny, commands: ["DROP *", "TRUNCATE"], reason: no drops}
      - {name: no-unbounded-writes, action: deny, unbounded: true, reason: UPDATE and DELETE need a WHERE clause}
      - {name: no-secrets, action: deny, tables: [sbtest.secrets], reason: off limits}
      - {name: no-server-files, action: deny, file_access: true, reason: off limits}
      - {name: no-role-change, action: deny, role_change: true, reason: the role is fixed}
      - {name: ddl-needs-lead, action: require-approval, kinds: [ddl], approvers: [developer], reason: schema changes need a lead}
`})
	if err != nil {
		return route{}, nil, err
	}
	return route{name: "Bastion (rules + recording)", host: b.Host, port: b.Port, user: b.User, password: b.Password}, b.Stop, nil
}
