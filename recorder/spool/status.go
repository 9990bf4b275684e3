package spool

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Status is the state of the spool and of the storage behind it, for
// `bastion status`.
type Status struct {
	StorageOK    bool      `json:"storage_ok"`
	StorageError string    `json:"storage_error,omitempty"`
	DownSince    time.Time `json:"down_since,omitzero"`
	LastOK       time.Time `json:"last_ok,omitzero"`
	Recordings   int       `json:"recordings"`    // in the spool
	Pending      int64     `json:"pending_bytes"` // not yet uploaded
	Quota        int64     `json:"quota_bytes"`
	Uploaded     int64     `json:"uploaded_bytes"` // since start
	Chunks       int64     `json:"uploaded_chunks"`
	LagP50       Duration  `json:"lag_p50"`
	LagP99       Duration  `json:"lag_p99"`
	Failing      []Failing `json:"failing,omitempty"`
	// SpoolError is the last failure to write or fsync the spool (a full
	// or failing disk), and when.
	SpoolError   string    `json:"spool_error,omitempty"`
	SpoolErrorAt time.Time `json:"spool_error_at,omitzero"`
	// DiskError is set while the spool's disk fails writes (no space
	// returned since the last failure): fail-closed sessions are refused.
	// A reader of the status file also sets it when the file is stale: the
	// process holding the spool cannot write it.
	DiskError string `json:"disk_error,omitempty"`
}

// Failing is a recording whose last upload attempt failed.
type Failing struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}

// Duration marshals as a Go duration string.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Status describes the spool now. A process that does not hold the spool
// (the local CLI while the server runs) reports what the holder last wrote
// to the spool's status file.
func (s *Store) Status() Status {
	s.mu.Lock()
	owner := s.lockFile != nil
	s.mu.Unlock()
	if !owner {
		var st Status
		b, err := os.ReadFile(filepath.Join(s.cfg.Dir, statusName))
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		if err != nil {
			return Status{StorageError: "no status from the Bastion process holding the spool: " + err.Error(), Quota: s.cfg.Quota}
		}
		if fi, err := os.Stat(filepath.Join(s.cfg.Dir, statusName)); err == nil && time.Since(fi.ModTime()) > staleStatus {
			st.DiskError = fmt.Sprintf("the status file is %s old: the Bastion process holding the spool cannot write it (its disk may be full)",
				time.Since(fi.ModTime()).Round(time.Second))
		}
		return st
	}
	return s.status()
}

// statusName is the status file the spool's holder writes every
// statusEvery for other processes.
const (
	statusName  = ".status.json"
	statusEvery = time.Second
	// staleStatus is the age past which a reader takes the status file
	// for stale.
	staleStatus = 5 * statusEvery
)

// writeStatus writes the status file, atomically.
func (s *Store) writeStatus() error {
	b, err := json.Marshal(s.status())
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.cfg.Dir, statusName+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.cfg.Dir, statusName))
}

func (s *Store) status() Status {
	st := Status{Pending: s.pending.Load(), Quota: s.cfg.Quota}
	// Down as Guarantee judges it: what refuses fail-closed sessions.
	down, _ := s.health.judge(time.Now())
	s.health.mu.Lock()
	st.StorageOK, st.LastOK = down == nil, s.health.lastOK
	if down != nil {
		st.StorageError, st.DownSince = down.Error(), s.health.since
	}
	s.health.mu.Unlock()
	s.mu.Lock()
	st.Recordings = len(s.recs)
	for name, r := range s.recs {
		if r.lastErr != nil {
			st.Failing = append(st.Failing, Failing{Name: name, Error: r.lastErr.Error()})
		}
	}
	s.mu.Unlock()
	if e := s.lastSpoolErr.Load(); e != nil {
		st.SpoolError, st.SpoolErrorAt = e.err.Error(), e.at
	}
	if err := s.diskFull(); err != nil {
		st.DiskError = err.Error()
	}
	slices.SortFunc(st.Failing, func(a, b Failing) int { return strings.Compare(a.Name, b.Name) })
	lags := s.stats.lags()
	st.Uploaded, st.Chunks = s.stats.totals()
	st.LagP50, st.LagP99 = Duration(Percentile(lags, 50)), Duration(Percentile(lags, 99))
	return st
}

// Lags returns the upload lags measured (from a chunk's first byte written
// to its upload), the most recent maxLags.
func (s *Store) Lags() []time.Duration { return s.stats.lags() }

// maxLags bounds the lag samples kept.
const maxLags = 1 << 16

// stats counts uploads.
type stats struct {
	mu     sync.Mutex
	bytes  int64
	chunks int64
	ring   []time.Duration
	next   int
}

func (st *stats) uploaded(n int, firstWrite time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.bytes += int64(n)
	st.chunks++
	if firstWrite.IsZero() {
		return // recovered: written by an earlier process
	}
	lag := time.Since(firstWrite)
	if len(st.ring) < maxLags {
		st.ring = append(st.ring, lag)
		return
	}
	st.ring[st.next] = lag
	st.next = (st.next + 1) % maxLags
}

func (st *stats) lags() []time.Duration {
	st.mu.Lock()
	defer st.mu.Unlock()
	return slices.Clone(st.ring)
}

func (st *stats) totals() (int64, int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.bytes, st.chunks
}

// Percentile returns the p-th percentile (0–100) of ds, 0 if empty.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	i := int(float64(len(ds)-1) * p / 100)
	return ds[i]
}

// spoolError is a failure of the spool's disk.
type spoolError struct {
	err error
	at  time.Time
}

// spoolFailed records and logs a failure to write the spool.
func (s *Store) spoolFailed(err error) {
	e := &spoolError{err: err, at: time.Now()}
	s.lastSpoolErr.Store(e)
	s.diskErr.Store(e)
	s.log.Error("spool: cannot write the spool; the recording fails", "err", err)
}
