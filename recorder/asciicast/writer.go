package asciicast

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// errClosed is returned by writes after Close.
var errClosed = errors.New("asciicast: write after Close")

// stream names the two data streams whose incomplete UTF-8 sequences a
// Writer holds back separately.
type stream int

const (
	streamOutput stream = iota
	streamInput
	numStreams
)

var streamCodes = [numStreams]string{streamOutput: TypeOutput, streamInput: TypeInput}

// Writer writes a recording: the header, then one line per event, each with
// a single Write to the underlying writer, so that a reader following the
// file sees whole lines. A Writer does not buffer and needs no flushing; it
// is safe for concurrent use.
//
// Output and input arrive in arbitrary chunks that can split a multi-byte
// UTF-8 sequence. The Writer holds an incomplete sequence at the end of a
// chunk back until the next chunk of the same stream, and writes every byte
// that can never become valid UTF-8 as U+FFFD. Close writes what is still
// held back.
//
// Times must not be negative. A time earlier than the previous event's is
// raised to it, so that events written concurrently (each writer reads the
// clock before the Writer's lock is taken) stay in order.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	last    time.Duration // time of the last event written
	pending [numStreams]struct {
		b [utf8.UTFMax - 1]byte
		n int
	}
	line   []byte // reused for each event
	err    error  // the first write error; every later call returns it
	closed bool
}

// maxLineBuffer is the largest line buffer a Writer keeps for reuse.
const maxLineBuffer = 64 << 10

// NewWriter writes the header h to w and returns a Writer for the events.
// h.Version may be 0 or 2 (2 is written); Width and Height must be positive;
// only TERM and SHELL are kept from Env.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if h.Version != 0 && h.Version != Version {
		return nil, fmt.Errorf("asciicast: header version %d: only %d is supported", h.Version, Version)
	}
	h.Version = Version
	if h.Width <= 0 || h.Height <= 0 {
		return nil, fmt.Errorf("asciicast: header size %dx%d: width and height must be positive", h.Width, h.Height)
	}
	env := make(map[string]string)
	for _, k := range recordedEnv {
		if v, ok := h.Env[k]; ok {
			env[k] = v
		}
	}
	h.Env = nil
	if len(env) > 0 {
		h.Env = env
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil { // writes the newline
		return nil, fmt.Errorf("asciicast: encode header: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("asciicast: write header: %w", err)
	}
	return &Writer{w: w}, nil
}

// Output records data written to the terminal at time t.
func (w *Writer) Output(t time.Duration, data []byte) error {
	return w.data(t, streamOutput, data)
}

// Input records data typed by the user at time t.
func (w *Writer) Input(t time.Duration, data []byte) error {
	return w.data(t, streamInput, data)
}

// Resize records that the terminal was resized to cols×rows at time t.
func (w *Writer) Resize(t time.Duration, cols, rows int) error {
	if cols <= 0 || rows <= 0 {
		return fmt.Errorf("asciicast: resize to %dx%d: columns and rows must be positive", cols, rows)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.check(t); err != nil {
		return err
	}
	size := strconv.Itoa(cols) + "x" + strconv.Itoa(rows)
	return w.event(max(t, w.last), TypeResize, []byte(size))
}

// Marker records a labelled point at time t. Invalid UTF-8 in label is
// written as U+FFFD.
func (w *Writer) Marker(t time.Duration, label string) error {
	if len(label) > maxEventData {
		return fmt.Errorf("asciicast: marker label of %d bytes: the limit is %d", len(label), maxEventData)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.check(t); err != nil {
		return err
	}
	return w.event(max(t, w.last), TypeMarker, []byte(label))
}

// Close writes the incomplete UTF-8 sequences still held back, as U+FFFD, at
// the time of the last event, and makes later writes fail. It does not close
// the underlying writer. It returns the first error any write met.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.err != nil {
		w.closed = true
		return w.err
	}
	w.closed = true
	for s := range numStreams {
		p := &w.pending[s]
		if p.n > 0 {
			held := p.b[:p.n]
			p.n = 0
			if err := w.event(w.last, streamCodes[s], held); err != nil {
				return err
			}
		}
	}
	return nil
}

// check reports why nothing can be written at t. w.mu is held.
func (w *Writer) check(t time.Duration) error {
	switch {
	case w.err != nil:
		return w.err
	case w.closed:
		return errClosed
	case t < 0:
		return fmt.Errorf("asciicast: negative time %v", t)
	}
	return nil
}

// data writes the complete UTF-8 sequences of the held-back bytes of stream
// s followed by data, and holds back an incomplete sequence at the end.
func (w *Writer) data(t time.Duration, s stream, data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.check(t); err != nil {
		return err
	}
	p := &w.pending[s]
	buf := data
	if p.n > 0 {
		buf = append(p.b[:p.n:p.n], data...) // a new array: p.b is overwritten below
	}
	hold := incompleteTail(buf)
	complete, tail := buf[:len(buf)-hold], buf[len(buf)-hold:]
	t = max(t, w.last)
	for len(complete) > 0 {
		n := runeCut(complete, maxEventData)
		if err := w.event(t, streamCodes[s], complete[:n]); err != nil {
			return err
		}
		complete = complete[n:]
	}
	p.n = copy(p.b[:], tail)
	return nil
}

// event writes one event line. w.mu is held and t is at least w.last.
func (w *Writer) event(t time.Duration, code string, data []byte) error {
	line := append(w.line[:0], '[')
	line = appendTime(line, t)
	line = append(line, ", \""...)
	line = append(line, code...)
	line = append(line, "\", "...)
	line = appendString(line, data)
	line = append(line, "]\n"...)
	if cap(line) <= maxLineBuffer {
		w.line = line
	}
	if _, err := w.w.Write(line); err != nil {
		w.err = fmt.Errorf("asciicast: write: %w", err)
		return w.err
	}
	w.last = t
	return nil
}
