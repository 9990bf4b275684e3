// Package spool keeps recordings that are never lost on their way to object
// storage. It is a recorder.Storage in front of a Backend (an S3 bucket):
// every byte a session records is appended to a local spool file first
// (fsync at least every FsyncInterval, or on every write), then cut into
// chunks that are uploaded while the session runs, seconds behind it.
//
// Each chunk is hashed and chained (package manifest) as it is cut; when the
// session ends, a signed manifest seals the recording in the bucket and the
// spool forgets it. Until then nothing is deleted: when the storage is
// unreachable, uploads are retried with backoff while the spool absorbs the
// data up to its quota, and after a crash Open finds what is left, uploads
// it and seals those recordings as interrupted, complete up to the last
// byte that reached the spool.
//
// # On disk
//
// One directory per recording under Config.Dir:
//
//	meta.json   the name, the token of its created marker, start, session facts
//	data        the recording's bytes, appended
//	journal     what happened, one line each, appended:
//	            "created" (marker uploaded), "chunk N SIZE SHA256" (cut,
//	            fsynced before its upload), "up N" (uploaded), "end STATUS
//	            UNIXNANO" (the writer closed it, after fsyncing data)
package spool

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/manifest"
)

// Backend is the object storage behind the spool: a recorder.Storage for
// reading, listing and deleting, plus idempotent chunk-level writes (see
// s3store.Store).
type Backend interface {
	recorder.Storage
	// PutCreated writes name's created marker holding token; fs.ErrExist
	// if another writer's marker is there.
	PutCreated(ctx context.Context, name, token string) error
	// PutChunk uploads chunk n of name, replacing any chunk n.
	PutChunk(ctx context.Context, name string, n int, data []byte) error
	// Seal writes name's signed manifest, then marks it closed.
	Seal(ctx context.Context, name string, signed []byte) error
	// Reachable checks that the storage answers.
	Reachable(ctx context.Context) error
	// Source returns name's parts for manifest.Verify.
	Source(name string) manifest.Source
}

// Defaults and limits.
const (
	// DefaultFsyncInterval is the most time between a write and its
	// fsync: what a crash of the host can lose.
	DefaultFsyncInterval = time.Second
	// FsyncAlways makes every write fsync before it returns.
	FsyncAlways time.Duration = -1
	// DefaultQuota bounds the bytes in the spool not yet uploaded.
	DefaultQuota = 1 << 30
	// DefaultMaxChunk bounds one chunk: a burst of output is cut into
	// several.
	DefaultMaxChunk = 4 << 20
	// DefaultWorkers is how many recordings upload at once.
	DefaultWorkers = 16
	// DefaultRequestTimeout bounds one request to the storage.
	DefaultRequestTimeout = 30 * time.Second
	// minBackoff and maxBackoff bound the wait before retrying a failed
	// upload; it doubles from one to the other.
	minBackoff = 250 * time.Millisecond
	maxBackoff = 15 * time.Second
	// probeInterval is how often an unreachable storage is probed when no
	// upload is due.
	probeInterval = 2 * time.Second
	// probeTimeout bounds one probe.
	probeTimeout = 3 * time.Second
	// guaranteeReserve is room a new session needs in the spool.
	guaranteeReserve = 1 << 20
)

// ErrFull is wrapped by the error of a write the spool has no room for.
var ErrFull = errors.New("recording spool is full")

// Config configures a Store.
type Config struct {
	Dir     string // the spool directory; created (0700) if missing
	Backend Backend
	// Key signs manifests (ed25519); Signer names Bastion in them.
	Key    ssh.Signer
	Signer string
	// FsyncInterval is the most time between a write and its fsync
	// (DefaultFsyncInterval if 0; FsyncAlways for every write).
	FsyncInterval time.Duration
	// Quota bounds the bytes not yet uploaded (DefaultQuota if 0); a
	// write past it fails with ErrFull.
	Quota          int64
	MaxChunk       int64         // DefaultMaxChunk if 0
	Workers        int           // DefaultWorkers if 0
	RequestTimeout time.Duration // DefaultRequestTimeout if 0
	Logger         *slog.Logger
	// OnHealth is called when uploads start failing (with the error) and
	// when they work again (nil): the gap an audit event marks. It must
	// not block.
	OnHealth func(err error)
	// OnInterrupted is called with the recordings a failed disk ended,
	// once they are sealed as interrupted (space returned): their
	// sessions end as interrupted. It must not block.
	OnInterrupted func(names []string)
}

