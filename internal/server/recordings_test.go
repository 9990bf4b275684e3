package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/config"
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
