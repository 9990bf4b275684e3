package recorder

import (
	"bufio"
	"context"
	"errors"
)

// Buffered returns st with a write buffer of size bytes in front of each
// object it creates, so that recording an event costs no system call: the
// buffer is written out when full, at every Sync (a recording syncs every
// SyncInterval while events arrive, and a live watcher sees what was
// synced) and at Close. A crash of Bastion loses at most the events of the
// last interval, as a crash of the host already could. Database sessions,
// whose events are small and many, record through it.
func Buffered(st Storage, size int) Storage { return buffered{Storage: st, size: size} }

type buffered struct {
	Storage
	size int
}

func (s buffered) Create(ctx context.Context, name string) (Object, error) {
	obj, err := s.Storage.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return &bufferedObject{obj: obj, w: bufio.NewWriterSize(obj, s.size)}, nil
}

// Guarantee passes the question on to storage that can answer it.
func (s buffered) Guarantee(ctx context.Context) error {
	if g, ok := s.Storage.(Guarantor); ok {
		return g.Guarantee(ctx)
	}
	return nil
}

// bufferedObject is an Object behind a write buffer; like every Object it
// is used by one goroutine at a time.
type bufferedObject struct {
	obj Object
	w   *bufio.Writer
}

func (o *bufferedObject) Write(p []byte) (int, error) { return o.w.Write(p) }

func (o *bufferedObject) Sync() error {
	if err := o.w.Flush(); err != nil {
		return err
	}
	return o.obj.Sync()
}

// Commit writes the buffer out and makes it durable with the storage's
// group commit (or a Sync where it has none).
func (o *bufferedObject) Commit(ctx context.Context) error {
	if err := o.w.Flush(); err != nil {
		return err
	}
	return Commit(ctx, o.obj)
}

var _ Committer = (*bufferedObject)(nil)

func (o *bufferedObject) Close() error {
	return errors.Join(o.w.Flush(), o.obj.Close())
}
