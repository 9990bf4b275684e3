package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/minio/minio-go/v7"
)

// object is an object of a Store being written. Write buffers; Sync uploads
// the buffer as the next chunk; Close syncs and writes the closed marker.
type object struct {
	store *Store
	name  string
	base  string

	mu     sync.Mutex
	buf    []byte // written since the last chunk
	next   int    // number of the next chunk
	closed bool
}

// Write buffers p. When the buffer holds maxBuffered bytes already, it is
// uploaded first as a chunk; if that fails, nothing of p is taken.
func (o *object) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, fmt.Errorf("s3store: write %s: %w", o.name, fs.ErrClosed)
	}
	if len(o.buf) >= maxBuffered {
		if err := o.flush(); err != nil {
			return 0, fmt.Errorf("s3store: write %s: %w", o.name, err)
		}
	}
	o.buf = append(o.buf, p...)
	return len(p), nil
}

// Sync uploads what was written since the last chunk as the next chunk;
// with nothing written, it does nothing. A failed upload keeps the bytes for
// the next Sync.
func (o *object) Sync() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("s3store: sync %s: %w", o.name, fs.ErrClosed)
	}
	if err := o.flush(); err != nil {
		return fmt.Errorf("s3store: sync %s: %w", o.name, err)
	}
	return nil
}

// Close syncs and writes the closed marker. If that fails the object stays
// open, with nothing lost, and Close can be tried again.
func (o *object) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("s3store: close %s: %w", o.name, fs.ErrClosed)
	}
	if err := o.flush(); err != nil {
		return fmt.Errorf("s3store: close %s: %w", o.name, err)
	}
	if err := o.put(o.base+closedPart, nil, "text/plain"); err != nil {
		return fmt.Errorf("s3store: close %s: %w", o.name, err)
	}
	o.closed = true
	o.buf = nil
	return nil
}

// flush uploads the buffer, if not empty, as chunk o.next. The caller
// holds o.mu.
func (o *object) flush() error {
	if len(o.buf) == 0 {
		return nil
	}
	if o.next > maxChunks {
		return fmt.Errorf("more than %d chunks", maxChunks)
	}
	if err := o.put(chunkKey(o.base, o.next), o.buf, "application/octet-stream"); err != nil {
		return fmt.Errorf("chunk %d: %w", o.next, err)
	}
	o.next++
	o.buf = o.buf[:0]
	return nil
}

// put uploads one S3 object within requestTimeout.
func (o *object) put(key string, data []byte, contentType string) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	return o.store.put(ctx, key, data, contentType)
}

// reader reads the chunks of an object one after the other, fetching each
// when the previous one is exhausted.
type reader struct {
	ctx    context.Context
	store  *Store
	name   string
	chunks []chunk // still to read, after cur

	cur    *minio.Object
	n      int // number of cur
	closed bool
}

func (r *reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, fmt.Errorf("s3store: read %s: %w", r.name, fs.ErrClosed)
	}
	for {
		if r.cur == nil {
			if len(r.chunks) == 0 {
				return 0, io.EOF
			}
			c := r.chunks[0]
			obj, err := r.store.client.GetObject(r.ctx, r.store.bucket, c.key, minio.GetObjectOptions{})
			if err != nil {
				return 0, fmt.Errorf("s3store: read %s: chunk %d: %w", r.name, c.n, err)
			}
			r.cur, r.n, r.chunks = obj, c.n, r.chunks[1:]
		}
		n, err := r.cur.Read(p)
		if errors.Is(err, io.EOF) {
			cerr := r.cur.Close()
			r.cur = nil
			if cerr != nil {
				return n, fmt.Errorf("s3store: read %s: chunk %d: %w", r.name, r.n, cerr)
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			return n, fmt.Errorf("s3store: read %s: chunk %d: %w", r.name, r.n, err)
		}
		if n > 0 || len(p) == 0 {
			return n, nil
		}
	}
}

func (r *reader) Close() error {
	if r.closed {
		return fmt.Errorf("s3store: close reader of %s: %w", r.name, fs.ErrClosed)
	}
	r.closed = true
	if r.cur != nil {
		err := r.cur.Close()
		r.cur = nil
		if err != nil {
			return fmt.Errorf("s3store: close reader of %s: %w", r.name, err)
		}
	}
	return nil
}
