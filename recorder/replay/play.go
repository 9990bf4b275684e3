package replay

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/bastionhq/bastion/recorder/asciicast"
)

// Play writes the output events of the asciicast recording in r to w, paced
// as recorded (see Options). Input, resizes, markers and unknown events are
// skipped, as asciinema does; pauses are measured between output events. It
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
	for {
		ev, err := cast.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if ev.Type != asciicast.TypeOutput {
			continue
		}
		if err := p.wait(ctx, ev.Time); err != nil {
			return err
		}
		if _, err := io.WriteString(w, ev.Data); err != nil {
			return fmt.Errorf("replay: write: %w", err)
		}
	}
}
