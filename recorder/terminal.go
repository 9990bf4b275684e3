package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/bastionhq/bastion/recorder/asciicast"
)

// Terminal records a terminal session (SSH shell or exec) as asciicast v2.
// Event times are taken from the session's start. It is safe for concurrent
// use: output and input come from different goroutines.
//
// A method that fails because the storage failed keeps failing: the caller
// ends the session (fail closed) or goes on unrecorded (fail open).
type Terminal struct {
	rec  *recording
	cast *asciicast.Writer

	// Guarded by rec.mu (used only inside rec.write).
	limit     int64 // most output bytes recorded; 0 for no limit
	output    int64 // output bytes recorded
	truncated bool  // the limit was reached
}

// TerminalOption changes how a Terminal records.
type TerminalOption func(*Terminal)

// OutputLimit makes a Terminal record at most n bytes of output (0: no limit),
// then a single marker "output truncated after n bytes", and no more output.
// Input, resizes and markers are still recorded. It is meant for exec
// sessions, whose output can be a whole database dump.
func OutputLimit(n int64) TerminalOption {
	return func(t *Terminal) { t.limit = n }
}

// NewTerminal creates the object name in st and writes the asciicast header
// h; a zero h.Timestamp is set from start. start is the session's start, with
// a monotonic clock reading (from time.Now) so that event times do not jump
// with the wall clock. ctx bounds the creation only.
func NewTerminal(ctx context.Context, st Storage, name string, h asciicast.Header, start time.Time, opts ...TerminalOption) (*Terminal, error) {
	return newTerminal(ctx, st, name, h, start, realClock, opts...)
}

func newTerminal(ctx context.Context, st Storage, name string, h asciicast.Header, start time.Time, c clock, opts ...TerminalOption) (*Terminal, error) {
	t := &Terminal{}
	for _, opt := range opts {
		opt(t)
	}
	if t.limit < 0 {
		return nil, fmt.Errorf("recorder: %s: negative output limit %d", name, t.limit)
	}
	if h.Timestamp == 0 {
		h.Timestamp = start.Unix()
	}
	// Check the header before an object is created for it.
	if _, err := asciicast.NewWriter(io.Discard, h); err != nil {
		return nil, fmt.Errorf("recorder: %s: %w", name, err)
	}
	obj, err := st.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	if t.cast, err = asciicast.NewWriter(obj, h); err != nil {
		return nil, errors.Join(fmt.Errorf("recorder: %s: %w", name, err), obj.Close())
	}
	if t.rec, err = newRecording(obj, name, start, c); err != nil {
		return nil, err
	}
	return t, nil
}

// Output records data written to the terminal.
func (t *Terminal) Output(data []byte) error {
	return t.rec.write(func(since time.Duration) error {
		if t.limit == 0 {
			return t.cast.Output(since, data)
		}
		if t.truncated {
			return nil
		}
		if rest := t.limit - t.output; int64(len(data)) > rest {
			cut := runeStart(data, int(rest))
			t.truncated = true
			return errors.Join(
				t.cast.Output(since, data[:cut]),
				t.cast.Marker(since, fmt.Sprintf("output truncated after %d bytes", t.limit)))
		}
		t.output += int64(len(data))
		return t.cast.Output(since, data)
	})
}

// runeStart returns n, or up to 3 less so that data[:n] does not end inside
// a UTF-8 sequence.
func runeStart(data []byte, n int) int {
	for cut := n; cut > 0 && cut > n-utf8.UTFMax; cut-- {
		if utf8.RuneStart(data[cut]) {
			return cut
		}
	}
	return n
}

// Input records data typed by the user. The caller redacts what was typed at
// prompts that do not echo (passwords).
func (t *Terminal) Input(data []byte) error {
	return t.rec.write(func(since time.Duration) error { return t.cast.Input(since, data) })
}

// Resize records a window change.
func (t *Terminal) Resize(cols, rows int) error {
	return t.rec.write(func(since time.Duration) error { return t.cast.Resize(since, cols, rows) })
}

// Marker records a labelled point: an exec command, a rule decision, a file
// transfer.
func (t *Terminal) Marker(label string) error {
	return t.rec.write(func(since time.Duration) error { return t.cast.Marker(since, label) })
}

// Commit returns once everything recorded so far is durable (group commit
// where the storage has one): an SSH session under fail-closed commits the
// marker of its exec command before the command reaches the target. A
// failure is kept: later calls fail too.
func (t *Terminal) Commit(ctx context.Context) error { return t.rec.commit(ctx) }

// Close ends the recording and closes its object, which syncs it. It returns a
// Sync failure met earlier (again) along with any error from closing, and
// an error wrapping fs.ErrClosed when called again.
func (t *Terminal) Close() error {
	return t.rec.close(t.cast.Close)
}
