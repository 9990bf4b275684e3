package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/store"
)

func testDBSecret(requestID int64, user, scram string, created time.Time) *store.DBSecret {
	return &store.DBSecret{RequestID: requestID, User: user, SCRAM: scram,
		MySQLNative: bytes.Repeat([]byte{1}, 20), MySQLSHA2: bytes.Repeat([]byte{2}, 32),
		CreatedAt: created, ExpiresAt: created.Add(time.Hour)}
}

func testDBSecrets(t *testing.T, s store.Store) {
	ctx := t.Context()
	r1 := create(t, s, pendingRequest("alice", at(0)))
	r2 := create(t, s, pendingRequest("alice", at(time.Second)))

	if _, err := s.CreateDBSecret(ctx, testDBSecret(999, "alice", "x", at(0))); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateDBSecret for a missing request: %v, want ErrNotFound", err)
	}
	first := testDBSecret(r1.ID, "alice", "first", at(0))
	id1, err := s.CreateDBSecret(ctx, first)
	if err != nil || id1 <= 0 || first.ID != id1 {
		t.Fatalf("CreateDBSecret = %d, %v (d.ID %d)", id1, err, first.ID)
	}
	other := testDBSecret(r2.ID, "alice", "other", at(time.Minute))
	other.ExpiresAt = at(30 * time.Minute)
	if _, err := s.CreateDBSecret(ctx, other); err != nil {
		t.Fatal(err)
	}
	// A new secret for r1 replaces the first.
	second := testDBSecret(r1.ID, "alice", "second", at(2*time.Minute))
	if _, err := s.CreateDBSecret(ctx, second); err != nil {
		t.Fatal(err)
	}
	if second.ID <= other.ID {
		t.Errorf("ids not increasing: %d after %d", second.ID, other.ID)
	}

	got, err := s.DBSecrets(ctx, "alice", at(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].SCRAM != "second" || got[1].SCRAM != "other" {
		t.Fatalf("DBSecrets = %v, want [second other]", scrams(got))
	}
	g := got[0]
	if g.ID != second.ID || g.RequestID != r1.ID || g.User != "alice" ||
		!bytes.Equal(g.MySQLNative, second.MySQLNative) || !bytes.Equal(g.MySQLSHA2, second.MySQLSHA2) ||
		!g.CreatedAt.Equal(second.CreatedAt) || !g.ExpiresAt.Equal(second.ExpiresAt) {
		t.Errorf("DBSecrets[0] = %+v, want %+v", g, second)
	}
	// Expired secrets are not returned; other users' never are.
	if got, _ := s.DBSecrets(ctx, "alice", at(40*time.Minute)); len(got) != 1 || got[0].SCRAM != "second" {
		t.Errorf("after 40m: %v, want [second]", scrams(got))
	}
	if got, _ := s.DBSecrets(ctx, "bob", at(0)); len(got) != 0 {
		t.Errorf("bob's secrets: %v", scrams(got))
	}
}

func scrams(ds []*store.DBSecret) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.SCRAM)
	}
	return out
}
