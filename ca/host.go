package ca

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"
)

// hostKeyComment is the comment of the .pub file next to a generated host key.
const hostKeyComment = "bastion-host-key"

// hostCertKeyID is the key ID of the certificate of Bastion's own host key.
const hostCertKeyID = "bastion-host"

// clockSkew backdates certificates Bastion issues to itself, so that a
// client whose clock is a little behind still accepts them.
const clockSkew = time.Minute

// LoadOrCreateHostKey loads Bastion's host key from the OpenSSH-format
// private key file at path, or on first start generates an ed25519 key
// there, with the same file rules as LoadOrCreateSSH.
func LoadOrCreateHostKey(path string) (ssh.Signer, error) {
	signer, err := loadOrCreateSSHKey(path, hostKeyComment)
	if err != nil {
		return nil, fmt.Errorf("ca: load host key: %w", err)
	}
	return signer, nil
}

// HostCertSigner certifies hostKey with hostCA for the host names
// principals, valid from a minute ago (clock skew) for validFor, and returns
// a signer presenting that certificate, to be added to ssh.ServerConfig with
// AddHostKey alongside the plain key, and the certificate itself. The
// certificate is not renewed: validFor must cover the life of the process,
// or the caller must build a new server configuration before it ends.
func HostCertSigner(hostCA *SSHAuthority, hostKey ssh.Signer, principals []string, validFor time.Duration) (ssh.Signer, *ssh.Certificate, error) {
	if hostCA == nil || hostKey == nil {
		return nil, nil, errors.New("ca: host certificate signer: no host CA or host key")
	}
	if validFor <= 0 {
		return nil, nil, fmt.Errorf("ca: host certificate signer: validity %v must be positive", validFor)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("ca: host certificate signer: %w", err)
	}
	now := hostCA.now()
	cert, err := hostCA.SignHost(HostCertRequest{
		Key:         hostKey.PublicKey(),
		KeyID:       hostCertKeyID,
		Serial:      serial,
		Principals:  principals,
		ValidAfter:  now.Add(-clockSkew),
		ValidBefore: now.Add(validFor),
	})
	if err != nil {
		return nil, nil, err
	}
	signer, err := ssh.NewCertSigner(cert, hostKey)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: host certificate signer: %w", err)
	}
	return signer, cert, nil
}

// randomSerial returns a random non-zero serial, for certificates that no
// store numbers.
func randomSerial() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		if s := binary.BigEndian.Uint64(b[:]); s != 0 {
			return s, nil
		}
	}
}
