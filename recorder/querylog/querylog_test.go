package querylog_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder/querylog"
)

func TestWriterInvalid(t *testing.T) {
	query := querylog.Event{Time: at(0), Type: querylog.TypeQuery, Decision: querylog.Allow}
	tests := []struct {
		name    string
		edit    func(e *querylog.Event)
		wantErr string
	}{
		{"no time", func(e *querylog.Event) { e.Time = time.Time{} }, "no time"},
		{"year 10000", func(e *querylog.Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "year must be within"},
		{"no type", func(e *querylog.Event) { e.Type = "" }, "no type"},
		{"unknown type", func(e *querylog.Event) { e.Type = "approve" }, `unknown type "approve"`},
		{"no decision", func(e *querylog.Event) { e.Decision = "" }, `decision ""`},
		{"unknown decision", func(e *querylog.Event) { e.Decision = "ALLOW" }, `decision "ALLOW"`},
		{"negative duration", func(e *querylog.Event) { e.DurationMS = -1 }, "duration -1 ms"},
		{"NaN duration", func(e *querylog.Event) { e.DurationMS = math.NaN() }, "duration NaN ms"},
		{"negative rows", func(e *querylog.Event) { e.Rows = -1 }, "-1 rows"},
		{"unknown protocol", func(e *querylog.Event) { e.Type = querylog.TypeStart; e.Protocol = "oracle" }, `protocol "oracle"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			e := query
			tt.edit(&e)
			err := querylog.NewWriter(&buf).Write(e)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q", buf.Bytes())
			}
		})
	}
}

func TestWriterSanitizes(t *testing.T) {
	var buf bytes.Buffer
	e := querylog.Event{Time: at(0), Type: querylog.TypeQuery, Decision: querylog.Deny,
		Statement: "SELECT '\xff' < 1 & 2 \u2028", Params: []string{}}
	if err := querylog.NewWriter(&buf).Write(e); err != nil {
		t.Fatal(err)
	}
	const want = `{"time":"2031-03-04T05:06:07.891011Z","type":"query","statement":"SELECT '\ufffd' < 1 & 2 \u2028","decision":"deny"}` + "\n"
	if buf.String() != want {
		t.Errorf("wrote %s, want %s", buf.String(), want)
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []querylog.Event
	}{
		{"empty", "", nil},
		{"no final newline", `{"time":"2031-03-04T05:06:07Z","type":"end"}`,
			[]querylog.Event{{Time: time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC), Type: querylog.TypeEnd}}},
		{"unknown fields are ignored", `{"time":"2031-03-04T05:06:07Z","type":"end","future":{"x":1}}` + "\n",
			[]querylog.Event{{Time: time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC), Type: querylog.TypeEnd}}},
		{"zone offset", `{"time":"2031-03-04T07:06:07+02:00","type":"query","decision":"allow","params":[]}` + "\n",
			[]querylog.Event{{Time: time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC), Type: querylog.TypeQuery, Decision: querylog.Allow}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, querylog.NewReader(strings.NewReader(tt.input)))
			if len(got) != len(tt.want) {
				t.Fatalf("events = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				checkEvent(t, got[i], tt.want[i])
			}
		})
	}
}

func TestReaderErrors(t *testing.T) {
	const ok = `{"time":"2031-03-04T05:06:07Z","type":"end"}` + "\n"
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		{"blank line", ok + "\n" + ok, "querylog: line 2: empty line"},
		{"array", ok + `[1, "o", "x"]`, "querylog: line 2: event is not a JSON object"},
		{"bad json", ok + ok + `{"time":`, "querylog: line 3: unexpected end of JSON input"},
		{"bad time", `{"time":"yesterday","type":"end"}`, `querylog: line 1: parsing time "yesterday"`},
		{"number time", `{"time":1700000000,"type":"end"}`, "querylog: line 1: Time.UnmarshalJSON: input is not a JSON string"},
		{"no time", `{"type":"end"}`, "querylog: line 1: no time"},
		{"no type", `{"time":"2031-03-04T05:06:07Z"}`, "querylog: line 1: no type"},
		{"bad decision", `{"time":"2031-03-04T05:06:07Z","type":"query","decision":"maybe"}`, `querylog: line 1: query event: decision "maybe"`},
		{"string rows", `{"time":"2031-03-04T05:06:07Z","type":"query","decision":"allow","rows":"3"}`, "querylog: line 1: json: cannot unmarshal string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := querylog.NewReader(strings.NewReader(tt.input))
			var err error
			for range 10 {
				if _, err = r.Next(); err != nil {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if _, again := r.Next(); again == nil || again.Error() != err.Error() {
				t.Errorf("Next after an error = %v, want the same error", again)
			}
		})
	}
}

// failAfter fails every Write after the first n.
type failAfter struct{ n int }

var errDisk = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errDisk
	}
	f.n--
	return len(p), nil
}

func TestWriterStickyError(t *testing.T) {
	w := querylog.NewWriter(&failAfter{n: 1})
	e := querylog.Event{Time: at(0), Type: querylog.TypeEnd}
	if err := w.Write(e); err != nil {
		t.Fatalf("first Write: %v", err)
	}
	for i := range 2 {
		if err := w.Write(e); !errors.Is(err, errDisk) {
			t.Errorf("Write %d: %v, want %v", i+2, err, errDisk)
		}
	}
}

// TestWriterConcurrent writes from several goroutines (run it with -race):
// every line must be whole and every event there.
func TestWriterConcurrent(t *testing.T) {
	const goroutines, each = 8, 200
	var buf bytes.Buffer
	w := querylog.NewWriter(&buf)
	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				e := querylog.Event{Time: at(time.Duration(i) * time.Millisecond), Type: querylog.TypeQuery,
					Statement: strings.Repeat("x", g*100+i), Decision: querylog.Allow, Rows: int64(g)}
				if err := w.Write(e); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	counts := make(map[int64]int)
	for _, e := range readAll(t, querylog.NewReader(&buf)) {
		counts[e.Rows]++
	}
	for g := range goroutines {
		if counts[int64(g)] != each {
			t.Errorf("goroutine %d: %d events read back, want %d", g, counts[int64(g)], each)
		}
	}
}
