package ca

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/ssh"
)

// SSHAuthority signs OpenSSH certificates with one CA key. It is safe for
// concurrent use.
type SSHAuthority struct {
	name     string
	signer   ssh.Signer // for RSA keys, restricted to rsa-sha2-512
	pub      ssh.PublicKey
	pubBytes []byte // pub in wire form, to compare keys

	now  func() time.Time // the clock; tests replace it
	rand io.Reader        // nonces; tests replace it
}

// caKeyTypes are the key types accepted for a CA. Security-key (sk-*) keys
// cannot sign unattended, DSA is obsolete, and anything newer is not yet
// understood by the OpenSSH versions Bastion supports.
var caKeyTypes = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoECDSA256,
	ssh.KeyAlgoECDSA384,
	ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSA,
}

// NewSSHAuthority returns the authority named name (its purpose, e.g.
// "bastion-user-ca"; also the comment of AuthorizedKey) that signs with
// signer. An RSA signer must have at least 2048 bits and is restricted to
// rsa-sha2-512 signatures, never ssh-rsa (SHA-1).
func NewSSHAuthority(name string, signer ssh.Signer) (*SSHAuthority, error) {
	if err := checkAuthorityName(name); err != nil {
		return nil, err
	}
	if signer == nil {
		return nil, fmt.Errorf("ca: new SSH authority %s: no signer", name)
	}
	pub := signer.PublicKey()
	if _, ok := pub.(*ssh.Certificate); ok {
		return nil, fmt.Errorf("ca: new SSH authority %s: a certificate cannot be a CA key", name)
	}
	if !slices.Contains(caKeyTypes, pub.Type()) {
		return nil, fmt.Errorf("ca: new SSH authority %s: key type %q is not supported for a CA", name, pub.Type())
	}
	if pub.Type() == ssh.KeyAlgoRSA {
		if bits := rsaBits(pub); bits < minRSABits {
			return nil, fmt.Errorf("ca: new SSH authority %s: %d-bit RSA key; want at least %d bits", name, bits, minRSABits)
		}
		as, ok := signer.(ssh.AlgorithmSigner)
		if !ok {
			return nil, fmt.Errorf("ca: new SSH authority %s: RSA signer cannot choose its signature algorithm, so it would sign with SHA-1", name)
		}
		restricted, err := ssh.NewSignerWithAlgorithms(as, []string{ssh.KeyAlgoRSASHA512})
		if err != nil {
			return nil, fmt.Errorf("ca: new SSH authority %s: %w", name, err)
		}
		signer = restricted
	}
	return &SSHAuthority{
		name:     name,
		signer:   signer,
		pub:      pub,
		pubBytes: pub.Marshal(),
		now:      time.Now,
		rand:     rand.Reader,
	}, nil
}

// LoadOrCreateSSH loads the OpenSSH-format private key at path, or on first
// start generates an ed25519 key there (directory 0700, key 0600, and
// "<path>.pub" 0644 with comment name). A key file that group or others may
// access is refused with an error naming the file, and so is a
// passphrase-protected one. An existing key's .pub file is not touched.
func LoadOrCreateSSH(name, path string) (*SSHAuthority, error) {
	if err := checkAuthorityName(name); err != nil {
		return nil, err // before anything is written
	}
	signer, err := loadOrCreateSSHKey(path, name)
	if err != nil {
		return nil, fmt.Errorf("ca: load %s key: %w", name, err)
	}
	return NewSSHAuthority(name, signer)
}

func checkAuthorityName(name string) error {
	if name == "" || !printable(name) || strings.ContainsFunc(name, unicode.IsSpace) {
		return fmt.Errorf("ca: SSH authority name %q must be non-empty, without spaces or control characters", name)
	}
	return nil
}

// Name returns the authority's purpose name.
func (a *SSHAuthority) Name() string { return a.name }

// PublicKey returns the CA's public key.
func (a *SSHAuthority) PublicKey() ssh.PublicKey { return a.pub }

// AuthorizedKey returns the CA's public key as one authorized_keys line,
// "ssh-ed25519 AAAA… <name>", without a newline: the value for
// TrustedUserCAKeys or, after "@cert-authority <hosts> ", for known_hosts.
func (a *SSHAuthority) AuthorizedKey() string { return authorizedKey(a.pub, a.name) }

