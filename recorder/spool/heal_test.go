package spool

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// TestDiskFullHeals: a write the disk refuses (ENOSPC, a line cut short)
// fails the recording; while the disk stays full Guarantee refuses with
// ErrDisk and the status says so; once a test write works again, without
// a restart, the recording is sealed as interrupted up to its last whole
// line and OnInterrupted names it, so that its session ends.
func TestDiskFullHeals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBackend{}
		var full atomic.Bool
		var mu sync.Mutex
		var interrupted []string
		s, err := Open(Config{Dir: t.TempDir(), Backend: b, Key: testKey(t), Signer: "test", Logger: slog.New(slog.DiscardHandler),
			OnInterrupted: func(names []string) {
				mu.Lock()
				defer mu.Unlock()
				interrupted = append(interrupted, names...)
			}})
		if err != nil {
			t.Fatal(err)
		}
		s.testWrite = func(dir string) error {
			if full.Load() {
				return syscall.ENOSPC
			}
			return testWrite(dir)
		}
		s.Start()
		defer func() {
			if err := s.Close(); err != nil {
				t.Error(err)
			}
		}()

		const name = "postgres/s.jsonl"
		o, err := s.Create(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(o, "{\"whole\":1}\n"); err != nil {
			t.Fatal(err)
		}
		if err := o.Sync(); err != nil {
			t.Fatal(err)
		}
		// The disk fills: a write is cut short and fails.
		full.Store(true)
		failWrite(t, s, name, "{\"cut\":")
		if _, err := io.WriteString(o, "more\n"); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("a write after the failure: %v", err)
		}
		if err := o.Close(); err == nil {
			t.Fatal("Close of a failed recording succeeded")
		}
		time.Sleep(5 * spaceCheckEvery) // several checks find the disk full
		synctest.Wait()
		if err := s.Guarantee(t.Context()); !errors.Is(err, ErrDisk) {
			t.Errorf("Guarantee while the disk is full: %v, want ErrDisk", err)
		}
		if st := s.Status(); st.DiskError == "" {
			t.Errorf("status while the disk is full: %+v", st)
		}
		b.mu.Lock()
		sealed := b.sealed[name]
		b.mu.Unlock()
		if sealed {
			t.Fatal("sealed while the disk was full")
		}

		full.Store(false)
		healed := time.Now()
		for {
			b.mu.Lock()
			sealed, manifest, chunk := b.sealed[name], string(b.manifests[name]), string(b.chunks[name+"#1"])
			b.mu.Unlock()
			if sealed {
				if !strings.Contains(manifest, `"status":"interrupted"`) || chunk != "{\"whole\":1}\n" {
					t.Errorf("sealed with manifest %s and first chunk %q", manifest, chunk)
				}
				break
			}
			if time.Since(healed) > 10*spaceCheckEvery {
				t.Fatalf("not sealed within %s of the disk healing", 10*spaceCheckEvery)
			}
			time.Sleep(dispatchInterval)
			synctest.Wait()
		}
		mu.Lock()
		got := strings.Join(interrupted, ",")
		mu.Unlock()
		if got != name {
			t.Errorf("OnInterrupted named %q, want %q", got, name)
		}
		if st := s.Status(); st.DiskError != "" {
			t.Errorf("status after the disk healed: disk error %q", st.DiskError)
		}
		if err := s.Guarantee(t.Context()); err != nil {
			t.Errorf("Guarantee after the disk healed: %v", err)
		}
	})
}

// failWrite appends part to name's spool file and fails it as a write the
// disk cut short with ENOSPC does.
func failWrite(t *testing.T, s *Store, name, part string) {
	t.Helper()
	r := s.lookup(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.data.WriteString(part)
	if err != nil {
		t.Fatal(err)
	}
	r.written += int64(n)
	s.pending.Add(int64(n))
	r.writeErr = &osError{syscall.ENOSPC}
	s.spoolFailed(r.writeErr)
}

// osError is what a write to a full disk returns, wrapped.
type osError struct{ err error }

func (e *osError) Error() string { return "spool: write: " + e.err.Error() }
func (e *osError) Unwrap() error { return e.err }

// TestGuaranteeFromWindow: Guarantee judges from the uploader's recent
// requests: one failure right after a success is not an outage (a probe
// that timed out under load), two in a row are; nothing known probes once.
func TestGuaranteeFromWindow(t *testing.T) {
	now := time.Now()
	errSlow := errors.New("request timed out")
	tests := []struct {
		name      string
		h         *health
		wantKnown bool
		wantErr   bool
	}{
		{"nothing yet", &health{}, false, false},
		{"last request long ago", &health{lastTry: now.Add(-2 * healthWindow), lastOK: now.Add(-2 * healthWindow)}, false, false},
		{"recent success", &health{lastTry: now.Add(-time.Second), lastOK: now.Add(-time.Second)}, true, false},
		{"one failure after a recent success", &health{err: errSlow, fails: 1, lastTry: now, lastOK: now.Add(-time.Second)}, true, false},
		{"two failures in a row", &health{err: errSlow, fails: 2, lastTry: now, lastOK: now.Add(-time.Second)}, true, true},
		{"one failure, no success in the window", &health{err: errSlow, fails: 1, lastTry: now, lastOK: now.Add(-2 * healthWindow)}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err, known := tt.h.judge(now)
			if known != tt.wantKnown || (err != nil) != tt.wantErr {
				t.Errorf("judge: %v, known %v; want error %v, known %v", err, known, tt.wantErr, tt.wantKnown)
			}
		})
	}
}
