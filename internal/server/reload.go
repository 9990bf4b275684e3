package server

import (
	"context"
	"fmt"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/config"
)

// ConfigReload is the audit event type of a reload of the users' keys.
const ConfigReload = "config.reload"

// usersKeys is every user's registered keys.
func usersKeys(cfg *config.Config) map[string][]ssh.PublicKey {
	keys := map[string][]ssh.PublicKey{}
	for name, u := range cfg.Users {
		keys[name] = u.Keys
	}
	return keys
}

// ReloadKeys applies the users' keys of the configuration file at path
// (`kill -HUP`): a key added works at once; a key removed, or moved to
// another user, stops working at once, for itself and for every
// certificate of it, and the live sessions it opened end at once (on
// targets with a message). The file must be valid as a whole, or nothing changes; nothing
// else in it is applied until a restart.
func (b *Bastion) ReloadKeys(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	keys := usersKeys(cfg)
	if err := b.keys.Replace(keys); err != nil {
		return err
	}
	b.grants.Wake()     // end the target sessions of removed keys now, not at the next tick
	b.SSH.KeysChanged() // and their self-service connections
	n := 0
	for _, ks := range keys {
		n += len(ks)
	}
	reason := fmt.Sprintf("users' keys reloaded from %s: %d users, %d keys", path, len(keys), n)
	b.Access.Record(context.Background(), access.Actor{User: "bastion"}, audit.Event{Type: ConfigReload, Outcome: audit.OutcomeOK, Reason: reason})
	b.log.Info("users' keys reloaded", "path", path, "users", len(keys), "keys", n)
	return nil
}
