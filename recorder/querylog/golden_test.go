package querylog_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder/querylog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// base is the tests' clock, in a zone other than UTC: the Writer writes UTC.
var base = time.Date(2031, time.March, 4, 7, 6, 7, 891011000, time.FixedZone("CEST", 2*3600))

// at is base+d.
func at(d time.Duration) time.Time { return base.Add(d) }

// goldenTests are query logs kept in testdata/<name>.jsonl.
var goldenTests = []struct {
	name   string
	events []querylog.Event
}{
	{
		name: "postgres",
		events: []querylog.Event{
			{Time: at(0), Type: querylog.TypeStart, User: "alice", Target: "orders", Database: "orders",
				RequestID: "42", ClientAddr: "192.0.2.10:51234", Protocol: querylog.ProtocolPostgres},
			{Time: at(123 * time.Millisecond), Type: querylog.TypeQuery, Statement: "SELECT * FROM orders WHERE id = $1 AND total > $2",
				Params: []string{"42", "<redacted>"}, Decision: querylog.Allow, Rule: "read-all", DurationMS: 1.25, Tag: "SELECT 1", Rows: 1},
			{Time: at(2 * time.Second), Type: querylog.TypeQuery, Statement: "DELETE FROM orders",
				Decision: querylog.Deny, Rule: "no-unbounded-delete", Error: "DELETE without WHERE is not allowed"},
			{Time: at(3 * time.Second), Type: querylog.TypeQuery, Statement: "SELECT 1/0", Decision: querylog.Allow,
				DurationMS: 0.4, Error: "ERROR: division by zero (SQLSTATE 22012)"},
			{Time: at(4 * time.Second), Type: querylog.TypeEnd, Reason: "client closed the connection"},
		},
	},
	{
		name: "mysql",
		events: []querylog.Event{
			{Time: at(0), Type: querylog.TypeStart, User: "bob", Target: "shop", Database: "shop", ClientAddr: "[2001:db8::1]:40000", Protocol: querylog.ProtocolMySQL},
			{Time: at(time.Second), Type: querylog.TypeQuery, Statement: "UPDATE stock\n   SET n = n - 1\n WHERE sku = 'é€\"\\'",
				Decision: querylog.Allow, DurationMS: 12.5, Tag: "UPDATE", Rows: 3},
			{Time: at(time.Minute), Type: querylog.TypeEnd, Reason: "grant expired"},
		},
	},
}

// TestGolden writes each log, compares it with its golden file (go test
// -update rewrites them), and reads it back.
func TestGolden(t *testing.T) {
	for _, tt := range goldenTests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := querylog.NewWriter(&buf)
			for _, e := range tt.events {
				if err := w.Write(e); err != nil {
					t.Fatalf("Write %+v: %v", e, err)
				}
			}
			golden := filepath.Join("testdata", tt.name+".jsonl")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -update writes it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Fatalf("log differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", golden, buf.Bytes(), want)
			}
			got := readAll(t, querylog.NewReader(bytes.NewReader(want)))
			if len(got) != len(tt.events) {
				t.Fatalf("read %d events, want %d", len(got), len(tt.events))
			}
			for i, e := range tt.events {
				checkEvent(t, got[i], e)
			}
		})
	}
}

// checkEvent compares events, times by instant.
func checkEvent(t *testing.T, got, want querylog.Event) {
	t.Helper()
	if !got.Time.Equal(want.Time) {
		t.Errorf("time %v, want %v", got.Time, want.Time)
	}
	got.Time, want.Time = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("event\n got %+v\nwant %+v", got, want)
	}
}

// readAll returns the events of r up to io.EOF.
func readAll(t testing.TB, r *querylog.Reader) []querylog.Event {
	t.Helper()
	var evs []querylog.Event
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			t.Fatalf("Next after %d events: %v", len(evs), err)
		}
		evs = append(evs, e)
	}
}
