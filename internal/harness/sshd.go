package harness

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshdPath is where Debian's openssh-server puts sshd. sshd must be started by
// its absolute path: it re-executes itself for every connection.
const sshdPath = "/usr/sbin/sshd"

// sshProbeTimeout bounds one readiness probe (connect and key exchange).
const sshProbeTimeout = 2 * time.Second

// SSHDConfig configures an OpenSSH sshd target.
type SSHDConfig struct {
	// Dir holds the config, keys and log. Empty means a new temp dir, which
	// Stop removes.
	Dir string
	// TrustedUserCAKeys are authorized_keys-format lines of the user CAs whose
	// certificates sshd accepts.
	TrustedUserCAKeys []string
	// HostKey is a PEM or OpenSSH private key. Empty means a new ed25519 key.
	HostKey []byte
	// HostCertificate is a certificate for HostKey, as in a -cert.pub file.
	// Optional.
	HostCertificate []byte
	// AuthorizedPrincipals maps a login to the certificate principals it
	// accepts. Nil means a certificate must name the login itself.
	AuthorizedPrincipals map[string][]string
	// ExtraConfig holds more sshd_config lines. They come before the
	// harness's defaults, so they override them (sshd keeps the first value
	// of a keyword), except that a Match line and everything after it go last.
	ExtraConfig []string
}

// SSHD is a running OpenSSH sshd listening on 127.0.0.1. It allows public
// key (and so certificate) authentication only, root logins included, and
// serves sftp.
type SSHD struct {
	Addr          string // "127.0.0.1:PORT"
	Port          int
	HostPublicKey ssh.PublicKey
	Dir           string
	LogPath       string // sshd's log, at LogLevel VERBOSE

	proc     *process
	teardown teardown
}

// NewSSHD starts an sshd for t and stops it when t ends.
func NewSSHD(t testing.TB, cfg SSHDConfig) *SSHD {
	t.Helper()
	return startForTest(t, func(ctx context.Context) (*SSHD, error) { return StartSSHD(ctx, cfg) })
}

// StartSSHD starts an sshd; the caller must call Stop.
func StartSSHD(ctx context.Context, cfg SSHDConfig) (*SSHD, error) {
	bin, err := findProgram("openssh-server", sshdPath)
	if err != nil {
		return nil, fmt.Errorf("harness: sshd: %w", err)
	}
	dir, owned, err := makeDir(cfg.Dir, "sshd")
	if err != nil {
		return nil, fmt.Errorf("harness: sshd: %w", err)
	}
	s := &SSHD{Dir: dir, LogPath: filepath.Join(dir, "sshd.log"), teardown: teardown{kind: "sshd", dir: dir, ownsDir: owned}}
	if err := s.start(ctx, bin, cfg); err != nil {
		return nil, errors.Join(fmt.Errorf("harness: sshd: %w", err), s.Stop())
	}
	return s, nil
}

