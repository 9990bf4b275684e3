package ca

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

var update = flag.Bool("update", false, "rewrite golden files")

// aliceRequest is a typical user certificate request, valid for an hour
// from testNow.
func aliceRequest(t testing.TB) UserCertRequest {
	return UserCertRequest{
		Key:         testSigner(t, 'a').PublicKey(),
		KeyID:       "alice/req-42",
		Serial:      42,
		Principals:  []string{"root", "deploy"},
		ValidAfter:  testNow,
		ValidBefore: testNow.Add(time.Hour),
		Extensions: map[string]string{
			"permit-pty":             "",
			TargetExtension("web01"): "",
		},
		CriticalOptions: map[string]string{"source-address": "127.0.0.1/32"},
	}
}

// keygenList writes cert to a file and returns what the real
// `ssh-keygen -L` prints about it, times in UTC, without the first line
// (the file name).
func keygenList(t *testing.T, cert *ssh.Certificate) string {
	t.Helper()
	keygen := requireBinary(t, "ssh-keygen")
	path := filepath.Join(t.TempDir(), "id-cert.pub")
	if err := os.WriteFile(path, ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(keygen, "-L", "-f", path)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -L: %v\n%s", err, out)
	}
	_, rest, _ := strings.Cut(string(out), "\n")
	return rest
}

// trimmedLines returns the lines of s without surrounding white space.
func trimmedLines(s string) []string {
	var lines []string
	for line := range strings.Lines(s) {
		lines = append(lines, strings.TrimSpace(line))
	}
	return lines
}

func TestSignUserKeygen(t *testing.T) {
	ca := testAuthority(t, UserCAName, 'u')
	cert, err := ca.SignUser(aliceRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	out := keygenList(t, cert)
	lines := trimmedLines(out)

	for _, tc := range []struct {
		name string
		want string // a whole line of the output
	}{
		{"type", "Type: ssh-ed25519-cert-v01@openssh.com user certificate"},
		{"key ID", `Key ID: "alice/req-42"`},
		{"serial", "Serial: 42"},
		{"validity", "Valid: from 2025-06-01T12:00:00 to 2025-06-01T13:00:00"},
		{"principal root", "root"},
		{"principal deploy", "deploy"},
		{"source address", "source-address 127.0.0.1/32"},
		{"pty", "permit-pty"},
		{"target", "target-web01@bastionhq.dev UNKNOWN FLAG OPTION"},
		{"signing CA", "Signing CA: ED25519 " + ssh.FingerprintSHA256(ca.PublicKey()) + " (using ssh-ed25519)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, line := range lines {
				if line == tc.want {
					return
				}
			}
			t.Errorf("ssh-keygen -L output has no line %q:\n%s", tc.want, out)
		})
	}

	// The whole listing, as a golden file: keys, clock and nonce are
	// deterministic, so any change to what we sign shows up here.
	golden := filepath.Join("testdata", "user-cert.keygen.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want) {
		t.Errorf("ssh-keygen -L output differs from %s (run with -update to accept):\ngot:\n%s\nwant:\n%s", golden, out, want)
	}
}

