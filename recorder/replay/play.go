package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bastionhq/bastion/internal/ascii"
	"github.com/bastionhq/bastion/recorder/asciicast"
)

// Play writes the output events of the asciicast recording in r to w, paced
// as recorded (see Options). With Options.Markers, markers (the command of an
// exec, a refusal, the exit status) are written too, each on a line of its
// own as "[bastion] LABEL", their unprintable characters escaped; input,
// resizes and unknown events are skipped, as asciinema does. Pauses are
// measured between the events written. It
// returns nil at the end of the recording, ctx.Err() when ctx is done, and
// otherwise the first error reading the recording or writing to w, after
// playing what came before it.
func Play(ctx context.Context, r io.Reader, w io.Writer, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	cast, err := asciicast.NewReader(r)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	p := pacer{opts: opts}
	lineStart := true // the last output ended a line
	for {
		ev, err := cast.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		data := ev.Data
		switch {
		case ev.Type == asciicast.TypeOutput:
		case ev.Type == asciicast.TypeMarker && opts.Markers:
			data = markerLine(ev.Data)
			if !lineStart {
				data = "\r\n" + data
			}
		default:
			continue
		}
		if data == "" {
			continue
		}
		lineStart = strings.HasSuffix(data, "\n")
		if err := p.wait(ctx, ev.Time); err != nil {
			return err
		}
		if _, err := io.WriteString(w, data); err != nil {
			return fmt.Errorf("replay: write: %w", err)
		}
	}
}

// markerLine formats a marker's label as a line of the replay: newlines,
// tabs and other unprintable characters (a command can hold escape sequences
// meant for the auditor's terminal) are escaped, as the CLI escapes all
// text a user supplied (ascii.Escape).
func markerLine(label string) string {
	return "[bastion] " + ascii.Escape(label) + "\r\n"
}
