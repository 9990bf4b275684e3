package ca

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// File modes of what this package writes.
const (
	dirMode     fs.FileMode = 0o700 // directories created for key files
	keyFileMode fs.FileMode = 0o600 // private keys: the owner only
	pubFileMode fs.FileMode = 0o644 // public keys and certificates
)

// maxKeyFileSize bounds what is read from a key file; real keys are a few KiB.
const maxKeyFileSize = 1 << 20

// readPrivateFile reads a private key file. It refuses a file that is not a
// regular file or that group or others may access. A missing file yields an
// error matching fs.ErrNotExist.
func readPrivateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: permissions %#o give group or others access to a private key; want %#o", path, perm, keyFileMode)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a key file", path, maxKeyFileSize)
	}
	return data, nil
}

// writeNewFile creates path with data and mode perm. The file appears
// complete or not at all (it is written under a temporary name and then
// linked into place), and an existing path is never overwritten: the error
// then matches fs.ErrExist. This makes first-start creation safe when two
// processes share a data directory.
func writeNewFile(path string, data []byte, perm fs.FileMode) error {
	return writeFile(path, data, perm, os.Link)
}

// replaceFile writes path atomically, replacing any existing file.
func replaceFile(path string, data []byte, perm fs.FileMode) error {
	return writeFile(path, data, perm, os.Rename)
}

func writeFile(path string, data []byte, perm fs.FileMode, place func(oldpath, newpath string) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // created 0600
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after Link the name is an extra link; after Rename it is gone
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := place(tmpName, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadSSHSigner reads an OpenSSH private key file (see readPrivateFile for
// the rules on the file itself).
func loadSSHSigner(path string) (ssh.Signer, error) {
	data, err := readPrivateFile(path)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("%s: passphrase-protected keys are not supported", path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return signer, nil
}

// loadOrCreateSSHKey loads the OpenSSH private key at path or, if there is
// none, generates an ed25519 key there (directory 0700, key 0600) with
// "<path>.pub" (0644) next to it, whose comment is comment.
func loadOrCreateSSHKey(path, comment string) (ssh.Signer, error) {
	if path == "" {
		return nil, errors.New("no key file path")
	}
	signer, err := loadSSHSigner(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return signer, err
	}

	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, err
	}
	signer, err = ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	if err := writeNewFile(path, pem.EncodeToMemory(block), keyFileMode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first; use theirs.
			return loadSSHSigner(path)
		}
		return nil, err
	}
	// The .pub file is derived from the key we just created: any older one
	// belongs to a key that no longer exists, so it is replaced.
	if err := replaceFile(path+".pub", []byte(authorizedKey(signer.PublicKey(), comment)+"\n"), pubFileMode); err != nil {
		return nil, err
	}
	return signer, nil
}

// authorizedKey formats pub as one authorized_keys line with a comment and
// no trailing newline.
func authorizedKey(pub ssh.PublicKey, comment string) string {
	line := ssh.MarshalAuthorizedKey(pub) // "type base64\n"
	line = line[:len(line)-1]
	if comment == "" {
		return string(line)
	}
	return string(line) + " " + comment
}
