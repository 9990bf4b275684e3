package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// queueWait bounds how long a test waits for writes to queue.
const queueWait = 10 * time.Second

// openScratch opens a store with a table gc_rows, without a unique key, so
// that a write committed twice shows as two rows, and a table gc_child whose
// rows must name a row of gc_parent.
func openScratch(t *testing.T) *Store {
	t.Helper()
	s := openTemp(t)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	_, err := s.w.ExecContext(t.Context(), `
		CREATE TABLE gc_rows (writer TEXT NOT NULL, seq INTEGER NOT NULL);
		CREATE TABLE gc_parent (id INTEGER PRIMARY KEY);
		CREATE TABLE gc_child (id INTEGER PRIMARY KEY, parent INTEGER NOT NULL REFERENCES gc_parent (id));`)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// insert returns a write's fn that adds the row (writer, seq).
func insert(ctx context.Context, writer string, seq int) func(tx *sql.Tx) error {
	return func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO gc_rows (writer, seq) VALUES (?, ?)`, writer, seq)
		return err
	}
}

// rows returns how many times each writer's rows were committed, by writer
// and seq.
func rows(t *testing.T, s *Store) map[string]int {
	t.Helper()
	rs, err := s.r.QueryContext(t.Context(), `SELECT writer, seq, COUNT(*) FROM gc_rows GROUP BY writer, seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	m := map[string]int{}
	for rs.Next() {
		var (
			writer string
			seq, n int
		)
		if err := rs.Scan(&writer, &seq, &n); err != nil {
			t.Fatal(err)
		}
		m[fmt.Sprintf("%s/%d", writer, seq)] = n
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// holdLeader starts a write that becomes the leader and blocks inside its
// fn, so that the writes made meanwhile queue up for one batch. Calling the
// returned function lets it go on and returns its result.
func holdLeader(t *testing.T, s *Store) (release func() error) {
	t.Helper()
	started, unblock, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.write(t.Context(), func(tx *sql.Tx) error {
			close(started)
			<-unblock
			return insert(t.Context(), "leader", 0)(tx)
		})
	}()
	<-started
	return func() error {
		close(unblock)
		return <-done
	}
}

// waitQueued waits until n writes are queued.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(queueWait)
	for {
		s.gc.mu.Lock()
		q := len(s.gc.queue)
		s.gc.mu.Unlock()
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued after %v, want %d", q, queueWait, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// batch is one test's writes: each starts once the previous one has queued,
// so they run in this order, in one batch behind a held leader.
type batch []func(ctx context.Context) error

// run makes the writes and returns their results.
func (b batch) run(t *testing.T, s *Store) []error {
	t.Helper()
	release := holdLeader(t, s)
	errs := make([]error, len(b))
	var wg sync.WaitGroup
	for i, w := range b {
		wg.Go(func() { errs[i] = w(t.Context()) })
		waitQueued(t, s, i+1)
	}
	if err := release(); err != nil {
		t.Errorf("leader: %v", err)
	}
	wg.Wait()
	return errs
}

// TestGroupCommitConcurrent makes many concurrent writes: all commit, once
// each, in fewer transactions than writes.
func TestGroupCommitConcurrent(t *testing.T) {
	const writers, each = 64, 20
	s := openScratch(t)
	ctx := t.Context()

	// Hold the leader until every writer has queued its first write, so that
	// at least those are batched.
	release := holdLeader(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := s.write(ctx, insert(ctx, fmt.Sprint(w), i)); err != nil {
					errs <- fmt.Errorf("writer %d, write %d: %w", w, i, err)
				}
			}
		})
	}
	waitQueued(t, s, writers)
	if err := release(); err != nil {
		t.Fatalf("leader: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	got := rows(t, s)
	for w := range writers {
		for i := range each {
			if n := got[fmt.Sprintf("%d/%d", w, i)]; n != 1 {
				t.Errorf("writer %d, write %d: committed %d times, want 1", w, i, n)
			}
		}
	}
	if n := len(got); n != writers*each+1 {
		t.Errorf("%d rows, want %d", n, writers*each+1)
	}
	writes := int64(writers*each + 1)
	commits := s.gc.commits.Load()
	if commits >= writes {
		t.Errorf("%d commits for %d writes: no batching", commits, writes)
	}
	if f := s.gc.fallbacks.Load(); f != 0 {
		t.Errorf("%d batches fell back", f)
	}
	t.Logf("%d writes in %d commits", writes, commits)
}

// TestGroupCommitBatch checks the results of the ops in a batch, which is
// committed once unless it fails as a whole.
func TestGroupCommitBatch(t *testing.T) {
	errBoom, errPanicked := errors.New("boom"), errors.New("panicked")
	ok := func(name string) func(ctx context.Context, s *Store) error {
		return func(ctx context.Context, s *Store) error { return s.write(ctx, insert(ctx, name, 0)) }
	}
	tests := []struct {
		name string
		// bad is the write in the middle of the batch, between two ok writes.
		bad func(ctx context.Context, s *Store) error
		// wantErr checks bad's error.
		wantErr func(error) bool
		// fallback is whether the batch fails as a whole, so that every
		// op runs again in its own transaction.
		fallback bool
	}{
		{
			name: "fn fails",
			bad: func(ctx context.Context, s *Store) error {
				return s.write(ctx, func(tx *sql.Tx) error {
					if err := insert(ctx, "bad", 0)(tx); err != nil {
						return err
					}
					return errBoom
				})
			},
			wantErr: func(err error) bool { return err == errBoom },
		},
		{
			name: "statement fails",
			bad: func(ctx context.Context, s *Store) error {
				return s.write(ctx, func(tx *sql.Tx) error {
					if err := insert(ctx, "bad", 0)(tx); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `INSERT INTO gc_child (id, parent) VALUES (1, 999)`)
					return err
				})
			},
			wantErr: func(err error) bool { return err != nil },
		},
		{
			name: "cancelled before it runs",
			bad: func(ctx context.Context, s *Store) error {
				ctx, cancel := context.WithCancel(ctx)
				cancel()
				return s.write(ctx, func(tx *sql.Tx) error {
					panic("the fn of a cancelled write ran")
				})
			},
			wantErr: func(err error) bool { return errors.Is(err, context.Canceled) },
		},
		{
			name: "fn panics",
			bad: func(ctx context.Context, s *Store) (err error) {
				defer func() {
					if v := recover(); v != nil {
						err = fmt.Errorf("panicked with %v", v)
						if p, ok := v.(*writePanic); ok && p.value == "boom" {
							err = errPanicked
						}
					}
				}()
				return s.write(ctx, func(tx *sql.Tx) error {
					if err := insert(ctx, "bad", 0)(tx); err != nil {
						return err
					}
					panic("boom")
				})
			},
			wantErr: func(err error) bool { return err == errPanicked },
		},
		{
			name: "fn ends the transaction",
			bad: func(ctx context.Context, s *Store) error {
				return s.write(ctx, func(tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, `ROLLBACK`)
					return err
				})
			},
			wantErr:  func(err error) bool { return err != nil },
			fallback: true,
		},
		{
			name: "commit fails",
			bad: func(ctx context.Context, s *Store) error {
				return s.write(ctx, func(tx *sql.Tx) error {
					// A deferred foreign key is checked at COMMIT only.
					if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
						return err
					}
					if err := insert(ctx, "bad", 0)(tx); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `INSERT INTO gc_child (id, parent) VALUES (1, 999)`)
					return err
				})
			},
			wantErr:  func(err error) bool { return err != nil },
			fallback: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openScratch(t)
			errs := batch{
				func(ctx context.Context) error { return ok("first")(ctx, s) },
				func(ctx context.Context) error { return tt.bad(ctx, s) },
				func(ctx context.Context) error { return ok("last")(ctx, s) },
			}.run(t, s)

			if errs[0] != nil || errs[2] != nil {
				t.Errorf("the good writes failed: %v, %v", errs[0], errs[2])
			}
			if !tt.wantErr(errs[1]) {
				t.Errorf("the bad write returned %v", errs[1])
			}
			got := rows(t, s)
			for _, w := range []string{"leader", "first", "last"} {
				if n := got[w+"/0"]; n != 1 {
					t.Errorf("write %s committed %d times, want 1", w, n)
				}
			}
			if n := got["bad/0"]; n != 0 {
				t.Errorf("the bad write's row committed %d times", n)
			}
			var children int
			if err := s.r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM gc_child`).Scan(&children); err != nil || children != 0 {
				t.Errorf("gc_child has %d rows (%v), want none", children, err)
			}

			// The leader commits alone, then the batch commits once or
			// falls back to a commit per good write.
			wantCommits, wantFallbacks := int64(2), int64(0)
			if tt.fallback {
				wantCommits, wantFallbacks = 3, 1
			}
			if c := s.gc.commits.Load(); c != wantCommits {
				t.Errorf("%d commits, want %d", c, wantCommits)
			}
			if f := s.gc.fallbacks.Load(); f != wantFallbacks {
				t.Errorf("%d fallbacks, want %d", f, wantFallbacks)
			}

			// The store is still usable.
			if err := s.write(t.Context(), insert(t.Context(), "after", 0)); err != nil {
				t.Errorf("write after the batch: %v", err)
			}
		})
	}
}

// TestGroupCommitAlone checks that a write with no company is an ordinary
// transaction, and that its fn's error or panic reaches its caller.
func TestGroupCommitAlone(t *testing.T) {
	s := openScratch(t)
	ctx := t.Context()
	if err := s.write(ctx, insert(ctx, "alone", 0)); err != nil {
		t.Fatal(err)
	}
	errBoom := errors.New("boom")
	if err := s.write(ctx, func(tx *sql.Tx) error {
		if err := insert(ctx, "bad", 0)(tx); err != nil {
			return err
		}
		return errBoom
	}); err != errBoom {
		t.Errorf("write = %v, want %v", err, errBoom)
	}
	func() {
		defer func() {
			if v := recover(); v == nil {
				t.Errorf("a panic in fn did not reach the caller")
			}
		}()
		_ = s.write(ctx, func(tx *sql.Tx) error {
			if err := insert(ctx, "bad", 1)(tx); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.write(cctx, insert(ctx, "bad", 2)); !errors.Is(err, context.Canceled) {
		t.Errorf("write with a cancelled context = %v", err)
	}
	got := rows(t, s)
	if len(got) != 1 || got["alone/0"] != 1 {
		t.Errorf("rows = %v, want alone/0 once", got)
	}
	if c, f := s.gc.commits.Load(), s.gc.fallbacks.Load(); c != 1 || f != 0 {
		t.Errorf("%d commits, %d fallbacks; want 1, 0", c, f)
	}
}
