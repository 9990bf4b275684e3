package manifest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// keyComment names the recording key in its files.
const keyComment = "bastion-recordings"

// LoadOrCreateKey reads the recording key (OpenSSH private key format) at
// path, or generates an ed25519 key there (mode 0600) with its public key
// next to it in path+".pub" (authorized_keys format, what offline
// verification takes).
func LoadOrCreateKey(path string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("recording key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("recording key %s: %w", path, err)
	}
	if signer.PublicKey().Type() != ssh.KeyAlgoED25519 {
		return nil, fmt.Errorf("recording key %s: type %s, want ed25519", path, signer.PublicKey().Type())
	}
	return signer, nil
}

func createKey(path string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("recording key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, keyComment)
	if err != nil {
		return nil, fmt.Errorf("recording key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("recording key: %w", err)
	}
	// O_EXCL: a concurrent start that wrote a key first wins; read it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("recording key: %w", err)
	}
	_, err = f.Write(pem.EncodeToMemory(block))
	if err = errors.Join(err, f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("recording key: %w", err)
	}
	if err := os.WriteFile(path+".pub", []byte(AuthorizedKey(signer.PublicKey())), 0o644); err != nil {
		return nil, fmt.Errorf("recording key: %w", err)
	}
	return signer, nil
}

// AuthorizedKey is the public key as one authorized_keys line.
func AuthorizedKey(pub ssh.PublicKey) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n") + " " + keyComment + "\n"
}

// ReadPublicKey reads a public key in authorized_keys format (the .pub file
// LoadOrCreateKey writes).
func ReadPublicKey(path string) (ssh.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return pub, nil
}
