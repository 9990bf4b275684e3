package main

import (
	"errors"
	"fmt"
	"io"
	"net"
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

// fwdBastion is a bastion in front of two real sshd targets, for the
// forwarding tests:
//   - web01: accepts LANG, LC_*, TZ and TERM from the client (AcceptEnv);
//   - web03: also listens on this host's non-loopback address, and is
//     configured there, so that a forward to it is to a target's address
//     that is not a loopback one.
//
// The lead role's forwarding is the test's.
type fwdBastion struct {
	*testBastion
	cas          *ca.Set
	web01, web03 *harness.SSHD
	hostIP       string // a non-loopback address of this host
	web03Addr    string // hostIP:web03's port, as configured
}

func startForwardingBastion(t *testing.T, forwarding string) *fwdBastion {
	t.Helper()
	f := &fwdBastion{hostIP: hostAddress(t)}
	const lead = "forwarding: {local: true, agent: true}"
	roles := strings.Replace(defaultRoles, lead, "forwarding: "+forwarding, 1)
	if !strings.Contains(defaultRoles, lead) {
		t.Fatal("defaultRoles no longer gives the lead role forwarding: update startForwardingBastion")
	}
	f.testBastion = startBastionWith(t, options{
		roles: roles,
		targets: func(t *testing.T, cas *ca.Set) string {
			f.cas = cas
			trust := []string{cas.Upstream.AuthorizedKey()}
			f.web01 = harness.NewSSHD(t, harness.SSHDConfig{TrustedUserCAKeys: trust, ExtraConfig: []string{"AcceptEnv LANG LC_* TZ TERM"}})
			f.web03 = harness.NewSSHD(t, harness.SSHDConfig{TrustedUserCAKeys: trust, ExtraConfig: []string{"ListenAddress " + f.hostIP}})
			f.web03Addr = net.JoinHostPort(f.hostIP, fmt.Sprint(f.web03.Port))
			pin := func(s *harness.SSHD) string {
				return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.HostPublicKey)))
			}
			return fmt.Sprintf(`
targets:
  - {name: web01, kind: ssh, address: %q, host_key: %q}
  - {name: web02, kind: ssh, address: "127.0.0.1:1"}
  - {name: web03, kind: ssh, address: %q, host_key: %q}
  - {name: staging, kind: ssh, address: "127.0.0.1:1"}
  - {name: stg, kind: ssh, address: "127.0.0.1:1"}
  - {name: orders, kind: postgres, address: "127.0.0.1:1", database: orders}
  - {name: db-prod, kind: mysql, address: "127.0.0.1:1", database: prod}
  - {name: sandbox1, kind: ssh, address: "127.0.0.1:1", labels: {env: sandbox}}
  - {name: vpn-only, kind: ssh, address: "127.0.0.1:1"}
`, f.web01.Addr, pin(f.web01), f.web03Addr, pin(f.web03))
		},
	})
	return f
}

// hostAddress is an IPv4 address of this host that is not a loopback one:
// forwards to loopback are refused, so an allowed forward needs another.
func hostAddress(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	t.Fatal("this host has no non-loopback IPv4 address; the forwarding tests need one")
	return ""
}

// echoServer listens on addr and echoes each connection until its client
// half-closes it; it returns the bound address.
func echoServer(t *testing.T, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := io.Copy(c, c); err == nil {
					c.(*net.TCPConn).CloseWrite()
				}
			}()
		}
	}()
	return l.Addr().String()
}

// leadCert has bob request web01 as root (the lead role), dave approve,
// and writes bob's certificate; it returns the request and the file.
func (f *fwdBastion) leadCert(t *testing.T) (int64, string) {
	t.Helper()
	r := f.mustRequest("bob", "web01", "--login", "root", "--for", "30m", "--reason", "forwarding")
	f.mustRun("dave", "approve", fmt.Sprint(r.ID))
	path := filepath.Join(f.dir, fmt.Sprintf("bob-%d-cert.pub", r.ID))
	if err := os.WriteFile(path, []byte(f.mustRun("bob", "cert", fmt.Sprint(r.ID))), 0o644); err != nil {
		t.Fatal(err)
	}
	return r.ID, path
}

// stdio runs ssh -W dest through web01 as bob with cert, sending input,
// and returns what came back.
func (f *fwdBastion) stdio(t *testing.T, cert, dest, input string) (string, string, int) {
	t.Helper()
	args := append(f.sshArgs("bob", "-o", "LogLevel=INFO", "-o", "CertificateFile="+cert), "-W", dest, "root@web01@127.0.0.1")
	return runCmd(t, strings.NewReader(input), "ssh", args...)
}

