package recorder

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bastionhq/bastion/recorder/querylog"
)

// gatedSync is a round that waits for its gate and fails the rounds named
// in fail (from 1).
type gatedSync struct {
	gate  chan struct{}
	calls atomic.Int64
	fail  map[int64]error
}

func (s *gatedSync) sync() error {
	n := s.calls.Add(1)
	<-s.gate
	return s.fail[n]
}

// TestGroupCommitRounds: waiters that arrive while a round runs are served
// together by the next round (one sync for all of them), never by the
// round in progress, which may have started before their writes; a failed
// round fails every one of its waiters and only them.
func TestGroupCommitRounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errDisk := errors.New("disk failed")
		s := &gatedSync{gate: make(chan struct{}), fail: map[int64]error{2: errDisk}}
		g := NewGroupCommitFunc(s.sync)

		first := make(chan error, 1)
		go func() { first <- g.Wait(t.Context()) }()
		synctest.Wait() // round 1 runs, held at the gate
		if got := s.calls.Load(); got != 1 {
			t.Fatalf("%d syncs started, want 1", got)
		}

		const late = 10
		errs := make(chan error, late)
		for range late {
			go func() { errs <- g.Wait(t.Context()) }()
		}
		synctest.Wait()
		if len(errs) != 0 || len(first) != 0 {
			t.Fatal("a waiter returned while its round had not run")
		}

		close(s.gate)
		if err := <-first; err != nil {
			t.Fatalf("the first waiter: %v", err)
		}
		for range late {
			if err := <-errs; !errors.Is(err, errDisk) {
				t.Errorf("a waiter of the failed round got %v, want %v", err, errDisk)
			}
		}
		if got := g.Rounds(); got != 2 {
			t.Errorf("%d rounds for %d waiters, want 2", got, late+1)
		}

		// The failure is the round's: the next one is tried afresh.
		if err := g.Wait(t.Context()); err != nil {
			t.Errorf("the round after a failure: %v", err)
		}
		synctest.Wait() // the committer goroutine exits when idle
	})
}

// TestGroupCommitContext: a waiter whose context ends returns its cause;
// the round still runs for the others.
func TestGroupCommitContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &gatedSync{gate: make(chan struct{})}
		g := NewGroupCommitFunc(s.sync)
		ctx, cancel := context.WithCancelCause(t.Context())
		errGone := errors.New("client gone")
		done := make(chan error, 1)
		go func() { done <- g.Wait(ctx) }()
		other := make(chan error, 1)
		go func() { other <- g.Wait(t.Context()) }()
		synctest.Wait()
		cancel(errGone)
		if err := <-done; !errors.Is(err, errGone) {
			t.Errorf("Wait after its context ended: %v, want %v", err, errGone)
		}
		close(s.gate)
		if err := <-other; err != nil {
			t.Errorf("the other waiter: %v", err)
		}
		synctest.Wait()
	})
}

// TestGroupCommitManySessions: many sessions committing at once on a real
// directory share rounds (fewer syncfs calls than commits), and every
// commit succeeds.
func TestGroupCommitManySessions(t *testing.T) {
	d := newTestDir(t)
	const sessions, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, sessions)
	for i := range sessions {
		wg.Go(func() {
			ql, err := NewQueryLog(t.Context(), d, DailyName("postgres", time.Now(), "s"+string(rune('a'+i)), "jsonl"), time.Now())
			if err != nil {
				errs <- err
				return
			}
			for range each {
				if err := ql.Write(querylog.Event{Type: querylog.TypeExec, Statement: "SELECT 1"}); err != nil {
					errs <- err
					return
				}
				if err := ql.Commit(t.Context()); err != nil {
					errs <- err
					return
				}
			}
			errs <- ql.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rounds := d.commit.Rounds()
	if rounds == 0 || rounds > sessions*each {
		t.Fatalf("%d rounds for %d commits", rounds, sessions*each)
	}
	t.Logf("%d commits in %d rounds", sessions*each, rounds)
}

// TestCommitFailureFailsRecording: a failed round fails every recording
// waiting on it, for good: the session ends (fail closed) rather than
// forward a statement whose record may be lost.
func TestCommitFailureFailsRecording(t *testing.T) {
	d := newTestDir(t)
	errDisk := errors.New("injected fsync failure")
	d.commit = NewGroupCommitFunc(func() error { return errDisk })
	const sessions = 4
	logs := make([]*QueryLog, sessions)
	for i := range logs {
		ql, err := NewQueryLog(t.Context(), d, DailyName("mysql", time.Now(), "f"+string(rune('a'+i)), "jsonl"), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		logs[i] = ql
	}
	var wg sync.WaitGroup
	for _, ql := range logs {
		wg.Go(func() {
			if err := ql.Write(querylog.Event{Type: querylog.TypeExec, Statement: "DELETE FROM t"}); err != nil {
				t.Errorf("write: %v", err)
			}
			if err := ql.Commit(t.Context()); !errors.Is(err, errDisk) {
				t.Errorf("Commit: %v, want %v", err, errDisk)
			}
		})
	}
	wg.Wait()
	for _, ql := range logs {
		if err := ql.Write(querylog.Event{Type: querylog.TypeExec, Statement: "SELECT 1"}); !errors.Is(err, errDisk) {
			t.Errorf("a write after the failed commit: %v, want %v", err, errDisk)
		}
		if err := ql.Close(); !errors.Is(err, errDisk) {
			t.Errorf("Close after the failed commit: %v, want %v", err, errDisk)
		}
	}
}

// TestCommitBuffered: a Commit writes a buffered log's events out to its
// file before the round; one with nothing new written since the last one
// costs no round; after Close it fails.
func TestCommitBuffered(t *testing.T) {
	d := newTestDir(t)
	ql, err := NewQueryLog(t.Context(), Buffered(d, 1<<10), "postgres/x.jsonl", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ql.Write(querylog.Event{Type: querylog.TypeExec, Statement: "SELECT 1"}); err != nil {
		t.Fatal(err)
	}
	if err := ql.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(d.Path(), "postgres/x.jsonl"))
	if err != nil || !strings.Contains(string(b), `"statement":"SELECT 1"`) {
		t.Fatalf("after Commit the file holds %q (%v), want the exec event", b, err)
	}
	for range 2 {
		if err := ql.Commit(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := d.commit.Rounds(); got != 1 {
		t.Errorf("%d rounds for one write committed three times, want 1", got)
	}
	if err := ql.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ql.Commit(t.Context()); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Commit after Close: %v, want fs.ErrClosed", err)
	}
}

// newTestDir is a Dir in a temporary directory, inside the package.
func newTestDir(t *testing.T) *Dir {
	t.Helper()
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}
