package recorder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"
)

// SyncInterval is how often a session's recording is made durable
// (Object.Sync) while events arrive: the most of a recording a crash of the
// host can lose, and how far behind a live watcher of a backend that makes
// data readable at Sync can be. Idle sessions are not synced.
const SyncInterval = time.Second

// clock is what tests replace: the time, and how often recordings sync.
type clock struct {
	now          func() time.Time
	syncInterval time.Duration
}

var realClock = clock{now: time.Now, syncInterval: SyncInterval}

// recording is what Terminal and QueryLog share: the object, the periodic
// Sync, the first error, and the end.
type recording struct {
	obj   Object
	name  string
	start time.Time
	now   func() time.Time

	mu     sync.Mutex
	last   time.Duration // the time since start last given to write
	dirty  bool          // written since the last Sync or Commit
	err    error         // the first Sync error; every later call returns it
	closed bool

	stop chan struct{} // closed by close
	done chan struct{} // closed by syncLoop when it returns
}

// newRecording syncs obj once, so that a storage that cannot make data
// durable fails the session's start rather than its recording, and starts
// the periodic Sync.
func newRecording(obj Object, name string, start time.Time, c clock) (*recording, error) {
	if err := obj.Sync(); err != nil {
		return nil, errors.Join(fmt.Errorf("recorder: %s: %w", name, err), obj.Close())
	}
	r := &recording{
		obj: obj, name: name, start: start, now: c.now,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go r.syncLoop(c.syncInterval)
	return r, nil
}

// syncLoop syncs the object every interval if something was written, until
// close. A Sync failure is kept and returned by every later call: the caller
// decides whether the session may go on unrecorded.
func (r *recording) syncLoop(interval time.Duration) {
	defer close(r.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-tick.C:
			r.mu.Lock()
			if r.dirty && r.err == nil {
				r.dirty = false
				if err := r.obj.Sync(); err != nil {
					r.err = fmt.Errorf("recorder: %s: %w", r.name, err)
				}
			}
			r.mu.Unlock()
		}
	}
}

// write calls fn with the time since the start, unless the recording has
// failed or is closed. Calls are serialized, and the time never goes back
// (nor below 0), whatever the clock does.
func (r *recording) write(fn func(since time.Duration) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usableLocked(); err != nil {
		return err
	}
	since := max(r.now().Sub(r.start), r.last)
	r.last = since
	if err := fn(since); err != nil {
		return err
	}
	r.dirty = true
	return nil
}

// usableLocked returns why the recording takes nothing more, if it does
// not: its first failure, or its end. r.mu is held.
func (r *recording) usableLocked() error {
	if r.err != nil {
		return r.err
	}
	if r.closed {
		return fmt.Errorf("recorder: %s: %w", r.name, fs.ErrClosed)
	}
	return nil
}

// commit makes what was written durable before it returns (Commit: the
// storage's group commit where it has one). A failure is kept, as a Sync
// failure is; ctx ending the wait is not a failure of the recording.
func (r *recording) commit(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.usableLocked(); err != nil {
		return err
	}
	if !r.dirty {
		return nil
	}
	if err := Commit(ctx, r.obj); err != nil {
		err = fmt.Errorf("recorder: %s: %w", r.name, err)
		if ctx.Err() == nil {
			r.err = err
		}
		return err
	}
	r.dirty = false
	return nil
}

// close stops the periodic Sync, calls final (which writes what the format
// still holds), and closes the object, which syncs it. It returns every
// error met, including an earlier Sync failure. Only the first call closes.
func (r *recording) close(final func() error) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("recorder: %s: %w", r.name, fs.ErrClosed)
	}
	r.closed = true
	r.mu.Unlock()

	close(r.stop)
	<-r.done

	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.err
	if final != nil {
		err = errors.Join(err, final())
	}
	if cerr := r.obj.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("recorder: %s: %w", r.name, cerr))
	}
	return err
}
