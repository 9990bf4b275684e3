package s3store

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/manifest"
)

// The chunk-level writing below is for a writer that cuts chunks itself
// and may resume after a restart (the spool): every call is idempotent, so
// a call whose response was lost can be made again.

// PutCreated writes the created marker of name holding token, unless a
// marker is there already: with the same token (an earlier attempt of this
// writer) that is success, with another it fails with fs.ErrExist.
func (s *Store) PutCreated(ctx context.Context, name, token string) error {
	if err := recorder.ValidateName(name); err != nil {
		return fmt.Errorf("s3store: create: %w", err)
	}
	if err := s.putMarker(ctx, s.base(name)+createdPart, name+"\n"+token+"\n"); err != nil {
		return fmt.Errorf("s3store: create %s: %w", name, err)
	}
	return nil
}

// PutChunk uploads chunk n (from 1) of name, replacing any chunk n there.
func (s *Store) PutChunk(ctx context.Context, name string, n int, data []byte) error {
	if err := recorder.ValidateName(name); err != nil {
		return fmt.Errorf("s3store: put chunk: %w", err)
	}
	if n < 1 || n > maxChunks {
		return fmt.Errorf("s3store: put chunk %d of %s: out of range", n, name)
	}
	if err := s.put(ctx, chunkKey(s.base(name), n), data, "application/octet-stream"); err != nil {
		return fmt.Errorf("s3store: put chunk %d of %s: %w", n, name, err)
	}
	return nil
}

// Seal writes the signed manifest of name, then its closed marker.
func (s *Store) Seal(ctx context.Context, name string, signed []byte) error {
	if err := recorder.ValidateName(name); err != nil {
		return fmt.Errorf("s3store: seal: %w", err)
	}
	base := s.base(name)
	if err := s.put(ctx, base+manifestPart, signed, "application/json"); err != nil {
		return fmt.Errorf("s3store: seal %s: manifest: %w", name, err)
	}
	if err := s.put(ctx, base+closedPart, nil, "text/plain"); err != nil {
		return fmt.Errorf("s3store: seal %s: %w", name, err)
	}
	return nil
}

// Reachable checks that the bucket answers with our credentials.
func (s *Store) Reachable(ctx context.Context) error {
	if err := checkBucket(ctx, s.client, s.bucket); err != nil {
		return fmt.Errorf("s3store: bucket %s: %w", s.bucket, err)
	}
	return nil
}

// put uploads one S3 object.
func (s *Store) put(ctx context.Context, key string, data []byte, contentType string) error {
	_, err := s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), s.putOptions(contentType))
	return err
}

// putOptions are the options of every upload: the content type and the
// Object Lock retention, if configured.
func (s *Store) putOptions(contentType string) minio.PutObjectOptions {
	opts := minio.PutObjectOptions{ContentType: contentType}
	if s.lock.Mode != "" {
		opts.Mode = minio.RetentionMode(s.lock.Mode)
		opts.RetainUntilDate = time.Now().Add(s.lock.For)
	}
	return opts
}

// Source returns the parts of name as Verify reads them.
func (s *Store) Source(name string) manifest.Source {
	return &source{s: s, name: name}
}

type source struct {
	s    *Store
	name string
}

func (src *source) Manifest(ctx context.Context) ([]byte, error) {
	if err := recorder.ValidateName(src.name); err != nil {
		return nil, err
	}
	o, err := src.s.client.GetObject(ctx, src.s.bucket, src.s.base(src.name)+manifestPart, minio.GetObjectOptions{})
	if err != nil {
		return nil, notFound(err)
	}
	defer o.Close()
	b, err := io.ReadAll(io.LimitReader(o, manifest.MaxSize+1))
	return b, notFound(err)
}

func (src *source) Chunks(ctx context.Context) ([]int, error) {
	if err := recorder.ValidateName(src.name); err != nil {
		return nil, err
	}
	p, err := src.s.parts(ctx, src.name)
	if err != nil {
		return nil, err
	}
	ns := make([]int, 0, len(p.chunks))
	for _, c := range p.chunks {
		ns = append(ns, c.n)
	}
	return ns, nil
}

func (src *source) Chunk(ctx context.Context, n int) (io.ReadCloser, error) {
	o, err := src.s.client.GetObject(ctx, src.s.bucket, chunkKey(src.s.base(src.name), n), minio.GetObjectOptions{})
	if err != nil {
		return nil, notFound(err)
	}
	// GetObject is lazy: a missing key shows at the first read.
	if _, err := o.Stat(); err != nil {
		o.Close()
		return nil, notFound(err)
	}
	return o, nil
}

// notFound makes a missing key's error wrap fs.ErrNotExist.
func notFound(err error) error {
	if err != nil && (minio.ToErrorResponse(err).Code == minio.NoSuchKey || strings.Contains(err.Error(), "key does not exist")) {
		return fmt.Errorf("%w: %v", fs.ErrNotExist, err)
	}
	return err
}
