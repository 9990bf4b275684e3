package spool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// dispatchInterval is how often the dispatcher looks for due retries when
// nothing wakes it.
const dispatchInterval = 100 * time.Millisecond

// dispatchLoop starts an upload step for every recording with work to do
// that is not busy or waiting to retry, until Close.
func (s *Store) dispatchLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(dispatchInterval)
	defer tick.Stop()
	var lastStatus time.Time
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		case <-tick.C:
		}
		s.checkSpace()
		s.dispatch()
		if time.Since(lastStatus) >= statusEvery {
			lastStatus = time.Now()
			if err := s.writeStatus(); err != nil {
				s.log.Warn("spool: write the status file", "err", err)
			}
		}
	}
}

func (s *Store) dispatch() {
	now := time.Now()
	s.mu.Lock()
	idle := true
	for _, r := range s.recs {
		if r.busy {
			idle = false
			continue
		}
		if r.creating || !r.hasWork() {
			continue
		}
		// A recording waiting to retry is not idle: its retries say when
		// the storage takes uploads again. A probe in between would say
		// so whenever the storage answers a listing but refuses writes,
		// and OnHealth would report a recovery at every retry.
		idle = false
		if now.Before(r.retryAt) {
			continue
		}
		r.busy = true
		s.wg.Add(1)
		go s.run(r)
	}
	s.mu.Unlock()
	if idle && (s.health.dueProbe() || s.health.stale()) {
		// Nothing to upload, but the storage was down (is it back?), or
		// nothing was asked of it for a while: keep what Guarantee
		// judges from current.
		s.probe(s.ctx) //nolint:errcheck // recorded by setHealth
	}
}

// hasWork reports whether an upload step would do something. Store.mu is
// held and r is not busy.
func (r *rec) hasWork() bool {
	r.mu.Lock()
	synced, ended := r.synced, r.ended
	r.mu.Unlock()
	return !r.created || synced > r.cut || r.uploaded < len(r.chunks) || ended
}

// run runs one upload step of r within the worker limit, then schedules
// the next.
func (s *Store) run(r *rec) {
	defer s.wg.Done()
	select {
	case s.sem <- struct{}{}:
	case <-s.ctx.Done():
		s.mu.Lock()
		r.busy = false
		s.mu.Unlock()
		return
	}
	sealed, err := s.step(r)
	<-s.sem

	s.mu.Lock()
	defer s.mu.Unlock()
	r.busy = false
	switch {
	case sealed:
		delete(s.recs, r.name)
	case err != nil:
		r.backoff = min(max(2*r.backoff, minBackoff), maxBackoff)
		// Jitter spreads the retries of many recordings.
		r.retryAt = time.Now().Add(r.backoff/2 + rand.N(r.backoff/2+1))
		r.lastErr = err
	default:
		r.backoff, r.lastErr = 0, nil
	}
}

// step uploads what r has for the storage: its created marker, the chunks
// cut from what is synced, and, once it has ended and all is uploaded, its
// signed manifest. It reports whether r is sealed (and gone from the
// spool).
func (s *Store) step(r *rec) (sealed bool, err error) {
	if !r.created {
		err := s.request(func(ctx context.Context) error { return s.cfg.Backend.PutCreated(ctx, r.name, r.meta.Token) })
		if errors.Is(err, fs.ErrExist) {
			// Not ours: keep the recording in the spool and say so.
			s.log.Error("spool: recording name taken in the bucket by another writer; it stays in the spool",
				"recording", r.name, "dir", r.dir)
			return false, err
		}
		if err != nil {
			return false, s.uploadFailed(r, err)
		}
		r.created = true
		r.mu.Lock()
		err = r.appendJournal("created", false)
		r.mu.Unlock()
		if err != nil {
			return false, s.localFailed(r, err)
		}
	}
	if err := r.cutChunks(); err != nil {
		return false, s.localFailed(r, err)
	}
	for r.uploaded < len(r.chunks) {
		data, err := r.chunkData(r.uploaded)
		if err != nil {
			return false, s.localFailed(r, err)
		}
		n := r.uploaded + 1
		if err := s.request(func(ctx context.Context) error { return s.cfg.Backend.PutChunk(ctx, r.name, n, data) }); err != nil {
			return false, s.uploadFailed(r, err)
		}
		r.uploaded = n
		s.pending.Add(-int64(len(data)))
		s.stats.uploaded(len(data), r.chunkAt[0])
		r.chunkAt = r.chunkAt[1:]
		r.mu.Lock()
		err = r.appendJournal(fmt.Sprintf("up %d", n), false)
		r.mu.Unlock()
		if err != nil {
			return false, s.localFailed(r, err)
		}
	}
	r.mu.Lock()
	done := r.ended && r.cut == r.written
	r.mu.Unlock()
	if !done {
		return false, nil
	}
	signed, err := r.buildManifest()
	if err != nil {
		return false, s.localFailed(r, err)
	}
	if err := s.request(func(ctx context.Context) error { return s.cfg.Backend.Seal(ctx, r.name, signed) }); err != nil {
		return false, s.uploadFailed(r, err)
	}
	if err := r.remove(); err != nil {
		// Sealed in the bucket: a leftover directory is re-sealed (the
		// same manifest) at the next start.
		s.log.Warn("spool: remove the directory of a sealed recording", "recording", r.name, "err", err)
	}
	s.log.Debug("spool: recording sealed", "recording", r.name, "chunks", len(r.chunks), "bytes", r.cut)
	return true, nil
}