// Store is a recorder.Storage that spools to Config.Dir and uploads to
// Config.Backend. It is safe for concurrent use. Reads come from the spool
// for recordings it still holds, else from the backend.
type Store struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	recs map[string]*rec // by name: every recording the spool holds

	pending atomic.Int64  // bytes written and not yet uploaded
	kick    chan struct{} // wakes the dispatcher
	sem     chan struct{} // bounds concurrent uploads
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	lastSpoolErr atomic.Pointer[spoolError]
	// diskErr is set while the spool's disk fails writes (heal.go);
	// lastSpaceCheck is when the dispatcher last tried a test write.
	diskErr        atomic.Pointer[spoolError]
	lastSpaceCheck time.Time
	testWrite      func(dir string) error // testWrite; tests fail it
	// probeMu makes the callers of Guarantee that find nothing known share
	// one probe.
	probeMu sync.Mutex

	startOnce sync.Once
	started   atomic.Bool
	// lockFile holds the spool's lock (flock): one process writes and
	// uploads; others (the local CLI while the server runs) only read.
	lockFile *os.File
	health   health
	stats    stats
	// commit makes the records of every recording in the spool durable
	// together: one syncfs of the spool's file system per round (group
	// commit, object.Commit).
	commit *recorder.GroupCommit
}

var (
	_ recorder.Storage   = (*Store)(nil)
	_ recorder.Guarantor = (*Store)(nil)
)

// Open opens the spool and recovers what a previous process left in it:
// recordings it did not close are sealed as interrupted once uploaded.
// Recordings can be written at once; uploads begin with Start. Close stops
// it.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" || cfg.Backend == nil || cfg.Key == nil {
		return nil, errors.New("spool: dir, backend and key are required")
	}
	if cfg.Key.PublicKey().Type() != ssh.KeyAlgoED25519 {
		return nil, fmt.Errorf("spool: recording key type %s, want ed25519", cfg.Key.PublicKey().Type())
	}
	if cfg.FsyncInterval == 0 {
		cfg.FsyncInterval = DefaultFsyncInterval
	}
	if cfg.Quota <= 0 {
		cfg.Quota = DefaultQuota
	}
	if cfg.MaxChunk <= 0 {
		cfg.MaxChunk = DefaultMaxChunk
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Store{
		cfg: cfg, log: cfg.Logger.With("component", "spool"),
		recs: map[string]*rec{}, kick: make(chan struct{}, 1), sem: make(chan struct{}, cfg.Workers),
		testWrite: testWrite,
	}
	commit, err := recorder.NewGroupCommit(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s.commit = commit
	s.ctx, s.cancel = context.WithCancel(context.Background())
	locked, err := s.lock()
	if err != nil {
		return nil, err
	}
	if locked {
		if err := s.recover(); err != nil {
			return nil, errors.Join(err, s.unlock(), s.commit.Close())
		}
	} else {
		s.log.Info("spool: in use by another Bastion process; reading only")
	}
	// Writes must be fsynced from the start, uploads or not.
	s.wg.Add(1)
	go s.fsyncLoop()
	return s, nil
}

// Start starts uploading, once: what the spool holds, then what is
// written. A spool another process holds (Open found it locked) is taken
// over when that process lets go.
func (s *Store) Start() {
	s.startOnce.Do(func() {
		s.started.Store(true)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if !s.takeOver() {
				return
			}
			s.wg.Add(1)
			go s.dispatchLoop()
			s.wake()
		}()
	})
}

