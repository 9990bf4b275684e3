package ca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestTLS creates a TLS CA in a temporary directory.
func newTestTLS(t *testing.T) (*TLSAuthority, string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	certPath, keyPath := filepath.Join(dir, "tls_ca.crt"), filepath.Join(dir, "tls_ca.key")
	ca, err := LoadOrCreateTLS(certPath, keyPath, TLSCAName)
	if err != nil {
		t.Fatal(err)
	}
	return ca, certPath, keyPath
}

func TestLoadOrCreateTLS(t *testing.T) {
	start := time.Now()
	ca, certPath, keyPath := newTestTLS(t)
	cert := ca.Certificate()
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"ECDSA P-256", ok && pub.Curve == elliptic.P256()},
		{"common name", cert.Subject.CommonName == TLSCAName},
		{"self-signed", cert.CheckSignatureFrom(cert) == nil},
		{"CA", cert.BasicConstraintsValid && cert.IsCA && cert.KeyUsage&x509.KeyUsageCertSign != 0},
		{"leaves only", cert.MaxPathLen == 0 && cert.MaxPathLenZero},
		{"subject key ID", len(cert.SubjectKeyId) > 0},
		{"10 years", cert.NotAfter.Sub(start) > 10*365*24*time.Hour-time.Hour && cert.NotAfter.Sub(start) < 10*366*24*time.Hour},
		{"key mode", fileMode(t, keyPath) == 0o600},
		{"cert mode", fileMode(t, certPath) == 0o644},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Errorf("CA certificate: %+v", cert)
			}
		})
	}

	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" {
		t.Errorf("key file is not PKCS#8 PEM: %q", keyPEM)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(certPEM, ca.CertPEM()) {
		t.Error("CertPEM() differs from the certificate file")
	}

	again, err := LoadOrCreateTLS(certPath, keyPath, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	if !again.Certificate().Equal(cert) {
		t.Error("second call did not load the CA the first one created")
	}
}

func TestLoadOrCreateTLSRefusals(t *testing.T) {
	_, certPath, keyPath := newTestTLS(t)
	_, otherCert, otherKey := newTestTLS(t)
	dir := t.TempDir()
	read := func(path string) []byte {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	openKey := writeTestFile(t, dir, "open.key", read(keyPath), 0o640)

	for _, tc := range []struct {
		name       string
		cert, key  string
		wantInText string
	}{
		{"group-readable key", certPath, openKey, openKey},
		{"certificate without key", certPath, filepath.Join(dir, "missing.key"), "missing.key does not"},
		{"key without certificate", filepath.Join(dir, "missing.crt"), keyPath, "missing.crt does not"},
		{"key of another CA", otherCert, keyPath, "does not match the key"},
		{"certificate as key", certPath, writeTestFile(t, dir, "cert-as.key", read(otherCert), 0o600), "not a private key"},
		{"not PEM", writeTestFile(t, dir, "garbage.crt", []byte("garbage"), 0o644), otherKey, "no PEM"},
		{"no paths", "", "", "paths must be set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := LoadOrCreateTLS(tc.cert, tc.key, TLSCAName)
			if err == nil || !strings.Contains(err.Error(), tc.wantInText) {
				t.Errorf("LoadOrCreateTLS = %v, %v; want an error containing %q", ca, err, tc.wantInText)
			}
		})
	}
}

