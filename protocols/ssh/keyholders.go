package ssh

import (
	"fmt"
	"sync"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/internal/frontend"
)

// keyHolders are the live self-service connections and whose key each
// authenticated with, so that KeysChanged can end those whose key was
// removed. (Target sessions are ended by the grant watcher: a grant holds
// only while its key is its user's.)
type keyHolders struct {
	mu sync.Mutex
	m  map[*frontend.Conn]access.Actor
}

// hold tracks fc, authenticated as a, until the returned func is called.
func (h *keyHolders) hold(fc *frontend.Conn, a access.Actor) (release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[*frontend.Conn]access.Actor{}
	}
	h.m[fc] = a
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.m, fc)
	}
}

// KeysChanged ends the self-service connections whose key is no longer
// registered to their user (after a reload of the users' keys).
func (s *Server) KeysChanged() {
	s.holders.mu.Lock()
	var gone []*frontend.Conn
	var why []error
	for fc, a := range s.holders.m {
		if a.Key == nil {
			continue
		}
		if owner, ok := s.cfg.Users.User(a.Key); !ok || owner != a.User {
			gone = append(gone, fc)
			why = append(why, fmt.Errorf("your key %s is no longer registered to %s", ssh.FingerprintSHA256(a.Key), a.User))
		}
	}
	s.holders.mu.Unlock()
	for i, fc := range gone {
		fc.End(why[i])
	}
}
