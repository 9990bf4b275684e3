package querylog

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"

	"github.com/bastionhq/bastion/recorder/internal/lines"
)

// Reader reads events. Errors name the line.
type Reader struct {
	lines *lines.Reader
}

// NewReader returns a Reader of the query log in r.
func NewReader(r io.Reader) *Reader {
	return &Reader{lines: lines.NewReader(r, MaxLineSize)}
}

// Next returns the next event, or io.EOF after the last one. An empty Params
// is returned as nil. Errors are sticky.
func (r *Reader) Next() (Event, error) {
	return lines.Parse(r.lines, "querylog", parseEvent)
}

// parseEvent parses and validates one line.
func parseEvent(line []byte) (Event, error) {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) == 0 {
		return Event{}, errors.New("empty line")
	}
	if trimmed[0] != '{' {
		return Event{}, errors.New("event is not a JSON object")
	}
	var e Event
	if err := json.Unmarshal(line, &e); err != nil {
		return Event{}, err
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	if len(e.Params) == 0 {
		e.Params = nil
	}
	return e, nil
}
