// Package s3store is a recorder.Storage in an S3-compatible bucket, through
// minio-go: recordings go to AWS S3, MinIO, versitygw, Ceph and the like.
//
// # Layout
//
// S3 objects cannot be appended to, so one recording (a logical object NAME)
// is a set of S3 objects under the key prefix PREFIX/NAME/ ("parts"):
//
//	PREFIX/NAME/created        written by Create, exclusively (If-None-Match: *);
//	                           holds NAME and a random token, one per line
//	PREFIX/NAME/chunk-000001   the bytes of the first Sync (or Close)
//	PREFIX/NAME/chunk-000002   the bytes written after it, up to the next Sync
//	…
//	PREFIX/NAME/manifest       the signed manifest (package manifest), written
//	                           by Seal just before the closed marker
//	PREFIX/NAME/closed         written, empty, by Close (or Seal) after the last chunk
//
// The content of NAME is the concatenation of its chunks in numerical order;
// chunk numbers start at 1, have at least 6 digits and leave no gap. Each
// chunk boundary is a Sync. The spool (package spool) writes through
// PutCreated, PutChunk and Seal instead of an Object, cutting, hashing and
// signing the chunks itself. An object without a closed marker is being written, or its writer
// died. An object exists as long as any of its parts does.
//
// A name so long that its keys would pass the S3 key limit (1024 bytes) is
// kept under PREFIX/~long/SHA256HEX/ instead, with the same parts; its name is
// then known only from its created marker, which List reads. No valid name
// holds "~", so the two layouts cannot meet.
//
// Backends that store keys as files (versitygw's posix backend) cannot hold
// both NAME/created and NAME/created/...: a name whose last element is a part
// name ("created", "closed", "chunk-…") below another object fails there.
package s3store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/manifest"
)

// Part names: the last element of every key.
const (
	createdPart = "created"
	closedPart  = "closed"
	// manifestPart is the signed manifest the spool writes before the
	// closed marker (package recorder/manifest).
	manifestPart = manifest.ManifestPart
	chunkPrefix  = manifest.ChunkPrefix
	// maxPartLen bounds the length of a part name: a chunk number fits in
	// 10 digits (Sync refuses to go past maxChunks).
	maxPartLen = len(chunkPrefix) + 10
	maxChunks  = 1<<31 - 1
	// longDir holds the objects whose names are too long for the plain
	// layout.
	longDir = "~long"
	// maxKeyLen is the S3 limit on the length of a key.
	maxKeyLen = 1024
	// maxPrefixLen bounds Config.Prefix, so that long names still fit in
	// the ~long layout.
	maxPrefixLen = 512
)

const (
	// requestTimeout bounds one request made by an Object (Sync and Close
	// have no context): the upload of one chunk or marker, retries
	// included.
	requestTimeout = 2 * time.Minute
	// maxBuffered is how many bytes Write holds before it uploads them as
	// a chunk by itself, without waiting for Sync.
	maxBuffered = 16 << 20
)

// Config says where recordings are stored.
type Config struct {
	// Endpoint is the server's host:port, without scheme.
	Endpoint string
	// Bucket must exist.
	Bucket string
	// Prefix is prepended to every key ("recordings" stores NAME under
	// recordings/NAME/); empty stores at the root of the bucket. Leading
	// and trailing slashes are ignored; the rest follows the rules of
	// recorder.ValidateName, up to 512 bytes.
	Prefix string
	// AccessKey and SecretKey are static V4 credentials.
	AccessKey, SecretKey string
	// Region is the bucket's region ("us-east-1" for most S3-compatible
	// servers); empty asks the server.
	Region string
	// Secure selects HTTPS.
	Secure bool
	// VirtualHost addresses the bucket as BUCKET.ENDPOINT (AWS's
	// virtual-hosted style) instead of ENDPOINT/BUCKET (path style, the
	// default, which every S3-compatible server takes).
	VirtualHost bool
	// MaxRetries is how often minio-go tries a request (0: its default,
	// 10). A caller that retries by itself, like the spool, sets 1.
	MaxRetries int
	// ObjectLock, if Mode is set, gives every part written an Object Lock
	// retention (the bucket must have Object Lock enabled).
	ObjectLock ObjectLock
}

// ObjectLock is the retention set on upload.
type ObjectLock struct {
	Mode string        // "GOVERNANCE" or "COMPLIANCE"; "" for none
	For  time.Duration // how long each part is retained from its upload
}

