package recorder

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder/asciicast"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var start = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

// readCast parses a recording.
func readCast(t *testing.T, data []byte) (asciicast.Header, []asciicast.Event) {
	t.Helper()
	r, err := asciicast.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("NewReader: %v\n%s", err, data)
	}
	var evs []asciicast.Event
	for {
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Header(), evs
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		evs = append(evs, ev)
	}
}

func TestTerminalTimes(t *testing.T) {
	fc := &fakeClock{now: start}
	st := &fakeStorage{}
	term, err := newTerminal(t.Context(), st, "s.cast", header, start, clock{now: fc.Now, syncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at time.Duration
		do func() error
	}{
		{time.Second, func() error { return term.Output([]byte("$ ")) }},
		{1500 * time.Millisecond, func() error { return term.Input([]byte("ls\r")) }},
		{2 * time.Second, func() error { return term.Resize(100, 30) }},
		{-time.Hour, func() error { return term.Marker("clock stepped back") }}, // raised to the last time
		{3 * time.Second, func() error { return term.Output([]byte("done\r\n")) }},
	}
	for _, s := range steps {
		fc.Set(start.Add(s.at))
		if err := s.do(); err != nil {
			t.Fatal(err)
		}
	}
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, data := st.object(t).state()
	h, evs := readCast(t, data)
	if h.Timestamp != start.Unix() {
		t.Errorf("header timestamp %d, want %d", h.Timestamp, start.Unix())
	}
	want := []asciicast.Event{
		{Time: time.Second, Type: "o", Data: "$ "},
		{Time: 1500 * time.Millisecond, Type: "i", Data: "ls\r"},
		{Time: 2 * time.Second, Type: "r", Data: "100x30"},
		{Time: 2 * time.Second, Type: "m", Data: "clock stepped back"},
		{Time: 3 * time.Second, Type: "o", Data: "done\r\n"},
	}
	if len(evs) != len(want) {
		t.Fatalf("events %+v, want %+v", evs, want)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, evs[i], want[i])
		}
	}
}

func TestTerminalOutputLimit(t *testing.T) {
	tests := []struct {
		name    string
		limit   int64
		outputs []string
		want    []string // "o:data", "i:data" or "m:label"
	}{
		{"no limit", 0, []string{"hello", "world"}, []string{"o:hello", "o:world"}},
		{"under the limit", 20, []string{"hello", "world"}, []string{"o:hello", "o:world"}},
		{"exactly the limit", 10, []string{"hello", "world"}, []string{"o:hello", "o:world"}},
		{"just over the limit", 10, []string{"hello", "world", "!"}, []string{"o:hello", "o:world", "m:output truncated after 10 bytes"}},
		{"cut inside a write", 3, []string{"abcdef", "ghi"}, []string{"o:abc", "m:output truncated after 3 bytes"}},
		{"cut before a split rune", 4, []string{"ab€"}, []string{"o:ab", "m:output truncated after 4 bytes"}},
		{"input goes on", 1, []string{"ab", "i:typed", "cd"}, []string{"o:a", "m:output truncated after 1 bytes", "i:typed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStorage{}
			term, err := newTerminal(t.Context(), st, "s.cast", header, start, clock{now: time.Now, syncInterval: time.Hour}, OutputLimit(tt.limit))
			if err != nil {
				t.Fatal(err)
			}
			for _, out := range tt.outputs {
				if in, ok := strings.CutPrefix(out, "i:"); ok {
					err = term.Input([]byte(in))
				} else {
					err = term.Output([]byte(out))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := term.Close(); err != nil {
				t.Fatal(err)
			}
			_, _, data := st.object(t).state()
			_, evs := readCast(t, data)
			var got []string
			for _, ev := range evs {
				got = append(got, ev.Type+":"+ev.Data)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("events %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewTerminalErrors(t *testing.T) {
	tests := []struct {
		name    string
		h       asciicast.Header
		opts    []TerminalOption
		wantErr string
	}{
		{"no size", asciicast.Header{}, nil, "width and height must be positive"},
		{"negative limit", header, []TerminalOption{OutputLimit(-1)}, "negative output limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeStorage{}
			_, err := NewTerminal(t.Context(), st, "s.cast", tt.h, start, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			if len(st.objects) != 0 {
				t.Error("an object was created")
			}
		})
	}
}

// TestTerminalConcurrent records from several goroutines while the
// recording syncs (run it with -race).
func TestTerminalConcurrent(t *testing.T) {
	const n = 200
	st := &fakeStorage{}
	term, err := newTerminal(t.Context(), st, "s.cast", header, time.Now(), clock{now: time.Now, syncInterval: 100 * time.Microsecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for g, do := range []func() error{
		func() error { return term.Output([]byte("out€")) },
		func() error { return term.Input([]byte("in")) },
		func() error { return term.Marker("m") },
	} {
		wg.Go(func() {
			for range n {
				if err := do(); err != nil {
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
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, data := st.object(t).state()
	_, evs := readCast(t, data)
	if len(evs) != 3*n {
		t.Errorf("%d events, want %d", len(evs), 3*n)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Time < evs[i-1].Time {
			t.Fatalf("event %d at %v before event %d at %v", i, evs[i].Time, i-1, evs[i-1].Time)
		}
	}
}
