package recorder

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Committer is an Object whose writes can be made durable together with
// those of the other objects of its storage (group commit): one fsync of
// the storage's file system serves every recording waiting at that moment,
// instead of one fsync per record.
type Committer interface {
	// Commit returns once everything written to the object before the call
	// is durable, or with why it is not (the object then fails as after a
	// failed Sync). ctx bounds the wait.
	Commit(ctx context.Context) error
}

// Commit makes what was written to obj durable: by group commit where obj
// can (Committer), else by Sync.
func Commit(ctx context.Context, obj Object) error {
	if c, ok := obj.(Committer); ok {
		return c.Commit(ctx)
	}
	return obj.Sync()
}

// GroupCommit makes the writes of many files on one file system durable
// together. Writers append their records (a write(2) each), then Wait; a
// single committer goroutine runs rounds of one sync each, back to back
// while anyone waits: a round covers every write made before it started,
// so a record waits at most for the round in progress and the next one,
// however many sessions write. The goroutine exits when no one waits and
// is started again by the next Wait, so an idle GroupCommit holds nothing
// open but its directory.
//
// A failed round fails every waiter of that round: what they wrote may not
// be durable, and the kernel reports a writeback error once, so a later
// round that succeeds says nothing of it. The caller keeps the failure (a
// recording fails for good); the next round is tried afresh.
type GroupCommit struct {
	sync func() error // one round: syncfs(2) of the directory's file system
	dir  *os.File     // the directory synced; nil for NewGroupCommitFunc

	mu      sync.Mutex
	next    *commitRound // the round new waiters join; nil when none waits
	running bool         // the committer goroutine runs

	rounds atomic.Int64 // rounds run, for tests and metrics
}

// commitRound is one sync, and the waiters it serves.
type commitRound struct {
	done chan struct{} // closed when the round has run
	err  error         // set before done is closed
}

// NewGroupCommit returns a GroupCommit for the file system holding dir:
// each round is one syncfs(2) of it, which writes back every file of that
// file system (Linux reports writeback errors through it since 5.8).
func NewGroupCommit(dir string) (*GroupCommit, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("recorder: group commit: %w", err)
	}
	g := NewGroupCommitFunc(func() error { return syncfs(f) })
	g.dir = f
	return g, nil
}

// Close closes the directory: rounds fail from then on. A storage without
// a Close of its own (Dir) keeps it open for the life of the process.
func (g *GroupCommit) Close() error {
	if g.dir == nil {
		return nil
	}
	return g.dir.Close()
}

// NewGroupCommitFunc returns a GroupCommit whose rounds call sync (tests
// inject failures and count calls).
func NewGroupCommitFunc(sync func() error) *GroupCommit {
	return &GroupCommit{sync: sync}
}

// syncfs syncs the file system holding f.
func syncfs(f *os.File) error {
	conn, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := conn.Control(func(fd uintptr) {
		for {
			serr = unix.Syncfs(int(fd))
			if serr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "syncfs", Path: f.Name(), Err: serr}
	}
	return nil
}

// Wait returns once every write made before the call is durable: after the
// first round that starts after the call. It returns that round's error,
// or ctx's if ctx ends first (the round still runs).
func (g *GroupCommit) Wait(ctx context.Context) error {
	g.mu.Lock()
	if g.next == nil {
		g.next = &commitRound{done: make(chan struct{})}
	}
	r := g.next
	if !g.running {
		g.running = true
		go g.commitLoop()
	}
	g.mu.Unlock()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// commitLoop runs rounds while waiters join them, then exits.
func (g *GroupCommit) commitLoop() {
	for {
		g.mu.Lock()
		r := g.next
		g.next = nil
		if r == nil {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		// Waiters joining from here on join the next round: their writes
		// may come after this sync started.
		r.err = g.sync()
		g.rounds.Add(1)
		close(r.done)
	}
}

// Rounds is how many syncs have run.
func (g *GroupCommit) Rounds() int64 { return g.rounds.Load() }
