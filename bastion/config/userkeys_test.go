package config_test

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/config"
)

// rsaKeyLine is a fresh RSA public key of bits bits, as authorized_keys
// holds it.
func rsaKeyLine(t *testing.T, bits int) string {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
}

// certLine is a user certificate for alice's key, as authorized_keys would
// hold it.
func certLine(t *testing.T) string {
	t.Helper()
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(aliceKey))
	if err != nil {
		t.Fatal(err)
	}
	caPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ssh.NewSignerFromKey(caPriv)
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{Key: key, CertType: ssh.UserCert, KeyId: "alice", ValidPrincipals: []string{"alice"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert)))
}

func TestUserKeys(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want string // the error must mention it; "" for none
	}{
		{"ed25519", aliceKey, ""},
		{"RSA 2048", rsaKeyLine(t, 2048), ""},
		{"RSA 3072", rsaKeyLine(t, 3072), ""},
		{"RSA 1024", rsaKeyLine(t, 1024), "bastion.yaml:2: users[0].keys[0]: user carol's key SHA256:"},
		{"RSA 2047", rsaKeyLine(t, 2047), "is a 2047-bit RSA key; RSA keys must have at least 2048 bits"},
		{"certificate", certLine(t), "is a certificate, not a public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := fmt.Sprintf("users:\n  - {name: carol, keys: [%q]}\ndata_dir: /d\n", tt.key)
			cfg, err := config.Parse("bastion.yaml", []byte(yaml), testEnv)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if len(cfg.Users["carol"].Keys) != 1 {
					t.Fatalf("keys %v", cfg.Users["carol"].Keys)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestAuthLimits(t *testing.T) {
	const base = "data_dir: /d\nusers: [{name: carol, keys: [\"" + aliceKey + "\"]}]\n"
	cfg, err := config.Parse("bastion.yaml", []byte(base+
		"server: {limits: {auth_failures_per_source: 5, auth_failures_per_user: 7, auth_max_delay: 3s}}\n"), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Server.Limits
	if l.AuthFailuresPerSource != 5 || l.AuthFailuresPerUser != 7 || l.AuthMaxDelay != 3*time.Second {
		t.Fatalf("limits %+v", l)
	}
	for _, bad := range []string{"auth_failures_per_source: -1", "auth_failures_per_user: -2", "auth_max_delay: 0s", "auth_max_delay: soon"} {
		_, err := config.Parse("bastion.yaml", []byte(base+"server: {limits: {"+bad+"}}\n"), testEnv)
		field := "server.limits." + bad[:strings.Index(bad, ":")]
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v; want one naming %s", bad, err, field)
		}
	}
}
