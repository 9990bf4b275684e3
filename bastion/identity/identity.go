// Package identity maps the SSH keys people log in with to Bastion users.
package identity

import (
	"fmt"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Directory finds users by their registered SSH public keys. Its keys can
// be replaced while it is used (a configuration reload): lookups see either
// the old set or the new one, never a mix.
type Directory struct {
	mu    sync.RWMutex
	byKey map[string]string // SHA256 fingerprint -> user
}

// NewDirectory indexes keys by user. A key registered to two users is an
// error: a key must identify one person.
func NewDirectory(keys map[string][]ssh.PublicKey) (*Directory, error) {
	byKey, err := index(keys)
	if err != nil {
		return nil, err
	}
	return &Directory{byKey: byKey}, nil
}

// Replace puts keys in place of the directory's keys, all at once, or
// changes nothing if keys are invalid. A removed key's certificates stop
// working at once, and the live sessions it opened end at their next grant
// check (access.Service.CheckGrant asks Owner).
func (d *Directory) Replace(keys map[string][]ssh.PublicKey) error {
	byKey, err := index(keys)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.byKey = byKey
	return nil
}

func index(keys map[string][]ssh.PublicKey) (map[string]string, error) {
	byKey := map[string]string{}
	for user, ks := range keys {
		for _, k := range ks {
			fp := ssh.FingerprintSHA256(k)
			if other, dup := byKey[fp]; dup && other != user {
				return nil, fmt.Errorf("identity: key %s is registered to both %s and %s", fp, other, user)
			}
			byKey[fp] = user
		}
	}
	return byKey, nil
}

// User returns the user who registered key. A certificate is looked up by
// the key it certifies: whoever holds the private key is that user, whatever
// the certificate says.
func (d *Directory) User(key ssh.PublicKey) (string, bool) {
	if c, ok := key.(*ssh.Certificate); ok {
		key = c.Key
	}
	return d.Owner(ssh.FingerprintSHA256(key))
}

// Owner returns the user who registered the key with this SHA256
// fingerprint.
func (d *Directory) Owner(fingerprint string) (string, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	u, ok := d.byKey[fingerprint]
	return u, ok
}
