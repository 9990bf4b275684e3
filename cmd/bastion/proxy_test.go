package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
)

// proxyBastion is a bastion in front of real sshd targets:
//   - web01: trusts the upstream CA; host key pinned in the config;
//   - web02: the same sshd, but pinned to a wrong host key (a mismatch);
//   - web03: a second sshd with a host certificate from Bastion's host CA, not pinned;
//   - staging: web01 again, for standing access as root.
type proxyBastion struct {
	*testBastion
	web01, web03 *harness.SSHD
}

func startProxyBastion(t *testing.T, extra string) *proxyBastion {
	t.Helper()
	return startProxyBastionWith(t, options{extra: extra})
}

// startProxyBastionWith is startProxyBastion with other roles (o.extra and
// o.roles are used; the targets are set here).
func startProxyBastionWith(t *testing.T, o options) *proxyBastion {
	t.Helper()
	p := &proxyBastion{}
	p.testBastion = startBastionWith(t, options{
		extra: o.extra,
		roles: o.roles,
		targets: func(t *testing.T, cas *ca.Set) string {
			p.web01 = harness.NewSSHD(t, harness.SSHDConfig{TrustedUserCAKeys: []string{cas.Upstream.AuthorizedKey()}})
			hostKey, hostCert := certifiedHostKey(t, cas)
			p.web03 = harness.NewSSHD(t, harness.SSHDConfig{TrustedUserCAKeys: []string{cas.Upstream.AuthorizedKey()},
				HostKey: hostKey, HostCertificate: hostCert})
			pinned := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(p.web01.HostPublicKey)))
			wrong := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(p.web03.HostPublicKey)))
			return fmt.Sprintf(`
targets:
  - {name: web01, kind: ssh, address: %q, host_key: %q}
  - {name: web02, kind: ssh, address: %q, host_key: %q}
  - {name: web03, kind: ssh, address: %q}
  - {name: staging, kind: ssh, address: %q, host_key: %q}
  - {name: stg, kind: ssh, address: %q, host_key: %q}
  - {name: orders, kind: postgres, address: "127.0.0.1:1", database: orders}
  - {name: db-prod, kind: mysql, address: "127.0.0.1:1", database: prod}
  - {name: sandbox1, kind: ssh, address: %q, host_key: %q, labels: {env: sandbox}}
  - {name: vpn-only, kind: ssh, address: "127.0.0.1:1"}
`, p.web01.Addr, pinned, p.web01.Addr, wrong, p.web03.Addr, p.web01.Addr, pinned, p.web01.Addr, pinned, p.web01.Addr, pinned)
		},
	})
	return p
}

