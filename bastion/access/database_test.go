package access_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/dbauth"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
)

func dbLogin(user, target string) access.DBLogin {
	return access.DBLogin{User: user, Target: target, Kind: policy.KindPostgres, Source: outside}
}

// checkSecret checks that the stored verifiers match secret and do not
// contain it.
func checkSecret(t *testing.T, d *store.DBSecret, secret string) {
	t.Helper()
	v, err := dbauth.ParseSCRAM(d.SCRAM)
	if err != nil {
		t.Fatal(err)
	}
	if got := dbauth.NewSCRAM(secret, v.Salt, v.Iterations).String(); got != d.SCRAM {
		t.Error("the stored SCRAM verifier is not the secret's")
	}
	if dbauth.CheckPlainSHA2(d.MySQLSHA2, secret) != nil {
		t.Error("the stored caching_sha2 verifier is not the secret's")
	}
	if strings.Contains(d.SCRAM, secret) || strings.Contains(string(d.MySQLSHA2), secret) ||
		strings.Contains(d.SCRAM, base64.StdEncoding.EncodeToString([]byte(secret))) {
		t.Error("the store holds the secret")
	}
}

func TestDBSecret(t *testing.T) {
	e := newEnv(t)
	alice := e.actor(t, "alice")
	r := e.approved(t, alice, "db01", nil, time.Hour)

	sec, err := e.svc.IssueDBSecret(t.Context(), alice, r.ID)
	checkErr(t, err, noErr, "")
	if sec.User != "alice" || sec.RequestID != r.ID || len(sec.Targets) != 1 || sec.Targets[0] != "db01" {
		t.Errorf("secret = %+v", sec)
	}
	sameTime(t, "ExpiresAt", sec.ExpiresAt, r.GrantEnd)
	e.wantAudit(t, ev{Type: audit.TokenIssue, Actor: "alice", Request: r.ID, Outcome: audit.OutcomeOK})

	d, err := e.svc.DBSecretFor(t.Context(), dbLogin("alice", "db01"))
	if err != nil {
		t.Fatal(err)
	}
	checkSecret(t, d, sec.Secret)

	g, err := e.svc.AuthorizeDB(t.Context(), dbLogin("alice", "db01"), d)
	checkErr(t, err, noErr, "")
	if g.User != "alice" || g.Target != "db01" || g.RequestID != r.ID || g.Role != "dev" || g.Standing() {
		t.Errorf("grant = %+v", g)
	}
	sameTime(t, "grant end", g.Ends, r.GrantEnd)
	if err := e.svc.CheckGrant(t.Context(), g); err != nil {
		t.Errorf("CheckGrant: %v", err)
	}

	// A new token replaces the old one.
	sec2, err := e.svc.IssueDBSecret(t.Context(), alice, r.ID)
	checkErr(t, err, noErr, "")
	e.skip(t)
	if sec2.Secret == sec.Secret {
		t.Fatal("the same secret twice")
	}
	d2, err := e.svc.DBSecretFor(t.Context(), dbLogin("alice", "db01"))
	if err != nil {
		t.Fatal(err)
	}
	checkSecret(t, d2, sec2.Secret)

	// Revocation ends it, and is what AuthorizeDB and CheckGrant say.
	if _, err := e.svc.Revoke(t.Context(), e.actor(t, "bob"), r.ID, "done"); err != nil {
		t.Fatal(err)
	}
	e.skip(t)
	if err := e.svc.CheckGrant(t.Context(), g); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("CheckGrant after revoke = %v", err)
	}
	_, err = e.svc.AuthorizeDB(t.Context(), dbLogin("alice", "db01"), d2)
	checkErr(t, err, refusal, "revoked")
	e.wantAudit(t, ev{Type: audit.Login, Actor: "alice", Request: r.ID, Outcome: audit.OutcomeRefused})
}

func TestDBSecretRefused(t *testing.T) {
	e := newEnv(t)
	alice, dave := e.actor(t, "alice"), e.actor(t, "dave")
	ssh := e.approved(t, alice, "web01", []string{"root"}, time.Hour)
	db := e.approved(t, alice, "db01", nil, time.Hour)
	pending := e.request(t, alice, "db01", nil, time.Hour)

	_, err := e.svc.IssueDBSecret(t.Context(), alice, ssh.ID)
	checkErr(t, err, refusal, "no database target")
	_, err = e.svc.IssueDBSecret(t.Context(), dave, db.ID)
	checkErr(t, err, notFound, "no such request")
	_, err = e.svc.IssueDBSecret(t.Context(), alice, pending.ID)
	checkErr(t, err, refusal, "pending")
	e.wantAudit(t,
		ev{Type: audit.TokenIssue, Actor: "alice", Request: ssh.ID, Outcome: audit.OutcomeRefused},
		ev{Type: audit.TokenIssue, Actor: "dave", Request: db.ID, Outcome: audit.OutcomeRefused},
		ev{Type: audit.TokenIssue, Actor: "alice", Request: pending.ID, Outcome: audit.OutcomeRefused})

	// No secret yet; wrong protocol; unknown target; someone else's.
	for _, in := range []access.DBLogin{dbLogin("alice", "db01"), dbLogin("alice", "nope"), dbLogin("alice", "web01"),
		{User: "alice", Target: "db01", Kind: policy.KindMySQL}} {
		if _, err := e.svc.DBSecretFor(t.Context(), in); !errors.Is(err, access.ErrNoDBSecret) {
			t.Errorf("DBSecretFor(%+v) = %v, want ErrNoDBSecret", in, err)
		}
	}
	if _, err := e.svc.IssueDBSecret(t.Context(), alice, db.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DBSecretFor(t.Context(), dbLogin("dave", "db01")); !errors.Is(err, access.ErrNoDBSecret) {
		t.Errorf("dave found alice's secret: %v", err)
	}
	d, err := e.svc.DBSecretFor(t.Context(), dbLogin("alice", "db01"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.AuthorizeDB(t.Context(), dbLogin("dave", "db01"), d)
	checkErr(t, err, refusal, "not dave's")

	// Past the grant's end the secret is gone.
	e.clock.Advance(time.Hour + time.Second)
	if _, err := e.svc.DBSecretFor(t.Context(), dbLogin("alice", "db01")); !errors.Is(err, access.ErrNoDBSecret) {
		t.Errorf("expired secret found: %v", err)
	}
	_, err = e.svc.AuthorizeDB(t.Context(), dbLogin("alice", "db01"), d)
	checkErr(t, err, refusal, "expired")
}
