package identity_test

import (
	"crypto/ed25519"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/identity"
	"github.com/bastionhq/bastion/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func newKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestDirectory(t *testing.T) {
	alice, alice2, bob := newKey(t), newKey(t), newKey(t)
	d, err := identity.NewDirectory(map[string][]ssh.PublicKey{"alice": {alice, alice2}, "bob": {bob}})
	if err != nil {
		t.Fatal(err)
	}
	// A certificate is its key's: whoever holds the key is its user.
	cert := &ssh.Certificate{Key: alice, CertType: ssh.UserCert, KeyId: "bob/req-1"}
	// After Replace, alice's second key is gone and bob's moved to carol.
	if err := d.Replace(map[string][]ssh.PublicKey{"alice": {alice}, "carol": {bob}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  ssh.PublicKey
		want string // "" for nobody
	}{
		{"kept key", alice, "alice"},
		{"certificate of a kept key", cert, "alice"},
		{"removed key", alice2, ""},
		{"moved key", bob, "carol"},
		{"unknown key", newKey(t), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := d.User(tt.key)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("User = %q, %v; want %q", got, ok, tt.want)
			}
			fp := tt.key
			if c, isCert := fp.(*ssh.Certificate); isCert {
				fp = c.Key
			}
			if got, _ := d.Owner(ssh.FingerprintSHA256(fp)); got != tt.want {
				t.Errorf("Owner = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestDirectoryRefusesSharedKey(t *testing.T) {
	k := newKey(t)
	shared := map[string][]ssh.PublicKey{"alice": {k}, "bob": {k}}
	if _, err := identity.NewDirectory(shared); err == nil {
		t.Fatal("NewDirectory accepted a key registered to two users")
	}
	d, err := identity.NewDirectory(map[string][]ssh.PublicKey{"alice": {k}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Replace(shared); err == nil {
		t.Fatal("Replace accepted a key registered to two users")
	}
	// A refused Replace changes nothing.
	if u, _ := d.User(k); u != "alice" {
		t.Fatalf("after a refused Replace the key is %q's; want alice's", u)
	}
}

// TestDirectoryReplaceWhileRead: lookups during a Replace see one set or
// the other (run with -race).
func TestDirectoryReplaceWhileRead(t *testing.T) {
	k := newKey(t)
	d, err := identity.NewDirectory(map[string][]ssh.PublicKey{"alice": {k}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 200 {
			user := []string{"alice", "bob"}[i%2]
			if err := d.Replace(map[string][]ssh.PublicKey{user: {k}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 200 {
		if u, ok := d.User(k); !ok || (u != "alice" && u != "bob") {
			t.Fatalf("User = %q, %v during Replace", u, ok)
		}
	}
	wg.Wait()
}