// TestForwardingDestinations: with `local: true`, ssh -W reaches the
// network beyond the target but never Bastion itself (its SSH listener
// through every spelling of loopback), metadata addresses, nor another
// target's SSH server; the target is sent the address Bastion checked.
// Remote forwarding binds only where the role's list says.
func TestForwardingDestinations(t *testing.T) {
	t.Parallel()
	f := startForwardingBastion(t, `{local: true, remote: ["127.0.0.1:*"], agent: true}`)
	_, cert := f.leadCert(t)
	echo := echoServer(t, net.JoinHostPort(f.hostIP, "0"))

	refused := []struct{ dest, why string }{
		{"127.0.0.1:" + f.sshPort, "a loopback address"},
		{"localhost:" + f.sshPort, "localhost resolves to a loopback address"},
		{"127.1:" + f.sshPort, "a loopback address"},
		{"2130706433:" + f.sshPort, "a loopback address"},
		{"0177.0.0.1:" + f.sshPort, "a loopback address"},
		{"0x7f.1:" + f.sshPort, "a loopback address"},
		{"0.0.0.0:" + f.sshPort, "an unspecified address"},
		{"[::ffff:127.0.0.1]:" + f.sshPort, "a loopback address"},
		{"[::1]:" + f.sshPort, "a loopback address"},
		{"169.254.169.254:80", "a link-local address"},
		{"[fd00:ec2::254]:80", "a cloud metadata address"},
		{f.web03Addr, "a target of Bastion"},
		{"1.2.3.4.5:80", "reads one way only"},
	}
	for _, tc := range refused {
		_, stderr, code := f.stdio(t, cert, tc.dest, "")
		if code == 0 || !strings.Contains(stderr, "is refused: ") || !strings.Contains(stderr, tc.why) {
			t.Errorf("-W %s: exit %d, stderr %q; want it refused as %q", tc.dest, code, stderr, tc.why)
		}
	}
	// The network beyond the target is reachable.
	if out, stderr, code := f.stdio(t, cert, echo, "ping\n"); code != 0 || out != "ping\n" {
		t.Fatalf("-W %s: exit %d, stdout %q, stderr %q; want the echo", echo, code, out, stderr)
	}
	// ssh -L, the same channel from a local port: allowed beyond the
	// target, refused to Bastion itself.
	if got := f.localForward(t, cert, echo); got != "ping\n" {
		t.Errorf("-L to %s: the local port gave %q; want the echo", echo, got)
	}
	if got := f.localForward(t, cert, "127.1:"+f.sshPort); got != "" {
		t.Errorf("-L to 127.1:%s (Bastion's own SSH): the local port gave %q; want the connection closed", f.sshPort, got)
	}
	audit := f.mustRun("carol", "audit", "--type", "forward", "--json")
	for _, want := range []string{`"addr":"` + echo + `"`, "forwarding to 127.0.0.1:" + f.sshPort + " is refused: a loopback address",
		"forwarding to " + f.web03Addr + " is refused: a target of Bastion"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %q:\n%s", want, audit)
		}
	}

	// -R: on 0.0.0.0 refused (ssh gives up at once, the command never
	// finishes its sleep); on the listed 127.0.0.1 a connection on the
	// target comes back to the client.
	args := append(f.sshArgs("bob", "-o", "CertificateFile="+cert, "-o", "ExitOnForwardFailure=yes"),
		"-R", "0.0.0.0:"+freePort(t)+":"+echo, "root@web01@127.0.0.1", "sleep 20")
	start := time.Now()
	if _, stderr, code := runCmd(t, nil, "ssh", args...); code != 255 || !strings.Contains(stderr, "remote port forwarding failed") || time.Since(start) > 10*time.Second {
		t.Errorf("-R 0.0.0.0: exit %d, stderr %q after %v; want the forward refused", code, stderr, time.Since(start))
	}
	port := freePort(t)
	probe := fmt.Sprintf(`bash -c 'for i in $(seq 200); do exec 3<>/dev/tcp/127.0.0.1/%s && break; sleep 0.05; done 2>/dev/null; echo pong >&3; head -n1 <&3'`, port)
	args = append(f.sshArgs("bob", "-o", "CertificateFile="+cert, "-o", "ExitOnForwardFailure=yes"),
		"-R", "127.0.0.1:"+port+":"+echo, "root@web01@127.0.0.1", probe)
	if out, stderr, code := runCmd(t, nil, "ssh", args...); code != 0 || out != "pong\n" {
		t.Errorf("-R 127.0.0.1:%s: exit %d, stdout %q, stderr %q; want the echo back through the forward", port, code, out, stderr)
	}
	audit = f.mustRun("carol", "audit", "--type", "forward", "--json")
	if want := "remote forwarding on 0.0.0.0:"; !strings.Contains(audit, want) || !strings.Contains(audit, "is not among the bind addresses your role allows") {
		t.Errorf("the refused -R is not audited with its reason:\n%s", audit)
	}
}

