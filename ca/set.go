package ca

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// Names of Bastion's authorities: the purposes, and the comments of their
// public keys.
const (
	UserCAName     = "bastion-user-ca"
	UpstreamCAName = "bastion-upstream-ca"
	HostCAName     = "bastion-host-ca"
	TLSCAName      = "Bastion TLS CA" // the common name of a generated TLS CA
)

// Default file names under the data directory.
const (
	defaultUserCAFile     = "user_ca"
	defaultUpstreamCAFile = "upstream_ca"
	defaultHostCAFile     = "host_ca"
	defaultTLSCertFile    = "tls_ca.crt"
	defaultTLSKeyFile     = "tls_ca.key"
)

// Set is the four authorities Bastion runs with.
type Set struct {
	User     *SSHAuthority // signs users' certificates for logging in to Bastion
	Upstream *SSHAuthority // signs Bastion's per-session certificates to targets
	Host     *SSHAuthority // certifies host keys, Bastion's own and targets'
	TLS      *TLSAuthority // issues the database listeners' certificates
}

// Files are the paths of the authorities' key files. An empty path means
// the default under the data directory.
type Files struct {
	UserCA, UpstreamCA, HostCA string // OpenSSH private keys
	TLSCert, TLSKey            string // PEM certificate and private key
}

// LoadOrCreate loads each authority from its file in files or, where a path
// is empty, from its default file under dir (dir/user_ca, dir/upstream_ca,
// dir/host_ca, dir/tls_ca.crt, dir/tls_ca.key), creating keys that do not
// exist yet. It refuses a Set in which two authorities share a key: separate
// purposes must have separate keys, or a certificate meant for Bastion would
// open targets too.
func LoadOrCreate(dir string, files Files) (*Set, error) {
	paths := []struct {
		path *string
		def  string
	}{
		{&files.UserCA, defaultUserCAFile},
		{&files.UpstreamCA, defaultUpstreamCAFile},
		{&files.HostCA, defaultHostCAFile},
		{&files.TLSCert, defaultTLSCertFile},
		{&files.TLSKey, defaultTLSKeyFile},
	}
	for _, p := range paths {
		if *p.path != "" {
			continue
		}
		if dir == "" {
			return nil, fmt.Errorf("ca: no path for %s and no data directory", p.def)
		}
		*p.path = filepath.Join(dir, p.def)
	}

	var (
		s   Set
		err error
	)
	if s.User, err = LoadOrCreateSSH(UserCAName, files.UserCA); err != nil {
		return nil, err
	}
	if s.Upstream, err = LoadOrCreateSSH(UpstreamCAName, files.UpstreamCA); err != nil {
		return nil, err
	}
	if s.Host, err = LoadOrCreateSSH(HostCAName, files.HostCA); err != nil {
		return nil, err
	}
	if s.TLS, err = LoadOrCreateTLS(files.TLSCert, files.TLSKey, TLSCAName); err != nil {
		return nil, err
	}
	if err := s.checkDistinct(files); err != nil {
		return nil, err
	}
	return &s, nil
}

// checkDistinct refuses a set in which two authorities share a key.
func (s *Set) checkDistinct(files Files) error {
	type authority struct {
		name, path string
		pub        crypto.PublicKey
		wire       []byte // SSH wire form; nil for the TLS CA
	}
	var all []authority
	for _, a := range []struct {
		ca   *SSHAuthority
		path string
	}{{s.User, files.UserCA}, {s.Upstream, files.UpstreamCA}, {s.Host, files.HostCA}} {
		var pub crypto.PublicKey
		if ck, ok := a.ca.PublicKey().(ssh.CryptoPublicKey); ok {
			pub = ck.CryptoPublicKey()
		}
		all = append(all, authority{a.ca.Name(), a.path, pub, a.ca.pubBytes})
	}
	all = append(all, authority{"TLS CA", files.TLSKey, s.TLS.Certificate().PublicKey, nil})

	type equaler interface{ Equal(crypto.PublicKey) bool }
	same := func(a, b authority) bool {
		if a.wire != nil && b.wire != nil {
			return bytes.Equal(a.wire, b.wire)
		}
		e, ok := a.pub.(equaler)
		return ok && b.pub != nil && e.Equal(b.pub)
	}
	var errs []error
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			if same(all[i], all[j]) {
				errs = append(errs, fmt.Errorf("ca: %s (%s) and %s (%s) share a key; each purpose needs its own key",
					all[i].name, all[i].path, all[j].name, all[j].path))
			}
		}
	}
	return errors.Join(errs...)
}