// IsAuthority reports whether key is this CA's key. It has the shape of
// ssh.CertChecker.IsUserAuthority.
func (a *SSHAuthority) IsAuthority(key ssh.PublicKey) bool {
	return key != nil && bytes.Equal(key.Marshal(), a.pubBytes)
}

// SignUser validates req, builds the user certificate, signs it and
// verifies the result before returning it. A refused request yields a
// *RequestError.
func (a *SSHAuthority) SignUser(req UserCertRequest) (*ssh.Certificate, error) {
	now := a.now()
	if err := a.checkUserRequest(req, now); err != nil {
		return nil, err
	}
	cert := &ssh.Certificate{
		Key:             req.Key,
		Serial:          req.Serial,
		CertType:        ssh.UserCert,
		KeyId:           req.KeyID,
		ValidPrincipals: slices.Clone(req.Principals),
		ValidAfter:      uint64(req.ValidAfter.Unix()),
		ValidBefore:     uint64(req.ValidBefore.Unix()),
		Permissions: ssh.Permissions{
			CriticalOptions: maps.Clone(req.CriticalOptions),
			Extensions:      maps.Clone(req.Extensions),
		},
	}
	signed, err := a.sign(cert, now)
	if err != nil {
		return nil, fmt.Errorf("ca: sign user certificate: %w", err)
	}
	return signed, nil
}

// SignHost validates req, builds the host certificate, signs it and
// verifies the result before returning it. A refused request yields a
// *RequestError.
func (a *SSHAuthority) SignHost(req HostCertRequest) (*ssh.Certificate, error) {
	now := a.now()
	if err := a.checkHostRequest(req, now); err != nil {
		return nil, err
	}
	cert := &ssh.Certificate{
		Key:             req.Key,
		Serial:          req.Serial,
		CertType:        ssh.HostCert,
		KeyId:           req.KeyID,
		ValidPrincipals: slices.Clone(req.Principals),
		ValidAfter:      uint64(req.ValidAfter.Unix()),
		ValidBefore:     uint64(req.ValidBefore.Unix()),
	}
	signed, err := a.sign(cert, now)
	if err != nil {
		return nil, fmt.Errorf("ca: sign host certificate: %w", err)
	}
	return signed, nil
}

// sign signs cert with a random nonce, then validates the certificate again
// as a verifier will see it: parsed back from its wire form and checked by
// an ssh.CertChecker that trusts only this CA. It returns the parsed
// certificate.
func (a *SSHAuthority) sign(cert *ssh.Certificate, now time.Time) (*ssh.Certificate, error) {
	if err := cert.SignCert(a.rand, a.signer); err != nil {
		return nil, err
	}

	parsedKey, err := ssh.ParsePublicKey(cert.Marshal())
	if err != nil {
		return nil, fmt.Errorf("parse signed certificate: %w", err)
	}
	signed, ok := parsedKey.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("signed certificate parses as a %s key", parsedKey.Type())
	}
	if !bytes.Equal(signed.Key.Marshal(), cert.Key.Marshal()) || signed.CertType != cert.CertType || signed.Serial != cert.Serial {
		return nil, errors.New("signed certificate does not match the request")
	}
	if signed.Signature.Format == ssh.KeyAlgoRSA {
		return nil, errors.New("certificate signed with ssh-rsa (SHA-1)")
	}

	// Check at a moment inside the validity window: a certificate may be
	// issued to start later than now.
	at := max(now.Unix(), int64(signed.ValidAfter))
	checker := &ssh.CertChecker{
		IsUserAuthority:          a.IsAuthority,
		IsHostAuthority:          func(key ssh.PublicKey, _ string) bool { return a.IsAuthority(key) },
		SupportedCriticalOptions: supportedCriticalOptions,
		Clock:                    func() time.Time { return time.Unix(at, 0) },
	}
	var trusted bool
	if signed.CertType == ssh.UserCert {
		trusted = checker.IsUserAuthority(signed.SignatureKey)
	} else {
		trusted = checker.IsHostAuthority(signed.SignatureKey, "")
	}
	if !trusted {
		return nil, errors.New("signed certificate names another signing key")
	}
	for _, p := range signed.ValidPrincipals {
		if err := checker.CheckCert(p, signed); err != nil {
			return nil, fmt.Errorf("verify signed certificate: %w", err)
		}
	}
	return signed, nil
}
