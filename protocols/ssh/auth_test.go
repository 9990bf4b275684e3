package ssh

import (
	"crypto/rand"
	"crypto/rsa"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/identity"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/internal/frontend"
)

// certSigner is key's certificate with keyID, from a CA of the test's own
// (the fake grants decide on it by its key ID).
func certSigner(t *testing.T, key ssh.Signer, keyID string) ssh.Signer {
	t.Helper()
	cert := &ssh.Certificate{Key: key.PublicKey(), CertType: ssh.UserCert, KeyId: keyID, ValidPrincipals: []string{"root"},
		ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, newSigner(t)); err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dialAs connects from the local address from (127.0.0.1 if empty) as
// user, offering the signers in order, and returns the banners it was sent.
func (e *env) dialAs(from, user string, signers ...ssh.Signer) (*ssh.Client, string, error) {
	var mu sync.Mutex
	var banners strings.Builder
	cfg := &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback: ssh.FixedHostKey(e.hostKey), Timeout: waitTimeout,
		BannerCallback: func(msg string) error {
			mu.Lock()
			defer mu.Unlock()
			banners.WriteString(msg)
			return nil
		},
	}
	d := net.Dialer{Timeout: waitTimeout}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := d.Dial("tcp", e.addr)
	if err != nil {
		return nil, "", err
	}
	c, chans, reqs, err := ssh.NewClientConn(nc, e.addr, cfg)
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		nc.Close()
		return nil, banners.String(), err
	}
	client := ssh.NewClient(c, chans, reqs)
	e.t.Cleanup(func() { client.Close() })
	return client, banners.String(), nil
}

// waitRefusals waits until the grants have audited n refusals and returns
// them.
func (e *env) waitRefusals(n int) []string {
	e.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for len(e.grants.refusals()) < n {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %d audited refusals; got %q", n, e.grants.refusals())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return e.grants.refusals()
}

// TestAuthPlainKeyBeforeCertificate: OpenSSH offers the plain key before
// its certificate; the plain key's refusal (a certificate is expected) is
// no audit event when the certificate then succeeds, and one event when
// the connection ends without success.
func TestAuthPlainKeyBeforeCertificate(t *testing.T) {
	e := newEnv(t)
	e.grants.decide = func(in access.TargetLogin) error {
		if _, isCert := in.Key.(*ssh.Certificate); !isCert {
			return &policy.Refusal{Reason: "alice has no standing access to web01"}
		}
		return nil
	}
	alice := e.keys["alice"]
	c, _, err := e.dialAs("", "root@web01", alice, certSigner(t, alice, "alice/req-7"))
	if err != nil {
		t.Fatalf("plain key, then certificate: %v", err)
	}
	c.Close()
	// Only the plain key: refused, and audited once, after the connection.
	if _, _, err := e.dialAs("", "root@web01", alice); err == nil {
		t.Fatal("the plain key alone was accepted")
	}
	if got := e.waitRefusals(1); !slices.Equal(got, []string{"alice has no standing access to web01"}) {
		t.Fatalf("audited refusals %q; want only the second connection's, once", got)
	}
	// The plain key, then a refused certificate: the certificate's refusal
	// speaks for the connection.
	e.grants.decide = func(in access.TargetLogin) error {
		if _, isCert := in.Key.(*ssh.Certificate); isCert {
			return &access.Told{Refusal: &policy.Refusal{Reason: "request 7 is revoked"}}
		}
		return &policy.Refusal{Reason: "alice has no standing access to web01"}
	}
	if _, _, err := e.dialAs("", "root@web01", alice, certSigner(t, alice, "alice/req-7")); err == nil {
		t.Fatal("a revoked certificate was accepted")
	}
	// A third connection, refused, marks the end of the second's events.
	if _, _, err := e.dialAs("", "root@web01", e.keys["mallory"]); err == nil {
		t.Fatal("mallory's key was accepted")
	}
	got := e.waitRefusals(3)
	if want := []string{"request 7 is revoked", "is not registered to any user"}; len(got) != 3 || got[1] != want[0] || !strings.Contains(got[2], want[1]) {
		t.Fatalf("audited refusals %q; want the second connection's certificate only, then the third's", got)
	}
}

// TestAuthBanner: the holder of a certificate Bastion issued is told why
// it is refused; an unknown key, or a certificate for one, is told
// nothing, and audited once per connection.
func TestAuthBanner(t *testing.T) {
	e := newEnv(t)
	e.grants.decide = func(in access.TargetLogin) error {
		if c, ok := in.Key.(*ssh.Certificate); ok && c.KeyId == "alice/req-8" {
			return &access.Told{Refusal: &policy.Refusal{Reason: "request 8 is revoked by bob: incident \x1b[2Jover"}}
		}
		if _, isCert := in.Key.(*ssh.Certificate); !isCert && in.Login == "admin" {
			return &access.Told{Refusal: &policy.Refusal{Reason: "no standing access to web01; request 4 for admin@web01 is pending approval"}}
		}
		if c, ok := in.Key.(*ssh.Certificate); ok && c.KeyId == "alice/req-9" {
			return &policy.Refusal{Reason: "certificate serial 3 is not on record for request 9"}
		}
		return nil
	}
	alice, mallory := e.keys["alice"], e.keys["mallory"]
	tests := []struct {
		name, user string
		signer     ssh.Signer
		banner     string
		audited    string
	}{
		{"revoked grant: told, control bytes escaped", "root@web01", certSigner(t, alice, "alice/req-8"),
			"bastion: request 8 is revoked by bob: incident \\x1b[2Jover\r\n", "request 8 is revoked"},
		{"a forged certificate: not told", "root@web01", certSigner(t, alice, "alice/req-9"), "", "is not on record"},
		{"unknown key", "root@web01", mallory, "", "is not registered to any user"},
		{"certificate for an unknown key", "root@web01", certSigner(t, mallory, "alice/req-7"), "", "is not registered to any user"},
		{"registered key refused by policy", "deploy@web01", alice, "", "no access to web01 as deploy"},
		{"registered key, request pending: told, audited once", "admin@web01", alice,
			"bastion: no standing access to web01; request 4 for admin@web01 is pending approval\r\n", "is pending approval"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, banner, err := e.dialAs("", tt.user, tt.signer)
			if err == nil {
				t.Fatal("accepted")
			}
			if banner != tt.banner {
				t.Errorf("banner %q; want %q", banner, tt.banner)
			}
			got := e.waitRefusals(i + 1)
			if len(got) != i+1 || !strings.Contains(got[i], tt.audited) {
				t.Errorf("audited refusals %q; want one more, saying %q", got, tt.audited)
			}
		})
	}
}