// takeOver waits until this process holds the spool's lock, then
// recovers; false if the spool closed first.
func (s *Store) takeOver() bool {
	if s.lockFile != nil {
		return true
	}
	s.log.Warn("spool: in use by another Bastion process; waiting for it to stop", "dir", s.cfg.Dir)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return false
		case <-tick.C:
		}
		locked, err := s.lock()
		if err != nil {
			s.log.Error("spool: lock", "err", err)
			continue
		}
		if !locked {
			continue
		}
		s.mu.Lock()
		err = s.recover()
		s.mu.Unlock()
		if err != nil {
			s.log.Error("spool: recover", "err", err)
		}
		return true
	}
}

// Recovered lists the recordings Open found unfinished in the spool: they
// are sealed as interrupted.
func (s *Store) Recovered() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for name, r := range s.recs {
		if r.recovered {
			names = append(names, name)
		}
	}
	return names
}

// Drain waits until every closed recording is uploaded and sealed, or ctx
// ends; it reports what is still in the spool then.
func (s *Store) Drain(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if !s.started.Load() {
			return errors.New("spool: not started: nothing is uploaded")
		}
		s.mu.Lock()
		n := 0
		for _, r := range s.recs {
			if r.isEnded() {
				n++
			}
		}
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		s.wake()
		select {
		case <-ctx.Done():
			return fmt.Errorf("spool: %d closed recordings not yet uploaded (they stay in the spool): %w", n, ctx.Err())
		case <-tick.C:
		}
	}
}

// spooled returns the spool directory of name, or "". A process that does
// not hold the spool looks through the directories.
func (s *Store) spooled(name string) string {
	s.mu.Lock()
	r, owner := s.recs[name], s.lockFile != nil
	s.mu.Unlock()
	if r != nil && !r.isCreating() {
		return r.dir
	}
	if owner {
		return ""
	}
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		dir := filepath.Join(s.cfg.Dir, e.Name())
		var m meta
		if b, err := os.ReadFile(filepath.Join(dir, metaFile)); err == nil && json.Unmarshal(b, &m) == nil && m.Name == name {
			return dir
		}
	}
	return ""
}

// lock takes the spool's lock if no other process holds it.
func (s *Store) lock() (bool, error) {
	f, err := os.OpenFile(filepath.Join(s.cfg.Dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("spool: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil
		}
		return false, fmt.Errorf("spool: lock: %w", err)
	}
	s.mu.Lock()
	s.lockFile = f
	s.mu.Unlock()
	return true, nil
}

func (s *Store) unlock() error {
	if s.lockFile == nil {
		return nil
	}
	err := s.lockFile.Close() // releases the flock
	s.lockFile = nil
	return err
}

// lockName is the spool's lock file; not a directory, so never taken for
// a recording.
const lockName = ".lock"

// Close stops uploading; what is not uploaded stays in the spool for the
// next Open. Recordings still being written must be closed first.
func (s *Store) Close() error {
	s.cancel()
	s.wg.Wait() // the loops, and the upload steps they started
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, r := range s.recs {
		errs = append(errs, r.closeFiles())
	}
	return errors.Join(append(errs, s.unlock(), s.commit.Close())...)
}

// wake makes the dispatcher look for work.
func (s *Store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// lookup returns the recording name the spool holds, or nil.
func (s *Store) lookup(name string) *rec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recs[name]
}

// Create starts a recording in the spool. It does not need the storage:
// when the storage is unreachable the recording waits in the spool.
func (s *Store) Create(ctx context.Context, name string) (recorder.Object, error) {
	if err := recorder.ValidateName(name); err != nil {
		return nil, fmt.Errorf("spool: create: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("spool: create %s: %w", name, err)
	}
	s.mu.Lock()
	if s.lockFile == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("spool: create %s: the spool %s is in use by another Bastion process", name, s.cfg.Dir)
	}
	if s.recs[name] != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("spool: create %s: %w", name, fs.ErrExist)
	}
	r := &rec{s: s, name: name, creating: true}
	s.recs[name] = r
	s.mu.Unlock()

	// The name may be taken in the bucket; when the storage is down this
	// is found when the created marker is written.
	if s.health.ok() {
		sctx, cancel := context.WithTimeout(ctx, probeTimeout)
		_, err := s.cfg.Backend.Stat(sctx, name)
		cancel()
		if err == nil {
			s.forget(r)
			return nil, fmt.Errorf("spool: create %s: %w", name, fs.ErrExist)
		}
	}
	if err := r.create(recorder.InfoFrom(ctx)); err != nil {
		s.forget(r)
		return nil, fmt.Errorf("spool: create %s: %w", name, err)
	}
	s.mu.Lock()
	r.creating = false
	s.mu.Unlock()
	s.wake()
	return &object{r: r}, nil
}

