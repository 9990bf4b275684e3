package access_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/ca"
)

// targetEnv is a testEnv whose user CA key is in the test's hands, to forge
// certificates as a holder of a stolen CA key would, and whose policy a test
// can replace, as a reload of the configuration does.
type targetEnv struct {
	*testEnv
	caKey   ssh.Signer
	current atomic.Pointer[policy.Policy]
	removed map[string]bool // users whose key the configuration no longer has
}

// Owner is the users' keys as configured now: newEnv's, less the removed.
func (e *targetEnv) Owner(fp string) (string, bool) {
	for user, k := range e.keys {
		if ssh.FingerprintSHA256(k) == fp && !e.removed[user] {
			return user, true
		}
	}
	return "", false
}

// newTargetEnv is newEnv with withStanding, and with the service rebuilt on
// a user CA whose key file the test knows: ca.SSHAuthority does not export
// its signer, so the test reads the same file the authority was loaded from.
// The store, clock and notifier are newEnv's.
func newTargetEnv(t *testing.T) *targetEnv {
	t.Helper()
	e := &targetEnv{testEnv: newEnv(t, withStanding), removed: map[string]bool{}}
	path := filepath.Join(t.TempDir(), "user_ca")
	userCA, err := ca.LoadOrCreateSSH("bastion-user-ca", path)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if e.caKey, err = ssh.ParsePrivateKey(pem); err != nil {
		t.Fatal(err)
	}
	if !userCA.IsAuthority(e.caKey.PublicKey()) {
		t.Fatal("the key file holds another key than the user CA's")
	}
	e.ca = userCA
	e.current.Store(e.pol)
	e.svc = access.New(access.Config{
		Store: e.spy, Policy: e.current.Load, UserCA: userCA, Notifier: e.notes, Now: e.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Keys: e,
	})
	return e
}

// withStanding gives role dev standing access: web02 as deploy at any time,
// and win01 as root inside 08:00–10:00 UTC.
func withStanding(p *policy.Policy) {
	every := [7]bool{true, true, true, true, true, true, true}
	p.Roles["dev"].Standing = []policy.Access{
		{Targets: policy.Selector{Names: []string{"web02"}}, Logins: []string{"deploy"}},
		{
			Targets: policy.Selector{Names: []string{"win01"}}, Logins: []string{"root"},
			Conditions: policy.Conditions{Windows: []policy.Window{{Days: every, From: 8 * time.Hour, To: 10 * time.Hour, Location: time.UTC}}},
		},
	}
}

// issued is the real flow: a's request for target as logins, bob's
// approval, and the certificate from Service.Cert for a's key. The audit
// events so far are forgotten.
func (e *targetEnv) issued(t *testing.T, a access.Actor, target string, logins ...string) (*store.Request, *access.Certificate) {
	t.Helper()
	r := e.approved(t, a, target, logins, time.Hour)
	c, err := e.svc.Cert(t.Context(), a, r.ID)
	if err != nil {
		t.Fatalf("cert for request %d: %v", r.ID, err)
	}
	e.skip(t)
	return r, c
}

// aliceCert is alice's certificate for web01 as root, from the real flow.
func (e *targetEnv) aliceCert(t *testing.T) (*store.Request, *ssh.Certificate) {
	t.Helper()
	r, c := e.issued(t, e.actor(t, "alice"), "web01", "root")
	return r, c.Cert
}

