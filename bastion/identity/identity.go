// Package identity maps the SSH keys people log in with to Bastion users.
package identity

import (
	"fmt"

	"golang.org/x/crypto/ssh"
)

// Directory finds users by their registered SSH public keys.
type Directory struct {
	byKey map[string]string // SHA256 fingerprint -> user
}

// NewDirectory indexes keys by user. A key registered to two users is an
// error: a key must identify one person.
func NewDirectory(keys map[string][]ssh.PublicKey) (*Directory, error) {
	d := &Directory{byKey: map[string]string{}}
	for user, ks := range keys {
		for _, k := range ks {
			fp := ssh.FingerprintSHA256(k)
			if other, dup := d.byKey[fp]; dup && other != user {
				return nil, fmt.Errorf("identity: key %s is registered to both %s and %s", fp, other, user)
			}
			d.byKey[fp] = user
		}
	}
	return d, nil
}

// User returns the user who registered key. A certificate is looked up by
// the key it certifies: whoever holds the private key is that user, whatever
// the certificate says.
func (d *Directory) User(key ssh.PublicKey) (string, bool) {
	if c, ok := key.(*ssh.Certificate); ok {
		key = c.Key
	}
	u, ok := d.byKey[ssh.FingerprintSHA256(key)]
	return u, ok
}
