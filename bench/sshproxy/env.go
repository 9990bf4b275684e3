package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/internal/server"
)

// bastionStopTimeout bounds Bastion's shutdown (its own grace is 5 s).
const bastionStopTimeout = 20 * time.Second

// probeTimeout bounds one short ssh command (a probe or a `true`).
const probeTimeout = 30 * time.Second

// route is one way of reaching the target.
type route int

const (
	direct route = iota
	jumpHost
	viaBastion
)

var routes = []route{direct, jumpHost, viaBastion}

func (r route) String() string {
	switch r {
	case direct:
		return "direct to sshd"
	case jumpHost:
		return "OpenSSH jump host (ssh -J)"
	default:
		return "Bastion"
	}
}

// bench is the running set-up: the target sshd, the jump host, Bastion, and
// the client configuration that reaches the target each way.
type bench struct {
	dir         string
	sshConfig   string // ssh_config naming the hosts target, jump and bastion
	aliceKey    string // alice's private key file
	target      *harness.SSHD
	jump        *harness.SSHD
	bastionAddr string
	bastionKey  ssh.PublicKey // Bastion's host key

	sshOpts, bastionOpts sshOptions // extra ssh_config lines: every host, Bastion only

	stops []func() error // in reverse order of start
	keep  bool
}

// start brings up the target sshd, the jump host and Bastion in a new temp
// dir. On error everything already started is stopped.
func start(ctx context.Context, o options) (b *bench, err error) {
	dir, err := os.MkdirTemp("", "bastion-bench-sshproxy-")
	if err != nil {
		return nil, err
	}
	b = &bench{dir: dir, keep: o.keep, sshOpts: o.sshOpts, bastionOpts: o.bastionOpt}
	defer func() {
		if err != nil {
			b.stop()
			b = nil
		}
	}()

	// alice's key: registered in Bastion, and certified by a test user CA
	// for the direct and jump-host baselines.
	b.aliceKey = filepath.Join(dir, "alice")
	alicePub, err := harness.WriteKeyPair(b.aliceKey, "")
	if err != nil {
		return b, err
	}
	testCA, err := ca.LoadOrCreateSSH("bench-user-ca", filepath.Join(dir, "bench-user-ca"))
	if err != nil {
		return b, err
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(alicePub))
	if err != nil {
		return b, err
	}
	// The jump host needs permit-port-forwarding (ssh -J opens a
	// direct-tcpip channel); the pty tests need permit-pty.
	cert, err := testCA.SignUser(ca.UserCertRequest{Key: key, KeyID: "bench", Serial: 1, Principals: []string{"root"},
		ValidAfter: time.Now().Add(-time.Minute), ValidBefore: time.Now().Add(48 * time.Hour),
		Extensions: map[string]string{"permit-pty": "", "permit-port-forwarding": ""}})
	if err != nil {
		return b, err
	}
	certFile := filepath.Join(dir, "alice-cert.pub")
	if err := os.WriteFile(certFile, ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		return b, err
	}

	// Bastion's CAs and host key exist before the target starts, so that
	// the target can trust the upstream CA; server.New loads the same files.
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return b, err
	}
	cas, err := ca.LoadOrCreate(filepath.Join(dataDir, "ca"), ca.Files{})
	if err != nil {
		return b, err
	}
	hostKey, err := ca.LoadOrCreateHostKey(filepath.Join(dataDir, "ssh_host_ed25519_key"))
	if err != nil {
		return b, err
	}
	b.bastionKey = hostKey.PublicKey()

	// The target may hold thousands of sessions at once (the idle test):
	// MaxStartups keeps it from refusing a ramp-up.
	limits := []string{"MaxStartups 2000", "MaxSessions 100"}
	b.target, err = harness.StartSSHD(ctx, harness.SSHDConfig{
		TrustedUserCAKeys: []string{cas.Upstream.AuthorizedKey(), testCA.AuthorizedKey()}, ExtraConfig: limits})
	if err != nil {
		return b, err
	}
	b.stops = append(b.stops, b.target.Stop)
	b.jump, err = harness.StartSSHD(ctx, harness.SSHDConfig{TrustedUserCAKeys: []string{testCA.AuthorizedKey()}, ExtraConfig: limits})
	if err != nil {
		return b, err
	}
	b.stops = append(b.stops, b.jump.Stop)

	if err := b.startBastion(ctx, dataDir, alicePub); err != nil {
		return b, err
	}
	return b, b.writeClientConfig(certFile)
}

