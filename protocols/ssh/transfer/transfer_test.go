package transfer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// decode runs a capture through the decoder its command calls for, each
// record cut into pieces of at most chunk bytes (0: whole).
func decode(t testing.TB, command string, recs []record, chunk int) []Event {
	t.Helper()
	var events []Event
	emit := func(e Event) { events = append(events, e) }
	replay(newDecoder(t, command, emit), recs, chunk)
	return events
}

func newDecoder(t testing.TB, command string, emit func(Event)) decoder {
	t.Helper()
	if command == "subsystem sftp" {
		return NewSFTP(emit)
	}
	d, ok := NewSCP(command, emit)
	if !ok {
		t.Fatalf("NewSCP(%q) = false", command)
	}
	return d
}

func checkEvents(t testing.TB, got, want []Event) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = fmt.Sprintf("%+v", got[i])
		}
		if i < len(want) {
			w = fmt.Sprintf("%+v", want[i])
		}
		mark := "  "
		if g != w {
			mark = "! "
		}
		fmt.Fprintf(&b, "%s%d\n    got  %s\n    want %s\n", mark, i, g, w)
	}
	t.Errorf("events differ:\n%s", b.String())
}

// TestCaptures decodes the real sessions in testdata, whole, byte by byte,
// in random pieces and with each side's consecutive chunks joined: the
// events are the same.
func TestCaptures(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			command, recs := readCapture(t, sc.name)
			checkEvents(t, decode(t, command, recs, 0), sc.want)
			t.Run("byte by byte", func(t *testing.T) {
				checkEvents(t, decode(t, command, recs, 1), sc.want)
			})
			t.Run("random pieces", func(t *testing.T) {
				rng := rand.New(rand.NewPCG(1, 2))
				var events []Event
				d := newDecoder(t, command, func(e Event) { events = append(events, e) })
				for _, r := range recs {
					for p := r.data; len(p) > 0; {
						n := min(len(p), 1+rng.IntN(700))
						if r.dir == '>' {
							d.FromClient(p[:n])
						} else {
							d.FromServer(p[:n])
						}
						p = p[n:]
					}
				}
				d.End()
				checkEvents(t, events, sc.want)
			})
			t.Run("joined", func(t *testing.T) {
				checkEvents(t, decode(t, command, merge(recs), 0), sc.want)
			})
		})
	}
}

// TestConcurrentSides feeds the two sides of a session from two
// goroutines, as the proxy's copy loops do (run with -race). The order
// between the sides is lost, so only safety is checked.
func TestConcurrentSides(t *testing.T) {
	for _, name := range []string{"sftp-session", "scp-upload-tree"} {
		command, recs := readCapture(t, name)
		d := newDecoder(t, command, func(Event) {})
		done := make(chan struct{})
		for _, dir := range []byte{'>', '<'} {
			go func() {
				defer func() { done <- struct{}{} }()
				for _, r := range recs {
					switch {
					case r.dir != dir:
					case dir == '>':
						d.FromClient(r.data)
					default:
						d.FromServer(r.data)
					}
				}
			}()
		}
		<-done
		<-done
		d.End()
	}
}
