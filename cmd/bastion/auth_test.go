package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// The authentication tests: certificates that obey the limits Bastion gave
// them, keys that stop working when removed, no SHA-1, guessing slowed,
// refusals explained to the certificate's holder only, and no refusal
// event for the plain key OpenSSH offers before its certificate.

// privateKey reads an OpenSSH private key file.
func privateKey(t *testing.T, path string) ssh.Signer {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// readCertFile reads a certificate file.
func readCertFile(t *testing.T, path string) *ssh.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := pub.(*ssh.Certificate)
	if !ok {
		t.Fatalf("%s holds a %s, not a certificate", path, pub.Type())
	}
	return c
}

// resign writes a copy of cert changed by edit and signed by signer (with
// Bastion's user CA key: what a holder of a stolen CA key could make) to a
// new file, and returns its path.
func resign(t *testing.T, cert *ssh.Certificate, signer ssh.Signer, edit func(c *ssh.Certificate)) string {
	t.Helper()
	c := *cert
	c.ValidPrincipals = slices.Clone(cert.ValidPrincipals)
	c.CriticalOptions = maps.Clone(cert.CriticalOptions)
	c.Extensions = maps.Clone(cert.Extensions)
	if edit != nil {
		edit(&c)
	}
	if err := c.SignCert(rand.Reader, signer); err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "cert-*.pub")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(ssh.MarshalAuthorizedKey(&c)); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// refusedLogins is the refused login events of the audit log, as carol
// sees them.
func (b *testBastion) refusedLogins() []string {
	b.t.Helper()
	var out []string
	for _, l := range strings.Split(b.mustRun("carol", "audit", "--type", "login", "--json"), "\n") {
		if strings.Contains(l, `"outcome":"refused"`) {
			out = append(out, l)
		}
	}
	return out
}

