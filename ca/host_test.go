package ca

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// bastionName is the host name Bastion's host certificate is issued for in
// these tests.
const bastionName = "bastion.test"

// testServer runs an SSH server on loopback that presents hostKey and its
// certificate from hostCA, and accepts user certificates from userCA. It
// returns the address.
func testServer(t *testing.T, hostCA, userCA *SSHAuthority, hostKey ssh.Signer) string {
	t.Helper()
	certSigner, cert, err := HostCertSigner(hostCA, hostKey, []string{bastionName, "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certSigner.PublicKey().Marshal(), cert.Marshal()) {
		t.Fatal("the signer does not present the certificate")
	}
	users := &ssh.CertChecker{IsUserAuthority: userCA.IsAuthority}
	cfg := &ssh.ServerConfig{PublicKeyCallback: users.Authenticate}
	cfg.AddHostKey(hostKey)
	cfg.AddHostKey(certSigner)
	return serveSSH(t, cfg)
}

// userCertSigner returns a signer presenting a fresh user certificate from
// userCA for the principal root.
func userCertSigner(t *testing.T, userCA *SSHAuthority, key ssh.Signer) (ssh.Signer, *ssh.Certificate) {
	t.Helper()
	now := time.Now()
	cert, err := userCA.SignUser(UserCertRequest{
		Key:         key.PublicKey(),
		KeyID:       "alice/req-1",
		Serial:      1,
		Principals:  []string{"root"},
		ValidAfter:  now.Add(-time.Minute),
		ValidBefore: now.Add(time.Hour),
		Extensions:  map[string]string{"permit-pty": "", TargetExtension("web01"): ""},
	})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return signer, cert
}

func TestHostCertSigner(t *testing.T) {
	hostCA, err := NewSSHAuthority(HostCAName, testSigner(t, 'h'))
	if err != nil {
		t.Fatal(err)
	}
	userCA, err := NewSSHAuthority(UserCAName, testSigner(t, 'u'))
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := NewSSHAuthority(HostCAName, testSigner(t, 'o'))
	if err != nil {
		t.Fatal(err)
	}
	addr := testServer(t, hostCA, userCA, testSigner(t, 'k'))
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	userSigner, _ := userCertSigner(t, userCA, testSigner(t, 'a'))

	for _, tc := range []struct {
		name    string
		trust   *SSHAuthority
		host    string // the name the client dials
		wantErr bool
	}{
		{"trusted CA, certified name", hostCA, bastionName, false},
		{"trusted CA, second name", hostCA, "localhost", false},
		{"trusted CA, other name", hostCA, "web01", true},
		{"other CA", otherCA, bastionName, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checker := &ssh.CertChecker{
				IsHostAuthority: func(key ssh.PublicKey, _ string) bool { return tc.trust.IsAuthority(key) },
			}
			cfg := &ssh.ClientConfig{
				User:              "root",
				Auth:              []ssh.AuthMethod{ssh.PublicKeys(userSigner)},
				HostKeyCallback:   checker.CheckHostKey,
				HostKeyAlgorithms: []string{ssh.CertAlgoED25519v01},
				Timeout:           connDeadline,
			}
			conn, err := net.DialTimeout("tcp", addr, connDeadline)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			c, chans, reqs, err := ssh.NewClientConn(conn, net.JoinHostPort(tc.host, port), cfg)
			if tc.wantErr {
				if err == nil {
					c.Close()
					t.Fatal("handshake succeeded; want the host certificate refused")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			client := ssh.NewClient(c, chans, reqs)
			defer client.Close()
			session, err := client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer session.Close()
			out, err := session.Output("whoami")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(out), "user=root cmd=whoami\n"; got != want {
				t.Errorf("output %q; want %q", got, want)
			}
		})
	}
}

func TestHostCertSignerCert(t *testing.T) {
	hostCA := testAuthority(t, HostCAName, 'h')
	hostKey := testSigner(t, 'k')
	_, cert, err := HostCertSigner(hostCA, hostKey, []string{bastionName}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if cert.CertType != ssh.HostCert || cert.Serial == 0 || cert.KeyId == "" {
		t.Errorf("type %d, serial %d, key ID %q", cert.CertType, cert.Serial, cert.KeyId)
	}
	if got, want := time.Unix(int64(cert.ValidAfter), 0), testNow.Add(-time.Minute); !got.Equal(want) {
		t.Errorf("valid after %v; want %v (backdated a minute)", got, want)
	}
	if got, want := time.Unix(int64(cert.ValidBefore), 0), testNow.Add(24*time.Hour); !got.Equal(want) {
		t.Errorf("valid before %v; want %v", got, want)
	}
	checker := &ssh.CertChecker{Clock: func() time.Time { return testNow }}
	if err := checker.CheckCert(bastionName, cert); err != nil {
		t.Error(err)
	}

	for _, tc := range []struct {
		name       string
		ca         *SSHAuthority
		key        ssh.Signer
		principals []string
		validFor   time.Duration
	}{
		{"no principals", hostCA, hostKey, nil, time.Hour},
		{"zero validity", hostCA, hostKey, []string{bastionName}, 0},
		{"no CA", nil, hostKey, []string{bastionName}, time.Hour},
		{"no key", hostCA, nil, []string{bastionName}, time.Hour},
		{"CA's own key", hostCA, testSigner(t, 'h'), []string{bastionName}, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := HostCertSigner(tc.ca, tc.key, tc.principals, tc.validFor); err == nil {
				t.Error("HostCertSigner succeeded")
			}
		})
	}
}

// TestOpenSSHClient connects the real OpenSSH client to a server presenting
// a host certificate, trusting the host CA with one @cert-authority line
// and logging in with a user certificate: the whole user-facing path.
func TestOpenSSHClient(t *testing.T) {
	sshBin := requireBinary(t, "ssh")
	hostCA, err := NewSSHAuthority(HostCAName, testSigner(t, 'h'))
	if err != nil {
		t.Fatal(err)
	}
	userCA, err := NewSSHAuthority(UserCAName, testSigner(t, 'u'))
	if err != nil {
		t.Fatal(err)
	}
	addr := testServer(t, hostCA, userCA, testSigner(t, 'k'))
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	userKeyPath := filepath.Join(dir, "id_ed25519")
	userKey, err := LoadOrCreateHostKey(userKeyPath) // any ed25519 key file will do
	if err != nil {
		t.Fatal(err)
	}
	_, userCert := userCertSigner(t, userCA, userKey)
	certPath := writeTestFile(t, dir, "id_ed25519-cert.pub", ssh.MarshalAuthorizedKey(userCert), 0o644)

	for _, tc := range []struct {
		name      string
		knownHost string
		alias     string
		wantErr   bool
	}{
		{"trusted host CA", "@cert-authority " + bastionName + " " + hostCA.AuthorizedKey(), bastionName, false},
		{"host name not certified", "@cert-authority web01 " + hostCA.AuthorizedKey(), "web01", true},
		{"user CA is not the host CA", "@cert-authority " + bastionName + " " + userCA.AuthorizedKey(), bastionName, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			knownHosts := writeTestFile(t, t.TempDir(), "known_hosts", []byte(tc.knownHost+"\n"), 0o644)
			cmd := exec.Command(sshBin,
				"-F", "/dev/null",
				"-o", "BatchMode=yes",
				"-o", "StrictHostKeyChecking=yes",
				"-o", "UserKnownHostsFile="+knownHosts,
				"-o", "GlobalKnownHostsFile=/dev/null",
				"-o", "HostKeyAlias="+tc.alias,
				"-o", "IdentitiesOnly=yes",
				"-o", "IdentityFile="+userKeyPath,
				"-o", "CertificateFile="+certPath,
				"-o", "ConnectTimeout=10",
				"-p", port,
				"root@"+host, "id",
			)
			cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
			out, err := cmd.CombinedOutput()
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ssh succeeded; want the host refused:\n%s", out)
				}
				if !strings.Contains(string(out), "Host key verification failed") {
					t.Errorf("ssh failed for another reason:\n%s", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("ssh: %v\n%s", err, out)
			}
			if got, want := string(out), "user=root cmd=id\n"; got != want {
				t.Errorf("ssh printed %q; want %q", got, want)
			}
		})
	}
}
