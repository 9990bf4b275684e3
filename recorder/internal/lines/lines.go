// Package lines reads newline-terminated records with a bound on their
// length and counts them, for the line-oriented decoders of package recorder
// (asciicast and querylog) so that their errors can name the line.
package lines

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrTooLong is returned for a line longer than the Reader's limit.
var ErrTooLong = errors.New("line too long")

// Reader returns the lines of an io.Reader one at a time.
type Reader struct {
	br  *bufio.Reader
	max int
	n   int // number of the line last returned
	buf []byte
	err error
	// parseErr is the first error Parse returned: decoders stop there.
	parseErr error
}

// NewReader returns a Reader of r whose lines may be at most max bytes long,
// not counting the line ending.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{br: bufio.NewReader(r), max: max}
}

// Next returns the next line without its "\n" or "\r\n", and its number
// counting from 1. The line is valid until the next call. A last line without
// a newline is returned like any other; then Next returns io.EOF. A line
// longer than the limit yields an error wrapping ErrTooLong; other errors are
// the underlying reader's. Errors are sticky.
func (r *Reader) Next() (line []byte, n int, err error) {
	if r.err != nil {
		return nil, r.n, r.err
	}
	r.buf = r.buf[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.buf = append(r.buf, chunk...)
		if len(r.buf) > r.max+len("\r\n") {
			r.n++
			r.err = fmt.Errorf("line %d: %w (limit %d bytes)", r.n, ErrTooLong, r.max)
			return nil, r.n, r.err
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == nil:
			line = bytes.TrimSuffix(r.buf[:len(r.buf)-1], []byte("\r"))
		case errors.Is(err, io.EOF) && len(r.buf) > 0:
			line = r.buf
			r.err = io.EOF // reported by the next call
		default:
			r.err = err
			return nil, r.n, r.err
		}
		r.n++
		if len(line) > r.max {
			r.err = fmt.Errorf("line %d: %w (limit %d bytes)", r.n, ErrTooLong, r.max)
			return nil, r.n, r.err
		}
		return line, r.n, nil
	}
}

// Parse reads the next line and decodes it with parse: the shared Next of
// the recorder's line-oriented decoders. It returns io.EOF after the last
// line; other errors name the decoder (name) and the line, and are sticky,
// parse failures included.
func Parse[T any](r *Reader, name string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	if r.parseErr != nil {
		return zero, r.parseErr
	}
	line, n, err := r.Next()
	switch {
	case errors.Is(err, io.EOF):
		err = io.EOF
	case errors.Is(err, ErrTooLong):
		err = fmt.Errorf("%s: %w", name, err)
	case err != nil:
		err = fmt.Errorf("%s: read: %w", name, err)
	default:
		v, perr := parse(line)
		if perr == nil {
			return v, nil
		}
		err = fmt.Errorf("%s: line %d: %w", name, n, perr)
	}
	r.parseErr = err
	return zero, err
}
