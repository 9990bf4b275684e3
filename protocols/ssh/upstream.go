package ssh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/ca"
)

// UpstreamCertValidity is how long Bastion's per-session certificate to a
// target is valid: long enough to authenticate, useless afterwards.
const UpstreamCertValidity = 2 * time.Minute

// upstreamSkew backdates the per-session certificate for targets whose
// clock is slightly behind.
const upstreamSkew = time.Minute

// dialTimeout bounds connecting and authenticating to a target.
const dialTimeout = 15 * time.Second

// Target is how Bastion reaches a target.
type Target struct {
	Name    string
	Address string        // host:port
	HostKey ssh.PublicKey // pinned host key; nil: a host certificate from the host CA is required
}

// Targets looks up targets by name.
type Targets interface {
	Target(name string) (Target, bool)
}

// UpstreamCA signs Bastion's per-session certificates to targets.
type UpstreamCA interface {
	SignUser(req ca.UserCertRequest) (*ssh.Certificate, error)
}

// dialUpstream connects to the grant's target, verifies its host key, and
// logs in as the grant's login with a fresh key and a certificate minted for
// this session only (source-address = Bastion's address on that connection;
// extensions = what this session is allowed, see allowed.upstreamExtensions).
func (s *Server) dialUpstream(ctx context.Context, g *access.Grant, sessionID string, ext map[string]string) (*ssh.Client, error) {
	t, ok := s.cfg.Targets.Target(g.Target)
	if !ok {
		return nil, fmt.Errorf("target %s is not configured", g.Target)
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", t.Address)
	if err != nil {
		return nil, &upstreamError{tell: fmt.Sprintf("cannot reach %s", g.Target), err: err}
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := nc.SetDeadline(dl); err != nil {
			nc.Close()
			return nil, err
		}
	}
	signer, err := s.sessionSigner(g, sessionID, nc.LocalAddr(), ext)
	if err != nil {
		nc.Close()
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User:            g.Login,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: s.hostKeyCallback(t),
		ClientVersion:   "SSH-2.0-Bastion",
	}
	if t.HostKey != nil {
		cfg.HostKeyAlgorithms = hostKeyAlgorithms(t.HostKey)
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, t.Address, cfg)
	if err != nil {
		nc.Close()
		var hk *hostKeyError
		if errors.As(err, &hk) {
			return nil, &upstreamError{tell: hk.Error(), err: err}
		}
		return nil, &upstreamError{tell: fmt.Sprintf("cannot log in to %s as %s", g.Target, g.Login), err: err}
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, err
	}
	return ssh.NewClient(conn, chans, reqs), nil
}

// upstreamError is a failure to reach a target: tell is what the user is
// shown (it names the target, never an address or a library's error);
// err is what the log gets.
type upstreamError struct {
	tell string
	err  error
}

func (e *upstreamError) Error() string { return e.tell + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// userMessage is what a user is told about err.
func userMessage(err error) string {
	var ue *upstreamError
	if errors.As(err, &ue) {
		return ue.tell + " (the operator's log has the details)"
	}
	return "the target cannot be reached (the operator's log has the details)"
}

// hostKeyError is a target's host key that does not verify; its message
// names the target and is safe to show.
type hostKeyError struct{ msg string }

func (e *hostKeyError) Error() string { return e.msg }

// hostKeyAlgorithms asks for the pinned key's own algorithms, so that a
// server with several host keys presents the pinned one.
func hostKeyAlgorithms(k ssh.PublicKey) []string {
	if k.Type() == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{k.Type()}
}

// hostKeyCallback accepts the pinned key, or else a host certificate from
// Bastion's host CA naming the target.
func (s *Server) hostKeyCallback(t Target) ssh.HostKeyCallback {
	if t.HostKey != nil {
		want := t.HostKey.Marshal()
		return func(_ string, _ net.Addr, key ssh.PublicKey) error {
			if !bytes.Equal(key.Marshal(), want) {
				return &hostKeyError{fmt.Sprintf("host key mismatch for %s: got %s, pinned %s",
					t.Name, ssh.FingerprintSHA256(key), ssh.FingerprintSHA256(t.HostKey))}
			}
			return nil
		}
	}
	checker := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool {
			return s.cfg.HostCA != nil && bytes.Equal(auth.Marshal(), s.cfg.HostCA.Marshal())
		},
	}
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		// The certificate must name the target (its name, or its address's host).
		host, _, _ := net.SplitHostPort(t.Address)
		err := checker.CheckHostKey(net.JoinHostPort(t.Name, "22"), remote, key)
		if err != nil && host != "" {
			err = checker.CheckHostKey(t.Address, remote, key)
		}
		if err != nil {
			return &hostKeyError{fmt.Sprintf("host key of %s is neither pinned nor certified by Bastion's host CA", t.Name)}
		}
		return nil
	}
}

// sessionSigner mints a key and a short certificate for one session.
func (s *Server) sessionSigner(g *access.Grant, sessionID string, local net.Addr, ext map[string]string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	req := ca.UserCertRequest{
		Key:         signer.PublicKey(),
		KeyID:       fmt.Sprintf("%s/req-%d/session-%s", g.User, g.RequestID, sessionID),
		Serial:      s.nextSerial(),
		Principals:  []string{g.Login},
		ValidAfter:  now.Add(-upstreamSkew),
		ValidBefore: now.Add(UpstreamCertValidity),
		Extensions:  ext,
	}
	if ta, ok := local.(*net.TCPAddr); ok {
		req.CriticalOptions = map[string]string{"source-address": ta.IP.String()}
	}
	cert, err := s.cfg.UpstreamCA.SignUser(req)
	if err != nil {
		return nil, fmt.Errorf("mint session certificate: %w", err)
	}
	return ssh.NewCertSigner(cert, signer)
}

// nextSerial numbers per-session certificates: time-based, so they increase
// across restarts, and unique within the process.
func (s *Server) nextSerial() uint64 {
	for {
		last := s.lastSerial.Load()
		next := max(uint64(time.Now().UnixNano()), last+1)
		if s.lastSerial.CompareAndSwap(last, next) {
			return next
		}
	}
}
