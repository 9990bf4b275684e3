package spool

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// A full (or failing) spool disk fails the recordings that were writing:
// their fail-closed sessions end, and what they wrote is durable only up to
// some point. Until space returns the spool says so (Guarantee refuses
// fail-closed sessions, Status reports it, /readyz is unready). Once a
// test write succeeds again the dispatcher seals each failed recording
// whose writer has closed it as a restart would: interrupted, up to its
// last complete line, and tells Config.OnInterrupted, which ends their
// sessions as interrupted. Nothing waits for a restart.

// ErrDisk is wrapped by Guarantee's error while the spool's disk fails
// writes.
var ErrDisk = errors.New("the recording spool's disk cannot be written (full?)")

// Space checks, while the disk fails: how often, and how much a test write
// needs, so that a disk with a few bytes free is not taken for healed.
const (
	spaceCheckEvery = time.Second
	spaceCheckSize  = 64 << 10
)

// diskFull returns an error wrapping ErrDisk while the spool's disk fails
// writes, nil once a test write succeeded since the last failure.
func (s *Store) diskFull() error {
	if e := s.diskErr.Load(); e != nil {
		return fmt.Errorf("%w since %s: %w", ErrDisk, e.at.UTC().Format(time.RFC3339), e.err)
	}
	return nil
}

// DiskError returns an error wrapping ErrDisk while the spool's disk fails
// writes: Bastion is not ready for new clients then.
func (s *Store) DiskError() error { return s.diskFull() }

// checkSpace runs every spaceCheckEvery: while the disk fails it tries a
// test write, and when that works takes the disk for healed; while it is
// healthy it seals the recordings a failure left (a writer may close its
// recording after the disk healed).
func (s *Store) checkSpace() {
	if time.Since(s.lastSpaceCheck) < spaceCheckEvery {
		return
	}
	s.lastSpaceCheck = time.Now()
	if e := s.diskErr.Load(); e != nil {
		if err := s.testWrite(s.cfg.Dir); err != nil {
			s.log.Debug("spool: the disk still fails writes", "err", err)
			return
		}
		s.diskErr.CompareAndSwap(e, nil)
		s.log.Info("spool: the disk takes writes again; sealing the recordings it failed", "failed_since", e.at)
	}
	s.sealFailed()
}

// syncFile fsyncs the file name.
func syncFile(name string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// testWrite writes, fsyncs and removes a spaceCheckSize file in dir.
func testWrite(dir string) error {
	name := filepath.Join(dir, ".space-"+rand.Text())
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(make([]byte, spaceCheckSize))
	err = errors.Join(err, f.Sync(), f.Close())
	return errors.Join(err, os.Remove(name))
}

// sealFailed reloads each recording whose write failed and whose writer
// has closed it from its spool directory, as Open recovers one a crash
// left: it ends at its last complete line, interrupted, and is uploaded
// and sealed. Recordings still open wait for their writer (the session is
// ending: its recording failed) and the next check.
func (s *Store) sealFailed() {
	if s.diskErr.Load() != nil {
		return
	}
	var sealed []string
	s.mu.Lock()
	defer func() {
		s.mu.Unlock()
		if len(sealed) > 0 {
			s.wake()
			if s.cfg.OnInterrupted != nil {
				s.cfg.OnInterrupted(sealed)
			}
		}
	}()
	for name, r := range s.recs {
		if r.busy || r.creating {
			continue
		}
		r.mu.Lock()
		failed := r.writeErr != nil && r.ended && r.data == nil
		r.mu.Unlock()
		if !failed {
			continue
		}
		nr, err := s.reload(r)
		if err != nil {
			s.log.Error("spool: cannot reload a recording the disk failed; it stays in the spool", "recording", name, "dir", r.dir, "err", err)
			s.diskErr.CompareAndSwap(nil, &spoolError{err: err, at: time.Now()})
			continue
		}
		s.recs[name] = nr
		sealed = append(sealed, name)
		s.log.Warn("spool: a recording the disk failed is sealed as interrupted", "recording", name, "bytes", nr.written)
	}
}

// reload replaces r (failed, closed by its writer) by what its spool
// directory holds. Store.mu is held and r is not busy.
func (s *Store) reload(r *rec) (*rec, error) {
	if err := r.closeFiles(); err != nil {
		return nil, err
	}
	// What the failed writes left in the file is uploaded as the
	// recording: make it durable first.
	if err := syncFile(r.path(dataFile)); err != nil {
		return nil, err
	}
	var up int64
	for _, c := range r.chunks[:r.uploaded] {
		up += c.Size
	}
	r.mu.Lock()
	s.pending.Add(-(r.written - up)) // loadRec counts what is left anew
	r.mu.Unlock()
	nr, err := s.loadRec(r.dir)
	if err != nil {
		r.mu.Lock()
		s.pending.Add(r.written - up)
		r.mu.Unlock()
		return nil, err
	}
	nr.recovered = true
	return nr, nil
}
