package asciicast_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder/asciicast"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// ms is n milliseconds.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// goldenTests are recordings written by the Writer and kept in
// testdata/<name>.cast.
var goldenTests = []struct {
	name   string
	header asciicast.Header
	write  func(w *asciicast.Writer) error
}{
	{
		name: "shell",
		header: asciicast.Header{
			Width: 80, Height: 24, Timestamp: 1700000000, Title: "root@web01",
			Env: map[string]string{"TERM": "xterm-256color", "SHELL": "/bin/bash", "AWS_SECRET_ACCESS_KEY": "dropped"},
		},
		write: func(w *asciicast.Writer) error {
			return all(
				w.Output(ms(12), []byte("\x1b[1mroot@web01\x1b[0m:~# ")),
				w.Input(ms(1500), []byte("l")),
				w.Output(ms(1501), []byte("l")),
				w.Input(ms(1620), []byte("s\r")),
				w.Output(ms(1621), []byte("s\r\n")),
				w.Output(ms(1700), []byte("notes.txt  \"quoted\"  back\\slash\r\n")),
				w.Resize(ms(2500), 120, 40),
				w.Marker(ms(3000), "rule: allow ls (read-only)"),
				w.Output(ms(3000), []byte("root@web01:~# ")),
			)
		},
	},
	{
		name:   "utf8",
		header: asciicast.Header{Width: 100, Height: 30},
		write: func(w *asciicast.Writer) error {
			euro, smile := []byte("€"), []byte("😀")
			return all(
				w.Output(ms(100), append([]byte("price: 5"), euro[:1]...)), // the Writer holds \xe2 back
				w.Output(ms(200), append(euro[1:], " ok\r\n"...)),
				w.Input(ms(250), smile[:2]),
				w.Output(ms(300), []byte("bad byte \xff, surrogate \xed\xa0\x80\r\n")),
				w.Input(ms(350), smile[2:]),
				w.Output(ms(400), []byte("cut at the end \xe2\x82")), // never completed: Close writes U+FFFD twice
				w.Marker(ms(450), "label with \xff and é"),
			)
		},
	},
	{
		name:   "empty",
		header: asciicast.Header{Width: 1, Height: 1},
		write:  func(*asciicast.Writer) error { return nil },
	},
}

// all returns the first non-nil error.
func all(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// TestGolden writes each recording and compares it with its golden file
// (go test -update rewrites them). It then reads the golden file back and
// writes its events again, which must give the same bytes.
func TestGolden(t *testing.T) {
	for _, tt := range goldenTests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := asciicast.NewWriter(&buf, tt.header)
			if err != nil {
				t.Fatalf("NewWriter: %v", err)
			}
			if err := tt.write(w); err != nil {
				t.Fatalf("write: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			golden := goldenPath(tt.name)
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
				t.Fatalf("recording differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", golden, buf.Bytes(), want)
			}

			r, err := asciicast.NewReader(bytes.NewReader(want))
			if err != nil {
				t.Fatalf("NewReader: %v", err)
			}
			var again bytes.Buffer
			w2, err := asciicast.NewWriter(&again, r.Header())
			if err != nil {
				t.Fatalf("NewWriter from the header read: %v", err)
			}
			for _, ev := range readAll(t, r) {
				if err := rewrite(w2, ev); err != nil {
					t.Fatalf("rewrite %+v: %v", ev, err)
				}
			}
			if !bytes.Equal(again.Bytes(), want) {
				t.Errorf("reading %s and writing it again differs:\n%s", golden, again.Bytes())
			}
		})
	}
}

// TestGoldenHeader pins what the Writer keeps of a header.
func TestGoldenHeader(t *testing.T) {
	f, err := os.Open(goldenPath("shell"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := asciicast.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	want := asciicast.Header{
		Version: 2, Width: 80, Height: 24, Timestamp: 1700000000, Title: "root@web01",
		Env: map[string]string{"TERM": "xterm-256color", "SHELL": "/bin/bash"},
	}
	if got := r.Header(); !reflect.DeepEqual(got, want) {
		t.Errorf("header = %+v, want %+v", got, want)
	}
}

// readAll returns the events of r up to io.EOF.
func readAll(t testing.TB, r *asciicast.Reader) []asciicast.Event {
	t.Helper()
	var evs []asciicast.Event
	for {
		ev, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Next after %d events: %v", len(evs), err)
			}
			return evs
		}
		evs = append(evs, ev)
	}
}

// rewrite writes an event read back with the Writer.
func rewrite(w *asciicast.Writer, ev asciicast.Event) error {
	switch ev.Type {
	case asciicast.TypeOutput:
		return w.Output(ev.Time, []byte(ev.Data))
	case asciicast.TypeInput:
		return w.Input(ev.Time, []byte(ev.Data))
	case asciicast.TypeMarker:
		return w.Marker(ev.Time, ev.Data)
	case asciicast.TypeResize:
		cols, rows, err := asciicast.ParseResize(ev.Data)
		if err != nil {
			return err
		}
		return w.Resize(ev.Time, cols, rows)
	}
	return fmt.Errorf("unknown event code %q", ev.Type)
}

// goldenPath is the golden file of a recording in goldenTests.
func goldenPath(name string) string { return filepath.Join("testdata", name+".cast") }

// readGolden returns the golden file of a recording in goldenTests.
func readGolden(name string) ([]byte, error) { return os.ReadFile(goldenPath(name)) }
