// Package asciicast writes and reads terminal recordings in the asciicast v2
// format (https://docs.asciinema.org/manual/asciicast/v2/), which
// `asciinema play`, `asciinema cat` and the asciinema web player accept
// unchanged.
//
// A recording is a header line, a JSON object, followed by one line per
// event, a JSON array [time, code, data]:
//
//	{"version":2,"width":80,"height":24,"timestamp":1700000000,"env":{"TERM":"xterm"}}
//	[0.248848, "o", "hello\r\n"]
//	[1.001000, "i", "ls\r"]
//	[1.500000, "r", "100x30"]
//	[2.000000, "m", "exec: uptime"]
//
// The time is a JSON number of seconds since the start of the recording, with
// microsecond precision. asciinema 2.2 fails on times written as strings,
// so the Reader rejects them.
package asciicast

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Event codes. Players replay only output; the others are kept for auditors
// and ignored by asciinema.
const (
	TypeOutput = "o" // data written to the terminal
	TypeInput  = "i" // data typed by the user
	TypeResize = "r" // the terminal was resized to "COLSxROWS"
	TypeMarker = "m" // a labelled point in the recording (exec command, rule decision, file transfer)
)

// Version is the asciicast format version this package writes and reads.
const Version = 2

// MaxLineSize is the longest line, in bytes, the Reader accepts. The Writer
// never writes a longer one: it splits output and input into events of at
// most maxEventData bytes, which at worst (all control bytes, 6 bytes each
// when escaped) makes a line of 6 MiB plus a few bytes.
const MaxLineSize = 16 << 20

// maxEventData is the most bytes of data the Writer puts into one event.
const maxEventData = 1 << 20

// Header is the first line of a recording.
type Header struct {
	Version   int               `json:"version"`             // always 2
	Width     int               `json:"width"`               // terminal columns
	Height    int               `json:"height"`              // terminal rows
	Timestamp int64             `json:"timestamp,omitempty"` // start of the recording, Unix seconds
	Title     string            `json:"title,omitempty"`
	Env       map[string]string `json:"env,omitempty"` // TERM and SHELL; the Writer drops other keys
}

// recordedEnv is the environment a Writer keeps in the header: what
// asciinema itself records. The rest of a session's environment can hold
// secrets.
var recordedEnv = []string{"TERM", "SHELL"}

// Event is one event of a recording.
type Event struct {
	Time time.Duration // since the start of the recording; microsecond precision
	Type string        // TypeOutput, TypeInput, TypeResize, TypeMarker, or a code this package does not know
	Data string        // valid UTF-8
}

// ParseResize parses the data of a resize event, "COLSxROWS", in the form
// the Writer writes: positive decimal numbers without signs or leading zeros.
func ParseResize(data string) (cols, rows int, err error) {
	c, r, _ := strings.Cut(data, "x")
	cols, errc := strconv.Atoi(c)
	rows, errr := strconv.Atoi(r)
	if errc != nil || errr != nil || cols <= 0 || rows <= 0 || strconv.Itoa(cols)+"x"+strconv.Itoa(rows) != data {
		return 0, 0, fmt.Errorf("asciicast: resize %q: want COLSxROWS", data)
	}
	return cols, rows, nil
}
