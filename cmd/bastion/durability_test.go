package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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