// onRecord records a certificate for r's requester's key in the store, as
// Service.Cert does, and has the user CA sign it: what Bastion would have
// issued for r had r been approved. Service.Cert issues nothing for a
// request that is not approved, so this is how a test gets past the
// "issued by Bastion" check to the request's state.
func (e *targetEnv) onRecord(t *testing.T, r *store.Request) *ssh.Certificate {
	t.Helper()
	key := e.actor(t, r.Requester).Key
	now := e.clock.Now()
	rec := &store.Certificate{
		RequestID: r.ID, User: r.Requester, KeyFingerprint: ssh.FingerprintSHA256(key),
		Principals: r.Logins, Targets: r.Targets,
		ValidAfter: now.Add(-access.ClockSkew), ValidBefore: now.Add(time.Hour), IssuedAt: now,
	}
	serial, err := e.st.IssueCertificate(t.Context(), rec)
	if err != nil {
		t.Fatal(err)
	}
	ext := map[string]string{"permit-pty": ""}
	for _, target := range r.Targets {
		ext[ca.TargetExtension(target)] = ""
	}
	cert, err := e.ca.SignUser(ca.UserCertRequest{
		Key: key, KeyID: fmt.Sprintf("%s/req-%d", r.Requester, r.ID), Serial: serial,
		Principals: r.Logins, ValidAfter: rec.ValidAfter, ValidBefore: rec.ValidBefore, Extensions: ext,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// forge returns a copy of cert changed by edit and signed by signer: with
// the user CA's key, a certificate that differs from one Bastion issued in
// exactly the respect under test.
func forge(t *testing.T, cert *ssh.Certificate, signer ssh.Signer, edit func(c *ssh.Certificate)) *ssh.Certificate {
	t.Helper()
	c := *cert
	c.ValidPrincipals = slices.Clone(cert.ValidPrincipals)
	c.CriticalOptions = maps.Clone(cert.CriticalOptions)
	c.Extensions = maps.Clone(cert.Extensions)
	if edit != nil {
		edit(&c)
	}
	// Signed by hand, as SignCert does it: SignCert refuses an empty
	// principal list, which one test needs. What is signed is the wire form
	// without the signature, whose empty length field ends it.
	c.Nonce = make([]byte, 32)
	if _, err := rand.Read(c.Nonce); err != nil {
		t.Fatal(err)
	}
	c.SignatureKey = signer.PublicKey()
	c.Signature = nil
	data := c.Marshal()
	sig, err := signer.Sign(rand.Reader, data[:len(data)-4])
	if err != nil {
		t.Fatal(err)
	}
	c.Signature = sig
	return wire(t, &c)
}

// wire returns c as a server receives it: parsed from its wire form.
func wire(t *testing.T, c *ssh.Certificate) *ssh.Certificate {
	t.Helper()
	pub, err := ssh.ParsePublicKey(c.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	parsed, ok := pub.(*ssh.Certificate)
	if !ok {
		t.Fatalf("parsed a %s key, want a certificate", pub.Type())
	}
	return parsed
}

// newSigner is a fresh ed25519 key: another CA, or a key nobody registered.
func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// certLogin is alice logging in to web01 as root from outside with key,
// which she registered (or which the certificate key certifies).
func certLogin(key ssh.PublicKey) access.TargetLogin {
	return access.TargetLogin{Key: key, KeyOwner: "alice", Login: "root", Target: "web01", Source: outside}
}

// withoutWebRule is the policy of newTargetEnv without role dev's rule for
// web*.
func withoutWebRule() *policy.Policy {
	p := testPolicy()
	withStanding(p)
	dev := p.Roles["dev"]
	dev.Requestable = slices.DeleteFunc(dev.Requestable, func(r policy.RequestRule) bool {
		return slices.Contains(r.Targets.Names, "web*")
	})
	return p
}

// toldRefusals are the cases of TestAuthorizeTargetRefused whose reason
// the client is told: only once the certificate is Bastion's own, on record,
// for a key its user still holds. Everything before that (unknown keys,
// other CAs, forgeries) is told nobody.
var toldRefusals = map[string]bool{
	"no principals": true, "login not among the principals": true, "not yet valid": true,
	"expired before the grant's end": true, "critical option verify-required": true,
	"made-up critical option": true, "critical option force-command": true,
	"source-address excludes the client": true, "source-address unparsable": true,
	"source-address with a malformed entry among good ones": true, "source-address with an empty entry": true,
	"source-address with a space (OpenSSH refuses it too)": true, "target not in the certificate": true,
	"request pending": true, "request denied": true, "request revoked": true, "request expired": true,
	"request does not grant the login": true, "role no longer covers the target": true, "conditions fail at use": true,
	"registered key, request pending": true,
}

func TestAuthorizeTargetRefused(t *testing.T) {
	tests := []struct {
		name  string
		login func(t *testing.T, e *targetEnv) access.TargetLogin
		actor string // whom the refusal is audited as
		want  string // what the refusal's reason must mention
	}{
		{
			name: "plain key registered to nobody", actor: "", want: "is not registered to any user",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				return access.TargetLogin{Key: newSigner(t).PublicKey(), Login: "root", Target: "web01", Source: outside}
			},
		},
		{
			name: "registered key without standing access to the target", actor: "alice", want: "no standing access to web01",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				return certLogin(e.actor(t, "alice").Key)
			},
		},
		{
			name: "registered key with standing access, but not as this login", actor: "alice", want: "no standing access to web02",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				in := certLogin(e.actor(t, "alice").Key)
				in.Target = "web02" // standing as deploy only
				return in
			},
		},
		{
			name: "registered key, request pending", actor: "alice", want: "no standing access to web01; request 1 for root@web01 is pending approval",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				e.request(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
				return certLogin(e.actor(t, "alice").Key)
			},
		},
		{
			// The certificate for the approved request comes next: nothing
			// to tell.
			name: "registered key, request approved", actor: "alice", want: "no standing access to web01",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				e.request(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
				e.approved(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
				return certLogin(e.actor(t, "alice").Key)
			},
		},
		{
			name: "host certificate", actor: "alice", want: "not a user certificate",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) { c.CertType = ssh.HostCert }))
			},
		},
		{
			name: "signed by another CA", actor: "alice", want: "not signed by Bastion's user CA",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, newSigner(t), nil))
			},
		},
		{
			name: "names the user CA but signed by another key", actor: "alice", want: "signature does not verify",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				c := forge(t, cert, newSigner(t), nil)
				c.SignatureKey = e.ca.PublicKey()
				return certLogin(wire(t, c))
			},
		},
		{
			name: "no principals", actor: "alice", want: "certificate has no principals",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) { c.ValidPrincipals = nil }))
			},
		},
		{
			name: "login not among the principals", actor: "alice", want: `principal "deploy" not in the set of valid principals`,
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				in := certLogin(cert)
				in.Login = "deploy"
				return in
			},
		},
		{
			name: "not yet valid", actor: "alice", want: "cert is not yet valid",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.ValidAfter = uint64(e.clock.Now().Add(10 * time.Minute).Unix())
				}))
			},
		},
		{
			// Expired on the service's clock, still valid on the wall clock
			// (the service's is tomorrow): the check reads the former.
			name: "expired before the grant's end", actor: "alice", want: "expired at " + startTime().Add(10*time.Minute).Format(time.RFC3339) + " (cert has expired)",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				c := forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.ValidBefore = uint64(e.clock.Now().Add(10 * time.Minute).Unix())
				})
				e.clock.Advance(10 * time.Minute)
				return certLogin(c)
			},
		},
		{
			name: "critical option verify-required", actor: "alice", want: `unsupported critical option "verify-required"`,
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.CriticalOptions = map[string]string{"verify-required": ""}
				}))
			},
		},
		{
			name: "made-up critical option", actor: "alice", want: `unsupported critical option "x-only-on-tuesdays@example.com"`,
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.CriticalOptions = map[string]string{"x-only-on-tuesdays@example.com": "yes"}
				}))
			},
		},
		{
			// The CA may sign force-command, but the proxy does not enforce
			// it on targets, so a certificate carrying it must not be used.
			name: "critical option force-command", actor: "alice", want: `unsupported critical option "force-command"`,
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.CriticalOptions = map[string]string{"force-command": "/bin/true"}
				}))
			},
		},
		{
			name: "source-address excludes the client", actor: "alice", want: "certificate is not valid from 192.0.2.10",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.CriticalOptions = map[string]string{"source-address": "10.0.0.0/8,192.0.2.11"}
				}))
			},
		},
		{
			name: "source-address unparsable", actor: "alice", want: `source-address option is malformed: entry "anywhere"`,
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.CriticalOptions = map[string]string{"source-address": "anywhere"}
				}))
			},
		},
		{
			name: "source-address with a malformed entry among good ones", actor: "alice", want: `source-address option is malformed: entry "192.0.2.0/33"`,
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.CriticalOptions = map[string]string{"source-address": "192.0.2.10,192.0.2.0/33,0.0.0.0/0"}
				}))
			},
		},
		{
			name: "source-address with an empty entry", actor: "alice", want: `source-address option is malformed: entry ""`,
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.CriticalOptions = map[string]string{"source-address": "192.0.2.10,"}
				}))
			},
		},
		{
			name: "source-address with a space (OpenSSH refuses it too)", actor: "alice", want: `source-address option is malformed: entry " 192.0.2.0/24"`,
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.CriticalOptions = map[string]string{"source-address": "10.0.0.0/8, 192.0.2.0/24"}
				}))
			},
		},
		{
			// Signed with the CA key for a serial on record: a stolen CA key
			// or a replayed signing request must not outlive the grant.
			name: "certificate outliving what was issued", actor: "alice", want: "outside what Bastion issued",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				r, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) { c.ValidBefore = uint64(r.GrantEnd.Add(time.Hour).Unix()) }))
			},
		},
		{
			name: "certificate valid forever", actor: "alice", want: "outside what Bastion issued",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) { c.ValidBefore = ssh.CertTimeInfinity }))
			},
		},
		{
			name: "certificate valid from before it was issued", actor: "alice", want: "outside what Bastion issued",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) { c.ValidAfter = 0 }))
			},
		},
		{
			// The key was removed from the configuration: the certificate
			// stops working with it.
			name: "certificate for a key nobody registered", actor: "", want: "which is not registered to alice (any more)",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				in := certLogin(cert)
				in.KeyOwner = ""
				return in
			},
		},
		{
			name: "target not in the certificate", actor: "alice", want: "certificate does not name target web02",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				in := certLogin(cert)
				in.Target = "web02"
				return in
			},
		},
		{
			name: "key ID names no request", actor: "alice", want: `key ID "alice" names no request`,
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) { c.KeyId = "alice" }))
			},
		},
		{
			name: "request that does not exist", actor: "alice", want: "names request 999, which does not exist",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) { c.KeyId = "alice/req-999" }))
			},
		},
		{
			name: "request of another user", actor: "alice", want: "which is not alice's",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				dave := e.approved(t, e.actor(t, "dave"), "web01", []string{"root"}, time.Hour)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) { c.KeyId = "alice/req-" + itoa(dave.ID) }))
			},
		},
		{
			name: "certificate for another user's key", actor: "dave", want: "certificate for alice presented with dave's key",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				in := certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) { c.Key = e.actor(t, "dave").Key }))
				in.KeyOwner = "dave"
				return in
			},
		},
		{
			// Signed with the CA key, for alice's key and her live request,
			// but not issued by Bastion: a stolen key or a restored backup.
			name: "serial not on record", actor: "alice", want: "is not on record for request",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				return certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) { c.Serial += 1000 }))
			},
		},
		{
			name: "serial on record, for another key", actor: "" /* the key is nobody's: the key ID is only a claim */, want: "which is not registered to alice (any more)",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				in := certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) { c.Key = newSigner(t).PublicKey() }))
				in.KeyOwner = "" // nobody registered the new key
				return in
			},
		},
		{
			name: "request pending", actor: "alice", want: "is pending",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				r := e.request(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
				return certLogin(e.onRecord(t, r))
			},
		},
		{
			name: "request denied", actor: "alice", want: "is denied",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				r := e.request(t, e.actor(t, "alice"), "web01", []string{"root"}, time.Hour)
				if _, err := e.svc.Deny(t.Context(), e.actor(t, "bob"), r.ID, "no"); err != nil {
					t.Fatal(err)
				}
				return certLogin(e.onRecord(t, r))
			},
		},
		{
			name: "request revoked", actor: "alice", want: "is revoked by bob: incident over",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				r, cert := e.aliceCert(t)
				if _, err := e.svc.Revoke(t.Context(), e.actor(t, "bob"), r.ID, "incident over"); err != nil {
					t.Fatal(err)
				}
				return certLogin(cert)
			},
		},
		{
			// The certificate outlives the grant, so that the request's
			// state is what refuses.
			name: "request expired", actor: "alice", want: "certificate for request 1 expired at " + startTime().Add(time.Hour).Format(time.RFC3339),
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				r, cert := e.aliceCert(t)
				e.clock.Advance(r.GrantEnd.Sub(e.clock.Now()) + time.Second)
				return certLogin(cert)
			},
		},
		{
			name: "request does not grant the login", actor: "alice", want: "does not grant deploy@web01",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				in := certLogin(forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.ValidPrincipals = append(c.ValidPrincipals, "deploy")
				}))
				in.Login = "deploy"
				return in
			},
		},
		{
			name: "role no longer covers the target", actor: "alice", want: "role dev no longer allows web01",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				_, cert := e.aliceCert(t)
				e.current.Store(withoutWebRule())
				return certLogin(cert)
			},
		},
		{
			// Requested and certified from inside 10.0.0.0/8, used from
			// outside it.
			name: "conditions fail at use", actor: "alice", want: "source address 192.0.2.10 is not in an allowed network",
			login: func(t *testing.T, e *targetEnv) access.TargetLogin {
				a := e.actor(t, "alice")
				a.Source = inside
				_, c := e.issued(t, a, "net01")
				in := certLogin(c.Cert)
				in.Target = "net01"
				return in
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTargetEnv(t)
			in := tt.login(t, e)
			e.skip(t)
			g, err := e.svc.AuthorizeTarget(t.Context(), in)
			checkErr(t, err, refusal, tt.want)
			if g != nil {
				t.Errorf("refused, yet granted %+v", g)
			}
			var told *access.Told
			if errors.As(err, &told) != toldRefusals[tt.name] {
				t.Errorf("told the client: %v; want %v", !toldRefusals[tt.name], toldRefusals[tt.name])
			}
			events := e.wantAudit(t, ev{Type: audit.Login, Actor: tt.actor, Outcome: audit.OutcomeRefused})
			if len(events) == 1 {
				got := events[0]
				if got.Reason != err.Error() || got.Target != in.Target || got.Source != in.Source.String() {
					t.Errorf("audited reason %q target %q source %q; want %q, %q, %q",
						got.Reason, got.Target, got.Source, err, in.Target, in.Source)
				}
			}
		})
	}
}