// request runs one request to the storage within RequestTimeout and
// records the outcome in the health.
func (s *Store) request(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RequestTimeout)
	defer cancel()
	err := fn(ctx)
	if s.ctx.Err() == nil {
		s.setHealth(err)
	}
	return err
}

// uploadFailed logs a failed request (retried after a backoff).
func (s *Store) uploadFailed(r *rec, err error) error {
	s.log.Debug("spool: upload failed; will retry", "recording", r.name, "err", err)
	return err
}

// localFailed logs a failure of the spool itself (its disk): the upload
// is retried, the recording stays.
func (s *Store) localFailed(r *rec, err error) error {
	s.log.Error("spool: cannot read or journal the spool; will retry", "recording", r.name, "dir", r.dir, "err", err)
	return err
}

// fsyncLoop fsyncs, every FsyncInterval, the recordings with unsynced
// bytes, so that the interval holds whatever their writers do.
func (s *Store) fsyncLoop() {
	defer s.wg.Done()
	if s.cfg.FsyncInterval == FsyncAlways {
		return
	}
	tick := time.NewTicker(s.cfg.FsyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		recs := make([]*rec, 0, len(s.recs))
		for _, r := range s.recs {
			recs = append(recs, r)
		}
		s.mu.Unlock()
		for _, r := range recs {
			r.mu.Lock()
			if !r.ended && r.data != nil {
				if err := r.syncLocked(); err != nil {
					s.log.Error("spool: fsync", "recording", r.name, "err", err)
				}
			}
			r.mu.Unlock()
		}
	}
}

// recover loads every recording directory in the spool.
func (s *Store) recover() error {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(s.cfg.Dir, e.Name())
		r, err := s.loadRec(dir)
		if err != nil {
			if empty, _ := emptyData(dir); empty {
				// Create died before writing anything: nothing to keep.
				s.log.Warn("spool: removing an empty recording directory", "dir", dir, "err", err)
				if err := os.RemoveAll(dir); err != nil {
					return fmt.Errorf("spool: %w", err)
				}
				continue
			}
			// Never delete what might be a recording: leave it for a human.
			s.log.Error("spool: cannot read a recording directory; it stays in the spool", "dir", dir, "err", err)
			continue
		}
		if old := s.recs[r.name]; old != nil {
			s.log.Error("spool: two directories hold the same recording; keeping both, uploading one", "recording", r.name, "dirs", []string{old.dir, dir})
			continue
		}
		s.recs[r.name] = r
		s.log.Info("spool: recovered a recording", "recording", r.name, "status", r.status, "bytes", r.written, "chunks_uploaded", r.uploaded)
	}
	return nil
}

// emptyData reports whether dir holds no recorded bytes.
func emptyData(dir string) (bool, error) {
	fi, err := os.Stat(filepath.Join(dir, dataFile))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return fi.Size() == 0, nil
}
