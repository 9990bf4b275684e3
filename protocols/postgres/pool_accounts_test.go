package postgres

import (
	"context"
	"errors"
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

// errNoRole is what failingAccounts fails with.
var errNoRole = errors.New("permission denied to create role")

type failingAccounts struct{}

func (failingAccounts) Account(context.Context, *access.Grant) (string, string, error) {
	return "", "", errNoRole
}

// TestDialUpstreamAccountFails: when the grant's account cannot be made,
// the session is refused before any login upstream (the error is the
// account's, not a dial's), with a reason that names the target and not
// the cause (which is logged).
func TestDialUpstreamAccountFails(t *testing.T) {
	_, err := dialUpstream(t.Context(), Target{Name: "shop", Address: "127.0.0.1:1", Accounts: failingAccounts{}},
		&access.Grant{User: "alice", RequestID: 7}, nil)
	var ue *upstreamError
	if !errors.As(err, &ue) || ue.tell != "Bastion could not prepare your account on target shop" || !errors.Is(err, errNoRole) {
		t.Fatalf("dialUpstream = %v", err)
	}
}