func (s *SSHD) start(ctx context.Context, bin string, cfg SSHDConfig) error {
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return err
	}
	if err := s.writeFiles(cfg); err != nil {
		return err
	}
	configPath := filepath.Join(s.Dir, "sshd_config")
	port, err := retryOnPortClash(s.teardown.kind, func(port int) error {
		if err := os.WriteFile(configPath, []byte(s.config(cfg, port)), 0o600); err != nil {
			return err
		}
		if _, err := Run(exec.CommandContext(ctx, bin, "-t", "-f", configPath)); err != nil {
			return fmt.Errorf("invalid config: %w", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		p, err := startProcess(bin, []string{"-D", "-e", "-f", configPath}, nil, s.LogPath)
		if err != nil {
			return err
		}
		err = p.waitReady(ctx, func(ctx context.Context) error {
			return probeSSH(ctx, addr, s.HostPublicKey)
		})
		if err != nil {
			return startError(errors.Join(err, p.stop()), s.LogPath)
		}
		s.proc = p
		return nil
	})
	if err != nil {
		return err
	}
	s.Port = port
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	return nil
}

// Paths of the files writeFiles creates, relative to Dir.
const (
	sshdHostKeyFile   = "ssh_host_key"
	sshdHostCertFile  = "ssh_host_key-cert.pub"
	sshdUserCAFile    = "trusted_user_ca_keys"
	sshdPrincipalsDir = "principals"
)

// writeFiles writes the host key and certificate, the trusted user CAs and
// the principals files, and sets HostPublicKey.
func (s *SSHD) writeFiles(cfg SSHDConfig) error {
	var hostKey crypto.PrivateKey
	var err error
	if len(cfg.HostKey) == 0 {
		_, hostKey, err = ed25519.GenerateKey(rand.Reader)
	} else {
		hostKey, err = ssh.ParseRawPrivateKey(cfg.HostKey)
		if p, ok := hostKey.(*ed25519.PrivateKey); ok { // how OpenSSH-format keys come back
			hostKey = *p
		}
	}
	if err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(hostKey)
	if err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	s.HostPublicKey = signer.PublicKey()
	// Written in OpenSSH format whatever the input was: sshd reads some
	// key types only in that format.
	block, err := ssh.MarshalPrivateKey(hostKey, "bastion harness host key")
	if err != nil {
		return fmt.Errorf("host key: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, sshdHostKeyFile), pem.EncodeToMemory(block), 0o600); err != nil {
		return err
	}
	if len(cfg.HostCertificate) > 0 {
		if err := os.WriteFile(filepath.Join(s.Dir, sshdHostCertFile), cfg.HostCertificate, 0o644); err != nil {
			return err
		}
	}
	if len(cfg.TrustedUserCAKeys) > 0 {
		cas := strings.Join(cfg.TrustedUserCAKeys, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(s.Dir, sshdUserCAFile), []byte(cas), 0o644); err != nil {
			return err
		}
	}
	if cfg.AuthorizedPrincipals != nil {
		dir := filepath.Join(s.Dir, sshdPrincipalsDir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for login, principals := range cfg.AuthorizedPrincipals {
			if login == "" || strings.ContainsAny(login, "/\x00") || login == "." || login == ".." {
				return fmt.Errorf("authorized principals: bad login %q", login)
			}
			text := strings.Join(principals, "\n") + "\n"
			if err := os.WriteFile(filepath.Join(dir, login), []byte(text), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// config returns the sshd_config for port.
func (s *SSHD) config(cfg SSHDConfig, port int) string {
	var head, match []string
	for i, line := range cfg.ExtraConfig {
		if f := strings.Fields(line); len(f) > 0 && strings.EqualFold(f[0], "Match") {
			match = cfg.ExtraConfig[i:]
			break
		}
		head = append(head, line)
	}
	lines := append(head,
		fmt.Sprintf("Port %d", port),
		"ListenAddress 127.0.0.1",
		"HostKey "+filepath.Join(s.Dir, sshdHostKeyFile),
		"PidFile "+filepath.Join(s.Dir, "sshd.pid"),
		"AuthorizedKeysFile none",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"PermitRootLogin prohibit-password",
		"LogLevel VERBOSE",
		"Subsystem sftp internal-sftp",
	)
	if len(cfg.HostCertificate) > 0 {
		lines = append(lines, "HostCertificate "+filepath.Join(s.Dir, sshdHostCertFile))
	}
	if len(cfg.TrustedUserCAKeys) > 0 {
		lines = append(lines, "TrustedUserCAKeys "+filepath.Join(s.Dir, sshdUserCAFile))
	}
	if cfg.AuthorizedPrincipals != nil {
		lines = append(lines, "AuthorizedPrincipalsFile "+filepath.Join(s.Dir, sshdPrincipalsDir, "%u"))
	}
	lines = append(lines, match...)
	return strings.Join(lines, "\n") + "\n"
}

// errHostKeyMatched ends a readiness probe once the server has proven its
// host key; the probe never authenticates.
var errHostKeyMatched = errors.New("host key matched")

// probeSSH succeeds when the server at addr completes a key exchange with
// the host key want, so a stranger that took the port does not count.
func probeSSH(ctx context.Context, addr string, want ssh.PublicKey) error {
	ctx, cancel := context.WithTimeout(ctx, sshProbeTimeout)
	defer cancel()
	conn, err := new(net.Dialer).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// The handshake knows no context: closing the connection ends it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	_, _, _, err = ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User: "harness-probe",
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if cert, ok := key.(*ssh.Certificate); ok {
				key = cert.Key
			}
			if !bytes.Equal(key.Marshal(), want.Marshal()) {
				return fmt.Errorf("unexpected host key %s", ssh.FingerprintSHA256(key))
			}
			return errHostKeyMatched
		},
	})
	if errors.Is(err, errHostKeyMatched) {
		return nil
	}
	if err == nil {
		return errors.New("ssh probe: authenticated without credentials")
	}
	return err
}

// KnownHostsLine returns a known_hosts line that trusts the host key for
// Addr ("[127.0.0.1]:PORT ssh-ed25519 AAAA…").
func (s *SSHD) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostPublicKey)
}

// Log returns sshd's log so far; certificate logins appear in it as
// `Accepted certificate ID "…" (serial N) signed by …`.
func (s *SSHD) Log() (string, error) {
	b, err := os.ReadFile(s.LogPath)
	return string(b), err
}

// Stop stops sshd by PID and removes Dir if StartSSHD created it. Sessions
// already open run until their clients leave. Stop is idempotent.
func (s *SSHD) Stop() error {
	return s.teardown.run(s.proc.stop)
}
