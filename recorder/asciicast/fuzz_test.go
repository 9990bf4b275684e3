package asciicast_test

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bastionhq/bastion/recorder/asciicast"
)

// FuzzReader reads arbitrary input. Whatever it accepts must be well formed
// (valid UTF-8, non-negative times), and writing the events it read with the
// Writer and reading them again must give the same events. The seed corpus
// is in testdata/fuzz/FuzzReader; the golden files are added too.
func FuzzReader(f *testing.F) {
	for _, tt := range goldenTests {
		if b, err := readGolden(tt.name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := asciicast.NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		h := r.Header()
		var buf bytes.Buffer
		w, err := asciicast.NewWriter(&buf, h)
		if err != nil {
			t.Fatalf("NewWriter rejects the header the Reader accepted: %v", err)
		}
		var want []asciicast.Event
		var last time.Duration
		for {
			ev, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "asciicast: ") || !strings.Contains(err.Error(), "line ") {
					t.Fatalf("error without the package or the line: %v", err)
				}
				break
			}
			if ev.Time < 0 || ev.Type == "" || !utf8.ValidString(ev.Data) || !utf8.ValidString(ev.Type) {
				t.Fatalf("malformed event %+v", ev)
			}
			if err := rewrite(w, ev); err != nil {
				continue // an unknown code or a resize the Writer cannot write
			}
			if ev.Type == asciicast.TypeOutput || ev.Type == asciicast.TypeInput {
				if ev.Data == "" {
					continue // the Writer writes no empty data events
				}
			}
			ev.Time = max(ev.Time, last) // the Writer keeps times in order
			last = ev.Time
			want = append(want, ev)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r2, err := asciicast.NewReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("reading what the Writer wrote: %v\n%s", err, buf.Bytes())
		}
		got := readAll(t, r2)
		if len(got) != len(want) {
			t.Fatalf("read back %d events, want %d\n%s", len(got), len(want), buf.Bytes())
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("event %d read back as %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}

// FuzzWriter writes arbitrary operations, with output and input in arbitrary
// chunks of arbitrary bytes, and checks that the Reader reads back exactly
// what was written: each stream as its bytes with every invalid byte
// replaced by U+FFFD (as converting them to runes does), the resizes and
// markers, and times truncated to the microsecond and kept in order.
//
// ops is read as records: an opcode byte, a length byte, then that many
// bytes (or fewer at the end). The opcode's low two bits choose output,
// input, resize or marker; the rest advance the clock.
func FuzzWriter(f *testing.F) {
	f.Add([]byte("\x00\x03caf\x04\x02\xc3\xa9"))
	f.Add([]byte("\x00\x02\xe2\x82\x05\x01\xc3\x08\x01\xac\x06\x50\x18\x07\x04mark"))
	f.Add([]byte("\x00\x04\xf0\x9f\x98\x80\x00\x01\xff\x01\x03\xed\xa0\x80\x00\x01\xf0"))
	f.Fuzz(func(t *testing.T, ops []byte) {
		var buf bytes.Buffer
		w, err := asciicast.NewWriter(&buf, asciicast.Header{Width: 80, Height: 24})
		if err != nil {
			t.Fatal(err)
		}
		var out, in []byte
		var other []asciicast.Event // resizes and markers
		var now time.Duration
		for len(ops) >= 2 {
			op, n := ops[0], int(ops[1])
			ops = ops[2:]
			arg := ops[:min(n, len(ops))]
			ops = ops[len(arg):]
			now += time.Duration(op>>2) * 1001 * time.Nanosecond
			switch op & 3 {
			case 0:
				err = w.Output(now, arg)
				out = append(out, arg...)
			case 1:
				err = w.Input(now, arg)
				in = append(in, arg...)
			case 2:
				cols, rows := n+1, int(op)+1
				err = w.Resize(now, cols, rows)
				other = append(other, asciicast.Event{Time: now.Truncate(time.Microsecond), Type: "r", Data: strconv.Itoa(cols) + "x" + strconv.Itoa(rows)})
			case 3:
				err = w.Marker(now, string(arg))
				other = append(other, asciicast.Event{Time: now.Truncate(time.Microsecond), Type: "m", Data: string([]rune(string(arg)))})
			}
			if err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := asciicast.NewReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatalf("NewReader: %v", err)
		}
		var gotOut, gotIn strings.Builder
		var gotOther []asciicast.Event
		var last time.Duration
		for _, ev := range readAll(t, r) {
			if ev.Time < last {
				t.Fatalf("time went back from %v to %v", last, ev.Time)
			}
			last = ev.Time
			switch ev.Type {
			case "o":
				gotOut.WriteString(ev.Data)
			case "i":
				gotIn.WriteString(ev.Data)
			default:
				gotOther = append(gotOther, ev)
			}
		}
		if want := string([]rune(string(out))); gotOut.String() != want {
			t.Errorf("output read back as %q, want %q", gotOut.String(), want)
		}
		if want := string([]rune(string(in))); gotIn.String() != want {
			t.Errorf("input read back as %q, want %q", gotIn.String(), want)
		}
		if len(gotOther) != len(other) {
			t.Fatalf("read back %d resizes and markers, want %d", len(gotOther), len(other))
		}
		for i := range other {
			if gotOther[i] != other[i] {
				t.Errorf("event %d read back as %+v, want %+v", i, gotOther[i], other[i])
			}
		}
	})
}
