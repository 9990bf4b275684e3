package asciicast

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"unicode"
	"unicode/utf8"

	"github.com/bastionhq/bastion/recorder/internal/lines"
)

// Reader reads a recording: NewReader reads the header, Next each event.
// Errors name the line. A last line without a newline is read like any
// other.
type Reader struct {
	lines  *lines.Reader
	header Header
}

// NewReader reads and checks the header of the recording in r.
func NewReader(r io.Reader) (*Reader, error) {
	lr := lines.NewReader(r, MaxLineSize)
	h, err := lines.Parse(lr, "asciicast", parseHeader)
	if errors.Is(err, io.EOF) {
		return nil, errors.New("asciicast: empty input: no header")
	}
	if err != nil {
		return nil, err
	}
	return &Reader{lines: lr, header: h}, nil
}

// Header returns the recording's header.
func (r *Reader) Header() Header {
	h := r.header
	h.Env = maps.Clone(h.Env)
	return h
}

// Next returns the next event, or io.EOF after the last one. Errors are
// sticky.
func (r *Reader) Next() (Event, error) {
	return lines.Parse(r.lines, "asciicast", parseEvent)
}

// parseHeader parses and checks a header line.
func parseHeader(line []byte) (Header, error) {
	if !bytes.HasPrefix(bytes.TrimLeft(line, " \t"), []byte("{")) {
		return Header{}, fmt.Errorf("header is not a JSON object: %s", excerpt(line))
	}
	var h Header
	if err := json.Unmarshal(line, &h); err != nil {
		return Header{}, fmt.Errorf("header: %w", err)
	}
	switch {
	case h.Version != Version:
		return Header{}, fmt.Errorf("header: version %d: only %d is supported", h.Version, Version)
	case h.Width <= 0 || h.Height <= 0:
		return Header{}, fmt.Errorf("header: size %dx%d: width and height must be positive", h.Width, h.Height)
	}
	return h, nil
}

// parseEvent parses an event line: [time, code, data].
func parseEvent(line []byte) (Event, error) {
	if len(bytes.TrimSpace(line)) == 0 {
		return Event{}, errors.New("empty line")
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(line, &elems); err != nil {
		return Event{}, fmt.Errorf("event is not a JSON array [time, code, data]: %w", err)
	}
	if len(elems) != 3 {
		return Event{}, fmt.Errorf("event has %d elements, want 3: [time, code, data]", len(elems))
	}
	var ev Event
	switch num := elems[0]; {
	case num[0] == '"':
		return Event{}, fmt.Errorf("time %s is a string: it must be a JSON number", excerpt(num))
	case num[0] != '-' && (num[0] < '0' || num[0] > '9'):
		return Event{}, fmt.Errorf("time %s is not a number", excerpt(num))
	default:
		t, err := parseTime(string(num))
		if err != nil {
			return Event{}, err
		}
		ev.Time = t
	}
	if err := json.Unmarshal(elems[1], &ev.Type); err != nil {
		return Event{}, fmt.Errorf("code %s is not a string", excerpt(elems[1]))
	}
	if ev.Type == "" {
		return Event{}, errors.New("empty event code")
	}
	if err := json.Unmarshal(elems[2], &ev.Data); err != nil {
		return Event{}, fmt.Errorf("data %s is not a string", excerpt(elems[2]))
	}
	return ev, nil
}

// excerpt returns the start of b for an error message, quoted unless it is
// printable text.
func excerpt(b []byte) string {
	const n = 40
	more := ""
	if len(b) > n {
		b, more = b[:n], "…"
	}
	if utf8.Valid(b) && !bytes.ContainsFunc(b, func(r rune) bool { return !unicode.IsPrint(r) }) {
		return string(b) + more
	}
	return fmt.Sprintf("%q", b) + more
}
