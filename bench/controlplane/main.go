// Command controlplane measures the self-service control plane with the real
// OpenSSH client, side by side in one run: a self-service command through
// Bastion (connect, authenticate, run, exit) against the same client running
// `true` on a real sshd, and the full request → approve → cert flow.
//
//	go run ./bench/controlplane [-n 50]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/internal/server"
)

func main() {
	n := flag.Int("n", 50, "iterations per measurement")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "controlplane:", err)
		os.Exit(1)
	}
}

func run(n int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bastion-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// Keys: alice and bob for Bastion; a test CA and certificate for sshd.
	alicePub, err := harness.WriteKeyPair(filepath.Join(dir, "alice"), "")
	if err != nil {
		return err
	}
	bobPub, err := harness.WriteKeyPair(filepath.Join(dir, "bob"), "")
	if err != nil {
		return err
	}
	testCA, err := ca.LoadOrCreateSSH("bench-ca", filepath.Join(dir, "bench-ca"))
	if err != nil {
		return err
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(alicePub))
	if err != nil {
		return err
	}
	cert, err := testCA.SignUser(ca.UserCertRequest{Key: key, KeyID: "bench", Serial: 1, Principals: []string{"root"},
		ValidAfter: time.Now().Add(-time.Minute), ValidBefore: time.Now().Add(time.Hour)})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "alice-cert.pub"), ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		return err
	}
	sshd, err := harness.StartSSHD(ctx, harness.SSHDConfig{TrustedUserCAKeys: []string{testCA.AuthorizedKey()}})
	if err != nil {
		return err
	}
	defer sshd.Stop()

	cfgYAML := fmt.Sprintf(`data_dir: %s/data
listen: {ssh: "127.0.0.1:0"}
users:
  - {name: alice, roles: [developer], keys: [%q]}
  - {name: bob, roles: [lead], keys: [%q]}
targets:
  - {name: web01, kind: ssh, address: %q}
roles:
  developer:
    request:
      - {targets: [web01], logins: [root], approvers: [lead]}
  lead: {}
`, dir, alicePub, bobPub, sshd.Addr)
	cfgPath := filepath.Join(dir, "bastion.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o600); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	b, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx, &server.Listeners{SSH: l}) }()
	defer func() { stop(); <-done }()
	bport := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)

	client := func(port, keyName string, extra ...string) []string {
		return append([]string{"-F", "/dev/null", "-p", port, "-i", filepath.Join(dir, keyName),
			"-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
			"-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}, extra...)
	}
	direct := client(fmt.Sprint(sshd.Port), "alice", "-o", "CertificateFile="+filepath.Join(dir, "alice-cert.pub"), "root@127.0.0.1", "true")
	whoami := client(bport, "alice", "alice@127.0.0.1", "whoami")

	fmt.Printf("Control plane, %d iterations each, real OpenSSH client (%s)\n\n", n, sshVersion())
	fmt.Println("| measurement | p50 | p90 | p99 | mean |")
	fmt.Println("|---|---|---|---|---|")
	base, err := measure(n, func(int) error { return sshRun(direct...) })
	if err != nil {
		return fmt.Errorf("direct sshd: %w", err)
	}
	report("ssh root@sshd true (direct, OpenSSH sshd)", base)
	self, err := measure(n, func(int) error { return sshRun(whoami...) })
	if err != nil {
		return fmt.Errorf("whoami: %w", err)
	}
	report("ssh alice@bastion whoami", self)
	flow, err := measure(n, func(i int) error {
		id := fmt.Sprint(i + 1)
		if err := sshRun(client(bport, "alice", "alice@127.0.0.1", "request", "web01", "--for", "1h", "--reason", "bench")...); err != nil {
			return err
		}
		if err := sshRun(client(bport, "bob", "bob@127.0.0.1", "approve", id)...); err != nil {
			return err
		}
		return sshRun(client(bport, "alice", "alice@127.0.0.1", "cert", id)...)
	})
	if err != nil {
		return fmt.Errorf("flow: %w", err)
	}
	report("request → approve → cert (3 ssh commands)", flow)
	fmt.Printf("\nRatio, self-service command / direct sshd session (p50): %.2f×\n", float64(pct(self, 50))/float64(pct(base, 50)))
	return nil
}

func measure(n int, f func(i int) error) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := f(i); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

func pct(d []time.Duration, p int) time.Duration {
	return d[min(len(d)-1, len(d)*p/100)]
}

func report(name string, d []time.Duration) {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	ms := func(x time.Duration) string { return fmt.Sprintf("%.1f ms", float64(x)/float64(time.Millisecond)) }
	fmt.Printf("| %s | %s | %s | %s | %s |\n", name, ms(pct(d, 50)), ms(pct(d, 90)), ms(pct(d, 99)), ms(sum/time.Duration(len(d))))
}

func sshRun(args ...string) error {
	out, err := exec.Command("ssh", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh %s: %v: %s", strings.Join(args[len(args)-3:], " "), err, out)
	}
	return nil
}

func sshVersion() string {
	out, _ := exec.Command("ssh", "-V").CombinedOutput()
	return strings.TrimSpace(string(out))
}