func TestSignUserRefusals(t *testing.T) {
	ca := testAuthority(t, UserCAName, 'u')
	someCert, err := ca.SignUser(aliceRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallRSAPub, err := ssh.NewPublicKey(&smallRSA.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		modify    func(*UserCertRequest)
		wantField string
	}{
		{"nil principals", func(r *UserCertRequest) { r.Principals = nil }, "principals"},
		{"empty principals", func(r *UserCertRequest) { r.Principals = []string{} }, "principals"},
		{"empty principal", func(r *UserCertRequest) { r.Principals = []string{"root", ""} }, "principals"},
		{"principal with comma", func(r *UserCertRequest) { r.Principals = []string{"root,admin"} }, "principals"},
		{"principal with space", func(r *UserCertRequest) { r.Principals = []string{"ro ot"} }, "principals"},
		{"repeated principal", func(r *UserCertRequest) { r.Principals = []string{"root", "root"} }, "principals"},
		{"zero serial", func(r *UserCertRequest) { r.Serial = 0 }, "serial"},
		{"empty key ID", func(r *UserCertRequest) { r.KeyID = "" }, "key ID"},
		{"key ID with newline", func(r *UserCertRequest) { r.KeyID = "alice\nroot" }, "key ID"},
		{"valid before equals valid after", func(r *UserCertRequest) { r.ValidBefore = r.ValidAfter }, "valid before"},
		{"valid before before valid after", func(r *UserCertRequest) { r.ValidBefore = r.ValidAfter.Add(-time.Minute) }, "valid before"},
		{"valid before within the same second", func(r *UserCertRequest) { r.ValidBefore = r.ValidAfter.Add(time.Millisecond) }, "valid before"},
		{"valid before in the past", func(r *UserCertRequest) {
			r.ValidAfter = testNow.Add(-2 * time.Hour)
			r.ValidBefore = testNow.Add(-time.Hour)
		}, "valid before"},
		{"valid before now", func(r *UserCertRequest) {
			r.ValidAfter = testNow.Add(-time.Hour)
			r.ValidBefore = testNow
		}, "valid before"},
		{"zero valid after", func(r *UserCertRequest) { r.ValidAfter = time.Time{} }, "valid after"},
		{"no key", func(r *UserCertRequest) { r.Key = nil }, "key"},
		{"key is a certificate", func(r *UserCertRequest) { r.Key = someCert }, "key"},
		{"key is the CA key", func(r *UserCertRequest) { r.Key = ca.PublicKey() }, "key"},
		{"small RSA key", func(r *UserCertRequest) { r.Key = smallRSAPub }, "key"},
		{"unknown critical option", func(r *UserCertRequest) { r.CriticalOptions = map[string]string{"verify-required": ""} }, `critical option "verify-required"`},
		{"source-address not an address", func(r *UserCertRequest) { r.CriticalOptions = map[string]string{"source-address": "bastion"} }, `critical option "source-address"`},
		{"source-address with host bits", func(r *UserCertRequest) { r.CriticalOptions = map[string]string{"source-address": "10.1.2.3/8"} }, `critical option "source-address"`},
		{"source-address empty entry", func(r *UserCertRequest) { r.CriticalOptions = map[string]string{"source-address": "10.0.0.0/8,"} }, `critical option "source-address"`},
		{"empty force-command", func(r *UserCertRequest) { r.CriticalOptions = map[string]string{"force-command": ""} }, `critical option "force-command"`},
		{"unknown extension", func(r *UserCertRequest) { r.Extensions = map[string]string{"permit-everything": ""} }, `extension "permit-everything"`},
		{"bad target name", func(r *UserCertRequest) { r.Extensions = map[string]string{TargetExtension("web 01"): ""} }, `extension "target-web 01@bastionhq.dev"`},
		{"empty target name", func(r *UserCertRequest) { r.Extensions = map[string]string{TargetExtension(""): ""} }, `extension "target-@bastionhq.dev"`},
		{"target with a value", func(r *UserCertRequest) { r.Extensions = map[string]string{TargetExtension("web01"): "yes"} }, `extension "target-web01@bastionhq.dev"`},
		{"flag with a value", func(r *UserCertRequest) { r.Extensions = map[string]string{"permit-pty": "yes"} }, `extension "permit-pty"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := aliceRequest(t)
			tc.modify(&req)
			cert, err := ca.SignUser(req)
			var reqErr *RequestError
			if !errors.As(err, &reqErr) {
				t.Fatalf("SignUser = %v, %v; want a *RequestError", cert, err)
			}
			if reqErr.Field != tc.wantField || reqErr.Cert != "user certificate" {
				t.Errorf("refused %s of %s; want field %s", reqErr.Field, reqErr.Cert, tc.wantField)
			}
			if want := "ca: user certificate: " + tc.wantField + " "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
}

func TestSignUserAccepts(t *testing.T) {
	ca := testAuthority(t, UserCAName, 'u')
	for _, tc := range []struct {
		name   string
		modify func(*UserCertRequest)
	}{
		{"typical", func(*UserCertRequest) {}},
		{"no options or extensions", func(r *UserCertRequest) { r.CriticalOptions, r.Extensions = nil, nil }},
		{"starts later", func(r *UserCertRequest) {
			r.ValidAfter = testNow.Add(time.Hour)
			r.ValidBefore = testNow.Add(2 * time.Hour)
		}},
		{"started earlier", func(r *UserCertRequest) { r.ValidAfter = testNow.Add(-time.Hour) }},
		{"force-command and address list", func(r *UserCertRequest) {
			r.CriticalOptions = map[string]string{"force-command": "true", "source-address": "10.0.0.0/8,192.0.2.1,2001:db8::/32"}
		}},
		{"all OpenSSH flags", func(r *UserCertRequest) {
			r.Extensions = map[string]string{}
			for _, e := range openSSHUserExtensions {
				r.Extensions[e] = ""
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := aliceRequest(t)
			tc.modify(&req)
			cert, err := ca.SignUser(req)
			if err != nil {
				t.Fatal(err)
			}
			if len(cert.Nonce) != 32 || !bytes.Equal(cert.SignatureKey.Marshal(), ca.PublicKey().Marshal()) {
				t.Errorf("nonce %x, signature key %s", cert.Nonce, ssh.FingerprintSHA256(cert.SignatureKey))
			}
		})
	}
}

func TestSignUserNoncesDiffer(t *testing.T) {
	ca, err := NewSSHAuthority(UserCAName, testSigner(t, 'u')) // real randomness
	if err != nil {
		t.Fatal(err)
	}
	req := aliceRequest(t)
	req.ValidAfter, req.ValidBefore = time.Now(), time.Now().Add(time.Hour)
	a, err := ca.SignUser(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ca.SignUser(req)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Nonce, b.Nonce) {
		t.Errorf("two certificates share the nonce %x", a.Nonce)
	}
}

func TestUserCertChecker(t *testing.T) {
	ca := testAuthority(t, UserCAName, 'u')
	other := testAuthority(t, UpstreamCAName, 'o')
	cert, err := ca.SignUser(aliceRequest(t))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		trust     *SSHAuthority
		principal string
		at        time.Time
		wantErr   bool
	}{
		{"principal root", ca, "root", testNow.Add(time.Minute), false},
		{"principal deploy", ca, "deploy", testNow.Add(59 * time.Minute), false},
		{"another principal", ca, "admin", testNow.Add(time.Minute), true},
		{"before valid after", ca, "root", testNow.Add(-time.Second), true},
		{"at valid before", ca, "root", testNow.Add(time.Hour), true},
		{"after expiry", ca, "root", testNow.Add(2 * time.Hour), true},
		{"another CA", other, "root", testNow.Add(time.Minute), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checker := &ssh.CertChecker{
				IsUserAuthority:          tc.trust.IsAuthority,
				SupportedCriticalOptions: []string{"source-address"},
				Clock:                    func() time.Time { return tc.at },
			}
			err := checker.CheckCert(tc.principal, cert)
			if err == nil && !checker.IsUserAuthority(cert.SignatureKey) {
				err = errors.New("signed by an untrusted authority")
			}
			if gotErr := err != nil; gotErr != tc.wantErr {
				t.Errorf("check = %v; want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestSignHost(t *testing.T) {
	ca := testAuthority(t, HostCAName, 'h')
	good := HostCertRequest{
		Key:         testSigner(t, 'k').PublicKey(),
		KeyID:       "web01",
		Serial:      7,
		Principals:  []string{"web01", "web01.internal", "10.0.0.5"},
		ValidAfter:  testNow,
		ValidBefore: testNow.Add(24 * time.Hour),
	}
	cert, err := ca.SignHost(good)
	if err != nil {
		t.Fatal(err)
	}
	if cert.CertType != ssh.HostCert || len(cert.Permissions.CriticalOptions) != 0 || len(cert.Permissions.Extensions) != 0 {
		t.Errorf("host certificate: type %d, options %v, extensions %v", cert.CertType, cert.CriticalOptions, cert.Extensions)
	}
	out := keygenList(t, cert)
	for _, want := range []string{"Type: ssh-ed25519-cert-v01@openssh.com host certificate", `Key ID: "web01"`, "Serial: 7", "web01.internal"} {
		if !strings.Contains(out, want) {
			t.Errorf("ssh-keygen -L output lacks %q:\n%s", want, out)
		}
	}

	for _, tc := range []struct {
		name      string
		modify    func(*HostCertRequest)
		wantField string
	}{
		{"no principals", func(r *HostCertRequest) { r.Principals = nil }, "principals"},
		{"zero serial", func(r *HostCertRequest) { r.Serial = 0 }, "serial"},
		{"expired", func(r *HostCertRequest) {
			r.ValidAfter, r.ValidBefore = testNow.Add(-2*time.Hour), testNow.Add(-time.Hour)
		}, "valid before"},
		{"CA key", func(r *HostCertRequest) { r.Key = ca.PublicKey() }, "key"},
		{"certificate key", func(r *HostCertRequest) { r.Key = cert }, "key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := good
			tc.modify(&req)
			_, err := ca.SignHost(req)
			var reqErr *RequestError
			if !errors.As(err, &reqErr) || reqErr.Field != tc.wantField || reqErr.Cert != "host certificate" {
				t.Errorf("SignHost = %v; want a refusal of the host certificate's %s", err, tc.wantField)
			}
		})
	}
}

// plainSigner hides every method of a signer but those of ssh.Signer.
type plainSigner struct{ ssh.Signer }

func TestRSAAuthority(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := NewSSHAuthority(UserCAName, signer)
	if err != nil {
		t.Fatal(err)
	}
	ca.now = func() time.Time { return testNow }
	cert, err := ca.SignUser(aliceRequest(t))
	if err != nil {
		t.Fatal(err)
	}
	if cert.Signature.Format != ssh.KeyAlgoRSASHA512 {
		t.Errorf("signature format %s; want %s", cert.Signature.Format, ssh.KeyAlgoRSASHA512)
	}
	want := "Signing CA: RSA " + ssh.FingerprintSHA256(ca.PublicKey()) + " (using rsa-sha2-512)"
	if out := keygenList(t, cert); !strings.Contains(out, want) {
		t.Errorf("ssh-keygen -L output lacks %q:\n%s", want, out)
	}

	if _, err := NewSSHAuthority(UserCAName, plainSigner{signer}); err == nil {
		t.Error("NewSSHAuthority accepted an RSA signer that cannot avoid SHA-1")
	}
}

func TestNewSSHAuthorityRefusals(t *testing.T) {
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallSigner, err := ssh.NewSignerFromKey(smallRSA)
	if err != nil {
		t.Fatal(err)
	}
	ca := testAuthority(t, HostCAName, 'h')
	hostKey := testSigner(t, 'k')
	certSigner, _, err := HostCertSigner(ca, hostKey, []string{"bastion"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		caName   string
		signer   ssh.Signer
		wantText string
	}{
		{"empty name", "", testSigner(t, 'u'), "name"},
		{"name with space", "user ca", testSigner(t, 'u'), "name"},
		{"name with newline", "user\nca", testSigner(t, 'u'), "name"},
		{"nil signer", UserCAName, nil, "no signer"},
		{"certificate signer", UserCAName, certSigner, "certificate"},
		{"small RSA", UserCAName, smallSigner, "1024-bit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewSSHAuthority(tc.caName, tc.signer)
			if err == nil || !strings.Contains(err.Error(), tc.wantText) || !strings.HasPrefix(err.Error(), "ca: ") {
				t.Errorf("NewSSHAuthority = %v, %v; want an error about %s", a, err, tc.wantText)
			}
		})
	}
}

func TestAuthorizedKey(t *testing.T) {
	ca := testAuthority(t, UserCAName, 'u')
	line := ca.AuthorizedKey()
	if strings.ContainsAny(line, "\r\n") || !strings.HasPrefix(line, "ssh-ed25519 AAAA") || !strings.HasSuffix(line, " "+UserCAName) {
		t.Errorf("AuthorizedKey() = %q", line)
	}
	pub, comment, _, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil || comment != UserCAName || len(rest) != 0 || !bytes.Equal(pub.Marshal(), ca.PublicKey().Marshal()) {
		t.Errorf("ParseAuthorizedKey(%q) = %v, %q, %q, %v", line, pub, comment, rest, err)
	}
	if ca.Name() != UserCAName {
		t.Errorf("Name() = %q", ca.Name())
	}
}
