// Package replay plays recordings back with their timing: Play writes the
// output of an asciicast recording to a terminal, and Transcript prints a
// query log as a transcript for people.
//
// Both pace events as `asciinema play` does: a pause longer than
// Options.IdleLimit (in recording time) is cut to IdleLimit, then every pause
// is divided by Options.Speed.
//
// Follow mode, for live watching of a session still being recorded, is not
// here yet. It will read the recording's object as it grows: at io.EOF wait
// (for the next Sync, at most recorder.SyncInterval) and read on, and treat a
// last line without a newline as not yet complete rather than as an error,
// until the session's end (an "end" event, or the object's close).
package replay

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Options says how to pace a replay.
type Options struct {
	// Speed divides every pause: 2 plays twice as fast, +Inf without
	// pauses. 0 means 1; it must be positive otherwise.
	Speed float64
	// IdleLimit, if positive, cuts every pause longer than it to it,
	// before Speed applies. 0 means no limit.
	IdleLimit time.Duration
	// Sleep waits for d, or until ctx is done and then returns ctx.Err().
	// nil means a timer. Tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Markers makes Play write the recording's markers as lines of their
	// own (see Play). Transcript ignores it.
	Markers bool
}

// withDefaults checks o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	switch {
	case o.Speed == 0:
		o.Speed = 1
	case o.Speed < 0 || math.IsNaN(o.Speed):
		return o, fmt.Errorf("replay: speed %v: must be positive", o.Speed)
	}
	if o.IdleLimit < 0 {
		return o, fmt.Errorf("replay: idle limit %v: must not be negative", o.IdleLimit)
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return o, nil
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// pacer waits between events.
type pacer struct {
	opts Options
	last time.Duration // time of the last event, in the recording
}

// wait waits until the event at time at is due: the pause since the last
// event, cut to the idle limit and divided by the speed. Times that go back
// count as no pause.
func (p *pacer) wait(ctx context.Context, at time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pause := at - p.last
	if pause <= 0 {
		return nil
	}
	p.last = at
	if p.opts.IdleLimit > 0 {
		pause = min(pause, p.opts.IdleLimit)
	}
	scaled := float64(pause) / p.opts.Speed
	if scaled < 1 {
		return nil
	}
	d := time.Duration(math.MaxInt64)
	if scaled < math.MaxInt64 {
		d = time.Duration(scaled)
	}
	return p.opts.Sleep(ctx, d)
}
