package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Lifetimes of TLS certificates.
const (
	// tlsCAYears is the validity of a generated TLS CA. Clients pin it
	// (sslrootcert), so it outlives any deployment.
	tlsCAYears = 10
	// tlsLeafValidity is the validity of the leaf ServerConfig issues. It
	// is renewed in memory, so it can be short.
	tlsLeafValidity = 24 * time.Hour
	// tlsRenewFraction: ServerConfig renews its leaf once this fraction of
	// the leaf's lifetime has passed.
	tlsRenewFraction = 2.0 / 3
)

// TLSAuthority is the X.509 CA for Bastion's TLS listeners. It is safe for
// concurrent use.
type TLSAuthority struct {
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	pool    *x509.CertPool // the CA alone, to verify issued leaves

	now func() time.Time // the clock; tests replace it
}

// LoadOrCreateTLS loads the TLS CA from certPath and keyPath or, if neither
// exists, creates a self-signed ECDSA P-256 root named commonName, valid for
// 10 years, with the key as PKCS#8 PEM (0600) and the certificate as PEM
// (0644). One file without the other is refused. A loaded key may be PKCS#8,
// SEC 1 ("EC PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"); the key file must
// not be accessible to group or others, and the certificate must be a
// currently valid CA certificate for that key. commonName is used only when
// creating.
func LoadOrCreateTLS(certPath, keyPath, commonName string) (*TLSAuthority, error) {
	if certPath == "" || keyPath == "" {
		return nil, errors.New("ca: TLS CA: certificate and key paths must be set")
	}
	certExists, err := exists(certPath)
	if err != nil {
		return nil, fmt.Errorf("ca: TLS CA: %w", err)
	}
	keyExists, err := exists(keyPath)
	if err != nil {
		return nil, fmt.Errorf("ca: TLS CA: %w", err)
	}
	switch {
	case certExists && keyExists:
		return loadTLS(certPath, keyPath)
	case certExists:
		return nil, fmt.Errorf("ca: TLS CA: %s exists but its key %s does not; restore the key or remove both", certPath, keyPath)
	case keyExists:
		return nil, fmt.Errorf("ca: TLS CA: %s exists but its certificate %s does not; restore the certificate or remove both", keyPath, certPath)
	}
	t, err := createTLS(certPath, keyPath, commonName)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first; use theirs.
		return loadTLS(certPath, keyPath)
	}
	return t, err
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func createTLS(certPath, keyPath, commonName string) (*TLSAuthority, error) {
	if commonName == "" {
		return nil, errors.New("ca: create TLS CA: common name must be set")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: create TLS CA: %w", err)
	}
	serial, err := randomX509Serial()
	if err != nil {
		return nil, fmt.Errorf("ca: create TLS CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.AddDate(tlsCAYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs leaves only
		// SubjectKeyId is left to CreateCertificate (truncated SHA-256).
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("ca: create TLS CA: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: create TLS CA: %w", err)
	}
	for _, dir := range []string{filepath.Dir(keyPath), filepath.Dir(certPath)} {
		if err := os.MkdirAll(dir, dirMode); err != nil {
			return nil, fmt.Errorf("ca: create TLS CA: %w", err)
		}
	}
	// The key first: a crash in between leaves a key without a certificate,
	// which the next start reports, never a certificate without its key.
	if err := writeNewFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), keyFileMode); err != nil {
		return nil, fmt.Errorf("ca: create TLS CA: %w", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeNewFile(certPath, certPEM, pubFileMode); err != nil {
		return nil, fmt.Errorf("ca: create TLS CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: create TLS CA: %w", err)
	}
	return newTLSAuthority(cert, certPEM, key), nil
}

func loadTLS(certPath, keyPath string) (*TLSAuthority, error) {
	keyData, err := readPrivateFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("ca: load TLS CA key: %w", err)
	}
	key, err := parsePrivateKeyPEM(keyData)
	if err != nil {
		return nil, fmt.Errorf("ca: load TLS CA key: %s: %w", keyPath, err)
	}
	certData, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("ca: load TLS CA certificate: %w", err)
	}
	block, _ := pem.Decode(certData)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ca: load TLS CA certificate: %s: no PEM CERTIFICATE block", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: load TLS CA certificate: %s: %w", certPath, err)
	}
	if err := checkCACert(cert, key, time.Now()); err != nil {
		return nil, fmt.Errorf("ca: load TLS CA certificate: %s: %w", certPath, err)
	}
	return newTLSAuthority(cert, pem.EncodeToMemory(block), key), nil
}

func newTLSAuthority(cert *x509.Certificate, certPEM []byte, key crypto.Signer) *TLSAuthority {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &TLSAuthority{cert: cert, certPEM: certPEM, key: key, pool: pool, now: time.Now}
}

