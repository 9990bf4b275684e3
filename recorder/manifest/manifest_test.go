package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func testKey(t *testing.T) ssh.Signer {
	t.Helper()
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "key"))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// writeCopy writes a downloaded copy of a recording of the given chunks,
// and its manifest signed with key, to a new directory.
func writeCopy(t *testing.T, key ssh.Signer, chunks ...string) string {
	t.Helper()
	dir := t.TempDir()
	m := &Manifest{Name: "ssh/x.cast", Status: Complete, Started: time.Unix(1e9, 0).UTC(), Ended: time.Unix(1e9+60, 0).UTC(),
		Session: map[string]string{"user": "alice"}, Signer: "test"}
	chain := NewChain(m.Name)
	for i, c := range chunks {
		sum := sha256.Sum256([]byte(c))
		chain.Add(sum)
		m.Chunks = append(m.Chunks, Chunk{N: i + 1, Size: int64(len(c)), SHA256: hex.EncodeToString(sum[:])})
		m.Size += int64(len(c))
		if err := os.WriteFile(filepath.Join(dir, ChunkPartName(i+1)), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m.Chain = chain.Sum()
	signed, err := Sign(m, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestPart), signed, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestVerify(t *testing.T) {
	key := testKey(t)
	tests := []struct {
		name   string
		tamper func(dir string) error
		kind   string // "" for ok
		chunk  int
	}{
		{name: "intact", tamper: func(string) error { return nil }},
		{name: "altered", kind: Altered, chunk: 2, tamper: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, ChunkPartName(2)), []byte("BBB\n"), 0o600)
		}},
		{name: "longer", kind: Altered, chunk: 3, tamper: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, ChunkPartName(3)), []byte("ccc\nmore\n"), 0o600)
		}},
		{name: "deleted", kind: Missing, chunk: 2, tamper: func(dir string) error {
			return os.Remove(filepath.Join(dir, ChunkPartName(2)))
		}},
		{name: "added", kind: Extra, chunk: 4, tamper: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, ChunkPartName(4)), []byte("ddd\n"), 0o600)
		}},
		{name: "altered before deleted", kind: Altered, chunk: 1, tamper: func(dir string) error {
			return errors.Join(os.WriteFile(filepath.Join(dir, ChunkPartName(1)), []byte("xxx\n"), 0o600),
				os.Remove(filepath.Join(dir, ChunkPartName(3))))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeCopy(t, key, "aaa\n", "bbb\n", "ccc\n")
			if err := tt.tamper(dir); err != nil {
				t.Fatal(err)
			}
			m, err := Verify(t.Context(), DirSource(dir), key.PublicKey())
			if tt.kind == "" {
				if err != nil || m.Session["user"] != "alice" || len(m.Chunks) != 3 {
					t.Fatalf("Verify = %+v, %v; want ok", m, err)
				}
				return
			}
			var f *Failure
			if !errors.As(err, &f) || f.Kind != tt.kind || f.Chunk != tt.chunk {
				t.Fatalf("Verify error %v, want chunk %d %s", err, tt.chunk, tt.kind)
			}
			if !strings.Contains(err.Error(), "chunk") {
				t.Errorf("error %q does not name the chunk", err)
			}
		})
	}
}

func TestVerifyManifest(t *testing.T) {
	key, other := testKey(t), testKey(t)
	dir := writeCopy(t, key, "aaa\n")
	if _, err := Verify(t.Context(), DirSource(dir), other.PublicKey()); !errors.Is(err, ErrSignature) {
		t.Errorf("with another key: %v, want ErrSignature", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ManifestPart))
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(b), `"status":"complete"`, `"status":"interrupted"`, 1)
	if forged == string(b) {
		t.Fatal("the manifest has no status to change")
	}
	os.WriteFile(filepath.Join(dir, ManifestPart), []byte(forged), 0o600)
	if _, err := Verify(t.Context(), DirSource(dir), key.PublicKey()); !errors.Is(err, ErrSignature) {
		t.Errorf("with a changed manifest: %v, want ErrSignature", err)
	}
	os.Remove(filepath.Join(dir, ManifestPart))
	if _, err := Verify(t.Context(), DirSource(dir), key.PublicKey()); err == nil || !strings.Contains(err.Error(), "manifest") {
		t.Errorf("without a manifest: %v", err)
	}
}

func TestKeyFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	key, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode())
	}
	again, err := LoadOrCreateKey(path)
	if err != nil || string(again.PublicKey().Marshal()) != string(key.PublicKey().Marshal()) {
		t.Fatalf("reloaded key differs: %v", err)
	}
	pub, err := ReadPublicKey(path + ".pub")
	if err != nil || string(pub.Marshal()) != string(key.PublicKey().Marshal()) {
		t.Fatalf("public key file: %v", err)
	}
}