func TestAuthorizeTargetAccepted(t *testing.T) {
	tests := []struct {
		name string
		// login returns what is presented and the grant it must give.
		login func(t *testing.T, e *targetEnv) (access.TargetLogin, access.Grant)
	}{
		{
			name: "certificate from Service.Cert",
			login: func(t *testing.T, e *targetEnv) (access.TargetLogin, access.Grant) {
				r, c := e.issued(t, e.actor(t, "alice"), "web01", "root", "deploy")
				if vb := time.Unix(int64(c.Cert.ValidBefore), 0); !vb.Equal(r.GrantEnd) || c.Cert.Serial != c.Serial {
					t.Fatalf("certificate valid before %v serial %d; want the grant's end %v, serial %d", vb, c.Cert.Serial, r.GrantEnd, c.Serial)
				}
				e.clock.Advance(30 * time.Minute)
				in := certLogin(c.Cert)
				in.Login = "deploy"
				return in, access.Grant{User: "alice", Target: "web01", Login: "deploy", Role: "dev",
					RequestID: r.ID, Serial: c.Serial, Ends: r.GrantEnd, Source: outside}
			},
		},
		{
			name: "certificate ending before the grant",
			login: func(t *testing.T, e *targetEnv) (access.TargetLogin, access.Grant) {
				r, cert := e.aliceCert(t)
				end := e.clock.Now().Add(10 * time.Minute)
				c := forge(t, cert, e.caKey, func(c *ssh.Certificate) { c.ValidBefore = uint64(end.Unix()) })
				return certLogin(c), access.Grant{User: "alice", Target: "web01", Login: "root", Role: "dev",
					RequestID: r.ID, Serial: cert.Serial, Ends: end, Source: outside}
			},
		},
		{
			name: "source-address contains the client",
			login: func(t *testing.T, e *targetEnv) (access.TargetLogin, access.Grant) {
				r, cert := e.aliceCert(t)
				c := forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.CriticalOptions = map[string]string{"source-address": "10.0.0.0/8,192.0.2.0/24,::ffff:198.51.100.0/120"}
				})
				return certLogin(c), access.Grant{User: "alice", Target: "web01", Login: "root", Role: "dev",
					RequestID: r.ID, Serial: cert.Serial, Ends: r.GrantEnd, Source: outside}
			},
		},
		{
			name: "source-address names the IPv4-mapped client",
			login: func(t *testing.T, e *targetEnv) (access.TargetLogin, access.Grant) {
				r, cert := e.aliceCert(t)
				c := forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.CriticalOptions = map[string]string{"source-address": outside.String()}
				})
				in := certLogin(c)
				in.Source = netip.AddrFrom16(outside.As16())
				return in, access.Grant{User: "alice", Target: "web01", Login: "root", Role: "dev",
					RequestID: r.ID, Serial: cert.Serial, Ends: r.GrantEnd, Source: in.Source}
			},
		},
		{
			name: "conditions hold at use",
			login: func(t *testing.T, e *targetEnv) (access.TargetLogin, access.Grant) {
				a := e.actor(t, "alice")
				a.Source = inside
				r, c := e.issued(t, a, "net01")
				in := certLogin(c.Cert)
				in.Target, in.Source = "net01", inside
				return in, access.Grant{User: "alice", Target: "net01", Login: "root", Role: "dev",
					RequestID: r.ID, Serial: c.Serial, Ends: r.GrantEnd, Source: inside}
			},
		},
		{
			name: "standing access with a registered key",
			login: func(t *testing.T, e *targetEnv) (access.TargetLogin, access.Grant) {
				in := certLogin(e.actor(t, "alice").Key)
				in.Target, in.Login = "web02", "deploy"
				return in, access.Grant{User: "alice", Target: "web02", Login: "deploy", Source: outside}
			},
		},
		{
			name: "standing access inside its window",
			login: func(t *testing.T, e *targetEnv) (access.TargetLogin, access.Grant) {
				e.clock.Advance(59 * time.Minute) // 09:59
				in := certLogin(e.actor(t, "alice").Key)
				in.Target = "win01"
				return in, access.Grant{User: "alice", Target: "win01", Login: "root", Source: outside}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTargetEnv(t)
			in, want := tt.login(t, e)
			e.skip(t)
			g, err := e.svc.AuthorizeTarget(t.Context(), in)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			want.Key = certifiedKey(in.Key)
			checkGrant(t, g, &want)
			if g.Standing() != (want.RequestID == 0) {
				t.Errorf("Standing() = %v for request %d", g.Standing(), g.RequestID)
			}
			e.wantAudit(t) // the caller audits the login once the client has proved it holds the key
		})
	}
}

