package postgres

import (
	"context"
	"testing"

	"github.com/bastionhq/bastion/bastion/access"
)

type fixedAccounts struct{}

func (fixedAccounts) Account(context.Context, *access.Grant) (string, string, error) {
	return "bastion_alice_1", "pw", nil
}

// TestPoolKeepsNoProvisionedConnection: a connection logged in as one
// grant's own account is closed at the session's end, never kept for the
// next session (which may be another user's).
func TestPoolKeepsNoProvisionedConnection(t *testing.T) {
	p := newPool()
	k := newPoolKey(Target{Name: "t", Address: "a", Accounts: fixedAccounts{}}, nil)
	up, peer := tcpUpstream(t)
	p.put(k, up)
	terminated(t, peer)
	if up := p.get(k); up != nil {
		t.Fatal("a provisioned account's connection was handed out again")
	}
}
