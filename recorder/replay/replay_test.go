package replay_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder/asciicast"
	"github.com/bastionhq/bastion/recorder/replay"
)

// sleeps records the pauses asked for instead of sleeping.
type sleeps []time.Duration

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	*s = append(*s, d)
	return ctx.Err()
}

// cast writes a recording of the given events: "o"/"i"/"m" with data.
func cast(t *testing.T, events ...asciicast.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := asciicast.NewWriter(&buf, asciicast.Header{Width: 80, Height: 24})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		switch ev.Type {
		case "o":
			err = w.Output(ev.Time, []byte(ev.Data))
		case "i":
			err = w.Input(ev.Time, []byte(ev.Data))
		case "m":
			err = w.Marker(ev.Time, ev.Data)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func o(at time.Duration, data string) asciicast.Event {
	return asciicast.Event{Time: at, Type: "o", Data: data}
}

const s = time.Second

func TestPlay(t *testing.T) {
	session := []asciicast.Event{
		o(s, "$ "),
		{Time: 2 * s, Type: "i", Data: "ls\r"}, // not played, not a pause
		o(3*s, "ls\r\n"),
		{Time: 3 * s, Type: "m", Data: "marker"},
		o(13*s, "a b\r\n"),
		o(13*s, "$ "),
	}
	tests := []struct {
		name       string
		events     []asciicast.Event
		opts       replay.Options
		wantSleeps []time.Duration
	}{
		{"real time", session, replay.Options{}, []time.Duration{s, 2 * s, 10 * s}},
		{"twice as fast", session, replay.Options{Speed: 2}, []time.Duration{s / 2, s, 5 * s}},
		{"half speed", session, replay.Options{Speed: 0.5}, []time.Duration{2 * s, 4 * s, 20 * s}},
		{"idle limit", session, replay.Options{IdleLimit: 1500 * time.Millisecond}, []time.Duration{s, 1500 * time.Millisecond, 1500 * time.Millisecond}},
		{"idle limit before speed", session, replay.Options{IdleLimit: 2 * s, Speed: 4}, []time.Duration{s / 4, s / 2, s / 2}},
		{"no pauses", session, replay.Options{Speed: math.Inf(1)}, nil},
		{"times going back", []asciicast.Event{o(5*s, "a"), o(4*s, "b"), o(6*s, "c")}, replay.Options{}, []time.Duration{5 * s, s}},
		{"no output", []asciicast.Event{{Time: 9 * s, Type: "i", Data: "x"}}, replay.Options{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got sleeps
			tt.opts.Sleep = got.sleep
			var out bytes.Buffer
			if err := replay.Play(t.Context(), bytes.NewReader(cast(t, tt.events...)), &out, tt.opts); err != nil {
				t.Fatalf("Play: %v", err)
			}
			var want strings.Builder
			for _, ev := range tt.events {
				if ev.Type == "o" {
					want.WriteString(ev.Data)
				}
			}
			if out.String() != want.String() {
				t.Errorf("output %q, want %q", out.String(), want.String())
			}
			if !equalDurations(got, tt.wantSleeps) {
				t.Errorf("sleeps %v, want %v", got, tt.wantSleeps)
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOptionsErrors(t *testing.T) {
	rec := cast(t, o(s, "x"))
	tests := []struct {
		name    string
		opts    replay.Options
		wantErr string
	}{
		{"negative speed", replay.Options{Speed: -1}, "speed -1: must be positive"},
		{"NaN speed", replay.Options{Speed: math.NaN()}, "speed NaN: must be positive"},
		{"negative idle limit", replay.Options{IdleLimit: -s}, "idle limit -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, run := range map[string]func() error{
				"Play":       func() error { return replay.Play(t.Context(), bytes.NewReader(rec), &bytes.Buffer{}, tt.opts) },
				"Transcript": func() error { return replay.Transcript(t.Context(), strings.NewReader(""), &bytes.Buffer{}, tt.opts) },
			} {
				if err := run(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("%s: error %v, want one containing %q", name, err, tt.wantErr)
				}
			}
		})
	}
}

func TestPlayBadRecording(t *testing.T) {
	tests := []struct {
		name, input, wantOut, wantErr string
	}{
		{"no header", "", "", "replay: asciicast: empty input"},
		{"bad line after good ones", string(cast(t, o(0, "played"))) + "[\"1\", \"o\", \"x\"]\n", "played", "replay: asciicast: line 3: time \"1\" is a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := replay.Play(t.Context(), strings.NewReader(tt.input), &out, replay.Options{Speed: math.Inf(1)})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
			if out.String() != tt.wantOut {
				t.Errorf("output %q, want %q", out.String(), tt.wantOut)
			}
		})
	}
}

// errWriter fails every write.
type errWriter struct{}

var errBrokenPipe = errors.New("broken pipe")

func (errWriter) Write([]byte) (int, error) { return 0, errBrokenPipe }

func TestPlayWriteError(t *testing.T) {
	err := replay.Play(t.Context(), bytes.NewReader(cast(t, o(0, "x"))), errWriter{}, replay.Options{})
	if !errors.Is(err, errBrokenPipe) {
		t.Errorf("error %v, want %v", err, errBrokenPipe)
	}
}

// TestPlayRealTime plays with the default Sleep: a short recording takes
// about as long as recorded, scaled by the speed.
func TestPlayRealTime(t *testing.T) {
	rec := cast(t, o(0, "a"), o(40*time.Millisecond, "b"), o(80*time.Millisecond, "c"))
	begin := time.Now()
	var out bytes.Buffer
	if err := replay.Play(t.Context(), bytes.NewReader(rec), &out, replay.Options{Speed: 2}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < 40*time.Millisecond || took > 2*time.Second {
		t.Errorf("took %v, want about 40ms", took)
	}
	if out.String() != "abc" {
		t.Errorf("output %q", out.String())
	}
}

// TestPlayCancel cancels a replay stuck in a long pause.
func TestPlayCancel(t *testing.T) {
	rec := cast(t, o(0, "before"), o(time.Hour, "after"))
	ctx, cancel := context.WithCancel(t.Context())
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- replay.Play(ctx, bytes.NewReader(rec), &syncWriter{w: &out, first: cancel}, replay.Options{})
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Play did not return after cancel")
	}
	if out.String() != "before" {
		t.Errorf("output %q, want %q", out.String(), "before")
	}
}

// syncWriter calls first after its first write.
type syncWriter struct {
	w     *bytes.Buffer
	first func()
}

func (w *syncWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if w.first != nil {
		w.first()
		w.first = nil
	}
	return n, err
}

// TestPlayMarkers: with Markers, a refused exec (markers, no output) replays
// as its command and refusal, each marker on a line of its own and escaped.
func TestPlayMarkers(t *testing.T) {
	rec := cast(t,
		asciicast.Event{Time: 0, Type: "m", Data: "exec: rm -rf /tmp/x\x1b[2J"},
		asciicast.Event{Time: s, Type: "m", Data: "denied: rule no-rm: not here"},
		o(2*s, "partial"),
		asciicast.Event{Time: 3 * s, Type: "m", Data: "exit status 1"},
	)
	var out bytes.Buffer
	if err := replay.Play(t.Context(), bytes.NewReader(rec), &out, replay.Options{Speed: math.Inf(1), Markers: true}); err != nil {
		t.Fatalf("Play: %v", err)
	}
	want := "[bastion] exec: rm -rf /tmp/x\\x1b[2J\r\n[bastion] denied: rule no-rm: not here\r\npartial\r\n[bastion] exit status 1\r\n"
	if out.String() != want {
		t.Errorf("output %q, want %q", out.String(), want)
	}
	out.Reset()
	if err := replay.Play(t.Context(), bytes.NewReader(rec), &out, replay.Options{Speed: math.Inf(1)}); err != nil {
		t.Fatalf("Play: %v", err)
	}
	if out.String() != "partial" {
		t.Errorf("without Markers: output %q, want only the output", out.String())
	}
}