// startBastion runs Bastion in this process on a free loopback port.
func (b *bench) startBastion(ctx context.Context, dataDir, alicePub string) error {
	cfgYAML := fmt.Sprintf(`data_dir: %s
listen: {ssh: "127.0.0.1:0"}
# One user opens every session of the idle benchmark (1,000): over the
# default cap of 256 connections per user.
server: {limits: {connections_per_user: 2000}}
users:
  - {name: alice, roles: [developer], keys: [%q]}
targets:
  - {name: web01, kind: ssh, address: %q, host_key: %q}
roles:
  developer:
    standing:
      - {targets: [web01], logins: [root]}
`, dataDir, alicePub, b.target.Addr, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(b.target.HostPublicKey))))
	cfgPath := filepath.Join(b.dir, "bastion.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o600); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	// Bastion logs as in production (JSON, info), to a file.
	logFile, err := os.Create(filepath.Join(b.dir, "bastion.log"))
	if err != nil {
		return err
	}
	bst, err := server.New(ctx, cfg, slog.New(slog.NewJSONHandler(logFile, nil)))
	if err != nil {
		logFile.Close()
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		bst.Close()
		logFile.Close()
		return err
	}
	b.bastionAddr = l.Addr().String()
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bst.Run(runCtx, &server.Listeners{SSH: l}) }()
	b.stops = append(b.stops, func() error {
		defer logFile.Close()
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(bastionStopTimeout):
			return errors.New("bastion did not stop in time")
		}
	})
	return nil
}

// writeClientConfig writes ssh_config and known_hosts. Options go in the
// file rather than on the command line because ssh -J passes -F, not -o or
// -i, to the ssh it runs for the jump host.
func (b *bench) writeClientConfig(certFile string) error {
	_, bport, _ := net.SplitHostPort(b.bastionAddr)
	knownHosts := filepath.Join(b.dir, "known_hosts")
	lines := []string{
		b.target.KnownHostsLine(),
		b.jump.KnownHostsLine(),
		knownhosts.Line([]string{knownhosts.Normalize(b.bastionAddr)}, b.bastionKey),
	}
	if err := os.WriteFile(knownHosts, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`Host target
  HostName 127.0.0.1
  Port %d
  User root
  CertificateFile %s
Host jump
  HostName 127.0.0.1
  Port %d
  User root
  CertificateFile %s
Host bastion
  HostName 127.0.0.1
  Port %s
%sHost *
  IdentityFile %s
  IdentitiesOnly yes
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  UpdateHostKeys no
  BatchMode yes
  LogLevel ERROR
  ControlMaster no
  ControlPath none
%s`, b.target.Port, certFile, b.jump.Port, certFile, bport, b.bastionOpts.lines(), b.aliceKey, knownHosts, b.sshOpts.lines())
	b.sshConfig = filepath.Join(b.dir, "ssh_config")
	return os.WriteFile(b.sshConfig, []byte(cfg), 0o644)
}

// sshArgs returns ssh's arguments to run command on the target by r, with
// extra options before the destination.
func (b *bench) sshArgs(r route, extra []string, command ...string) []string {
	args := append([]string{"-F", b.sshConfig}, extra...)
	switch r {
	case direct:
		args = append(args, "target")
	case jumpHost:
		args = append(args, "-J", "jump", "target")
	case viaBastion:
		args = append(args, "root@web01@bastion")
	}
	return append(args, command...)
}

// display is the command line as printed in the report.
func (b *bench) display(r route, extra []string, command string) string {
	args := b.sshArgs(r, extra)
	args[1] = "ssh_config"
	return "ssh " + strings.Join(args, " ") + " '" + command + "'"
}

// sshRun runs ssh … command by r and returns its combined output.
func (b *bench) sshRun(ctx context.Context, r route, extra []string, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh", b.sshArgs(r, extra, command)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ssh %s (%s): %v: %s", command, r, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

var (
	kexLine    = regexp.MustCompile(`kex: algorithm: (\S+)`)
	cipherLine = regexp.MustCompile(`kex: client->server cipher: (\S+) MAC: (\S+)`)
)

// printCiphers checks that every route works and reports the key exchange
// and the cipher the OpenSSH client negotiated on each of its connections.
func (b *bench) printCiphers(ctx context.Context) error {
	fmt.Println("Key exchange, cipher and MAC the OpenSSH client negotiated (client → server; `ssh -v`):")
	fmt.Println()
	for _, r := range routes {
		out, err := b.sshRun(ctx, r, []string{"-v"}, "true")
		if err != nil {
			return err
		}
		kex := kexLine.FindAllStringSubmatch(out, -1)
		var legs []string
		for i, m := range cipherLine.FindAllStringSubmatch(out, -1) {
			leg := m[1] + " / " + m[2]
			if i < len(kex) {
				leg = kex[i][1] + ", " + leg
			}
			legs = append(legs, leg)
		}
		note := ""
		switch r {
		case jumpHost:
			note = " (to the jump host, then end to end to the target inside it)"
		case viaBastion:
			note = " (to Bastion; Bastion → target is x/crypto/ssh's first choices the target supports: curve25519-sha256 with OpenSSH 9.2, aes128-gcm@openssh.com)"
		}
		fmt.Printf("- %s: %s%s\n", r, strings.Join(legs, "; "), note)
	}
	fmt.Println()
	return nil
}

// stop stops Bastion, then the sshds, then removes the temp dir.
func (b *bench) stop() {
	for i := len(b.stops) - 1; i >= 0; i-- {
		if err := b.stops[i](); err != nil {
			fmt.Fprintln(os.Stderr, "sshproxy: stop:", err)
		}
	}
	b.stops = nil
	if b.keep {
		fmt.Fprintln(os.Stderr, "sshproxy: kept", b.dir)
		return
	}
	if err := os.RemoveAll(b.dir); err != nil {
		fmt.Fprintln(os.Stderr, "sshproxy:", err)
	}
}
