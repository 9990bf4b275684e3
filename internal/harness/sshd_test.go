package harness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshClientTimeout bounds one run of the ssh or scp client.
const sshClientTimeout = 20 * time.Second

func TestSSHD(t *testing.T) {
	t.Parallel()
	userCA := newSigner(t)
	otherCA := newSigner(t)
	sshd := NewSSHD(t, SSHDConfig{
		TrustedUserCAKeys: []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(userCA.PublicKey())))},
	})

	dir := t.TempDir()
	knownHosts := filepath.Join(dir, "known_hosts")
	writeFile(t, knownHosts, sshd.KnownHostsLine()+"\n", 0o600)
	if !strings.HasPrefix(sshd.KnownHostsLine(), "[127.0.0.1]:"+strconv.Itoa(sshd.Port)+" ") {
		t.Errorf("KnownHostsLine() = %q", sshd.KnownHostsLine())
	}

	// Each identity is a private key file and, optionally, a certificate.
	goodKey, goodCert := newIdentity(t, dir, "good", userCA, "root")
	plainKey, _ := newIdentity(t, dir, "plain", nil, "")
	foreignKey, foreignCert := newIdentity(t, dir, "foreign", otherCA, "root")
	wrongPrincipalKey, wrongPrincipalCert := newIdentity(t, dir, "wrong-principal", userCA, "alice")

	tests := []struct {
		name       string
		key, cert  string
		wantAccept bool
	}{
		{name: "certificate from trusted CA", key: goodKey, cert: goodCert, wantAccept: true},
		{name: "plain key", key: plainKey},
		{name: "certificate from another CA", key: foreignKey, cert: foreignCert},
		{name: "certificate for another principal", key: wrongPrincipalKey, cert: wrongPrincipalCert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := sshArgs(tt.key, tt.cert, knownHosts)
			args = append(args, "-p", strconv.Itoa(sshd.Port), "root@127.0.0.1", "echo", "ok")
			out, err := runClient(t, "ssh", args...)
			if tt.wantAccept {
				if err != nil {
					t.Fatalf("ssh refused: %v", err)
				}
				if strings.TrimSpace(out) != "ok" {
					t.Errorf("ssh output = %q, want ok", out)
				}
				return
			}
			if err == nil {
				t.Fatalf("ssh accepted %s, want refusal; output %q", tt.name, out)
			}
			if !strings.Contains(out, "Permission denied") {
				t.Errorf("ssh failed, but not with a refusal: %v", err)
			}
		})
	}

	t.Run("scp over sftp", func(t *testing.T) {
		t.Parallel()
		local := filepath.Join(t.TempDir(), "upload.txt")
		writeFile(t, local, "hello over sftp\n", 0o644)
		remote := filepath.Join(sshd.Dir, "uploaded.txt")
		args := append(sshArgs(goodKey, goodCert, knownHosts), "-P", strconv.Itoa(sshd.Port), local, "root@127.0.0.1:"+remote)
		if _, err := runClient(t, "scp", args...); err != nil {
			t.Fatalf("scp: %v", err)
		}
		got, err := os.ReadFile(remote)
		if err != nil || string(got) != "hello over sftp\n" {
			t.Errorf("uploaded file = %q, %v", got, err)
		}
	})

	// Runs after the parallel subtests above have finished.
	t.Cleanup(func() {
		log, err := sshd.Log()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log, `Accepted certificate ID "good"`) {
			t.Errorf("sshd log lacks the accepted certificate:\n%s", log)
		}
	})
}

