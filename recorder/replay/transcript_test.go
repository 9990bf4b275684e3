package replay_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder/querylog"
	"github.com/bastionhq/bastion/recorder/replay"
)

var base = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

// jsonl writes a query log of the given events; their times are offsets from
// base.
func jsonl(t *testing.T, events ...querylog.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := querylog.NewWriter(&buf)
	for _, e := range events {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func at(d time.Duration) time.Time { return base.Add(d) }

func TestTranscript(t *testing.T) {
	start := querylog.Event{Time: at(0), Type: "start", User: "alice", Target: "orders", Database: "orders_db",
		RequestID: "42", ClientAddr: "192.0.2.10:51234", Protocol: "postgres"}
	tests := []struct {
		name   string
		events []querylog.Event
		want   string
	}{
		{
			name: "session",
			events: []querylog.Event{
				start,
				{Time: at(123 * time.Millisecond), Type: "query", Statement: "SELECT * FROM orders WHERE id = $1", Params: []string{"42", "<redacted>"},
					Decision: "allow", Rule: "read-all", DurationMS: 1.25, Tag: "SELECT 1", Rows: 1},
				{Time: at(2 * s), Type: "query", Statement: "DELETE FROM orders", Decision: "deny", Rule: "no-unbounded-delete",
					Error: "DELETE without WHERE is not allowed"},
				{Time: at(3 * s), Type: "query", Statement: "SELECT 1/0", Decision: "allow", DurationMS: 0.4, Error: "ERROR: division by zero"},
				{Time: at(3500 * time.Millisecond), Type: "query", Statement: "UPDATE t SET a = 1 WHERE false", Decision: "allow", DurationMS: 2500, Tag: "UPDATE 0"},
				{Time: at(64 * s), Type: "end", Reason: "client closed the connection"},
			},
			want: `+0.000s alice@orders START postgres database=orders_db client=192.0.2.10:51234 request=42
+0.123s alice@orders ALLOW SELECT * FROM orders WHERE id = $1  -- params: 42, <redacted>; rule read-all; 1.25ms; SELECT 1; 1 row
+2.000s alice@orders DENY DELETE FROM orders  -- rule no-unbounded-delete; DELETE without WHERE is not allowed
+3.000s alice@orders ALLOW SELECT 1/0  -- 400µs; error: ERROR: division by zero
+3.500s alice@orders ALLOW UPDATE t SET a = 1 WHERE false  -- 2.5s; UPDATE 0; 0 rows
+64.000s alice@orders END client closed the connection
`,
		},
		{
			name: "multi-line statement and hostile characters",
			events: []querylog.Event{
				{Time: at(0), Type: "start", User: "mallory\x1b[2J", Database: "shop", Protocol: "mysql"},
				{Time: at(s), Type: "query", Statement: "SELECT a,\n\tb\r\nFROM t -- \x1b]0;pwned\x07 \u202egnp.exe", Params: []string{}, Decision: "allow", Rows: 2},
			},
			want: "+0.000s mallory\\x1b[2J@shop START mysql database=shop\n" +
				"+1.000s mallory\\x1b[2J@shop ALLOW SELECT a,\n" +
				"        \tb\\r\n" +
				"        FROM t -- \\x1b]0;pwned\\a \\u202egnp.exe  -- 2 rows\n",
		},
		{
			name: "durability statement, cut short by a crash",
			events: []querylog.Event{
				start,
				{Time: at(s), Type: "exec", Statement: "UPDATE t SET a = $1 WHERE id = 1", Params: []string{"7"}, Rule: "writes"},
				{Time: at(s + 2*time.Millisecond), Type: "query", Statement: "UPDATE t SET a = $1 WHERE id = 1", Params: []string{"7"},
					Decision: "allow", Rule: "writes", DurationMS: 2, Tag: "UPDATE 1", Rows: 1},
				{Time: at(2 * s), Type: "exec", Statement: "DELETE FROM t WHERE id = 2"},
			},
			want: `+0.000s alice@orders START postgres database=orders_db client=192.0.2.10:51234 request=42
+1.000s alice@orders FORWARD UPDATE t SET a = $1 WHERE id = 1  -- params: 7; rule writes
+1.002s alice@orders ALLOW UPDATE t SET a = $1 WHERE id = 1  -- params: 7; rule writes; 2ms; UPDATE 1; 1 row
+2.000s alice@orders FORWARD DELETE FROM t WHERE id = 2
`,
		},
		{
			name:   "no start event",
			events: []querylog.Event{{Time: at(5 * s), Type: "query", Statement: "SELECT 1", Decision: "deny"}},
			want:   "+0.000s ? DENY SELECT 1\n",
		},
		{name: "empty", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := replay.Transcript(t.Context(), bytes.NewReader(jsonl(t, tt.events...)), &out, replay.Options{Speed: math.Inf(1)})
			if err != nil {
				t.Fatalf("Transcript: %v", err)
			}
			if out.String() != tt.want {
				t.Errorf("transcript:\n%s\nwant:\n%s", out.String(), tt.want)
			}
		})
	}
}

func TestTranscriptPacing(t *testing.T) {
	log := jsonl(t,
		querylog.Event{Time: at(0), Type: "start", User: "a", Target: "b", Protocol: "postgres"},
		querylog.Event{Time: at(2 * s), Type: "query", Statement: "SELECT 1", Decision: "allow"},
		querylog.Event{Time: at(2 * s), Type: "query", Statement: "SELECT 2", Decision: "allow"},
		querylog.Event{Time: at(1 * s), Type: "query", Statement: "clock went back", Decision: "allow"},
		querylog.Event{Time: at(60 * s), Type: "end"},
	)
	tests := []struct {
		name string
		opts replay.Options
		want []time.Duration
	}{
		{"real time", replay.Options{}, []time.Duration{2 * s, 58 * s}},
		{"speed", replay.Options{Speed: 2}, []time.Duration{s, 29 * s}},
		{"idle limit", replay.Options{IdleLimit: 5 * s}, []time.Duration{2 * s, 5 * s}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got sleeps
			tt.opts.Sleep = got.sleep
			var out bytes.Buffer
			if err := replay.Transcript(t.Context(), bytes.NewReader(log), &out, tt.opts); err != nil {
				t.Fatal(err)
			}
			if !equalDurations(got, tt.want) {
				t.Errorf("sleeps %v, want %v", got, tt.want)
			}
			if !strings.Contains(out.String(), "+1.000s a@b ALLOW clock went back") {
				t.Errorf("transcript:\n%s", out.String())
			}
		})
	}
}

func TestTranscriptErrors(t *testing.T) {
	good := jsonl(t, querylog.Event{Time: at(0), Type: "end"})
	t.Run("bad line", func(t *testing.T) {
		var out bytes.Buffer
		err := replay.Transcript(t.Context(), bytes.NewReader(append(good, "{}\n"...)), &out, replay.Options{})
		if err == nil || !strings.Contains(err.Error(), "replay: querylog: line 2: no time") {
			t.Errorf("error %v", err)
		}
		if out.String() != "+0.000s ? END\n" {
			t.Errorf("output %q", out.String())
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := replay.Transcript(ctx, bytes.NewReader(good), &bytes.Buffer{}, replay.Options{}); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
	t.Run("write error", func(t *testing.T) {
		if err := replay.Transcript(t.Context(), bytes.NewReader(good), errWriter{}, replay.Options{}); !errors.Is(err, errBrokenPipe) {
			t.Errorf("error %v, want %v", err, errBrokenPipe)
		}
	})
}