// localForward runs ssh -L from a free local port to dest through web01
// as bob with cert, connects to the port once ssh listens, sends ping and
// returns what came back before the connection closed.
func (f *fwdBastion) localForward(t *testing.T, cert, dest string) string {
	t.Helper()
	port := freePort(t)
	args := append(f.sshArgs("bob", "-o", "CertificateFile="+cert, "-o", "ExitOnForwardFailure=yes"),
		"-N", "-L", "127.0.0.1:"+port+":"+dest, "root@web01@127.0.0.1")
	cmd := exec.Command("ssh", args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var c net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if c, err = net.Dial("tcp", "127.0.0.1:"+port); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh -L did not listen on %s: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond) // polling for ssh's listener; no event to wait on
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return ""
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return ""
	}
	got, _ := io.ReadAll(c)
	return string(got)
}

// freePort is a TCP port free on 127.0.0.1 now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// TestForwardingDestinationList: a role's list allows only what it names
// (a network here), and what Bastion refuses stays refused inside it.
func TestForwardingDestinationList(t *testing.T) {
	t.Parallel()
	// The list names this host's own /24, wherever the host is.
	ip := net.ParseIP(hostAddress(t)).To4()
	network := fmt.Sprintf("%d.%d.%d.0/24", ip[0], ip[1], ip[2])
	f := startForwardingBastion(t, `{local: ["`+network+`:*", "db-admin.invalid:8443"]}`)
	_, cert := f.leadCert(t)
	echo := echoServer(t, net.JoinHostPort(f.hostIP, "0"))
	if out, stderr, code := f.stdio(t, cert, echo, "ping\n"); code != 0 || out != "ping\n" {
		t.Fatalf("-W %s (listed network): exit %d, stdout %q, stderr %q", echo, code, out, stderr)
	}
	for _, tc := range []struct{ dest, why string }{
		{f.web03Addr, "a target of Bastion"},
		{"10.1.2.3:443", "is not among the destinations your role allows"},
		{"db-admin.invalid:8443", "Bastion cannot resolve db-admin.invalid"},
	} {
		if _, stderr, code := f.stdio(t, cert, tc.dest, ""); code == 0 || !strings.Contains(stderr, tc.why) {
			t.Errorf("-W %s: exit %d, stderr %q; want it refused as %q", tc.dest, code, stderr, tc.why)
		}
	}
}

// TestCertificatePermits: certificates Bastion issues permit what the role
// allows; a certificate without permit-port-forwarding or permit-pty is
// refused those even where the role allows them.
func TestCertificatePermits(t *testing.T) {
	t.Parallel()
	f := startForwardingBastion(t, `{local: true, agent: true}`)
	id, certFile := f.leadCert(t)
	cert := readCertFile(t, certFile)
	for ext, want := range map[string]bool{"permit-pty": true, "permit-port-forwarding": true, "permit-agent-forwarding": true,
		"permit-X11-forwarding": false, "permit-user-rc": false} {
		if _, ok := cert.Extensions[ext]; ok != want {
			t.Errorf("bob's certificate (lead: local and agent forwarding) has %s: %v, want %v", ext, ok, want)
		}
	}
	// The same certificate, re-signed by the user CA without the two
	// permits (its serial, key ID and validity unchanged: on record).
	narrowFile := filepath.Join(f.dir, "bob-narrow-cert.pub")
	narrowed := map[string]string{}
	for k, v := range cert.Extensions {
		if k != "permit-port-forwarding" && k != "permit-pty" {
			narrowed[k] = v
		}
	}
	c, err := f.cas.User.SignUser(ca.UserCertRequest{Key: cert.Key, KeyID: cert.KeyId, Serial: cert.Serial, Principals: cert.ValidPrincipals,
		ValidAfter: time.Unix(int64(cert.ValidAfter), 0), ValidBefore: time.Unix(int64(cert.ValidBefore), 0), Extensions: narrowed})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(narrowFile, ssh.MarshalAuthorizedKey(c), 0o644); err != nil {
		t.Fatal(err)
	}
	echo := echoServer(t, net.JoinHostPort(f.hostIP, "0"))
	if out, _, code := f.stdio(t, certFile, echo, "ping\n"); code != 0 || out != "ping\n" {
		t.Fatalf("-W with the issued certificate: exit %d %q", code, out)
	}
	if _, stderr, code := f.stdio(t, narrowFile, echo, "ping\n"); code == 0 || !strings.Contains(stderr, "port forwarding (-L) is not permitted by your certificate (it lacks permit-port-forwarding)") {
		t.Errorf("-W with a certificate lacking permit-port-forwarding: exit %d, stderr %q", code, stderr)
	}
	tty := func(cert string) (string, string) {
		args := append(f.sshArgs("bob", "-o", "LogLevel=INFO", "-o", "CertificateFile="+cert), "-tt", "root@web01@127.0.0.1", "tty")
		out, stderr, code := runCmd(t, nil, "ssh", args...)
		return out, fmt.Sprintf("%s (exit %d)", stderr, code)
	}
	if out, _ := tty(certFile); !strings.HasPrefix(out, "/dev/pts/") {
		t.Errorf("ssh -tt tty with the issued certificate: %q; want a terminal", out)
	}
	// ssh -tt gives up when the terminal it forces is refused.
	if out, stderr := tty(narrowFile); strings.Contains(out, "/dev/") || !strings.Contains(stderr, "PTY allocation request failed") {
		t.Errorf("ssh -tt tty with a certificate lacking permit-pty: stdout %q, stderr %q; want no terminal", out, stderr)
	}
	audit := f.mustRun("carol", "audit", "--type", "forward", "--request", fmt.Sprint(id), "--json")
	if !strings.Contains(audit, "a terminal (pty) is not permitted by your certificate (it lacks permit-pty)") {
		t.Errorf("the refused terminal is not audited:\n%s", audit)
	}
}

