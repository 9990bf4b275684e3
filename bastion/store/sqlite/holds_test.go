package sqlite

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/store"
)

func TestLegalHolds(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	now := time.Now()
	for _, id := range []string{"s1", "s2"} {
		err := s.CreateSession(ctx, &store.Session{ID: id, User: "alice", Target: "web01", Protocol: "ssh", Kind: "shell",
			Recording: "ssh/" + id + ".cast", State: store.SessionLive, StartedAt: now, ExitStatus: -1})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetLegalHold(ctx, "nope", true, "carol", "x", now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("hold of an unknown session: %v", err)
	}
	if err := s.SetLegalHold(ctx, "s1", true, "carol", "LIT-7", now); err != nil {
		t.Fatal(err)
	}
	if err := s.SetLegalHold(ctx, "s1", true, "dave", "again", now); err != nil { // holding twice is fine
		t.Fatal(err)
	}
	held, err := s.HeldRecordings(ctx)
	if err != nil || !slices.Equal(held, []string{"ssh/s1.cast"}) {
		t.Fatalf("HeldRecordings = %v, %v", held, err)
	}
	if on, err := s.LegalHold(ctx, "s2"); err != nil || on {
		t.Errorf("s2 held: %v %v", on, err)
	}
	if err := s.SetLegalHold(ctx, "s1", false, "carol", "", now); err != nil {
		t.Fatal(err)
	}
	if on, err := s.LegalHold(ctx, "s1"); err != nil || on {
		t.Errorf("s1 still held after release: %v %v", on, err)
	}
}