// Store is a recorder.Storage in an S3 bucket; see the package
// documentation for the layout. It is safe for concurrent use.
//
// Create is exclusive across processes too when the server honours
// If-None-Match on PutObject (AWS S3, MinIO, versitygw do).
type Store struct {
	client *minio.Client
	bucket string
	prefix string // "" or ending in "/"
	lock   ObjectLock
}

var _ recorder.Storage = (*Store)(nil)

// New connects to the bucket of cfg. It checks that the bucket exists and
// that the credentials are accepted.
func New(ctx context.Context, cfg Config) (*Store, error) {
	s, err := NewUnchecked(cfg)
	if err != nil {
		return nil, err
	}
	// A listing, rather than HEAD bucket, whose errors have no body: its
	// error codes tell a missing bucket from refused credentials, and it
	// needs the permission List needs.
	if err := checkBucket(ctx, s.client, cfg.Bucket); err != nil {
		switch code := minio.ToErrorResponse(err).Code; {
		case code == minio.NoSuchBucket:
			return nil, fmt.Errorf("s3store: bucket %s does not exist at %s", cfg.Bucket, cfg.Endpoint)
		case deniedCode(err):
			return nil, fmt.Errorf("s3store: bucket %s at %s: access denied, check the access key and secret key: %w",
				cfg.Bucket, cfg.Endpoint, err)
		}
		return nil, fmt.Errorf("s3store: bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	return s, nil
}

// NewUnchecked is New without contacting the server: for a caller that
// must start while the storage is down (the spool), and checks later.
func NewUnchecked(cfg Config) (*Store, error) {
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := recorder.ValidateName(prefix); err != nil {
			return nil, fmt.Errorf("s3store: prefix: %w", err)
		}
		if len(prefix) > maxPrefixLen {
			return nil, fmt.Errorf("s3store: prefix longer than %d bytes", maxPrefixLen)
		}
		prefix += "/"
	}
	if m := cfg.ObjectLock.Mode; m != "" && m != string(minio.Governance) && m != string(minio.Compliance) {
		return nil, fmt.Errorf("s3store: object lock mode %q (use GOVERNANCE or COMPLIANCE)", m)
	}
	if cfg.Endpoint == "" || cfg.Bucket == "" {
		return nil, errors.New("s3store: endpoint and bucket are required")
	}
	lookup := minio.BucketLookupPath
	if cfg.VirtualHost {
		lookup = minio.BucketLookupDNS
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   cfg.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("s3store: %w", err)
	}
	return &Store{client: client, bucket: cfg.Bucket, prefix: prefix, lock: cfg.ObjectLock}, nil
}

// checkBucket lists at most one key of the bucket.
func checkBucket(ctx context.Context, client *minio.Client, bucket string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing after the first key
	for o := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{MaxKeys: 1}) {
		return o.Err
	}
	return nil
}

// deniedCode reports whether err is the server refusing the credentials.
func deniedCode(err error) bool {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return true
	case "XAdminUserNotFound": // versitygw's unknown access key, with status 404
		return true
	}
	return resp.StatusCode == http.StatusForbidden
}

// base returns the key prefix, ending in "/", of the parts of a valid name.
func (s *Store) base(name string) string {
	if len(s.prefix)+len(name)+1+maxPartLen > maxKeyLen {
		sum := sha256.Sum256([]byte(name))
		return s.prefix + longDir + "/" + hex.EncodeToString(sum[:]) + "/"
	}
	return s.prefix + name + "/"
}

// chunkKey returns the key of chunk n under base.
func chunkKey(base string, n int) string {
	return base + manifest.ChunkPartName(n)
}

// parts describes the S3 objects of one logical object.
type parts struct {
	created, closed bool
	manifest        bool
	chunks          []chunk // sorted by number
	markerTime      time.Time
}

type chunk struct {
	n    int
	key  string
	size int64
	time time.Time
}

func (p *parts) exists() bool { return p.created || p.closed || p.manifest || len(p.chunks) > 0 }

func (p *parts) size() int64 {
	var n int64
	for _, c := range p.chunks {
		n += c.size
	}
	return n
}

// modTime is that of the latest chunk, or of the latest marker if there
// is no chunk.
func (p *parts) modTime() time.Time {
	var t time.Time
	for _, c := range p.chunks {
		if c.time.After(t) {
			t = c.time
		}
	}
	if t.IsZero() {
		t = p.markerTime
	}
	return t
}

