package recorder

import (
	"context"
	"time"

	"github.com/bastionhq/bastion/recorder/querylog"
)

// QueryLog records a database session as a querylog (JSON Lines). It is safe
// for concurrent use.
//
// A Write that fails because the storage failed keeps failing: the caller
// ends the session (fail closed) or goes on unrecorded (fail open).
type QueryLog struct {
	rec *recording
	log *querylog.Writer
}

// NewQueryLog creates the object name in st for the log of a session that
// started at start, with a monotonic clock reading (from time.Now). ctx
// bounds the creation only.
func NewQueryLog(ctx context.Context, st Storage, name string, start time.Time) (*QueryLog, error) {
	return newQueryLog(ctx, st, name, start, realClock)
}

func newQueryLog(ctx context.Context, st Storage, name string, start time.Time, c clock) (*QueryLog, error) {
	obj, err := st.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	rec, err := newRecording(obj, name, start, c)
	if err != nil {
		return nil, err
	}
	return &QueryLog{rec: rec, log: querylog.NewWriter(obj)}, nil
}

// Write records an event. A zero e.Time is set to the session's start plus
// the time since on the monotonic clock, so that the times of a session never
// go back when the wall clock is stepped.
func (q *QueryLog) Write(e querylog.Event) error {
	return q.rec.write(func(since time.Duration) error {
		if e.Time.IsZero() {
			e.Time = q.rec.start.Add(since)
		}
		return q.log.Write(e)
	})
}

// Commit returns once every event written so far is durable: with the
// other recordings of its storage in one group commit where the storage has
// one. A database session under `durability: statement` calls it before it
// forwards a statement. A failure is kept: later calls fail too.
func (q *QueryLog) Commit(ctx context.Context) error { return q.rec.commit(ctx) }

// Close ends the log and closes its object, which syncs it. It returns a Sync
// failure met earlier (again) along with any error from closing, and an
// error wrapping fs.ErrClosed when called again.
func (q *QueryLog) Close() error {
	return q.rec.close(nil)
}