// TestAuthRefusesSHA1RSA: an RSA key signs with SHA-2, never ssh-rsa
// (SHA-1).
func TestAuthRefusesSHA1RSA(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(e *env, _ *Config) { e.users.owners[string(key.PublicKey().Marshal())] = "alice" })
	with := func(algo string) ssh.Signer {
		s, err := ssh.NewSignerWithAlgorithms(key.(ssh.AlgorithmSigner), []string{algo})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, _, err := e.dialAs("", "alice", with(ssh.KeyAlgoRSA)); err == nil {
		t.Error("an ssh-rsa (SHA-1) signature was accepted")
	}
	for _, algo := range []string{ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512} {
		if _, _, err := e.dialAs("", "alice", with(algo)); err != nil {
			t.Errorf("%s: %v", algo, err)
		}
	}
}

// TestAuthThrottle: past its budget a source's failures are slowed, and
// audited as one burst; a user from another source is not slowed.
func TestAuthThrottle(t *testing.T) {
	const maxDelay = 2 * time.Second
	th := frontend.NewAuthThrottle(frontend.AuthLimits{PerSource: 2, PerUser: 100, MaxDelay: maxDelay}, nil)
	e := newEnv(t, func(_ *env, c *Config) { c.Throttle = th })
	mallory := e.keys["mallory"]
	fail := func() time.Duration {
		t.Helper()
		start := time.Now()
		if _, _, err := e.dialAs("", "alice", mallory); err == nil {
			t.Fatal("mallory's key was accepted for alice")
		}
		return time.Since(start)
	}
	fail()
	fail() // the budget
	// Doubling from 250 ms: 250 ms, 500 ms, 1 s, 2 s, 2 s.
	var last time.Duration
	for range 5 {
		last = fail()
	}
	if last < maxDelay {
		t.Fatalf("the 7th failure in a row took %s; want at least %s", last, maxDelay)
	}
	start := time.Now()
	if _, _, err := e.dialAs("127.0.0.2", "alice", e.keys["alice"]); err != nil {
		t.Fatalf("alice from another source: %v", err)
	}
	if took := time.Since(start); took >= maxDelay {
		t.Errorf("alice from another source took %s: slowed by mallory's failures", took)
	}
	if n := len(e.audit.of(audit.LoginThrottle)); n != 1 {
		t.Errorf("%d throttle events; want 1 for the burst", n)
	}
}

func TestBannerLine(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", `request 8 is revoked by bob: "done"`, `request 8 is revoked by bob: "done"`},
		{"escape sequence", "x\x1b[2Jy", `x\x1b[2Jy`},
		{"newline and bell", "a\r\nb\a", `a\r\nb\a`},
		{"invalid UTF-8", "a\xffb", `a\xffb`},
		{"printable UTF-8 and U+FFFD kept", "Zoë \uFFFD", "Zoë \uFFFD"},
		{"bidi override", "a\u202eb", `a\u202eb`},
		{"bounded", strings.Repeat("x", 1000), strings.Repeat("x", maxBannerLine) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bannerLine(tt.in); got != tt.want {
				t.Errorf("bannerLine(%q) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestKeysChangedEndsSelfService: after a reload removes alice's key, her
// self-service connection that used it ends; bob's stays.
func TestKeysChangedEndsSelfService(t *testing.T) {
	var dir *identity.Directory
	e := newEnv(t, func(e *env, c *Config) {
		var err error
		dir, err = identity.NewDirectory(map[string][]ssh.PublicKey{
			"alice": {e.keys["alice"].PublicKey()}, "bob": {e.keys["bob"].PublicKey()},
		})
		if err != nil {
			t.Fatal(err)
		}
		c.Users = dir
	})
	alice, bob := e.mustDial("alice", "alice"), e.mustDial("bob", "bob")
	waitFor(t, "both connections held", func() bool {
		e.srv.holders.mu.Lock()
		defer e.srv.holders.mu.Unlock()
		return len(e.srv.holders.m) == 2
	})
	if err := dir.Replace(map[string][]ssh.PublicKey{"bob": {e.keys["bob"].PublicKey()}}); err != nil {
		t.Fatal(err)
	}
	e.srv.KeysChanged()
	ended := make(chan error, 1)
	go func() { ended <- alice.Wait() }()
	select {
	case <-ended:
	case <-time.After(waitTimeout):
		t.Fatal("alice's connection outlived the removal of her key")
	}
	if _, _, err := bob.SendRequest("keepalive@openssh.com", true, nil); err != nil {
		t.Fatalf("bob's connection ended too: %v", err)
	}
}