func TestSSHDHostCertificateAndPrincipals(t *testing.T) {
	t.Parallel()
	hostKey, hostSigner := newKey(t)
	hostCA := newSigner(t)
	userCA := newSigner(t)
	hostCert := &ssh.Certificate{
		Key:             hostSigner.PublicKey(),
		CertType:        ssh.HostCert,
		KeyId:           "host",
		ValidPrincipals: []string{"127.0.0.1"},
		ValidAfter:      uint64(time.Now().Add(-time.Minute).Unix()),
		ValidBefore:     uint64(time.Now().Add(time.Hour).Unix()),
	}
	if err := hostCert.SignCert(rand.Reader, hostCA); err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	sshd := NewSSHD(t, SSHDConfig{
		TrustedUserCAKeys:    []string{strings.TrimSpace(string(ssh.MarshalAuthorizedKey(userCA.PublicKey())))},
		HostKey:              pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}),
		HostCertificate:      ssh.MarshalAuthorizedKey(hostCert),
		AuthorizedPrincipals: map[string][]string{"root": {"ops", "admin"}},
		ExtraConfig:          []string{"MaxAuthTries 3", "Match User nobody", "  PermitTTY no"},
	})
	if !bytes.Equal(sshd.HostPublicKey.Marshal(), hostSigner.PublicKey().Marshal()) {
		t.Errorf("HostPublicKey is not the configured host key")
	}
	config, err := os.ReadFile(filepath.Join(sshd.Dir, "sshd_config"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(config), "MaxAuthTries 3\n") || !strings.HasSuffix(string(config), "Match User nobody\n  PermitTTY no\n") {
		t.Errorf("ExtraConfig not placed first, with Match last:\n%s", config)
	}

	// The client trusts the host CA only, and logs in as root with a
	// certificate for a principal that root's principals file lists.
	dir := t.TempDir()
	knownHosts := filepath.Join(dir, "known_hosts")
	writeFile(t, knownHosts, fmt.Sprintf("@cert-authority [127.0.0.1]:%d %s", sshd.Port, ssh.MarshalAuthorizedKey(hostCA.PublicKey())), 0o600)
	key, cert := newIdentity(t, dir, "ops-cert", userCA, "ops")
	args := append(sshArgs(key, cert, knownHosts), "-p", strconv.Itoa(sshd.Port), "root@127.0.0.1", "echo", "ok")
	out, err := runClient(t, "ssh", args...)
	if err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("ssh with host certificate and principal ops: %q, %v", out, err)
	}
}

// newSigner returns a new ed25519 signer.
func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, signer := newKey(t)
	return signer
}

// newKey returns a new ed25519 key and its signer.
func newKey(t *testing.T) (ed25519.PrivateKey, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, signer
}

// newIdentity writes a new private key to dir/name and, if ca is not nil, a
// user certificate for principal valid from a minute ago to dir/name-cert.pub
// (the certificate ID is name). It returns the two paths.
func newIdentity(t *testing.T, dir, name string, ca ssh.Signer, principal string) (keyPath, certPath string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		t.Fatal(err)
	}
	keyPath = filepath.Join(dir, name)
	writeFile(t, keyPath, string(pem.EncodeToMemory(block)), 0o600)
	if ca == nil {
		return keyPath, ""
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{
		Key:             sshPub,
		Serial:          1,
		CertType:        ssh.UserCert,
		KeyId:           name,
		ValidPrincipals: []string{principal},
		ValidAfter:      uint64(time.Now().Add(-time.Minute).Unix()),
		ValidBefore:     uint64(time.Now().Add(10 * time.Minute).Unix()),
	}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	certPath = keyPath + "-cert.pub"
	writeFile(t, certPath, string(ssh.MarshalAuthorizedKey(cert)), 0o644)
	return keyPath, certPath
}

// sshArgs returns the ssh and scp options that use only key (and cert) and
// trust only knownHosts.
func sshArgs(key, cert, knownHosts string) []string {
	args := []string{"-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"}
	if cert != "" {
		args = append(args, "-o", "CertificateFile="+cert)
	}
	return args
}

// runClient runs a client program and returns its combined output.
func runClient(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), sshClientTimeout)
	defer cancel()
	return Run(exec.CommandContext(ctx, name, args...))
}

func writeFile(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
}
