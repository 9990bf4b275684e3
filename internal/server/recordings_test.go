package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/store"
)

type fakeHolds []string

func (h fakeHolds) HeldRecordings(context.Context) ([]string, error) { return h, nil }

// TestRetentionSweep: recordings older than the retention are deleted and
// audited; a held one and a recent one stay.
func TestRetentionSweep(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{DataDir: dir, Recordings: filepath.Join(dir, "rec"), Recording: config.Recording{Retention: 24 * time.Hour}}
	r, err := openRecordings(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var events []audit.Event
	r.record = func(e audit.Event) { events = append(events, e) }
	old := time.Now().Add(-48 * time.Hour)
	for _, name := range []string{"ssh/old.cast", "ssh/held.cast", "ssh/new.cast"} {
		o, err := r.Create(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(o, "x\n")
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		if name != "ssh/new.cast" {
			if err := os.Chtimes(filepath.Join(dir, "rec", name), old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	deleted, err := r.sweep(t.Context(), fakeHolds{"ssh/held.cast"}, time.Now().Add(-r.retention))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(deleted, []string{"ssh/old.cast"}) {
		t.Errorf("deleted %v, want [ssh/old.cast]", deleted)
	}
	for _, name := range []string{"ssh/held.cast", "ssh/new.cast"} {
		if _, err := r.Stat(t.Context(), name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(events) != 1 || events[0].Type != audit.RecordingDelete || events[0].Details["recording"] != "ssh/old.cast" {
		t.Errorf("audit events: %+v", events)
	}
}

// fakeSessions is the store as the recordings see it: no live session,
// and the legal holds of h.
type fakeSessions struct{ fakeHolds }

func (fakeSessions) Sessions(context.Context, store.SessionFilter) ([]*store.Session, error) {
	return nil, nil
}

func (fakeSessions) EndSession(context.Context, string, store.SessionState, time.Time, string, int) error {
	return nil
}

// TestRetentionLoop: once started, the recordings are swept at once and
// then every retentionEvery, holds kept, until the context ends (under
// synctest: the hour passes at once).
func TestRetentionLoop(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		cfg := &config.Config{DataDir: dir, Recordings: filepath.Join(dir, "rec"), Recording: config.Recording{Retention: 24 * time.Hour}}
		r, err := openRecordings(t.Context(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		write := func(name string, age time.Duration) {
			o, err := r.Create(t.Context(), name)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(o, "x\n")
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			at := time.Now().Add(-age)
			if err := os.Chtimes(filepath.Join(dir, "rec", name), at, at); err != nil {
				t.Fatal(err)
			}
		}
		exists := func(name string) bool {
			_, err := r.Stat(t.Context(), name)
			return err == nil
		}
		write("ssh/old.cast", 48*time.Hour)
		write("ssh/held.cast", 48*time.Hour)
		write("ssh/aging.cast", 24*time.Hour-30*time.Minute)

		var mu sync.Mutex
		var deleted []string
		ctx, cancel := context.WithCancel(t.Context())
		r.start(ctx, fakeSessions{fakeHolds{"ssh/held.cast"}}, func(_ context.Context, _ access.Actor, e audit.Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.Type == audit.RecordingDelete {
				deleted = append(deleted, e.Details["recording"])
			}
		})
		synctest.Wait()
		if exists("ssh/old.cast") || !exists("ssh/held.cast") || !exists("ssh/aging.cast") {
			t.Errorf("after the first sweep: old %v held %v aging %v, want false true true",
				exists("ssh/old.cast"), exists("ssh/held.cast"), exists("ssh/aging.cast"))
		}

		time.Sleep(retentionEvery)
		synctest.Wait()
		if exists("ssh/aging.cast") || !exists("ssh/held.cast") {
			t.Errorf("an hour later: aging %v held %v, want false true", exists("ssh/aging.cast"), exists("ssh/held.cast"))
		}
		cancel()
		r.close(time.Second)
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(deleted, []string{"ssh/old.cast", "ssh/aging.cast"}) {
			t.Errorf("audited deletions %v, want [ssh/old.cast ssh/aging.cast]", deleted)
		}
	})
}
