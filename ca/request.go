package ca

import (
	"bytes"
	"crypto/rsa"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// UserCertRequest describes a user certificate to sign.
type UserCertRequest struct {
	// Key is the subject's public key. It must not itself be a certificate
	// nor the CA's key.
	Key ssh.PublicKey
	// KeyID names the certificate in logs, e.g. "alice/req-42".
	KeyID string
	// Serial is assigned by the caller (the store) and must not be zero.
	Serial uint64
	// Principals are the logins the certificate is valid for. It must not
	// be empty: some verifiers read an empty list as "any principal".
	Principals []string
	// ValidAfter and ValidBefore bound the validity window, to the second.
	// ValidBefore must be after ValidAfter and in the future.
	ValidAfter  time.Time
	ValidBefore time.Time
	// Extensions are OpenSSH's flag extensions ("permit-pty": "") and
	// Bastion's target flags (TargetExtension). Anything else is refused.
	Extensions map[string]string
	// CriticalOptions may hold only "source-address" (a comma-separated
	// list of addresses and CIDR prefixes) and "force-command".
	CriticalOptions map[string]string
}

// HostCertRequest describes a host certificate to sign.
type HostCertRequest struct {
	Key         ssh.PublicKey // the host's key; not a certificate, not the CA's key
	KeyID       string
	Serial      uint64   // must not be zero
	Principals  []string // the host names; must not be empty
	ValidAfter  time.Time
	ValidBefore time.Time // after ValidAfter and in the future
}

// RequestError is a certificate request refused by validation. Its message
// names the field and is safe to show to whoever made the request.
type RequestError struct {
	Cert   string // "user certificate" or "host certificate"
	Field  string // e.g. "principals"
	Reason string // e.g. "must not be empty"
}

func (e *RequestError) Error() string {
	return "ca: " + e.Cert + ": " + e.Field + " " + e.Reason
}

const (
	userCert = "user certificate"
	hostCert = "host certificate"
)

// Limits on request fields, far above real use; they keep a bad caller from
// producing certificates that verifiers choke on.
const (
	maxKeyIDLen     = 256
	maxPrincipalLen = 256
	maxPrincipals   = 256
	minRSABits      = 2048
)

// subjectKeyTypes are the key types accepted as certificate subjects.
// DSA is refused (OpenSSH disables it), and so is anything unknown.
var subjectKeyTypes = []string{
	ssh.KeyAlgoED25519,
	ssh.KeyAlgoSKED25519,
	ssh.KeyAlgoECDSA256,
	ssh.KeyAlgoECDSA384,
	ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoSKECDSA256,
	ssh.KeyAlgoRSA,
}

// checkUserRequest is the first stage of SignUser.
func (a *SSHAuthority) checkUserRequest(req UserCertRequest, now time.Time) error {
	if err := a.checkCommon(userCert, req.Key, req.KeyID, req.Serial, req.Principals, req.ValidAfter, req.ValidBefore, now); err != nil {
		return err
	}
	if err := checkExtensions(req.Extensions); err != nil {
		return err
	}
	return checkCriticalOptions(req.CriticalOptions)
}

// checkHostRequest is the first stage of SignHost.
func (a *SSHAuthority) checkHostRequest(req HostCertRequest, now time.Time) error {
	return a.checkCommon(hostCert, req.Key, req.KeyID, req.Serial, req.Principals, req.ValidAfter, req.ValidBefore, now)
}

func (a *SSHAuthority) checkCommon(kind string, key ssh.PublicKey, keyID string, serial uint64, principals []string, after, before, now time.Time) error {
	refuse := func(field, format string, args ...any) error {
		return &RequestError{Cert: kind, Field: field, Reason: fmt.Sprintf(format, args...)}
	}

	switch k := key.(type) {
	case nil:
		return refuse("key", "must be set")
	case *ssh.Certificate:
		return refuse("key", "must not be a certificate")
	default:
		if bytes.Equal(k.Marshal(), a.pubBytes) {
			return refuse("key", "must not be the CA's own key")
		}
		if !slices.Contains(subjectKeyTypes, k.Type()) {
			return refuse("key", "type %q is not accepted", k.Type())
		}
		if k.Type() == ssh.KeyAlgoRSA {
			if bits := rsaBits(k); bits < minRSABits {
				return refuse("key", "is a %d-bit RSA key; want at least %d bits", bits, minRSABits)
			}
		}
	}

	switch {
	case keyID == "":
		return refuse("key ID", "must not be empty")
	case len(keyID) > maxKeyIDLen:
		return refuse("key ID", "is longer than %d bytes", maxKeyIDLen)
	case !printable(keyID):
		return refuse("key ID", "must be printable UTF-8 without control characters")
	}

	if serial == 0 {
		return refuse("serial", "must not be zero")
	}

	if len(principals) == 0 {
		return refuse("principals", "must not be empty")
	}
	if len(principals) > maxPrincipals {
		return refuse("principals", "has more than %d entries", maxPrincipals)
	}
	for i, p := range principals {
		switch {
		case p == "":
			return refuse("principals", "entry %d is empty", i)
		case len(p) > maxPrincipalLen:
			return refuse("principals", "entry %d is longer than %d bytes", i, maxPrincipalLen)
		case !printable(p) || strings.ContainsFunc(p, unicode.IsSpace) || strings.Contains(p, ","):
			// OpenSSH lists principals separated by commas and whitespace.
			return refuse("principals", "entry %q must not contain spaces, commas or control characters", p)
		case slices.Contains(principals[:i], p):
			return refuse("principals", "entry %q is repeated", p)
		}
	}

	switch {
	case after.IsZero():
		return refuse("valid after", "must be set")
	case after.Unix() < 0:
		return refuse("valid after", "must not be before 1970")
	case before.Unix() <= after.Unix():
		return refuse("valid before", "must be after valid after")
	case before.Unix() <= now.Unix():
		return refuse("valid before", "must be in the future")
	}
	return nil
}

// checkExtensions refuses any extension that is not one of OpenSSH's user
// certificate flags or a Bastion target flag with a valid name.
func checkExtensions(exts map[string]string) error {
	for name, value := range exts {
		field := fmt.Sprintf("extension %q", name)
		if target, ok := parseTargetExtension(name); ok {
			if target == "" {
				return &RequestError{Cert: userCert, Field: field, Reason: "must name a target matching [A-Za-z0-9._-]+"}
			}
		} else if !slices.Contains(openSSHUserExtensions, name) {
			return &RequestError{Cert: userCert, Field: field, Reason: "is not supported"}
		}
		if value != "" {
			return &RequestError{Cert: userCert, Field: field, Reason: "is a flag and must have an empty value"}
		}
	}
	return nil
}

// checkCriticalOptions accepts only the options in supportedCriticalOptions,
// with values that OpenSSH will parse.
func checkCriticalOptions(opts map[string]string) error {
	for name, value := range opts {
		field := fmt.Sprintf("critical option %q", name)
		switch name {
		case optionForceCommand:
			if value == "" || strings.ContainsRune(value, 0) {
				return &RequestError{Cert: userCert, Field: field, Reason: "must be a non-empty command"}
			}
		case optionSourceAddress:
			if err := checkSourceAddress(value); err != "" {
				return &RequestError{Cert: userCert, Field: field, Reason: err}
			}
		default:
			return &RequestError{Cert: userCert, Field: field, Reason: "is not supported"}
		}
	}
	return nil
}

// checkSourceAddress validates a source-address value: a comma-separated
// list of addresses and CIDR prefixes, each in canonical form (no host bits
// set), so that every verifier reads it the same way. It returns the reason
// for a refusal, or "".
func checkSourceAddress(value string) string {
	if value == "" {
		return "must list at least one address"
	}
	for entry := range strings.SplitSeq(value, ",") {
		if strings.Contains(entry, "/") {
			p, err := netip.ParsePrefix(entry)
			if err != nil {
				return fmt.Sprintf("entry %q is not a CIDR prefix", entry)
			}
			if p != p.Masked() {
				return fmt.Sprintf("entry %q has host bits set; want %s", entry, p.Masked())
			}
			continue
		}
		if addr, err := netip.ParseAddr(entry); err != nil || addr.Zone() != "" {
			return fmt.Sprintf("entry %q is not an IP address", entry)
		}
	}
	return ""
}

// printable reports whether s is valid UTF-8 with no control characters.
func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

// rsaBits returns the modulus size of an ssh-rsa key, or 0 if it cannot tell.
func rsaBits(k ssh.PublicKey) int {
	ck, ok := k.(ssh.CryptoPublicKey)
	if !ok {
		return 0
	}
	rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey)
	if !ok {
		return 0
	}
	return rk.N.BitLen()
}