// forget drops r from the spool's map.
func (s *Store) forget(r *rec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recs[r.name] == r {
		delete(s.recs, r.name)
	}
}

// Open reads the spool's copy of a recording it holds (complete, and
// growing while it is written), else the backend's.
func (s *Store) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := recorder.ValidateName(name); err != nil {
		return nil, fmt.Errorf("spool: open: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("spool: open %s: %w", name, err)
	}
	if dir := s.spooled(name); dir != "" {
		f, err := os.Open(filepath.Join(dir, dataFile))
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("spool: open %s: %w", name, err)
		}
		// Sealed and removed meanwhile: it is in the bucket.
	}
	return s.cfg.Backend.Open(ctx, name)
}

// Stat describes the spool's copy of a recording it holds, else the
// backend's.
func (s *Store) Stat(ctx context.Context, name string) (recorder.ObjectInfo, error) {
	if err := recorder.ValidateName(name); err != nil {
		return recorder.ObjectInfo{}, fmt.Errorf("spool: stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return recorder.ObjectInfo{}, fmt.Errorf("spool: stat %s: %w", name, err)
	}
	if r := s.lookup(name); r != nil && !r.isCreating() {
		return r.info(), nil
	}
	if dir := s.spooled(name); dir != "" {
		if fi, err := os.Stat(filepath.Join(dir, dataFile)); err == nil {
			return recorder.ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
		}
	}
	return s.cfg.Backend.Stat(ctx, name)
}

// List lists the backend's recordings and those in the spool. The spool
// is read first, as Stat and Open do: a recording sealed and dropped from
// the spool between the two reads is then complete in the backend's
// listing, whereas the other order could miss it in both.
func (s *Store) List(ctx context.Context, prefix string) ([]recorder.ObjectInfo, error) {
	s.mu.Lock()
	var spooled []*rec
	for name, r := range s.recs {
		if strings.HasPrefix(name, prefix) && !r.creating {
			spooled = append(spooled, r)
		}
	}
	s.mu.Unlock()
	infos, err := s.cfg.Backend.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return mergeInfos(infos, spooled), nil
}

// Delete deletes a recording from the backend once it is sealed there: a
// recording still being written cannot be deleted, and one closed but not
// yet uploaded is waited for (within ctx).
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := recorder.ValidateName(name); err != nil {
		return fmt.Errorf("spool: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("spool: delete %s: %w", name, err)
	}
	for {
		r := s.lookup(name)
		if r == nil {
			break
		}
		if !r.isEnded() {
			return fmt.Errorf("spool: delete %s: the recording is still being written", name)
		}
		s.wake()
		select {
		case <-ctx.Done():
			return fmt.Errorf("spool: delete %s: not yet uploaded: %w", name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return s.cfg.Backend.Delete(ctx, name)
}

// Source returns name's parts in the backend, for manifest.Verify. A
// recording still in the spool has no manifest yet.
func (s *Store) Source(name string) manifest.Source {
	return s.cfg.Backend.Source(name)
}

// PublicKey is the key that verifies the manifests this spool signs.
func (s *Store) PublicKey() ssh.PublicKey { return s.cfg.Key.PublicKey() }

// Guarantee says whether a recording started now will be kept: the spool
// has room, its disk takes writes, and the storage is up as the uploader's
// requests of the last healthWindow show it (uploads, and the dispatcher's
// probes while idle). It does not probe the storage itself, so that a
// burst of session starts under load neither waits on nor is refused by
// one slow request; only when nothing is known of the last healthWindow
// (at start) does one probe answer every caller waiting.
func (s *Store) Guarantee(ctx context.Context) error {
	if s.pending.Load()+guaranteeReserve > s.cfg.Quota {
		return fmt.Errorf("%w (%d of %d bytes waiting for upload)", ErrFull, s.pending.Load(), s.cfg.Quota)
	}
	if err := s.diskFull(); err != nil {
		return err
	}
	if err, known := s.health.judge(time.Now()); known {
		if err != nil {
			return fmt.Errorf("recording storage unreachable: %w", err)
		}
		return nil
	}
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if err, known := s.health.judge(time.Now()); known { // another caller probed
		if err != nil {
			return fmt.Errorf("recording storage unreachable: %w", err)
		}
		return nil
	}
	return s.probe(ctx)
}

// healthWindow is how far back Guarantee looks at the uploader's requests.
// idleProbeEvery is how often the dispatcher probes a storage nothing was
// asked of: the window never runs empty while Bastion runs, and an outage
// with no upload due is seen within about two of them.
const (
	healthWindow   = 30 * time.Second
	idleProbeEvery = 5 * time.Second
)

// probe checks the storage now and records the outcome.
func (s *Store) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	err := s.cfg.Backend.Reachable(ctx)
	s.setHealth(err)
	if err != nil {
		return fmt.Errorf("recording storage unreachable: %w", err)
	}
	return nil
}

// setHealth records the outcome of a request to the storage and reports a
// change to OnHealth.
func (s *Store) setHealth(err error) {
	changed, prev := s.health.set(err)
	if !changed {
		return
	}
	if err != nil {
		s.log.Error("recording storage unreachable: uploads wait in the spool", "err", err)
	} else {
		s.log.Info("recording storage reachable again: uploads resume", "down_since", prev)
	}
	if s.cfg.OnHealth != nil {
		s.cfg.OnHealth(err)
	}
}

// health is the state of the storage as the last requests found it.
type health struct {
	mu      sync.Mutex
	err     error
	since   time.Time // of the first failure in a row
	fails   int       // failures in a row
	lastOK  time.Time
	lastTry time.Time
}

// judge says what the requests of the last healthWindow show: nil when the
// storage answers, else the last failure; known is false when no request
// was made in the window. A single failure right after a success within
// the window is not yet an outage (a request that timed out under load):
// the next retry, within a second or two, confirms or clears it.
func (h *health) judge(now time.Time) (err error, known bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.lastTry.IsZero() || now.Sub(h.lastTry) > healthWindow:
		return nil, false
	case h.err == nil:
		return nil, true
	case h.fails < 2 && now.Sub(h.lastOK) <= healthWindow:
		return nil, true
	}
	return h.err, true
}

// stale reports whether the last request is old enough that the
// dispatcher should probe an idle storage.
func (h *health) stale() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Since(h.lastTry) >= idleProbeEvery
}

// set records an outcome; it reports whether the state changed and, on
// recovery, since when it had failed.
func (h *health) set(err error) (bool, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	h.lastTry = now
	wasOK := h.err == nil
	prevSince := h.since
	if err == nil {
		h.err, h.lastOK, h.fails = nil, now, 0
		return !wasOK, prevSince
	}
	if wasOK {
		h.since = now
	}
	h.err = err
	h.fails++
	return wasOK, prevSince
}

func (h *health) ok() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err == nil
}

// dueProbe reports whether an unreachable storage should be probed now.
func (h *health) dueProbe() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err != nil && time.Since(h.lastTry) >= probeInterval
}