// TestRevocationRefusesNewChannel: on a connection that stays open, a
// channel opened right after the grant is revoked is refused, and its
// command never runs on the target.
func TestRevocationRefusesNewChannel(t *testing.T) {
	t.Parallel()
	f := startForwardingBastion(t, `{local: true, agent: true}`)
	id, certFile := f.leadCert(t)
	signer, err := ssh.NewCertSigner(readCertFile(t, certFile), privateKey(t, filepath.Join(f.dir, "keys", "bob")))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", f.sshAddr, &ssh.ClientConfig{User: "root@web01", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := s.Output("echo before"); err != nil || string(out) != "before\n" {
		t.Fatalf("exec before the revocation: %q %v", out, err)
	}
	f.mustRun("dave", "revoke", fmt.Sprint(id), "--reason", "incident over")
	marker := filepath.Join(t.TempDir(), "after-revocation")
	s, err = c.NewSession()
	if err == nil {
		err = s.Run("touch " + marker)
	}
	if err == nil {
		t.Fatal("a session opened after the revocation ran")
	}
	var oce *ssh.OpenChannelError
	if errors.As(err, &oce) && !strings.Contains(oce.Message, "revoked") {
		t.Errorf("the channel was refused with %q; want the revocation named", oce.Message)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the command ran on the target after the revocation")
	}
}

// TestEnvironmentValues: ssh -o SetEnv / SendEnv values that are not what
// the variable holds (a shell function, a time zone naming a file, an
// escape sequence) never reach the target; good ones do.
func TestEnvironmentValues(t *testing.T) {
	t.Parallel()
	f := startForwardingBastion(t, `{local: true, agent: true}`)
	id, cert := f.leadCert(t)
	args := append(f.sshArgs("bob", "-o", "CertificateFile="+cert,
		"-o", `SetEnv=LC_ALL="() { :; }; echo pwned" TZ=:/etc/shadow LANG=C.UTF-8 LC_TIME=C`,
		"-o", "SendEnv=LC_MESSAGES LC_PAPER"),
		"root@web01@127.0.0.1", `echo "[$LC_ALL][$TZ][$LANG][$LC_TIME][$LC_MESSAGES][$LC_PAPER]"`)
	cmd := exec.Command("ssh", args...)
	cmd.Env = append(os.Environ(), "LC_MESSAGES=\x1b]0;pwned\a", "LC_PAPER=en_GB.UTF-8")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh: %v", err)
	}
	if want := "[][][C.UTF-8][C][][en_GB.UTF-8]\n"; string(out) != want {
		t.Errorf("the target saw %q; want %q", out, want)
	}
	audit := f.mustRun("carol", "audit", "--type", "forward", "--request", fmt.Sprint(id), "--json")
	for _, want := range []string{"environment variable LC_ALL looks like an exported shell function",
		"environment variable TZ: a time zone may not name a file", "environment variable LC_MESSAGES holds a control or non-ASCII character"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %q:\n%s", want, audit)
		}
	}
	if strings.Contains(audit, "pwned") {
		t.Errorf("the audit log holds a refused value:\n%s", audit)
	}
}