// add records the S3 object key with the given part name; it reports
// whether part is a part name.
func (p *parts) add(part string, o minio.ObjectInfo) bool {
	switch {
	case part == createdPart:
		p.created = true
	case part == closedPart:
		p.closed = true
	case part == manifestPart:
		p.manifest = true
	case strings.HasPrefix(part, chunkPrefix):
		n, ok := manifest.ParseChunkPart(part)
		if !ok {
			return false
		}
		p.chunks = append(p.chunks, chunk{n: n, key: o.Key, size: o.Size, time: o.LastModified})
		return true
	default:
		return false
	}
	if o.LastModified.After(p.markerTime) {
		p.markerTime = o.LastModified
	}
	return true
}

func (p *parts) sort() {
	slices.SortFunc(p.chunks, func(a, b chunk) int { return a.n - b.n })
}

// parts lists the parts of a valid name.
func (s *Store) parts(ctx context.Context, name string) (*parts, error) {
	base := s.base(name)
	p := &parts{}
	// Not recursive: the objects whose names start with NAME/ are left out
	// as common prefixes.
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: base}) {
		if o.Err != nil {
			return nil, o.Err
		}
		if part, ok := strings.CutPrefix(o.Key, base); ok && !strings.Contains(part, "/") {
			p.add(part, o)
		}
	}
	p.sort()
	return p, nil
}

// existing lists the parts of a valid name, failing with an error wrapping
// fs.ErrNotExist if it has none.
func (s *Store) existing(ctx context.Context, name string) (*parts, error) {
	p, err := s.parts(ctx, name)
	if err != nil {
		return nil, err
	}
	if !p.exists() {
		return nil, fs.ErrNotExist
	}
	return p, nil
}

// Create writes the object's created marker, if none of its parts exists.
func (s *Store) Create(ctx context.Context, name string) (recorder.Object, error) {
	if err := recorder.ValidateName(name); err != nil {
		return nil, fmt.Errorf("s3store: create: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3store: create %s: %w", name, err)
	}
	// Leftover chunks without a marker still make the name taken.
	p, err := s.parts(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("s3store: create %s: %w", name, err)
	}
	if p.exists() {
		return nil, fmt.Errorf("s3store: create %s: %w", name, fs.ErrExist)
	}
	base := s.base(name)
	if err := s.putCreated(ctx, name, base+createdPart); err != nil {
		return nil, fmt.Errorf("s3store: create %s: %w", name, err)
	}
	return &object{store: s, name: name, base: base, next: 1}, nil
}

// putCreated writes the created marker at key if no object is there. The
// marker holds the name and a random token: when the server refuses the
// write because the key exists, the token tells whether an earlier attempt
// of this very call (a retry after a lost response) wrote it.
func (s *Store) putCreated(ctx context.Context, name, key string) error {
	return s.putMarker(ctx, key, name+"\n"+rand.Text()+"\n")
}

// putMarker writes body at key if no object is there, or if the one there
// holds body already (an earlier attempt of the same writer).
func (s *Store) putMarker(ctx context.Context, key, body string) error {
	opts := s.putOptions("text/plain")
	opts.SetMatchETagExcept("*")
	_, err := s.client.PutObject(ctx, s.bucket, key, strings.NewReader(body), int64(len(body)), opts)
	if err == nil {
		return nil
	}
	if minio.ToErrorResponse(err).Code != minio.PreconditionFailed {
		return err
	}
	if got, rerr := s.readSmall(ctx, key); rerr == nil && got == body {
		return nil
	}
	return fs.ErrExist
}

// readSmall returns the content of a marker.
func (s *Store) readSmall(ctx context.Context, key string) (string, error) {
	o, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(o, 2*maxKeyLen))
	return string(b), errors.Join(err, o.Close())
}

// Open lists the object's chunks and returns a reader that fetches them
// one after the other. The reader sees the chunks that existed at Open; its
// requests are bounded by ctx.
func (s *Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := recorder.ValidateName(name); err != nil {
		return nil, fmt.Errorf("s3store: open: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3store: open %s: %w", name, err)
	}
	p, err := s.existing(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("s3store: open %s: %w", name, err)
	}
	for i, c := range p.chunks {
		if c.n != i+1 {
			return nil, fmt.Errorf("s3store: open %s: chunk %d is missing", name, i+1)
		}
	}
	return &reader{ctx: ctx, store: s, name: name, chunks: p.chunks}, nil
}

