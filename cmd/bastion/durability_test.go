package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
)

// The kill -9 drill of issue 17: statements run through Bastion in a loop,
// each answered one counted; Bastion is killed with SIGKILL while they
// run, and started again; the recording must hold every statement that
// was answered (and may hold the one in flight). Under fail-closed
// (durability: statement by default) a statement is forwarded only once
// its record is durable, so none is missing; before, the last second of
// them sat in Bastion's buffer and died with it.

// drillAnswered is how many statements are answered before the kill: enough
// for several buffer flushes' worth of a buffered recording.
const drillAnswered = 400

// drillWait bounds waiting for the drill's statements and Bastion's
// restart.
const drillWait = 2 * time.Minute

// drillMarker finds the drill's numbered statements in a recording.
var drillMarker = regexp.MustCompile(`durable-drill-(\d+)`)

// runDrill calls run(i) for i = 1, 2, … until it fails, counting the
// statements answered; once drillAnswered are, it kills Bastion. It
// returns how many were answered.
func runDrill(t *testing.T, b *testBastion, run func(ctx context.Context, i int) error) int {
	t.Helper()
	answered := make(chan int, 1)
	go func() {
		n := 0
		for i := 1; ; i++ {
			if err := run(context.Background(), i); err != nil {
				break
			}
			n = i
			if n == drillAnswered {
				answered <- n // keeps running: the kill lands mid-statement
			}
		}
		answered <- n
	}()
	select {
	case <-answered:
	case <-time.After(drillWait):
		t.Fatalf("%d statements not answered within %s", drillAnswered, drillWait)
	}
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.exited
	var n int
	select {
	case n = <-answered:
	case <-time.After(drillWait):
		t.Fatal("the statement loop did not end after Bastion was killed")
	}
	if n < drillAnswered {
		t.Fatalf("only %d statements answered", n)
	}
	b.start() // recovers what the killed process left
	return n
}

// recordedDrill returns the numbers of the drill's statements that the
// recordings of protocol under the data directory hold.
func recordedDrill(t *testing.T, b *testBastion, protocol string) map[int]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(b.dir, "data", "recordings", protocol, "*", "*", "*", "*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s recordings (%v)", protocol, err)
	}
	got := map[int]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range drillMarker.FindAllSubmatch(data, -1) {
			n, _ := strconv.Atoi(string(m[1]))
			got[n] = true
		}
	}
	return got
}

