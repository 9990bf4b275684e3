package manifest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Names of the parts of a recording, as objects under its key prefix in a
// bucket and as files in a downloaded copy.
const (
	// ManifestPart is the signed manifest.
	ManifestPart = "manifest"
	// ChunkPrefix starts the name of every chunk: chunk-000001, …
	ChunkPrefix = "chunk-"
	// ChunkDigits is the least number of digits of a chunk number.
	ChunkDigits = 6
)

// ChunkPartName is the part name of chunk n.
func ChunkPartName(n int) string {
	return fmt.Sprintf("%s%0*d", ChunkPrefix, ChunkDigits, n)
}

// ParseChunkPart returns the number of a chunk part name, or false.
func ParseChunkPart(part string) (int, bool) {
	digits, ok := strings.CutPrefix(part, ChunkPrefix)
	if !ok || len(digits) < ChunkDigits || digits[0] == '+' || digits[0] == '-' {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// Source is where Verify reads a recording's parts.
type Source interface {
	// Manifest returns the signed manifest; an error wrapping
	// fs.ErrNotExist if there is none.
	Manifest(ctx context.Context) ([]byte, error)
	// Chunks returns the numbers of the chunks present, in any order.
	Chunks(ctx context.Context) ([]int, error)
	// Chunk opens chunk n.
	Chunk(ctx context.Context, n int) (io.ReadCloser, error)
}

// Problem kinds of a Failure.
const (
	Missing = "missing"
	Altered = "altered"
	Extra   = "extra"
)

// Failure is a recording that does not match its manifest: the first chunk,
// by number, that is missing, altered or extra.
type Failure struct {
	Kind  string // Missing, Altered or Extra
	Chunk int
	Why   string // for Altered: what differs
}

func (f *Failure) Error() string {
	msg := fmt.Sprintf("chunk %d is %s", f.Chunk, f.Kind)
	if f.Kind == Extra {
		msg = fmt.Sprintf("chunk %d is extra (not in the manifest)", f.Chunk)
	}
	if f.Why != "" {
		msg += ": " + f.Why
	}
	return msg
}

// Verify checks the recording in src against its manifest, signed by pub.
// It returns the manifest when every chunk is present and unaltered and no
// other chunk exists; a *Failure naming the first chunk that is missing,
// altered or extra; or another error (no manifest, a bad signature, the
// source unreadable).
func Verify(ctx context.Context, src Source, pub ssh.PublicKey) (*Manifest, error) {
	data, err := src.Manifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	m, err := Parse(data, pub)
	if err != nil {
		return nil, err
	}
	present, err := src.Chunks(ctx)
	if err != nil {
		return nil, fmt.Errorf("list chunks: %w", err)
	}
	slices.Sort(present)
	have := map[int]bool{}
	for _, n := range present {
		have[n] = true
	}
	// The manifest numbers its chunks 1…N without gaps, so every extra
	// chunk is numbered after the last one.
	for _, c := range m.Chunks {
		if !have[c.N] {
			return m, &Failure{Kind: Missing, Chunk: c.N}
		}
		if err := checkChunk(ctx, src, c); err != nil {
			return m, err
		}
		present = slices.DeleteFunc(present, func(n int) bool { return n <= c.N })
	}
	if len(present) > 0 {
		return m, &Failure{Kind: Extra, Chunk: present[0]}
	}
	return m, nil
}

// checkChunk hashes chunk c from src.
func checkChunk(ctx context.Context, src Source, c Chunk) error {
	rc, err := src.Chunk(ctx, c.N)
	if errors.Is(err, fs.ErrNotExist) {
		return &Failure{Kind: Missing, Chunk: c.N}
	}
	if err != nil {
		return fmt.Errorf("read chunk %d: %w", c.N, err)
	}
	defer rc.Close()
	h := sha256.New()
	// Read one byte past the size: a longer chunk is altered too.
	n, err := io.Copy(h, io.LimitReader(rc, c.Size+1))
	if err != nil {
		return fmt.Errorf("read chunk %d: %w", c.N, err)
	}
	if n != c.Size {
		return &Failure{Kind: Altered, Chunk: c.N, Why: fmt.Sprintf("size differs from the manifest's %d bytes", c.Size)}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != c.SHA256 {
		return &Failure{Kind: Altered, Chunk: c.N, Why: "SHA-256 differs from the manifest's"}
	}
	return nil
}

// DirSource reads a downloaded copy of a recording: a directory holding the
// parts as files (manifest, chunk-000001, …), as `s3cmd get --recursive` or
// `aws s3 cp --recursive` of the recording's key prefix leaves them.
type DirSource string

var _ Source = DirSource("")

// Manifest reads DIR/manifest.
func (d DirSource) Manifest(context.Context) ([]byte, error) {
	f, err := os.Open(filepath.Join(string(d), ManifestPart))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxSize+1))
}

// Chunks lists the chunk files of the directory.
func (d DirSource) Chunks(context.Context) ([]int, error) {
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return nil, err
	}
	var ns []int
	for _, e := range entries {
		if n, ok := ParseChunkPart(e.Name()); ok && e.Type().IsRegular() {
			ns = append(ns, n)
		}
	}
	return ns, nil
}

// Chunk opens chunk n's file.
func (d DirSource) Chunk(_ context.Context, n int) (io.ReadCloser, error) {
	return os.Open(filepath.Join(string(d), ChunkPartName(n)))
}