// certifiedHostKey makes a host key and a certificate for it from the
// bastion's host CA naming web03.
func certifiedHostKey(t *testing.T, cas *ca.Set) ([]byte, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hostkey")
	writeKey(t, path)
	keyPEM, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := cas.Host.SignHost(ca.HostCertRequest{Key: signer.PublicKey(), KeyID: "web03", Serial: 7,
		Principals: []string{"web03"}, ValidAfter: time.Now().Add(-time.Minute), ValidBefore: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return keyPEM, ssh.MarshalAuthorizedKey(cert)
}

// grant requests targets for alice as root, has bob approve, and writes
// alice's certificate to a file outside keys/ (ssh would otherwise load it
// for every connection). It returns the request id and the file.
func (p *proxyBastion) grant(t *testing.T, forDur string, targets ...string) (int64, string) {
	t.Helper()
	r := p.mustRequest("alice", append(targets, "--login", "root", "--for", forDur, "--reason", "test")...)
	p.mustRun("bob", "approve", fmt.Sprint(r.ID))
	cert := p.mustRun("alice", "cert", fmt.Sprint(r.ID))
	path := filepath.Join(p.dir, fmt.Sprintf("alice-%d-cert.pub", r.ID))
	if err := os.WriteFile(path, []byte(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	return r.ID, path
}

// target runs ssh LOGIN@TARGET@bastion through Bastion as user with a certificate file.
func (p *proxyBastion) target(user, certFile, dest string, command ...string) (string, string, int) {
	p.t.Helper()
	extra := []string{"-o", "LogLevel=INFO"} // channel open failures are reported at INFO
	if certFile != "" {
		extra = append(extra, "-o", "CertificateFile="+certFile)
	}
	args := append(p.sshArgs(user, extra...), dest+"@127.0.0.1")
	return runCmd(p.t, nil, "ssh", append(args, command...)...)
}

func TestProxyExec(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	id, cert := p.grant(t, "30m", "web01")

	out, stderr, code := p.target("alice", cert, "root@web01", "echo out; echo err >&2; exit 7")
	if out != "out\n" || !strings.Contains(stderr, "err\n") || code != 7 {
		t.Fatalf("exec: stdout %q stderr %q exit %d", out, stderr, code)
	}
	// The target saw Bastion's per-session certificate, not alice's.
	log, err := p.web01.Log()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, fmt.Sprintf(`Accepted certificate ID "alice/req-%d/session-`, id)) {
		t.Fatalf("sshd log lacks the per-session certificate:\n%s", log)
	}
	// alice's own certificate does not work on the target directly.
	direct := []string{"-F", "/dev/null", "-p", fmt.Sprint(p.web01.Port), "-i", filepath.Join(p.dir, "keys", "alice"),
		"-o", "CertificateFile=" + cert, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "root@127.0.0.1", "true"}
	if _, stderr, code := runCmd(t, nil, "ssh", direct...); code != 255 || !strings.Contains(stderr, "Permission denied") {
		t.Fatalf("user certificate directly on the target: exit %d %s", code, stderr)
	}
	// The session is in the audit log.
	audit := p.mustRun("carol", "audit", "--request", fmt.Sprint(id), "--json")
	for _, want := range []string{`"type":"session.start"`, `"type":"session.end"`, `"command":"echo out; echo err \u003e\u00262; exit 7"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
}

func TestProxyRefusals(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	revokedID, revokedCert := p.grant(t, "30m", "web01")
	p.mustRun("alice", "revoke", fmt.Sprint(revokedID))
	_, web02Cert := p.grant(t, "30m", "web02")

	tests := []struct {
		name, user, cert, dest string
		stderr                 string
	}{
		{"no certificate", "alice", "", "root@web01", "Permission denied"},
		{"login not in principals", "alice", cert, "deploy@web01", "Permission denied"},
		{"target not in certificate", "alice", cert, "root@web03", "Permission denied"},
		{"revoked request", "alice", revokedCert, "root@web01", "Permission denied"},
		{"someone else's key with alice's certificate", "mallory", cert, "root@web01", "Permission denied"},
		{"unknown target", "alice", cert, "root@nowhere", "Permission denied"},
		{"host key mismatch", "alice", web02Cert, "root@web02", "host key mismatch for web02"},
	}
	t.Run("group", func(t *testing.T) { // parallel subtests end before the audit check below
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				_, stderr, code := p.target(tc.user, tc.cert, tc.dest, "true")
				if code != 255 || !strings.Contains(stderr, tc.stderr) {
					t.Fatalf("exit %d, stderr %q; want 255 and %q", code, stderr, tc.stderr)
				}
			})
		}
	})
	// Refusals are audited with their reason.
	audit := p.mustRun("carol", "audit", "--type", "login", "--json")
	for _, want := range []string{"is revoked", "does not name target web03", "not in the set of valid principals"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks a refusal %q", want)
		}
	}
}

func TestProxyHostCertificateAndStanding(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web03")
	if out, stderr, code := p.target("alice", cert, "root@web03", "echo via-host-cert"); code != 0 || out != "via-host-cert\n" {
		t.Fatalf("web03 (host certificate): exit %d %q %q", code, out, stderr)
	}
	// Standing access: the developer role may use stg as root with alice's
	// registered key and no request; on staging only ubuntu is standing.
	if out, stderr, code := p.target("alice", "", "root@stg", "echo standing-$((1+1))"); code != 0 || out != "standing-2\n" {
		t.Fatalf("standing access to stg: exit %d %q %q", code, out, stderr)
	}
	if _, stderr, code := p.target("alice", "", "root@staging", "true"); code != 255 || !strings.Contains(stderr, "Permission denied") {
		t.Fatalf("root@staging without standing access: exit %d %s", code, stderr)
	}
}

func TestProxyGrantEndsSessions(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	tests := []struct {
		name   string
		dur    string
		end    func(id int64)
		stderr string
	}{
		// Long enough to set the session up on a loaded machine; the test
		// measures the lag after the grant's end, whatever its length.
		{"expiry", "8s", func(int64) {}, "your access to web01 expired"},
		{"revocation", "30m", func(id int64) { p.mustRun("bob", "revoke", fmt.Sprint(id), "--reason", "incident over") }, "revoked by bob: incident over"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id, cert := p.grant(t, tc.dur, "web01")
			cmd, stderr, done := p.startedSession(t, cert)
			ended := time.Now()
			tc.end(id)
			if tc.name == "expiry" {
				g := p.mustRun("alice", "show", fmt.Sprint(id), "--json")
				var r requestJSON
				if err := jsonUnmarshal(g, &r); err != nil {
					t.Fatal(err)
				}
				end, _ := time.Parse(time.RFC3339Nano, r.GrantEnd)
				ended = end
			}
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("session still running 15 s after the grant ended; stderr %q", stderr.String())
			}
			if lag := time.Since(ended); lag > 2*time.Second+500*time.Millisecond {
				t.Errorf("session ended %s after the grant did; want within 2 s", lag)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.stderr)
			}
		})
	}
}

func TestProxyForwardingRefusedByDefault(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	// -W uses a direct-tcpip channel, like -L.
	args := append(p.sshArgs("alice", "-o", "LogLevel=INFO", "-o", "CertificateFile="+cert), "-W", p.web01.Addr, "root@web01@127.0.0.1")
	_, stderr, code := runCmd(t, nil, "ssh", args...)
	if code == 0 || !strings.Contains(stderr, "port forwarding (-L) is not allowed") {
		t.Fatalf("-W: exit %d %q", code, stderr)
	}
	// Agent forwarding is refused: with a real agent on the client, the
	// target still sees no agent socket.
	sock := startAgent(t)
	args = append(p.sshArgs("alice", "-o", "CertificateFile="+cert), "-A", "root@web01@127.0.0.1", "echo agent=${SSH_AUTH_SOCK:-none}")
	cmd := exec.Command("ssh", args...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	out, err := cmd.Output()
	if err != nil || string(out) != "agent=none\n" {
		t.Fatalf("-A: %v %q", err, out)
	}
	audit := p.mustRun("carol", "audit", "--type", "forward", "--json")
	for _, want := range []string{"port forwarding (-L) is not allowed", "agent forwarding is not allowed"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %q:\n%s", want, audit)
		}
	}
}

// TestProxyFileTransfer copies files both ways with scp (SFTP and -O),
// sftp and rsync, and compares checksums.
func TestProxyFileTransfer(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	local := t.TempDir()
	src := filepath.Join(local, "src.bin")
	data := make([]byte, 8<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	remote := t.TempDir() // the target is on this machine
	opts := []string{"-F", "/dev/null", "-P", p.sshPort, "-i", filepath.Join(p.dir, "keys", "alice"),
		"-o", "CertificateFile=" + cert, "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + p.knownHosts,
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"}
	dest := "root@web01@127.0.0.1"
	sshCmd := fmt.Sprintf("ssh -F /dev/null -p %s -i %s -o CertificateFile=%s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o BatchMode=yes",
		p.sshPort, filepath.Join(p.dir, "keys", "alice"), cert, p.knownHosts)
	tests := []struct {
		name string
		up   []string // command copying src to the remote path (%s)
		down []string // command copying the remote path back to a local path (%s, %s)
	}{
		{"scp (sftp protocol)", append([]string{"scp"}, opts...), append([]string{"scp"}, opts...)},
		{"scp -O (legacy protocol)", append([]string{"scp", "-O"}, opts...), append([]string{"scp", "-O"}, opts...)},
		{"rsync", []string{"rsync", "-e", sshCmd}, []string{"rsync", "-e", sshCmd}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rpath := filepath.Join(remote, fmt.Sprintf("f%d", i))
			back := filepath.Join(local, fmt.Sprintf("back%d", i))
			if out, stderr, code := runCmd(t, nil, tc.up[0], append(tc.up[1:], src, dest+":"+rpath)...); code != 0 {
				t.Fatalf("upload: %d %s %s", code, out, stderr)
			}
			if out, stderr, code := runCmd(t, nil, tc.down[0], append(tc.down[1:], dest+":"+rpath, back)...); code != 0 {
				t.Fatalf("download: %d %s %s", code, out, stderr)
			}
			for _, f := range []string{rpath, back} {
				got, err := os.ReadFile(f)
				if err != nil || sha256.Sum256(got) != want {
					t.Fatalf("%s: checksum mismatch (%v)", f, err)
				}
			}
		})
	}
	t.Run("100 MiB with scp", func(t *testing.T) {
		big := filepath.Join(local, "big.bin")
		f, err := os.Create(big)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		chunk := make([]byte, 1<<20)
		for range 100 {
			if _, err := rand.Read(chunk); err != nil {
				t.Fatal(err)
			}
			if _, err := io.MultiWriter(f, h).Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		sum := h.Sum(nil)
		rpath, back := filepath.Join(remote, "big"), filepath.Join(local, "big-back")
		for _, args := range [][]string{{big, dest + ":" + rpath}, {dest + ":" + rpath, back}} {
			if out, stderr, code := runCmd(t, nil, "scp", append(append([]string{}, opts...), args...)...); code != 0 {
				t.Fatalf("scp %v: %d %s %s", args, code, out, stderr)
			}
		}
		for _, f := range []string{rpath, back} {
			if got := fileSHA256(t, f); !bytes.Equal(got, sum) {
				t.Fatalf("%s: checksum mismatch", f)
			}
		}
	})
	t.Run("sftp", func(t *testing.T) {
		rpath := filepath.Join(remote, "sftp")
		back := filepath.Join(local, "sftp-back")
		batch := fmt.Sprintf("put %s %s\nget %s %s\n", src, rpath, rpath, back)
		args := append([]string{"-b", "-"}, opts...)
		if out, stderr, code := runCmd(t, strings.NewReader(batch), "sftp", append(args, dest)...); code != 0 {
			t.Fatalf("sftp: %d %s %s", code, out, stderr)
		}
		got, err := os.ReadFile(back)
		if err != nil || hex.EncodeToString(sha256Of(got)) != hex.EncodeToString(want[:]) {
			t.Fatalf("sftp round trip: checksum mismatch (%v)", err)
		}
	})
	// Each transfer is audited with its operation, path, size and direction.
	audit := p.mustRun("carol", "audit", "--type", "transfer", "--json")
	for _, want := range []string{
		fmt.Sprintf(`"bytes":"%d","direction":"upload","op":"write","path":"%s"`, len(data), filepath.Join(remote, "sftp")),
		fmt.Sprintf(`"bytes":"%d","direction":"download","op":"read","path":"%s"`, len(data), filepath.Join(remote, "sftp")),
		fmt.Sprintf(`"bytes":"%d","direction":"upload","op":"scp-send","path":"%s"`, len(data), filepath.Join(remote, "f1")),
		fmt.Sprintf(`"bytes":"%d","direction":"download","op":"scp-receive","path":"%s"`, len(data), filepath.Join(remote, "f1")),
		fmt.Sprintf(`"bytes":"%d","direction":"upload","op":"write","path":"%s"`, 100<<20, filepath.Join(remote, "big")),
	} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s", want)
		}
	}
}

func fileSHA256(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// TestRefusalsAuditedBounded: a client looping on refused requests writes
// at most ten of them to the audit log one by one; the rest are counted at
// the session's end.
func TestRefusalsAuditedBounded(t *testing.T) {
	t.Parallel()
	p := startProxyBastion(t, "")
	_, certFile := p.grant(t, "30m", "web01")
	keyPEM, err := os.ReadFile(filepath.Join(p.dir, "keys", "alice"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certLine, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(certLine)
	if err != nil {
		t.Fatal(err)
	}
	certSigner, err := ssh.NewCertSigner(pub.(*ssh.Certificate), signer)
	if err != nil {
		t.Fatal(err)
	}
	client, err := ssh.Dial("tcp", p.sshAddr, &ssh.ClientConfig{
		User: "root@web01", Auth: []ssh.AuthMethod{ssh.PublicKeys(certSigner)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // the host key is not what this test checks
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		if _, err := client.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", 10000+i)); err == nil {
			t.Fatal("a forward was allowed")
		}
	}
	client.Close()
	var ends string
	waitFor(t, 10*time.Second, func() bool {
		ends = p.mustRun("carol", "audit", "--type", "session.end", "--json")
		return strings.Contains(ends, `"refused_requests":"15"`)
	})
	forwards := p.mustRun("carol", "audit", "--type", "forward", "--json")
	if n := strings.Count(forwards, "\n"); n != 10 {
		t.Fatalf("%d forward refusals audited one by one, want 10:\n%s", n, forwards)
	}
}