func checkGrant(t *testing.T, got, want *access.Grant) {
	t.Helper()
	sameTime(t, "Ends", got.Ends, want.Ends)
	g, w := *got, *want
	g.Ends, w.Ends = time.Time{}, time.Time{}
	if g != w {
		t.Errorf("grant = %+v\n want %+v", g, w)
	}
}

func TestCheckGrant(t *testing.T) {
	// requestGrant is alice's session on web01 as root from the real flow,
	// until 10:00.
	requestGrant := func(t *testing.T, e *targetEnv) *access.Grant {
		_, cert := e.aliceCert(t)
		return authorize(t, e, certLogin(cert))
	}
	// standingGrant is alice's standing session on win01, usable until 10:00.
	standingGrant := func(t *testing.T, e *targetEnv) *access.Grant {
		in := certLogin(e.actor(t, "alice").Key)
		in.Target = "win01"
		return authorize(t, e, in)
	}
	tests := []struct {
		name  string
		grant func(t *testing.T, e *targetEnv) *access.Grant
		then  func(t *testing.T, e *targetEnv, g *access.Grant)
		want  string // what the refusal must mention; "" if the grant holds
	}{
		{
			name: "request grant, live", grant: requestGrant,
			then: func(t *testing.T, e *targetEnv, g *access.Grant) { e.clock.Advance(59 * time.Minute) },
		},
		{
			name: "request grant, revoked", grant: requestGrant, want: "was revoked by bob: incident over",
			then: func(t *testing.T, e *targetEnv, g *access.Grant) {
				if _, err := e.svc.Revoke(t.Context(), e.actor(t, "bob"), g.RequestID, "incident over"); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "request grant, released by its requester", grant: requestGrant, want: "was revoked by alice",
			then: func(t *testing.T, e *targetEnv, g *access.Grant) {
				if _, err := e.svc.Revoke(t.Context(), e.actor(t, "alice"), g.RequestID, "done"); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "request grant, expired", grant: requestGrant, want: "access to web01 ended at",
			then: func(t *testing.T, e *targetEnv, g *access.Grant) { e.clock.Advance(time.Hour) },
		},
		{
			name: "request grant, certificate ended first", want: "access to web01 ended at",
			grant: func(t *testing.T, e *targetEnv) *access.Grant {
				_, cert := e.aliceCert(t)
				c := forge(t, cert, e.caKey, func(c *ssh.Certificate) {
					c.ValidBefore = uint64(e.clock.Now().Add(10 * time.Minute).Unix())
				})
				return authorize(t, e, certLogin(c))
			},
			then: func(t *testing.T, e *targetEnv, g *access.Grant) { e.clock.Advance(10 * time.Minute) },
		},
		{
			name: "request grant, key removed from the configuration", grant: requestGrant, want: "is no longer registered to alice",
			then: func(t *testing.T, e *targetEnv, g *access.Grant) { e.removed["alice"] = true },
		},
		{
			name: "standing, key removed from the configuration", grant: standingGrant, want: "is no longer registered to alice",
			then: func(t *testing.T, e *targetEnv, g *access.Grant) { e.removed["alice"] = true },
		},
		{
			name: "standing, live", grant: standingGrant,
			then: func(t *testing.T, e *targetEnv, g *access.Grant) { e.clock.Advance(59 * time.Minute) },
		},
		{
			name: "standing, window closed", grant: standingGrant, want: "outside the allowed time window",
			then: func(t *testing.T, e *targetEnv, g *access.Grant) { e.clock.Advance(time.Hour) },
		},
		{
			name: "standing, taken away", grant: standingGrant, want: "no standing access to win01",
			then: func(t *testing.T, e *targetEnv, g *access.Grant) { e.current.Store(testPolicy()) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTargetEnv(t)
			g := tt.grant(t, e)
			if err := e.svc.CheckGrant(t.Context(), g); err != nil {
				t.Fatalf("a grant just given does not hold: %v", err)
			}
			tt.then(t, e, g)
			err := e.svc.CheckGrant(t.Context(), g)
			if tt.want == "" {
				checkErr(t, err, noErr, "")
				return
			}
			checkErr(t, err, refusal, tt.want)
		})
	}
}

// certifiedKey is the fingerprint of key, or of the key a certificate
// certifies: the key a grant holds only while its user still has it.
func certifiedKey(key ssh.PublicKey) string {
	if c, ok := key.(*ssh.Certificate); ok {
		key = c.Key
	}
	return ssh.FingerprintSHA256(key)
}

// authorize is AuthorizeTarget, which must succeed.
func authorize(t *testing.T, e *targetEnv, in access.TargetLogin) *access.Grant {
	t.Helper()
	g, err := e.svc.AuthorizeTarget(t.Context(), in)
	if err != nil {
		t.Fatalf("AuthorizeTarget: %v", err)
	}
	return g
}
