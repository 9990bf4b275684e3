package config_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastionhq/bastion/bastion/config"
)

func TestServerPublicKey(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pkix := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&key.PublicKey)})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shop.pem"), pkix, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a key"), 0o644); err != nil {
		t.Fatal(err)
	}
	indent := func(b []byte) string {
		return "|\n      " + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n      ")
	}
	target := func(kind, key string) string {
		return "data_dir: /data\nusers:\n  - name: alice\ntargets:\n  - name: shop\n    kind: " + kind +
			"\n    address: db:3306\n    server_public_key: " + key + "\n"
	}
	tests := []struct {
		name    string
		yaml    string
		wantErr string // "" when the key is the test's
	}{
		{name: "inline PEM", yaml: target("mysql", indent(pkix))},
		{name: "inline PKCS#1 PEM", yaml: target("mysql", indent(pkcs1))},
		{name: "file relative to the config", yaml: target("mysql", "shop.pem")},
		{name: "absolute file", yaml: target("mysql", filepath.Join(dir, "shop.pem"))},
		{name: "missing file", yaml: target("mysql", "nope.pem"),
			wantErr: "bastion.yaml:8: targets[0].server_public_key: neither PEM nor a readable file"},
		{name: "not a key", yaml: target("mysql", "junk.pem"),
			wantErr: "bastion.yaml:8: targets[0].server_public_key: not an RSA public key in PEM"},
		{name: "postgres target", yaml: target("postgres", "shop.pem"),
			wantErr: "bastion.yaml:8: targets[0].server_public_key: only mysql targets have a server public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse(filepath.Join(dir, "bastion.yaml"), []byte(tt.yaml), func(string) (string, bool) { return "", false })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Targets["shop"].ServerPublicKey
			if got == nil || !got.Equal(&key.PublicKey) {
				t.Fatalf("server public key %v, want the test's", got)
			}
		})
	}
}
