package access_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/ca"
)

// checker verifies user certificates as a server trusting authority would,
// at the fake clock's time.
func (e *testEnv) checker(authority ssh.PublicKey) *ssh.CertChecker {
	return &ssh.CertChecker{
		IsUserAuthority: func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), authority.Marshal()) },
		Clock:           e.clock.Now,
	}
}

func TestCert(t *testing.T) {
	e := newEnv(t)
	alice := e.actor(t, "alice")
	r := e.approved(t, alice, "web01", []string{"root", "deploy"}, time.Hour)
	now := e.clock.Advance(10 * time.Minute)

	c, err := e.svc.Cert(t.Context(), alice, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	cert := c.Cert
	if cert.CertType != ssh.UserCert {
		t.Errorf("certificate type %d, want user", cert.CertType)
	}
	if want := "alice/req-" + itoa(r.ID); cert.KeyId != want {
		t.Errorf("KeyId = %q, want %q", cert.KeyId, want)
	}
	if !slices.Equal(cert.ValidPrincipals, []string{"root", "deploy"}) {
		t.Errorf("principals = %q, want the approved logins [root deploy]", cert.ValidPrincipals)
	}
	if got, want := cert.ValidAfter, uint64(now.Add(-access.ClockSkew).Unix()); got != want {
		t.Errorf("ValidAfter = %v, want now-1m = %v", time.Unix(int64(got), 0).UTC(), time.Unix(int64(want), 0).UTC())
	}
	if got, want := cert.ValidBefore, uint64(r.GrantEnd.Unix()); got != want {
		t.Errorf("ValidBefore = %v, want the grant's end %v", time.Unix(int64(got), 0).UTC(), r.GrantEnd)
	}
	if _, ok := cert.Permissions.Extensions[ca.TargetExtension("web01")]; !ok {
		t.Errorf("extensions %v lack %s", cert.Permissions.Extensions, ca.TargetExtension("web01"))
	}
	if got := ca.CertTargets(cert); !slices.Equal(got, []string{"web01"}) {
		t.Errorf("certificate targets = %q, want [web01]", got)
	}
	if !bytes.Equal(cert.Key.Marshal(), alice.Key.Marshal()) {
		t.Error("the certificate is not for alice's key")
	}

	// Verifies against the user CA, for each approved login only.
	chk := e.checker(e.ca.PublicKey())
	if !chk.IsUserAuthority(cert.SignatureKey) {
		t.Error("certificate not signed by the user CA")
	}
	for _, login := range []string{"root", "deploy"} {
		if err := chk.CheckCert(login, cert); err != nil {
			t.Errorf("CheckCert(%s): %v", login, err)
		}
	}
	if err := chk.CheckCert("admin", cert); err == nil {
		t.Error("certificate accepted for a login that was not approved")
	}
	other, err := ca.LoadOrCreateSSH("other-ca", t.TempDir()+"/other")
	if err != nil {
		t.Fatal(err)
	}
	if e.checker(other.PublicKey()).IsUserAuthority(cert.SignatureKey) {
		t.Error("another CA is taken for the signer")
	}

	// The store's record matches, and so does the audit event.
	recs, err := e.st.Certificates(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d certificates recorded, want 1", len(recs))
	}
	rec := recs[0]
	if rec.Serial != c.Serial || cert.Serial != c.Serial || rec.User != "alice" ||
		rec.KeyFingerprint != ssh.FingerprintSHA256(alice.Key) || !slices.Equal(rec.Principals, cert.ValidPrincipals) ||
		!slices.Equal(rec.Targets, []string{"web01"}) || !rec.ValidBefore.Equal(r.GrantEnd) {
		t.Errorf("recorded %+v for certificate serial %d", rec, cert.Serial)
	}
	events := e.wantAudit(t, ev{Type: audit.CertIssue, Actor: "alice", Subject: "alice", Request: r.ID, Outcome: audit.OutcomeOK})
	if len(events) == 1 {
		d := events[0].Details
		if d["serial"] != itoa(int64(c.Serial)) || d["key"] != rec.KeyFingerprint || d["principals"] != "root,deploy" ||
			events[0].Target != "web01" {
			t.Errorf("cert.issue event target %q details %v", events[0].Target, d)
		}
	}
	e.wantNotes(t, r.ID)

	t.Run("connected with a certificate", func(t *testing.T) {
		withCert := alice
		withCert.Key = cert
		c2, err := e.svc.Cert(t.Context(), withCert, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c2.Cert.Key.Marshal(), alice.Key.Marshal()) {
			t.Errorf("certified %s, want the underlying key %s", c2.Cert.Key.Type(), alice.Key.Type())
		}
		if c2.Serial == c.Serial {
			t.Errorf("serial %d reused", c.Serial)
		}
		e.wantAudit(t, ev{Type: audit.CertIssue, Actor: "alice", Subject: "alice", Request: r.ID, Outcome: audit.OutcomeOK})
	})

	t.Run("serials unique across requests", func(t *testing.T) {
		seen := map[uint64]bool{}
		recs, err := e.st.Certificates(t.Context(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			seen[rec.Serial] = true
		}
		for range 3 {
			r := e.approved(t, alice, "web02", []string{"deploy"}, time.Hour)
			c, err := e.svc.Cert(t.Context(), alice, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if seen[c.Serial] || c.Serial == 0 {
				t.Errorf("serial %d for request %d is zero or already used", c.Serial, r.ID)
			}
			seen[c.Serial] = true
			recs, err := e.st.Certificates(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || recs[0].Serial != c.Serial || c.Cert.Serial != c.Serial {
				t.Errorf("request %d: recorded %v, issued serial %d (certificate %d)", r.ID, recs, c.Serial, c.Cert.Serial)
			}
			if got := ca.CertTargets(c.Cert); !slices.Equal(got, []string{"web02"}) {
				t.Errorf("targets %q, want [web02]", got)
			}
		}
		e.skip(t)
	})
}

func TestCertRefused(t *testing.T) {
	tests := []struct {
		name    string
		by      string
		target  string
		logins  []string
		setup   func(t *testing.T, e *testEnv) *store.Request
		noKey   bool
		err     errKind
		errText string
	}{
		{
			name: "pending", err: refusal, errText: "is pending",
			setup: func(t *testing.T, e *testEnv) *store.Request {
				return e.request(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
			},
		},
		{
			name: "denied", err: refusal, errText: "is denied",
			setup: func(t *testing.T, e *testEnv) *store.Request {
				r := e.request(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
				if _, err := e.svc.Deny(t.Context(), e.actor(t, "bob"), r.ID, "no"); err != nil {
					t.Fatal(err)
				}
				return r
			},
		},
		{
			name: "grant ended", err: refusal, errText: "is expired",
			setup: func(t *testing.T, e *testEnv) *store.Request {
				r := e.approved(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
				e.clock.Advance(time.Hour)
				return r
			},
		},
		{
			name: "revoked", err: refusal, errText: "is revoked",
			setup: func(t *testing.T, e *testEnv) *store.Request {
				r := e.approved(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
				if _, err := e.svc.Revoke(t.Context(), e.actor(t, "bob"), r.ID, "incident over"); err != nil {
					t.Fatal(err)
				}
				return r
			},
		},
		{
			name: "approver asks for the requester's grant", by: "bob", err: refusal, errText: "is alice's, not yours",
			setup: func(t *testing.T, e *testEnv) *store.Request {
				return e.approved(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
			},
		},
		{
			name: "another developer", by: "dave", err: notFound,
			setup: func(t *testing.T, e *testEnv) *store.Request {
				return e.approved(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
			},
		},
		{
			name: "database target", err: refusal, errText: "use `token",
			setup: func(t *testing.T, e *testEnv) *store.Request {
				return e.approved(t, e.actor(t, "alice"), "db01", nil, time.Hour)
			},
		},
		{
			name: "no key", noKey: true, err: refusal, errText: "no public key to certify",
			setup: func(t *testing.T, e *testEnv) *store.Request {
				return e.approved(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
			},
		},
		{
			// Approved at 09:00 inside the 08:00–10:00 window; used at 10:30.
			name: "time window closed since approval", err: refusal, errText: "outside the allowed time window",
			setup: func(t *testing.T, e *testEnv) *store.Request {
				r := e.approved(t, e.actor(t, "alice"), "win01", nil, 4*time.Hour)
				e.clock.Advance(90 * time.Minute)
				return r
			},
		},
		{
			name: "role taken away since approval", err: refusal, errText: "no longer applies",
			setup: func(t *testing.T, e *testEnv) *store.Request {
				r := e.approved(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
				e.pol.Users["alice"].Roles = []string{"ops"}
				return r
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := tt.setup(t, e)
			e.skip(t)
			by := tt.by
			if by == "" {
				by = "alice"
			}
			a := e.actor(t, by)
			if tt.noKey {
				a.Key = nil
			}
			c, err := e.svc.Cert(t.Context(), a, r.ID)
			checkErr(t, err, tt.err, tt.errText)
			if c != nil {
				t.Errorf("refused, yet issued %+v", c)
			}
			e.wantAudit(t, ev{Type: audit.CertIssue, Actor: by, Request: r.ID, Outcome: audit.OutcomeRefused})
			recs, err := e.st.Certificates(t.Context(), r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 0 {
				t.Errorf("refused, yet recorded certificate %+v", recs[0])
			}
		})
	}
}

// TestCertWindowOpen is the counterpart of the closed window: inside it the
// same grant is usable.
func TestCertWindowOpen(t *testing.T) {
	e := newEnv(t)
	alice := e.actor(t, "alice")
	r := e.approved(t, alice, "win01", nil, 4*time.Hour)
	e.clock.Advance(50 * time.Minute) // 09:50
	c, err := e.svc.Cert(t.Context(), alice, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Cert.ValidPrincipals, []string{"root"}) {
		t.Errorf("principals %q, want the defaulted login root", c.Cert.ValidPrincipals)
	}
}