// TestAuthCertificateLimits: a certificate signed with Bastion's own user
// CA key for a serial on record is refused when its validity window is not
// the one Bastion issued (longer, or forever), or when its source-address
// option holds a malformed entry among good ones.
func TestAuthCertificateLimits(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, certFile := p.grant(t, "30m", "web01")
	cert := readCertFile(t, certFile)
	userCA := privateKey(t, filepath.Join(p.dir, "data", "ca", "user_ca"))

	// The test's re-signing itself is sound: the same certificate, signed
	// again, works.
	same := resign(t, cert, userCA, nil)
	if out, stderr, code := p.target("alice", same, "root@web01", "echo re-signed"); code != 0 || out != "re-signed\n" {
		t.Fatalf("the issued certificate, signed again: exit %d %q %q", code, out, stderr)
	}
	tests := []struct {
		name    string
		edit    func(c *ssh.Certificate)
		banner  string // what the client is told; "" for nothing
		audited string
	}{
		{"valid forever", func(c *ssh.Certificate) { c.ValidBefore = ssh.CertTimeInfinity }, "", "outside what Bastion issued"},
		{"valid an hour longer than issued", func(c *ssh.Certificate) { c.ValidBefore += 3600 }, "", "outside what Bastion issued"},
		{"valid from before it was issued", func(c *ssh.Certificate) { c.ValidAfter = 0 }, "", "outside what Bastion issued"},
		{"source-address with a malformed entry among good ones", func(c *ssh.Certificate) {
			c.CriticalOptions = map[string]string{"source-address": "127.0.0.1,127.0.0.0/33,0.0.0.0/0"}
		}, "source-address option is malformed", `entry \"127.0.0.0/33\"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := p.target("alice", resign(t, cert, userCA, tc.edit), "root@web01", "true")
			if code != 255 || !strings.Contains(stderr, "Permission denied") {
				t.Fatalf("exit %d, stderr %q; want 255 and Permission denied", code, stderr)
			}
			if told := strings.Contains(stderr, "bastion:"); told != (tc.banner != "") || !strings.Contains(stderr, tc.banner) {
				t.Errorf("stderr %q; want a banner saying %q (none if empty)", stderr, tc.banner)
			}
			if refused := strings.Join(p.refusedLogins(), "\n"); !strings.Contains(refused, tc.audited) {
				t.Errorf("refused logins lack %q:\n%s", tc.audited, refused)
			}
		})
	}
}

// TestAuthBanners: the holder of a certificate Bastion issued is told why
// it is refused; an unknown key and a certificate from another CA get the
// bare refusal.
func TestAuthBanners(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	revokedID, revoked := p.grant(t, "30m", "web01")
	p.mustRun("alice", "revoke", fmt.Sprint(revokedID), "--reason", "done early")
	_, web01 := p.grant(t, "30m", "web01")
	pending := p.mustRequest("alice", "web02", "--login", "root", "--for", "1h", "--reason", "pending")
	expiredID, expired := p.grant(t, "4s", "web01")
	waitFor(t, 15*time.Second, func() bool {
		out, _, _ := p.ssh("alice", "show", fmt.Sprint(expiredID), "--json")
		return strings.Contains(out, `"state":"expired"`)
	})
	foreignCA := privateKey(t, filepath.Join(p.dir, "keys", "erin")) // any key that is not Bastion's CA
	foreign := resign(t, readCertFile(t, web01), foreignCA, nil)

	tests := []struct {
		name, user, cert, dest string
		banner                 string // "" for none
	}{
		{"revoked grant", "alice", revoked, "root@web01", fmt.Sprintf("bastion: request %d is revoked by alice: done early", revokedID)},
		{"target not in the certificate", "alice", web01, "root@web03", "bastion: certificate does not name target web03"},
		{"expired certificate", "alice", expired, "root@web01", fmt.Sprintf("bastion: certificate for request %d expired at ", expiredID)},
		{"login not in the certificate", "alice", web01, "deploy@web01", `bastion: certificate refused: ssh: principal "deploy" not in the set of valid principals`},
		{"unknown target, no certificate", "mallory", "", "root@nowhere", ""},
		{"certificate from another CA", "alice", foreign, "root@web01", ""},
		{"plain key without standing access", "alice", "", "root@web01", ""},
		{"plain key, request pending", "alice", "", "root@web02",
			fmt.Sprintf("bastion: no standing access to web02; request %d for root@web02 is pending approval", pending.ID)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := p.target(tc.user, tc.cert, tc.dest, "true")
			if code != 255 || !strings.Contains(stderr, "Permission denied") {
				t.Fatalf("exit %d, stderr %q; want 255 and Permission denied", code, stderr)
			}
			if tc.banner == "" && strings.Contains(stderr, "bastion:") {
				t.Errorf("told an anonymous client something: %q", stderr)
			}
			if !strings.Contains(stderr, tc.banner) {
				t.Errorf("stderr %q lacks the banner %q", stderr, tc.banner)
			}
		})
	}
}

// TestAuthNoSpuriousRefusal: with the certificate saved next to the key
// (`cert 42 > ~/.ssh/id_ed25519-cert.pub`), OpenSSH offers alice's plain
// key before her certificate; a login that then succeeds with the
// certificate leaves no refused login in the audit log. The plain key
// alone is refused once.
func TestAuthNoSpuriousRefusal(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	home := t.TempDir()
	for from, to := range map[string]string{filepath.Join(p.dir, "keys", "alice"): "id_ed25519", cert: "id_ed25519-cert.pub"} {
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, to), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := len(p.refusedLogins())
	// -v shows which key the client offered first.
	args := append(p.sshArgs("alice", "-v", "-i", filepath.Join(home, "id_ed25519")), "root@web01@127.0.0.1", "echo in")
	out, stderr, code := runCmd(t, nil, "ssh", args...)
	if code != 0 || out != "in\n" {
		t.Fatalf("certificate login: exit %d %q\n%s", code, out, stderr)
	}
	plain := strings.Index(stderr, "Offering public key: "+filepath.Join(home, "id_ed25519")+" ED25519 ")
	certified := strings.Index(stderr, "Offering public key: "+filepath.Join(home, "id_ed25519")+" ED25519-CERT ")
	if plain < 0 || certified < 0 || plain > certified {
		t.Fatalf("the client did not offer the plain key, then the certificate; the test needs it to:\n%s", stderr)
	}
	if refused := p.refusedLogins(); len(refused) != before {
		t.Fatalf("a successful certificate login left refused logins:\n%s", strings.Join(refused[before:], "\n"))
	}
	if _, _, code := p.target("alice", "", "root@web01", "true"); code != 255 {
		t.Fatalf("the plain key alone: exit %d; want 255", code)
	}
	waitFor(t, 10*time.Second, func() bool { return len(p.refusedLogins()) > before })
	refused := p.refusedLogins()[before:]
	if len(refused) != 1 || !strings.Contains(refused[0], "no standing access") {
		t.Fatalf("refused logins of the plain key alone:\n%s\nwant one, for no standing access", strings.Join(refused, "\n"))
	}
}

// replaceInConfig rewrites the bastion's config with old replaced by new
// and has it reload its users' keys.
func (b *testBastion) replaceInConfig(old, new string) {
	b.t.Helper()
	data, err := os.ReadFile(b.configPath)
	if err != nil {
		b.t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		b.t.Fatalf("config lacks %q", old)
	}
	if err := os.WriteFile(b.configPath, []byte(strings.Replace(string(data), old, new, 1)), 0o600); err != nil {
		b.t.Fatal(err)
	}
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		b.t.Fatal(err)
	}
}

// pubLine is the authorized_keys line of a private key file.
func pubLine(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(privateKey(t, path).PublicKey())))
}

// startedSession runs a long command on web01 as alice with the
// certificate file cert, through the real ssh, and returns once it runs on
// the target: the ssh process, its stderr (written by os/exec while the
// test reads it), and the channel its exit comes on.
func (p *proxyBastion) startedSession(t *testing.T, cert string) (*exec.Cmd, *syncBuffer, <-chan error) {
	t.Helper()
	args := append(p.sshArgs("alice", "-o", "CertificateFile="+cert), "root@web01@127.0.0.1", "echo started; sleep 60")
	cmd := exec.Command("ssh", args...)
	stderr := &syncBuffer{}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	buf := make([]byte, 8)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "started\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("session did not start: %q %v %s", buf, err, stderr.String())
	}
	go func() { done <- cmd.Wait() }()
	return cmd, stderr, done
}

// TestAuthKeyRemovalEndsSessions: removing alice's key from the
// configuration (and kill -HUP) ends her live session that used it, and
// her certificate for it stops working.
func TestAuthKeyRemovalEndsSessions(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	cmd, stderr, done := p.startedSession(t, cert)
	// And a self-service command that blocks: waiting for a decision.
	pending := p.mustRequest("alice", "web02", "--login", "root", "--for", "1h", "--reason", "pending")
	logins := strings.Count(p.logs.String(), `"msg":"login"`)
	waiting := exec.Command("ssh", append(p.sshArgs("alice"), "alice@127.0.0.1", "wait", fmt.Sprint(pending.ID))...)
	if err := waiting.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- waiting.Wait() }()
	waitFor(t, 10*time.Second, func() bool { return strings.Count(p.logs.String(), `"msg":"login"`) > logins })

	newKey := writeKey(t, filepath.Join(t.TempDir(), "alice-new"))
	p.replaceInConfig(pubLine(t, filepath.Join(p.dir, "keys", "alice")), newKey)
	for what, ch := range map[string]<-chan error{"target session": done, "self-service wait": waited} {
		select {
		case <-ch:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			_ = waiting.Process.Kill()
			t.Fatalf("%s still running 15 s after alice's key was removed; stderr %q", what, stderr.String())
		}
	}
	if !strings.Contains(stderr.String(), "is no longer registered to alice") {
		t.Errorf("stderr %q lacks why the session ended", stderr.String())
	}
	if _, stderr, code := p.target("alice", cert, "root@web01", "true"); code != 255 || !strings.Contains(stderr, "Permission denied") {
		t.Fatalf("the certificate of a removed key: exit %d %q; want 255", code, stderr)
	}
	audit := p.mustRun("carol", "audit", "--json")
	for _, want := range []string{`"type":"config.reload"`, "which is not registered to any user"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
}

// TestAuthRSAKeys: an RSA key under 2048 bits is refused at load (and a
// reload that adds one changes nothing); a 2048-bit key added by a reload
// works with SHA-2 signatures and is refused with ssh-rsa (SHA-1).
func TestAuthRSAKeys(t *testing.T) {
	t.Parallel()
	b := startBastion(t, "")
	dir := t.TempDir()
	for _, bits := range []string{"1024", "2048"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "rsa", "-b", bits, "-N", "", "-f", filepath.Join(dir, "rsa"+bits)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, out)
		}
	}
	aliceKey := pubLine(t, filepath.Join(b.dir, "keys", "alice"))
	small := pubLine(t, filepath.Join(dir, "rsa1024"))
	rsaArgs := func(extra ...string) []string {
		args := append(extra, "-F", "/dev/null", "-p", b.sshPort, "-i", filepath.Join(dir, "rsa2048"), "-o", "IdentitiesOnly=yes",
			"-o", "UserKnownHostsFile="+b.knownHosts, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "alice@127.0.0.1", "whoami")
		return args
	}

	b.replaceInConfig(aliceKey, aliceKey+`", "`+small)
	waitFor(t, 10*time.Second, func() bool { return strings.Contains(b.logs.String(), "reload of the users' keys failed") })
	if !strings.Contains(b.logs.String(), "user alice's key SHA256:") || !strings.Contains(b.logs.String(), "1024-bit RSA key") {
		t.Errorf("the refused reload's log does not name alice and the key:\n%s", b.logs.String())
	}
	if _, stderr, code := b.local("ca"); code != 2 || !strings.Contains(stderr, "user alice's key") {
		t.Errorf("loading the config with a 1024-bit key: exit %d %q; want 2 naming alice", code, stderr)
	}
	b.replaceInConfig(small, pubLine(t, filepath.Join(dir, "rsa2048")))
	waitFor(t, 10*time.Second, func() bool {
		_, _, code := runCmd(t, nil, "ssh", rsaArgs()...)
		return code == 0
	})
	_, stderr, code := runCmd(t, nil, "ssh", rsaArgs("-o", "PubkeyAcceptedAlgorithms=ssh-rsa")...)
	if code != 255 || !strings.Contains(stderr, "Permission denied") {
		t.Fatalf("an ssh-rsa (SHA-1) signature: exit %d %q; want 255 and Permission denied", code, stderr)
	}
}

// TestAuthThrottled: past server.limits.auth_failures_per_source a
// source's failing logins are slowed, doubling up to auth_max_delay, and
// audited as one burst; alice from another address is not slowed.
func TestAuthThrottled(t *testing.T) {
	t.Parallel()
	b := startBastionWith(t, options{server: "limits: {auth_failures_per_source: 3, auth_max_delay: 2s}"})
	guess := func() time.Duration {
		start := time.Now()
		args := append(b.sshArgs("mallory"), "alice@127.0.0.1", "whoami")
		if _, _, code := runCmd(t, nil, "ssh", args...); code != 255 {
			t.Fatalf("mallory's key as alice: exit %d", code)
		}
		return time.Since(start)
	}
	var last time.Duration
	for range 7 { // 3 free, then 250 ms, 500 ms, 1 s, 2 s
		last = guess()
	}
	if last < 2*time.Second {
		t.Fatalf("the 7th failing login in a row took %s; want at least 2s", last)
	}
	start := time.Now()
	args := append(b.sshArgs("alice", "-b", "127.0.0.2"), "alice@127.0.0.1", "whoami")
	if out, stderr, code := runCmd(t, nil, "ssh", args...); code != 0 || !strings.Contains(out, "alice") {
		t.Fatalf("alice from 127.0.0.2: exit %d %q %q", code, out, stderr)
	}
	if took := time.Since(start); took >= 2*time.Second {
		t.Errorf("alice from another address took %s", took)
	}
	events := strings.TrimSpace(b.mustRun("carol", "audit", "--type", "login.throttle", "--json"))
	if n := len(strings.Split(events, "\n")); events == "" || n != 1 || !strings.Contains(events, "over the limit of 3 a minute") {
		t.Fatalf("throttle events:\n%s\nwant one for the burst", events)
	}
}
