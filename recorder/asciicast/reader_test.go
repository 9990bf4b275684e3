package asciicast_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder/asciicast"
)

const header = `{"version": 2, "width": 80, "height": 24}` + "\n"

func TestReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []asciicast.Event
	}{
		{"no events", header, nil},
		{"asciinema's own style", header + `[0.248848, "o", "hello\r\n"]` + "\n" + `[1.5e-05, "i", "\u00e9"]` + "\n",
			[]asciicast.Event{{248848 * time.Microsecond, "o", "hello\r\n"}, {15 * time.Microsecond, "i", "é"}}},
		{"compact, no final newline", header + `[1,"m","x"]`, []asciicast.Event{{time.Second, "m", "x"}}},
		{"crlf line endings", strings.ReplaceAll(header+`[1, "o", "x"]`+"\n", "\n", "\r\n"), []asciicast.Event{{time.Second, "o", "x"}}},
		{"unknown code", header + `[2, "x", "future"]` + "\n", []asciicast.Event{{2 * time.Second, "x", "future"}}},
		{"times may go back", header + `[2, "o", "a"]` + "\n" + `[1, "o", "b"]` + "\n",
			[]asciicast.Event{{2 * time.Second, "o", "a"}, {time.Second, "o", "b"}}},
		{"lone surrogate escape", header + `[0, "o", "\ud800"]` + "\n", []asciicast.Event{{0, "o", "\ufffd"}}},
		{"extra header fields", `{"version": 2, "width": 80, "height": 24, "idle_time_limit": 2.5, "theme": {"fg": "#fff"}}` + "\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := asciicast.NewReader(strings.NewReader(tt.input))
			if err != nil {
				t.Fatalf("NewReader: %v", err)
			}
			got := readAll(t, r)
			if len(got) != len(tt.want) {
				t.Fatalf("events = %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("event %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			if _, err := r.Next(); !errors.Is(err, io.EOF) {
				t.Errorf("Next after EOF: %v", err)
			}
		})
	}
}

func TestReaderHeaderErrors(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		wantErr string
	}{
		{"empty", "", "empty input: no header"},
		{"event first", `[0, "o", "x"]` + "\n", "line 1: header is not a JSON object"},
		{"version 1", `{"version": 1, "width": 80, "height": 24, "stdout": []}`, "line 1: header: version 1: only 2 is supported"},
		{"no version", `{"width": 80, "height": 24}`, "line 1: header: version 0"},
		{"no size", `{"version": 2}`, "line 1: header: size 0x0"},
		{"bad json", `{"version": 2,`, "line 1: header: unexpected end of JSON input"},
		{"wrong type", `{"version": "2"}`, "line 1: header: json: cannot unmarshal string"},
		{"binary", "\x00\x01\x02", `line 1: header is not a JSON object: "\x00\x01\x02"`},
		{"too long", strings.Repeat(" ", asciicast.MaxLineSize+3), "line 1: line too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := asciicast.NewReader(strings.NewReader(tt.input))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestReaderEventErrors(t *testing.T) {
	tests := []struct {
		name    string
		events  string // after the header line
		wantErr string
	}{
		{"string time", `[0.1, "o", "a"]` + "\n" + `["0.2", "o", "b"]`, `line 3: time "0.2" is a string: it must be a JSON number`},
		{"null time", `[null, "o", "a"]`, "line 2: time null is not a number"},
		{"negative time", `[-1, "o", "a"]`, "line 2: negative time -1"},
		{"huge time", `[1e300, "o", "a"]`, "line 2: time out of range: 1e300"},
		{"blank line", "\n" + `[0, "o", "a"]`, "line 2: empty line"},
		{"object", `{"t": 0}`, "line 2: event is not a JSON array [time, code, data]"},
		{"two elements", `[0, "o"]`, "line 2: event has 2 elements, want 3"},
		{"four elements", `[0, "o", "a", "b"]`, "line 2: event has 4 elements"},
		{"empty array", `[]`, "line 2: event has 0 elements"},
		{"numeric code", `[0, 1, "a"]`, "line 2: code 1 is not a string"},
		{"empty code", `[0, "", "a"]`, "line 2: empty event code"},
		{"numeric data", `[0, "o", 5]`, "line 2: data 5 is not a string"},
		{"truncated line", `[0, "o", "a`, "line 2: event is not a JSON array [time, code, data]: unexpected end of JSON input"},
		{"trailing garbage", `[0, "o", "a"] x`, "line 2: event is not a JSON array"},
		{"long data excerpt", `[0, "o", ` + strings.Repeat("1", 100) + `]`, "data " + strings.Repeat("1", 40) + "… is not a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := asciicast.NewReader(strings.NewReader(header + tt.events))
			if err != nil {
				t.Fatalf("NewReader: %v", err)
			}
			var last error
			for range 10 {
				if _, last = r.Next(); last != nil {
					break
				}
			}
			if last == nil || !strings.Contains(last.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", last, tt.wantErr)
			}
			if _, again := r.Next(); again == nil || again.Error() != last.Error() {
				t.Errorf("Next after an error = %v, want the same error", again)
			}
		})
	}
}

// errReader fails after its data.
type errReader struct {
	data string
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReaderIOError(t *testing.T) {
	errBroken := errors.New("broken pipe")
	r, err := asciicast.NewReader(&errReader{data: header + `[0, "o", "a"]` + "\n", err: errBroken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatalf("first event: %v", err)
	}
	if _, err := r.Next(); !errors.Is(err, errBroken) {
		t.Errorf("Next = %v, want %v", err, errBroken)
	}
}

func TestParseResize(t *testing.T) {
	tests := []struct {
		data       string
		cols, rows int
		ok         bool
	}{
		{"80x24", 80, 24, true},
		{"1x1", 1, 1, true},
		{"0x24", 0, 0, false},
		{"080x24", 0, 0, false},
		{"+80x24", 0, 0, false},
		{"80X24", 0, 0, false},
		{"80x24x1", 0, 0, false},
		{"80", 0, 0, false},
		{"", 0, 0, false},
		{"99999999999999999999x1", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.data, func(t *testing.T) {
			cols, rows, err := asciicast.ParseResize(tt.data)
			if (err == nil) != tt.ok || cols != tt.cols || rows != tt.rows {
				t.Errorf("ParseResize(%q) = %d, %d, %v", tt.data, cols, rows, err)
			}
		})
	}
}
