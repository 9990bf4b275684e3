// Package manifest makes recordings verifiable: the chunks of a recording
// are hashed (SHA-256) and chained, and a manifest naming the session, the
// chunks and the final chain hash is signed with Bastion's recording key
// (ed25519). Verify checks a recording against its manifest and names the
// first chunk that is missing, altered or extra. It reads through a Source:
// the bucket, or a directory holding a downloaded copy (DirSource), so that
// an auditor can verify offline with nothing but the public key.
package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/ssh"
)

// Version is the manifest format this package writes and reads.
const Version = 1

// MaxSize bounds a manifest's encoding: about 10 000 chunks of a
// long session fit many times over.
const MaxSize = 64 << 20

// Status says how a recording ended.
type Status string

const (
	// Complete: the session ended and everything it recorded is here.
	Complete Status = "complete"
	// Interrupted: Bastion stopped while the session ran; the recording is
	// complete up to the last byte that reached the spool.
	Interrupted Status = "interrupted"
)

// Chunk is one chunk of a recording, numbered from 1.
type Chunk struct {
	N      int    `json:"n"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hex
}

// Manifest describes a recording: who, what, when, and its chunks.
type Manifest struct {
	Version int               `json:"version"`
	Name    string            `json:"name"` // the recording's object name
	Status  Status            `json:"status"`
	Started time.Time         `json:"started"`
	Ended   time.Time         `json:"ended"`
	Session map[string]string `json:"session,omitempty"` // id, user, target, login, protocol, …
	Chunks  []Chunk           `json:"chunks"`
	Size    int64             `json:"size"`  // the sum of the chunk sizes
	Chain   string            `json:"chain"` // hex: the chain hash after the last chunk
	Signer  string            `json:"signer"`
	KeyID   string            `json:"key_id"` // SHA256 fingerprint of the signing key
}

// signed is the stored form: the manifest's exact bytes and their signature,
// so that verification never depends on how JSON is re-encoded.
type signed struct {
	Manifest  json.RawMessage `json:"manifest"`
	Format    string          `json:"signature_format"`
	Signature string          `json:"signature"` // base64
}

// Chain computes the hash chain of a recording's chunks:
//
//	c0 = SHA-256("bastion-recording-chain-v1\n" || name)
//	cN = SHA-256(c(N-1) || uint64 big-endian N || SHA-256(chunk N))
//
// so that a chunk cannot be moved, dropped or swapped with one of another
// recording without the chain changing.
type Chain struct {
	sum [sha256.Size]byte
	n   uint64
}

// NewChain starts the chain of the recording name.
func NewChain(name string) *Chain {
	return &Chain{sum: sha256.Sum256([]byte("bastion-recording-chain-v1\n" + name))}
}

// Add chains the hash of the next chunk.
func (c *Chain) Add(chunkSum [sha256.Size]byte) {
	c.n++
	h := sha256.New()
	h.Write(c.sum[:])
	binary.Write(h, binary.BigEndian, c.n) //nolint:errcheck // hash writes do not fail
	h.Write(chunkSum[:])
	copy(c.sum[:], h.Sum(nil))
}

// Sum is the chain hash so far, in hex.
func (c *Chain) Sum() string { return hex.EncodeToString(c.sum[:]) }

// Sign encodes m, sets its KeyID, and signs it with key (an ed25519 SSH
// signer).
func Sign(m *Manifest, key ssh.Signer) ([]byte, error) {
	if key.PublicKey().Type() != ssh.KeyAlgoED25519 {
		return nil, fmt.Errorf("manifest: sign: key type %s, want ed25519", key.PublicKey().Type())
	}
	m.Version = Version
	m.KeyID = ssh.FingerprintSHA256(key.PublicKey())
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("manifest: sign: %w", err)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("manifest: sign: %w", err)
	}
	sig, err := key.Sign(nil, raw) // ed25519 ignores the randomness source
	if err != nil {
		return nil, fmt.Errorf("manifest: sign: %w", err)
	}
	// Not indented: that would re-indent the signed bytes.
	out, err := json.Marshal(signed{Manifest: raw, Format: sig.Format, Signature: base64.StdEncoding.EncodeToString(sig.Blob)})
	if err != nil {
		return nil, fmt.Errorf("manifest: sign: %w", err)
	}
	return append(out, '\n'), nil
}

// ErrSignature is wrapped by the error of a manifest whose signature does
// not verify with the key given.
var ErrSignature = errors.New("manifest signature does not verify")

// Parse decodes a signed manifest, checks its signature with pub (an
// ed25519 SSH public key) and its consistency.
func Parse(data []byte, pub ssh.PublicKey) (*Manifest, error) {
	s, m, err := decode(data)
	if err != nil {
		return nil, err
	}
	if pub.Type() != ssh.KeyAlgoED25519 {
		return nil, fmt.Errorf("manifest: key type %s, want ed25519", pub.Type())
	}
	blob, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil {
		return nil, fmt.Errorf("manifest: signature: %w", err)
	}
	if err := pub.Verify(s.Manifest, &ssh.Signature{Format: s.Format, Blob: blob}); err != nil {
		return nil, fmt.Errorf("manifest: %w (key %s): %v", ErrSignature, ssh.FingerprintSHA256(pub), err)
	}
	return m, nil
}

// Decode decodes a signed manifest without checking its signature: for
// showing what a manifest claims. Use Parse to trust it.
func Decode(data []byte) (*Manifest, error) {
	_, m, err := decode(data)
	return m, err
}

func decode(data []byte) (*signed, *Manifest, error) {
	if len(data) > MaxSize {
		return nil, nil, fmt.Errorf("manifest: larger than %d bytes", MaxSize)
	}
	var s signed
	if err := strictUnmarshal(data, &s); err != nil {
		return nil, nil, fmt.Errorf("manifest: %w", err)
	}
	var m Manifest
	if err := strictUnmarshal(s.Manifest, &m); err != nil {
		return nil, nil, fmt.Errorf("manifest: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, nil, fmt.Errorf("manifest: %w", err)
	}
	return &s, &m, nil
}

// strictUnmarshal decodes one JSON value with no unknown fields and nothing
// after it.
func strictUnmarshal(data []byte, v any) error {
	if len(data) == 0 {
		return errors.New("empty")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("data after the JSON value")
	}
	return nil
}

// check verifies what a manifest must hold whatever signed it.
func (m *Manifest) check() error {
	if m.Version != Version {
		return fmt.Errorf("version %d, want %d", m.Version, Version)
	}
	if m.Name == "" {
		return errors.New("no recording name")
	}
	if m.Status != Complete && m.Status != Interrupted {
		return fmt.Errorf("unknown status %q", m.Status)
	}
	var size int64
	for i, c := range m.Chunks {
		if c.N != i+1 {
			return fmt.Errorf("chunk %d listed as number %d", i+1, c.N)
		}
		if c.Size < 0 {
			return fmt.Errorf("chunk %d: negative size", c.N)
		}
		if b, err := hex.DecodeString(c.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("chunk %d: bad sha256 %q", c.N, c.SHA256)
		}
		size += c.Size
		if size < 0 {
			return errors.New("size overflows")
		}
	}
	if size != m.Size {
		return fmt.Errorf("size %d is not the sum of the chunk sizes (%d)", m.Size, size)
	}
	chain := NewChain(m.Name)
	for _, c := range m.Chunks {
		var sum [sha256.Size]byte
		hex.Decode(sum[:], []byte(c.SHA256)) //nolint:errcheck // checked above
		chain.Add(sum)
	}
	if chain.Sum() != m.Chain {
		return fmt.Errorf("chain hash %q does not follow from the chunk hashes", m.Chain)
	}
	return nil
}
