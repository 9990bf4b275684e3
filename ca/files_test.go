package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestLoadOrCreateSSH(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "user_ca")

	created, err := LoadOrCreateSSH(UserCAName, path)
	if err != nil {
		t.Fatal(err)
	}
	if created.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("created a %s key; want ed25519", created.PublicKey().Type())
	}
	for _, tc := range []struct {
		name string
		path string
		want os.FileMode
	}{
		{"directory", dir, 0o700},
		{"private key", path, 0o600},
		{"public key", path + ".pub", 0o644},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fileMode(t, tc.path); got != tc.want {
				t.Errorf("mode %#o; want %#o", got, tc.want)
			}
		})
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if want := created.AuthorizedKey() + "\n"; string(pub) != want {
		t.Errorf(".pub = %q; want %q", pub, want)
	}

	loaded, err := LoadOrCreateSSH(UserCAName, path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(loaded.PublicKey().Marshal(), created.PublicKey().Marshal()) {
		t.Error("second call did not load the key the first one created")
	}

	// The real ssh-keygen reads the key we wrote.
	keygen := requireBinary(t, "ssh-keygen")
	out, err := exec.Command(keygen, "-y", "-f", path).Output()
	if err != nil {
		t.Fatalf("ssh-keygen -y: %v", err)
	}
	if got, want := strings.Fields(string(out))[1], strings.Fields(created.AuthorizedKey())[1]; got != want {
		t.Errorf("ssh-keygen -y = %s; want %s", got, want)
	}
}

func TestLoadOrCreateSSHKeygenKey(t *testing.T) {
	keygen := requireBinary(t, "ssh-keygen")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"ed25519", []string{"-t", "ed25519"}},
		{"ecdsa", []string{"-t", "ecdsa", "-b", "256"}},
		{"rsa", []string{"-t", "rsa", "-b", "2048"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ca")
			args := append(tc.args, "-N", "", "-C", "ops", "-q", "-f", path)
			if out, err := exec.Command(keygen, args...).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v\n%s", err, out)
			}
			pubFile, err := os.ReadFile(path + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			ca, err := LoadOrCreateSSH(UpstreamCAName, path)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := strings.Fields(ca.AuthorizedKey())[1], strings.Fields(string(pubFile))[1]; got != want {
				t.Errorf("loaded key %s; ssh-keygen made %s", got, want)
			}
			after, err := os.ReadFile(path + ".pub")
			if err != nil || !bytes.Equal(after, pubFile) {
				t.Errorf("the .pub of an existing key was changed: %q, %v", after, err)
			}
		})
	}
}

func TestLoadOrCreateSSHRefusals(t *testing.T) {
	keygen := requireBinary(t, "ssh-keygen")
	for _, tc := range []struct {
		name     string
		mode     os.FileMode
		keygen   []string // extra ssh-keygen arguments
		wantText string
	}{
		{"group readable", 0o640, nil, "permissions 0640"},
		{"other readable", 0o604, nil, "permissions 0604"},
		{"group writable", 0o620, nil, "permissions 0620"},
		{"passphrase", 0o600, []string{"-N", "secret"}, "passphrase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "user_ca")
			args := append([]string{"-t", "ed25519", "-q", "-f", path}, tc.keygen...)
			if len(tc.keygen) == 0 {
				args = append(args, "-N", "")
			}
			if out, err := exec.Command(keygen, args...).CombinedOutput(); err != nil {
				t.Fatalf("ssh-keygen: %v\n%s", err, out)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreateSSH(UserCAName, path)
			if err == nil {
				t.Fatal("LoadOrCreateSSH accepted the key")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("error %q does not name the file %s and %q", err, path, tc.wantText)
			}
		})
	}

	t.Run("not a key", func(t *testing.T) {
		path := writeTestFile(t, t.TempDir(), "user_ca", []byte("hello\n"), 0o600)
		if _, err := LoadOrCreateSSH(UserCAName, path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("LoadOrCreateSSH = %v; want an error naming %s", err, path)
		}
	})
	t.Run("directory", func(t *testing.T) {
		path := t.TempDir()
		if err := os.Chmod(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateSSH(UserCAName, path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("LoadOrCreateSSH = %v; want a refusal of a directory", err)
		}
	})
}

func TestLoadOrCreateHostKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_key")
	created, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(created.PublicKey().Marshal(), loaded.PublicKey().Marshal()) {
		t.Error("second call did not load the key the first one created")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateHostKey(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadOrCreateHostKey = %v; want a refusal naming %s", err, path)
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	set, err := LoadOrCreate(dir, Files{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"user_ca", "user_ca.pub", "upstream_ca", "host_ca", "tls_ca.crt", "tls_ca.key"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	for _, a := range []struct {
		ca   *SSHAuthority
		name string
	}{{set.User, UserCAName}, {set.Upstream, UpstreamCAName}, {set.Host, HostCAName}} {
		if a.ca.Name() != a.name {
			t.Errorf("authority named %q; want %q", a.ca.Name(), a.name)
		}
	}
	again, err := LoadOrCreate(dir, Files{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Upstream.PublicKey().Marshal(), set.Upstream.PublicKey().Marshal()) ||
		!bytes.Equal(again.TLS.CertPEM(), set.TLS.CertPEM()) {
		t.Error("second LoadOrCreate did not load the same keys")
	}

	// A copy of the user CA key used as the upstream CA.
	copyDir := t.TempDir()
	userKey, err := os.ReadFile(filepath.Join(dir, "user_ca"))
	if err != nil {
		t.Fatal(err)
	}
	copied := writeTestFile(t, copyDir, "copy_of_user_ca", userKey, 0o600)

	// An ECDSA key in PKCS#8, readable both as an SSH key and as the TLS CA key.
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	shared := writeTestFile(t, copyDir, "shared.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "shared"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ecKey.Public(), ecKey)
	if err != nil {
		t.Fatal(err)
	}
	sharedCert := writeTestFile(t, copyDir, "shared.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)

	for _, tc := range []struct {
		name     string
		dir      string
		files    Files
		wantText string
	}{
		{"same file twice", dir, Files{UpstreamCA: filepath.Join(dir, "user_ca")}, "bastion-user-ca (" + filepath.Join(dir, "user_ca") + ") and bastion-upstream-ca"},
		{"copied key", dir, Files{HostCA: copied}, "bastion-user-ca (" + filepath.Join(dir, "user_ca") + ") and bastion-host-ca (" + copied + ") share a key"},
		{"SSH and TLS share a key", dir, Files{HostCA: shared, TLSKey: shared, TLSCert: sharedCert}, "bastion-host-ca (" + shared + ") and TLS CA"},
		{"no data directory", "", Files{UserCA: copied}, "no path for upstream_ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := LoadOrCreate(tc.dir, tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("LoadOrCreate = %v, %v; want an error containing %q", set, err, tc.wantText)
			}
		})
	}
}
