package provision

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastionhq/bastion/bastion/store"
)

type failingGrants struct{}

func (failingGrants) Request(context.Context, int64) (*store.Request, error) {
	return nil, errors.New("store down")
}

// TestEnded: which roles a sweep drops. A role is kept only while its
// request is approved, not past its end and its requester's; roles of
// names Bastion does not make are never touched.
func TestEnded(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	reqs := &requests{m: map[int64]*store.Request{}}
	reqs.set(1, "alice", store.Approved, now.Add(time.Hour))
	reqs.set(2, "alice", store.Approved, now) // ends now
	reqs.set(3, "alice", store.Revoked, now.Add(time.Hour))
	reqs.set(4, "bob", store.Approved, now.Add(time.Hour))
	reqs.set(5, "alice", store.Approved, now.Add(time.Hour))
	reqs.m[5].Targets = []string{"other"}
	reqs.set(6, "alice", store.Pending, now.Add(time.Hour))
	p, err := NewPostgres(Config{Target: "shop", Template: "ro", ConnectionLimit: 1, Grants: reqs, Now: func() time.Time { return now },
		Connect: func(context.Context) (*pgconn.PgConn, error) { return nil, errors.New("not called") }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, role string
		dropped    bool
	}{
		{"live", "bastion_alice_1", false},
		{"expired", "bastion_alice_2", true},
		{"revoked", "bastion_alice_3", true},
		{"another user's request", "bastion_alice_4", true},
		{"another target's request (on the same server: its role)", "bastion_alice_5", false},
		{"pending", "bastion_alice_6", true},
		{"unknown request", "bastion_alice_99", true},
		{"not Bastion's name", "bastion_admin", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why, err := p.ended(t.Context(), tc.role)
			if err != nil {
				t.Fatal(err)
			}
			if (why != "") != tc.dropped {
				t.Fatalf("ended(%s) = %q, want dropped %v", tc.role, why, tc.dropped)
			}
		})
	}
	p.cfg.Grants = failingGrants{}
	if why, err := p.ended(t.Context(), "bastion_alice_1"); err == nil || why != "" {
		t.Fatalf("with the store down: %q, %v; want the role kept and an error", why, err)
	}
}