// Stat sums the sizes of the object's chunks.
func (s *Store) Stat(ctx context.Context, name string) (recorder.ObjectInfo, error) {
	if err := recorder.ValidateName(name); err != nil {
		return recorder.ObjectInfo{}, fmt.Errorf("s3store: stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return recorder.ObjectInfo{}, fmt.Errorf("s3store: stat %s: %w", name, err)
	}
	p, err := s.existing(ctx, name)
	if err != nil {
		return recorder.ObjectInfo{}, fmt.Errorf("s3store: stat %s: %w", name, err)
	}
	return recorder.ObjectInfo{Name: name, Size: p.size(), ModTime: p.modTime()}, nil
}

// List lists the keys under PREFIX/prefix and groups them by name; objects
// being written are listed. Long names are found by reading the created
// markers under ~long/.
func (s *Store) List(ctx context.Context, prefix string) ([]recorder.ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("s3store: list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3store: list %q: %w", prefix, err)
	}
	// No name starts with a prefix whose whole elements are not a valid
	// name ("a//", "../").
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 && recorder.ValidateName(prefix[:i]) != nil {
		return []recorder.ObjectInfo{}, nil
	}
	byName := map[string]*parts{}
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("s3store: list %q: %w", prefix, o.Err)
		}
		rel := strings.TrimPrefix(o.Key, s.prefix)
		i := strings.LastIndexByte(rel, '/')
		if i < 0 || strings.HasPrefix(rel, longDir+"/") {
			continue
		}
		name, part := rel[:i], rel[i+1:]
		if !strings.HasPrefix(name, prefix) || recorder.ValidateName(name) != nil || s.base(name) != s.prefix+name+"/" {
			continue
		}
		p := byName[name]
		if p == nil {
			p = &parts{}
		}
		if p.add(part, o) {
			byName[name] = p
		}
	}
	if err := s.listLong(ctx, prefix, byName); err != nil {
		return nil, fmt.Errorf("s3store: list %q: %w", prefix, err)
	}
	infos := make([]recorder.ObjectInfo, 0, len(byName))
	for name, p := range byName {
		infos = append(infos, recorder.ObjectInfo{Name: name, Size: p.size(), ModTime: p.modTime()})
	}
	slices.SortFunc(infos, func(a, b recorder.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}

// validatePrefix checks a List prefix as recorder.Dir does: at most 1024
// bytes of the characters names may hold, or empty.
func validatePrefix(prefix string) error {
	if len(prefix) > maxKeyLen {
		return fmt.Errorf("%w: longer than %d bytes", recorder.ErrInvalidName, maxKeyLen)
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-') {
			return fmt.Errorf("%w %q: character %q not allowed (only A-Z a-z 0-9 . _ / -)", recorder.ErrInvalidName, prefix, c)
		}
	}
	return nil
}

// listLong adds the objects under ~long/ whose names start with prefix.
func (s *Store) listLong(ctx context.Context, prefix string, byName map[string]*parts) error {
	root := s.prefix + longDir + "/"
	byBase := map[string]*parts{}
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: root, Recursive: true}) {
		if o.Err != nil {
			return o.Err
		}
		i := strings.LastIndexByte(o.Key, '/')
		base, part := o.Key[:i+1], o.Key[i+1:]
		p := byBase[base]
		if p == nil {
			p = &parts{}
		}
		if p.add(part, o) {
			byBase[base] = p
		}
	}
	for base, p := range byBase {
		if !p.created {
			continue // the name is unknown
		}
		body, err := s.readSmall(ctx, base+createdPart)
		if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		name, _, _ := strings.Cut(body, "\n")
		if !strings.HasPrefix(name, prefix) || recorder.ValidateName(name) != nil || s.base(name) != base {
			continue
		}
		p.sort()
		byName[name] = p
	}
	return nil
}

// Delete removes the object's chunks and closed marker, then its created
// marker, so that a Delete that fails half-way leaves the name taken.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := recorder.ValidateName(name); err != nil {
		return fmt.Errorf("s3store: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3store: delete %s: %w", name, err)
	}
	p, err := s.existing(ctx, name)
	if err != nil {
		return fmt.Errorf("s3store: delete %s: %w", name, err)
	}
	base := s.base(name)
	keys := make(chan minio.ObjectInfo, len(p.chunks)+2)
	for _, c := range p.chunks {
		keys <- minio.ObjectInfo{Key: c.key}
	}
	if p.closed {
		keys <- minio.ObjectInfo{Key: base + closedPart}
	}
	if p.manifest {
		keys <- minio.ObjectInfo{Key: base + manifestPart}
	}
	close(keys)
	var errs []error
	for e := range s.client.RemoveObjects(ctx, s.bucket, keys, minio.RemoveObjectsOptions{}) {
		errs = append(errs, fmt.Errorf("%s: %w", e.ObjectName, e.Err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("s3store: delete %s: %w", name, err)
	}
	if p.created {
		if err := s.client.RemoveObject(ctx, s.bucket, base+createdPart, minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("s3store: delete %s: %w", name, err)
		}
	}
	return nil
}