// parsePrivateKeyPEM parses the first PEM block of data as a signing key.
func parsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%T cannot sign", key)
	}
	if rk, ok := signer.(*rsa.PrivateKey); ok && rk.N.BitLen() < minRSABits {
		return nil, fmt.Errorf("%d-bit RSA key; want at least %d bits", rk.N.BitLen(), minRSABits)
	}
	return signer, nil
}

// checkCACert refuses a certificate that cannot serve as the TLS CA with key.
func checkCACert(cert *x509.Certificate, key crypto.Signer, now time.Time) error {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if pub, ok := key.Public().(equaler); !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("certificate does not match the key")
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("not a CA certificate (basic constraints CA and key usage certSign are required)")
	}
	if now.Before(cert.NotBefore) || !now.Before(cert.NotAfter) {
		return fmt.Errorf("valid from %s to %s, not now", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// CertPEM returns the CA certificate in PEM form, for clients' sslrootcert.
func (t *TLSAuthority) CertPEM() []byte { return slices.Clone(t.certPEM) }

// Certificate returns the CA certificate.
func (t *TLSAuthority) Certificate() *x509.Certificate { return t.cert }

// IssueServer issues a server leaf certificate (ExtKeyUsageServerAuth, ECDSA
// P-256 key) for names, which may mix DNS names and IP addresses, valid from
// a minute ago (clock skew) for validFor but never beyond the CA. The leaf is
// verified against the CA for every name before it is returned.
func (t *TLSAuthority) IssueServer(names []string, validFor time.Duration) (tls.Certificate, error) {
	leaf, key, err := t.issueServer(names, validFor)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: issue TLS server certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func (t *TLSAuthority) issueServer(names []string, validFor time.Duration) (*x509.Certificate, crypto.Signer, error) {
	if validFor <= 0 {
		return nil, nil, fmt.Errorf("validity %v must be positive", validFor)
	}
	if len(names) == 0 {
		return nil, nil, errors.New("names must not be empty")
	}
	var (
		dnsNames []string
		ips      []net.IP
	)
	for _, name := range names {
		if addr, err := netip.ParseAddr(name); err == nil && addr.Zone() == "" {
			ips = append(ips, net.IP(addr.AsSlice()))
			continue
		}
		if !validDNSName(name) {
			return nil, nil, fmt.Errorf("name %q is neither an IP address nor a DNS name", name)
		}
		dnsNames = append(dnsNames, strings.ToLower(name))
	}

	now := t.now()
	notAfter := now.Add(validFor)
	if notAfter.After(t.cert.NotAfter) {
		notAfter = t.cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, nil, fmt.Errorf("TLS CA expired at %s", t.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomX509Serial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0]},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, t.cert, key.Public(), t.key)
	if err != nil {
		return nil, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	// Validate again, as a client will.
	for _, name := range names {
		_, err := leaf.Verify(x509.VerifyOptions{
			DNSName:     name,
			Roots:       t.pool,
			CurrentTime: now,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			return nil, nil, fmt.Errorf("verify issued certificate for %q: %w", name, err)
		}
	}
	return leaf, key, nil
}

// ServerConfig returns a TLS 1.2+ server configuration whose GetCertificate
// presents a leaf for names, issued on first use and renewed in memory once
// two thirds of its lifetime have passed. If renewal fails while the current
// leaf is still valid, the current leaf is served.
func (t *TLSAuthority) ServerConfig(names []string) *tls.Config {
	c := &leafCache{ca: t, names: slices.Clone(names)}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: c.get,
	}
}

// leafCache holds the current leaf of one ServerConfig.
type leafCache struct {
	ca    *TLSAuthority
	names []string

	mu      sync.Mutex
	cur     *tls.Certificate
	renewAt time.Time
}

func (c *leafCache) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.ca.now()
	if c.cur != nil && now.Before(c.renewAt) {
		return c.cur, nil
	}
	cert, err := c.ca.IssueServer(c.names, tlsLeafValidity)
	if err != nil {
		if c.cur != nil && now.Before(c.cur.Leaf.NotAfter) {
			return c.cur, nil
		}
		return nil, err
	}
	lifetime := cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore)
	c.cur = &cert
	c.renewAt = cert.Leaf.NotBefore.Add(time.Duration(float64(lifetime) * tlsRenewFraction))
	return c.cur, nil
}

// validDNSName reports whether name is a DNS host name: labels of letters,
// digits and inner hyphens, no wildcard, no trailing dot.
func validDNSName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// randomX509Serial returns a positive 128-bit serial number.
func randomX509Serial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}
