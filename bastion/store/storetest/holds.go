package storetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/store"
)

func testLegalHolds(t *testing.T, s store.Store) {
	ctx := t.Context()
	for i, id := range []string{"s1", "s2", "s3"} {
		if err := s.CreateSession(ctx, testSession(id, "alice", "web01", at(time.Duration(i)*time.Minute))); err != nil {
			t.Fatalf("CreateSession(%s): %v", id, err)
		}
	}
	held := func(want ...string) {
		t.Helper()
		got, err := s.HeldRecordings(ctx)
		if err != nil {
			t.Fatalf("HeldRecordings: %v", err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("HeldRecordings = %q, want %q", got, want)
		}
		for _, id := range []string{"s1", "s2", "s3", "unknown"} {
			on, err := s.LegalHold(ctx, id)
			if err != nil {
				t.Fatalf("LegalHold(%s): %v", id, err)
			}
			if want := slices.Contains(want, "sessions/"+id+".cast"); on != want {
				t.Errorf("LegalHold(%s) = %v, want %v", id, on, want)
			}
		}
	}
	held()
	if err := s.SetLegalHold(ctx, "unknown", true, "carol", "LIT-7", at(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("hold of an unknown session: %v, want ErrNotFound", err)
	}
	if err := s.SetLegalHold(ctx, "unknown", false, "carol", "", at(time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("release of an unknown session: %v, want ErrNotFound", err)
	}
	if err := s.SetLegalHold(ctx, "s1", false, "carol", "", at(time.Hour)); err != nil {
		t.Errorf("release of a session not held: %v", err)
	}
	held()
	for _, id := range []string{"s1", "s3", "s1"} { // holding twice is fine
		if err := s.SetLegalHold(ctx, id, true, "carol", "LIT-7", at(time.Hour)); err != nil {
			t.Fatalf("SetLegalHold(%s): %v", id, err)
		}
	}
	held("sessions/s1.cast", "sessions/s3.cast")
	// A hold outlives the session's end.
	if err := s.EndSession(ctx, "s3", store.SessionEnded, at(2*time.Hour), "", 0); err != nil {
		t.Fatal(err)
	}
	held("sessions/s1.cast", "sessions/s3.cast")
	if err := s.SetLegalHold(ctx, "s1", false, "dave", "settled", at(3*time.Hour)); err != nil {
		t.Fatalf("release s1: %v", err)
	}
	held("sessions/s3.cast")
}
