package querylog

import (
	"fmt"
	"io"
	"sync"
)

// Writer writes events, one line each with a single Write to the underlying
// writer, so that a reader following the log sees whole lines. It does not
// buffer and is safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte // the line being written, kept for reuse up to maxBuffer
	err error  // the first write error; every later Write returns it
}

// maxBuffer is the largest encoding buffer a Writer keeps for reuse.
const maxBuffer = 64 << 10

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w}
}

// Write writes e, which must be valid (see Event.Validate), with its time in
// UTC. Invalid UTF-8 in its strings is written as U+FFFD, and an empty Params
// is written as nil. A failed write fails every later one, so that nothing
// follows a partial line.
func (w *Writer) Write(e Event) error {
	if err := e.Validate(); err != nil {
		return fmt.Errorf("querylog: invalid event: %w", err)
	}
	e.Time = e.Time.UTC()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	line := appendEvent(w.buf[:0], e) // ends with the newline
	if cap(line) <= maxBuffer {
		w.buf = line
	} else {
		w.buf = nil
	}
	if len(line) > MaxLineSize+1 {
		return fmt.Errorf("querylog: event of %d bytes: the limit is %d", len(line)-1, MaxLineSize)
	}
	if _, err := w.w.Write(line); err != nil {
		w.err = fmt.Errorf("querylog: write: %w", err)
		return w.err
	}
	return nil
}
