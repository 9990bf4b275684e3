package asciicast_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder/asciicast"
)

// newWriter returns a Writer on a buffer, with an 80x24 header.
func newWriter(t *testing.T) (*asciicast.Writer, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	w, err := asciicast.NewWriter(&buf, asciicast.Header{Width: 80, Height: 24})
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	return w, &buf
}

// events reads back what w wrote to buf.
func events(t *testing.T, buf *bytes.Buffer) []asciicast.Event {
	t.Helper()
	r, err := asciicast.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	return readAll(t, r)
}

// TestWriterUTF8 writes chunks that split or break UTF-8 sequences and checks
// the events written.
func TestWriterUTF8(t *testing.T) {
	type write struct {
		input bool // Input rather than Output
		data  string
	}
	tests := []struct {
		name   string
		writes []write
		want   []string // "o:data" or "i:data", in order, after Close
	}{
		{"two-byte split", []write{{false, "caf\xc3"}, {false, "\xa9!"}}, []string{"o:caf", "o:é!"}},
		{"three-byte split in three", []write{{false, "\xe2"}, {false, "\x82"}, {false, "\xac"}}, []string{"o:€"}},
		{"four-byte split", []write{{false, "\xf0\x9f"}, {false, "\x98\x80 smile"}}, []string{"o:😀 smile"}},
		{"streams held separately", []write{{false, "\xe2\x82"}, {true, "\xc3"}, {false, "\xac"}, {true, "\xa9"}}, []string{"o:€", "i:é"}},
		{"input does not complete output", []write{{false, "\xc3"}, {true, "\xa9"}, {false, "x"}}, []string{"i:\ufffd", "o:\ufffdx"}},
		{"invalid byte", []write{{false, "a\xffb"}}, []string{"o:a\ufffdb"}},
		{"overlong encoding", []write{{false, "\xc0\xaf"}}, []string{"o:\ufffd\ufffd"}},
		{"surrogate", []write{{false, "\xed\xa0\x80"}}, []string{"o:\ufffd\ufffd\ufffd"}},
		{"lead byte then ascii", []write{{false, "\xe2"}, {false, "ab"}}, []string{"o:\ufffdab"}},
		{"incomplete at close", []write{{false, "ok"}, {false, "\xf0\x9f\x98"}}, []string{"o:ok", "o:\ufffd\ufffd\ufffd"}},
		{"only a lead byte, then close", []write{{true, "\xe2"}}, []string{"i:\ufffd"}},
		{"empty writes", []write{{false, ""}, {true, ""}}, nil},
		{"control characters", []write{{false, "\x1b[2J\x00\x07"}}, []string{"o:\x1b[2J\x00\x07"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, buf := newWriter(t)
			for i, wr := range tt.writes {
				write := w.Output
				if wr.input {
					write = w.Input
				}
				if err := write(ms(i), []byte(wr.data)); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			var got []string
			for _, ev := range events(t, buf) {
				got = append(got, ev.Type+":"+ev.Data)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("events = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWriterLargeOutput checks that large output is split into events at
// rune boundaries, each of at most 1 MiB.
func TestWriterLargeOutput(t *testing.T) {
	w, buf := newWriter(t)
	data := []byte(strings.Repeat("€", 1<<20/3+10)) // just over 1 MiB, which is not a multiple of 3
	if err := w.Output(time.Second, data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs := events(t, buf)
	var all strings.Builder
	for _, ev := range evs {
		if len(ev.Data) > 1<<20 {
			t.Errorf("event of %d bytes", len(ev.Data))
		}
		if ev.Time != time.Second {
			t.Errorf("event at %v, want 1s", ev.Time)
		}
		all.WriteString(ev.Data)
	}
	if len(evs) != 2 || len(evs[0].Data) != 1<<20-1 || all.String() != string(data) {
		t.Errorf("%d events of %d bytes in all, want 2 events, the first cut before 1 MiB, giving the data back", len(evs), all.Len())
	}
}

func TestWriterTimes(t *testing.T) {
	w, buf := newWriter(t)
	steps := []struct {
		name string
		do   func() error
		want time.Duration
	}{
		{"output at 2s", func() error { return w.Output(2*time.Second, []byte("a")) }, 2 * time.Second},
		{"input earlier is raised", func() error { return w.Input(time.Second, []byte("b")) }, 2 * time.Second},
		{"marker earlier is raised", func() error { return w.Marker(0, "m") }, 2 * time.Second},
		{"resize later", func() error { return w.Resize(3*time.Second+1500*time.Nanosecond, 10, 5) }, 3*time.Second + time.Microsecond},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	evs := events(t, buf)
	for i, s := range steps {
		if evs[i].Time != s.want {
			t.Errorf("%s: time %v, want %v", s.name, evs[i].Time, s.want)
		}
	}
}

func TestWriterErrors(t *testing.T) {
	tests := []struct {
		name    string
		do      func(w *asciicast.Writer) error
		wantErr string
	}{
		{"negative time", func(w *asciicast.Writer) error { return w.Output(-time.Second, []byte("x")) }, "negative time"},
		{"zero columns", func(w *asciicast.Writer) error { return w.Resize(0, 0, 24) }, "must be positive"},
		{"negative rows", func(w *asciicast.Writer) error { return w.Resize(0, 80, -1) }, "must be positive"},
		{"huge marker", func(w *asciicast.Writer) error { return w.Marker(0, strings.Repeat("x", 1<<20+1)) }, "the limit is"},
		{"after Close", func(w *asciicast.Writer) error {
			if err := w.Close(); err != nil {
				return err
			}
			return w.Output(0, []byte("late"))
		}, "after Close"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := newWriter(t)
			err := tt.do(w)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewWriterHeaderErrors(t *testing.T) {
	tests := []struct {
		name    string
		h       asciicast.Header
		wantErr string
	}{
		{"version 1", asciicast.Header{Version: 1, Width: 80, Height: 24}, "only 2 is supported"},
		{"no width", asciicast.Header{Height: 24}, "must be positive"},
		{"negative height", asciicast.Header{Width: 80, Height: -24}, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := asciicast.NewWriter(&buf, tt.h)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %q for an invalid header", buf.Bytes())
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

// TestWriterStickyError checks that after a failed write every call fails
// with the same error, so no line is written after a partial one.
func TestWriterStickyError(t *testing.T) {
	w, err := asciicast.NewWriter(&failAfter{n: 2}, asciicast.Header{Width: 80, Height: 24})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Output(0, []byte("one")); err != nil {
		t.Fatalf("first event: %v", err)
	}
	for i, do := range []func() error{
		func() error { return w.Output(ms(1), []byte("two")) },
		func() error { return w.Input(ms(2), []byte("three")) },
		func() error { return w.Marker(ms(3), "four") },
		w.Close,
	} {
		if err := do(); !errors.Is(err, errDisk) {
			t.Errorf("call %d: error %v, want %v", i, err, errDisk)
		}
	}
}

// TestWriterConcurrent writes output, input, resizes and markers from
// separate goroutines (run it with -race) and checks that each stream reads
// back whole and in order, with non-decreasing times.
func TestWriterConcurrent(t *testing.T) {
	const n = 300
	w, buf := newWriter(t)
	start := time.Now()
	var wg sync.WaitGroup
	var errs [4]error
	chunk := func(i int) string { return "é" + strings.Repeat("x", i%7) + "€" }
	var wantOut, wantIn strings.Builder
	for i := range n {
		wantOut.WriteString(chunk(i))
		wantIn.WriteString(chunk(i + 1))
	}
	for g, do := range []func(i int) error{
		func(i int) error { return w.Output(time.Since(start), []byte(chunk(i))) },
		func(i int) error {
			// Split each chunk mid-rune: the Writer joins them again.
			c := []byte(chunk(i + 1))
			if err := w.Input(time.Since(start), c[:1]); err != nil {
				return err
			}
			return w.Input(time.Since(start), c[1:])
		},
		func(i int) error { return w.Resize(time.Since(start), 80+i, 24) },
		func(i int) error { return w.Marker(time.Since(start), "mark") },
	} {
		wg.Go(func() {
			for i := range n {
				if err := do(i); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var out, in strings.Builder
	var resizes, markers int
	var last time.Duration
	for _, ev := range events(t, buf) {
		if ev.Time < last {
			t.Fatalf("time went back from %v to %v", last, ev.Time)
		}
		last = ev.Time
		switch ev.Type {
		case asciicast.TypeOutput:
			out.WriteString(ev.Data)
		case asciicast.TypeInput:
			in.WriteString(ev.Data)
		case asciicast.TypeResize:
			if want := fmt.Sprintf("%dx24", 80+resizes); ev.Data != want {
				t.Fatalf("resize %d: %q", resizes, ev.Data)
			}
			resizes++
		case asciicast.TypeMarker:
			markers++
		}
	}
	if out.String() != wantOut.String() {
		t.Error("output read back differs from output written")
	}
	if in.String() != wantIn.String() {
		t.Error("input read back differs from input written")
	}
	if resizes != n || markers != n {
		t.Errorf("%d resizes and %d markers, want %d each", resizes, markers, n)
	}
}