func TestIssueServer(t *testing.T) {
	ca, _, _ := newTestTLS(t)
	now := time.Now().Truncate(time.Second) // certificates hold whole seconds
	ca.now = func() time.Time { return now }
	names := []string{"localhost", "127.0.0.1", "::1", "db.bastion.test"}
	leaf, err := ca.IssueServer(names, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Leaf.NotBefore.Equal(now.Add(-time.Minute)) || !leaf.Leaf.NotAfter.Equal(now.Add(time.Hour)) {
		t.Errorf("valid %v to %v; want backdated a minute, for an hour", leaf.Leaf.NotBefore, leaf.Leaf.NotAfter)
	}
	if leaf.Leaf.IsCA {
		t.Error("leaf is a CA")
	}

	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.CertPEM()) {
		t.Fatal("CertPEM() is not a PEM certificate")
	}
	for _, tc := range []struct {
		name    string
		host    string
		at      time.Time
		usage   x509.ExtKeyUsage
		wantErr bool
	}{
		{"DNS name", "localhost", now, x509.ExtKeyUsageServerAuth, false},
		{"other DNS name", "DB.bastion.test", now, x509.ExtKeyUsageServerAuth, false},
		{"IPv4", "127.0.0.1", now, x509.ExtKeyUsageServerAuth, false},
		{"IPv6", "::1", now, x509.ExtKeyUsageServerAuth, false},
		{"uncertified name", "evil.test", now, x509.ExtKeyUsageServerAuth, true},
		{"uncertified IP", "127.0.0.2", now, x509.ExtKeyUsageServerAuth, true},
		{"client auth", "localhost", now, x509.ExtKeyUsageClientAuth, true},
		{"expired", "localhost", now.Add(2 * time.Hour), x509.ExtKeyUsageServerAuth, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := leaf.Leaf.Verify(x509.VerifyOptions{
				DNSName:     tc.host,
				Roots:       roots,
				CurrentTime: tc.at,
				KeyUsages:   []x509.ExtKeyUsage{tc.usage},
			})
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Errorf("verify = %v; want error %v", err, tc.wantErr)
			}
		})
	}

	for _, tc := range []struct {
		name     string
		names    []string
		validFor time.Duration
	}{
		{"no names", nil, time.Hour},
		{"empty name", []string{""}, time.Hour},
		{"space", []string{"bad name"}, time.Hour},
		{"wildcard", []string{"*.bastion.test"}, time.Hour},
		{"IPv6 zone", []string{"fe80::1%eth0"}, time.Hour},
		{"zero validity", []string{"localhost"}, 0},
	} {
		t.Run("refuse "+tc.name, func(t *testing.T) {
			if _, err := ca.IssueServer(tc.names, tc.validFor); err == nil || !strings.HasPrefix(err.Error(), "ca: issue TLS server certificate: ") {
				t.Errorf("IssueServer = %v; want a refusal", err)
			}
		})
	}

	t.Run("capped at the CA's expiry", func(t *testing.T) {
		leaf, err := ca.IssueServer([]string{"localhost"}, 100*365*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !leaf.Leaf.NotAfter.Equal(ca.Certificate().NotAfter) {
			t.Errorf("leaf valid until %v; CA until %v", leaf.Leaf.NotAfter, ca.Certificate().NotAfter)
		}
	})
}

// serveTLS accepts TLS connections on loopback with cfg until the test
// ends, writing "hello\n" on each.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { l.Close() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				if err := c.SetDeadline(time.Now().Add(connDeadline)); err != nil {
					t.Error(err)
					return
				}
				if _, err := io.WriteString(c, "hello\n"); err != nil {
					t.Logf("test TLS server: %v", err) // expected in refusal cases
				}
			})
		}
	})
	return l.Addr().String()
}

func TestServerConfig(t *testing.T) {
	ca, certPath, _ := newTestTLS(t)
	addr := serveTLS(t, ca.ServerConfig([]string{"localhost", "127.0.0.1"}))
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	otherCA, _, _ := newTestTLS(t)
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(otherCA.Certificate())

	for _, tc := range []struct {
		name       string
		roots      *x509.CertPool
		serverName string
		maxVersion uint16
		wantErr    bool
	}{
		{"localhost", roots, "localhost", 0, false},
		{"IP address", roots, "127.0.0.1", 0, false},
		{"TLS 1.2", roots, "localhost", tls.VersionTLS12, false},
		{"uncertified name", roots, "db.bastion.test", 0, true},
		{"another CA", otherRoots, "localhost", 0, true},
		{"TLS 1.1", roots, "localhost", tls.VersionTLS11, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialer := &net.Dialer{Timeout: connDeadline}
			conn, err := tls.DialWithDialer(dialer, "tcp", addr, &tls.Config{
				RootCAs:    tc.roots,
				ServerName: tc.serverName,
				MaxVersion: tc.maxVersion,
			})
			if tc.wantErr {
				if err == nil {
					conn.Close()
					t.Fatal("handshake succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			line, err := io.ReadAll(conn)
			if err != nil || string(line) != "hello\n" {
				t.Errorf("read %q, %v", line, err)
			}
		})
	}

	// The real OpenSSL client, as libpq and the mysql client use it.
	t.Run("openssl s_client", func(t *testing.T) {
		openssl := requireBinary(t, "openssl")
		cmd := exec.Command(openssl, "s_client", "-connect", addr, "-CAfile", certPath,
			"-verify_hostname", "localhost", "-verify_return_error", "-brief")
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Verification: OK") {
			t.Errorf("openssl s_client: %v\n%s", err, out)
		}
	})
}

func TestServerConfigRenewal(t *testing.T) {
	ca, _, _ := newTestTLS(t)
	now := time.Now()
	ca.now = func() time.Time { return now }
	cfg := ca.ServerConfig([]string{"localhost"})

	first, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		advance time.Duration
		renewed bool
	}{
		{"cached", time.Hour, false},
		{"still cached", 14 * time.Hour, false},
		{"renewed after two thirds", 2 * time.Hour, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now = now.Add(tc.advance)
			got, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "localhost"})
			if err != nil {
				t.Fatal(err)
			}
			if renewed := got != first; renewed != tc.renewed {
				t.Errorf("renewed = %v; want %v", renewed, tc.renewed)
			}
			if !now.Before(got.Leaf.NotAfter) {
				t.Errorf("serving a leaf that expired at %v", got.Leaf.NotAfter)
			}
		})
	}
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %#x; want TLS 1.2", cfg.MinVersion)
	}
}
