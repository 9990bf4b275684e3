package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the manifest decoder: it must not
// panic, and what it accepts must be consistent and encode again.
func FuzzDecode(f *testing.F) {
	key, err := LoadOrCreateKey(filepath.Join(f.TempDir(), "key"))
	if err != nil {
		f.Fatal(err)
	}
	m := &Manifest{Name: "a.cast", Status: Complete, Chain: NewChain("a.cast").Sum()}
	sum := sha256.Sum256([]byte("x"))
	c := NewChain("a.cast")
	c.Add(sum)
	m2 := &Manifest{Name: "a.cast", Status: Interrupted, Chunks: []Chunk{{N: 1, Size: 1, SHA256: hex.EncodeToString(sum[:])}}, Size: 1, Chain: c.Sum()}
	for _, m := range []*Manifest{m, m2} {
		b, err := Sign(m, key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"manifest":{},"signature_format":"ssh-ed25519","signature":""}`))
	f.Add([]byte(`{"manifest":{"version":1,"chunks":[{"n":2}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		var size int64
		for i, c := range m.Chunks {
			if c.N != i+1 || c.Size < 0 {
				t.Fatalf("accepted chunk %d: %+v", i+1, c)
			}
			size += c.Size
		}
		if size != m.Size {
			t.Fatalf("accepted size %d, chunks sum to %d", m.Size, size)
		}
		// Parse with any key either verifies or fails; it never panics.
		Parse(data, key.PublicKey()) //nolint:errcheck // only checking it does not panic
	})
}
