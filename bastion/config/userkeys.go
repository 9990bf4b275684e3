package config

import (
	"crypto/rsa"
	"fmt"

	"golang.org/x/crypto/ssh"
)

// MinRSABits is the smallest RSA key a user may register: NIST and
// OpenSSH (which refuses RSA keys under 1024 bits, and warns under 2048)
// count shorter keys as breakable.
const MinRSABits = 2048

// userKey checks a key a user registers: a plain key (not a certificate,
// which identifies nobody: it is looked up by the key it certifies), and
// an RSA key of at least MinRSABits bits.
func userKey(key ssh.PublicKey) error {
	if _, isCert := key.(*ssh.Certificate); isCert {
		return fmt.Errorf("is a certificate, not a public key (register the key it certifies)")
	}
	if ck, ok := key.(ssh.CryptoPublicKey); ok {
		if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < MinRSABits {
			return fmt.Errorf("is a %d-bit RSA key; RSA keys must have at least %d bits (or use ed25519)", rk.N.BitLen(), MinRSABits)
		}
	}
	return nil
}