// checkDrill fails for each answered statement the recording lacks.
func checkDrill(t *testing.T, answered int, recorded map[int]bool) {
	t.Helper()
	var missing []int
	for i := 1; i <= answered; i++ {
		if !recorded[i] {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d answered statements missing from the recording after kill -9: %v", len(missing), answered, missing)
	}
	t.Logf("all %d answered statements recorded", answered)
}

// TestDurabilityKillPostgres: the drill through pgx, with both of its
// protocols (a prepared statement per number, and the simple protocol).
func TestDurabilityKillPostgres(t *testing.T) {
	t.Parallel()
	p := startPGBastion(t)
	conn, err := pgx.Connect(t.Context(), p.grantDB(t, "alice", "plain").URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	n := runDrill(t, p.testBastion, func(ctx context.Context, i int) error {
		var got string
		mode := pgx.QueryExecModeSimpleProtocol
		if i%2 == 0 {
			mode = pgx.QueryExecModeExec
		}
		return conn.QueryRow(ctx, fmt.Sprintf("SELECT 'durable-drill-%d'", i), mode).Scan(&got)
	})
	checkDrill(t, n, recordedDrill(t, p.testBastion, "postgres"))
}

// TestDurabilityKillMySQL: the drill through go-sql-driver, text queries
// and server-side prepared statements in turn.
func TestDurabilityKillMySQL(t *testing.T) {
	t.Parallel()
	m := startMyBastion(t)
	db := m.grant(t, "alice", "plain").open(t, "interpolateParams=false")
	db.SetMaxOpenConns(1)
	n := runDrill(t, m.testBastion, func(ctx context.Context, i int) error {
		var got string
		if i%2 == 0 { // prepared, executed and closed: the text is recorded with the execution
			var param int
			return db.QueryRowContext(ctx, fmt.Sprintf("SELECT 'durable-drill-%d', ?", i), i).Scan(&got, &param)
		}
		return db.QueryRowContext(ctx, fmt.Sprintf("SELECT 'durable-drill-%d'", i)).Scan(&got)
	})
	checkDrill(t, n, recordedDrill(t, m.testBastion, "mysql"))
}

// TestDurabilityDiskFull fills the spool's disk (a 2 MiB tmpfs) under a
// fail-closed PostgreSQL session: the session ends instead of running
// statements unrecorded, `status` says the spool's disk is failing, and once
// space returns, without a restart, the recording is sealed as interrupted
// (verify says so) and leaves the spool.
func TestDurabilityDiskFull(t *testing.T) {
	t.Parallel()
	spoolDir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", spoolDir).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs for the spool: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", spoolDir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", spoolDir, err, out)
		}
	})
	p, sb := startPGS3Bastion(t, spoolDir)
	b := p.testBastion
	conn := p.connect(t, p.grantDB(t, "alice", "plain"), "")
	var got string
	if err := conn.QueryRow(t.Context(), "SELECT 'before the disk filled'").Scan(&got); err != nil {
		t.Fatal(err)
	}
	sess := sb.session(t, "live")

	// Fill the disk: a file grows until the tmpfs refuses.
	filler := filepath.Join(spoolDir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	f.Close()
	// Statements fail closed: each reaches the spool, or the session ends.
	var failed error
	for i := 0; i < 10000 && failed == nil; i++ {
		failed = conn.QueryRow(t.Context(), fmt.Sprintf("SELECT 'while the disk is full %d', repeat('x', 512)", i)).Scan(&got, new(string))
	}
	if failed == nil {
		t.Fatal("10000 statements ran on a full spool disk")
	}
	waitFor(t, s3Wait, func() bool {
		o, _, code := b.local("status")
		return code == 0 && strings.Contains(o, "spool disk:     FAILING")
	})

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	v := sb.waitVerified(t, sess.ID)
	if v["status"] != "interrupted" {
		t.Errorf("verify after the disk healed: %v", v)
	}
	if log := b.mustRun("carol", "export", sess.ID); !strings.Contains(log, "before the disk filled") {
		t.Errorf("the recording lacks the statement run before the disk filled:\n%s", log)
	}
	waitFor(t, s3Wait, func() bool {
		entries, err := os.ReadDir(spoolDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				return false
			}
		}
		return true
	})
	if s := sb.session(t, ""); s.State == "live" {
		t.Errorf("the session is still live after its recording was sealed: %+v", s)
	}
	o, _, _ := b.local("status")
	if strings.Contains(o, "FAILING") {
		t.Errorf("status after the disk healed:\n%s", o)
	}
}

// startPGS3Bastion starts a Bastion in front of the shared PostgreSQL's
// "plain" database (alice gets it automatically) that records into a
// bucket of a fresh S3 server, through the spool at spool ("" for the
// default).
func startPGS3Bastion(t *testing.T, spool string) (*pgBastion, *s3Bastion) {
	t.Helper()
	pg := testPostgres(t)
	gw := harness.NewS3(t, harness.S3Config{})
	if err := gw.CreateBucket(t.Context(), "recordings"); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`
recordings: s3://recordings/bastion
recording:
  endpoint: %q
  access_key: %q
  secret_key: %q
`, gw.Endpoint, gw.AccessKey, gw.SecretKey)
	if spool != "" {
		extra += fmt.Sprintf("  spool: %q\n", spool)
	}
	b := startBastionWith(t, options{postgres: true, roles: pgRoles,
		targets: func(t *testing.T, _ *ca.Set) string {
			return fmt.Sprintf(`
targets:
  - {name: plain, kind: postgres, address: %q, database: plain, username: postgres, password: %q, labels: {env: sandbox}}
`, pg.Addr, pg.Password)
		},
		extra: extra})
	sb := &s3Bastion{proxyBastion: &proxyBastion{testBastion: b}, gw: gw, bucket: "recordings", prefix: "bastion"}
	return &pgBastion{testBastion: b, pg: pg}, sb
}
