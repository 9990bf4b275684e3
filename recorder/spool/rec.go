package spool

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/manifest"
)

// Files of a recording's spool directory.
const (
	metaFile    = "meta.json"
	dataFile    = "data"
	journalFile = "journal"
)

// meta is what a recording's spool directory says about it.
type meta struct {
	Name    string            `json:"name"`
	Token   string            `json:"token"` // in its created marker
	Started time.Time         `json:"started"`
	Info    map[string]string `json:"info,omitempty"`
}

// rec is one recording in the spool.
//
// The fields under "uploader" are used by one upload step at a time (the
// dispatcher marks the recording busy under Store.mu) and by recovery
// before the dispatcher starts.
type rec struct {
	s    *Store
	name string
	dir  string
	meta meta

	// Guarded by Store.mu.
	creating  bool      // Create has not finished
	busy      bool      // an upload step runs
	retryAt   time.Time // no step before
	backoff   time.Duration
	lastErr   error
	recovered bool // found unfinished by Open

	mu       sync.Mutex
	data     *os.File // appended to while written; nil once closed
	journal  *os.File
	written  int64 // bytes appended
	synced   int64 // bytes fsynced
	ended    bool  // closed by its writer, or recovered
	status   manifest.Status
	endedAt  time.Time
	modTime  time.Time
	marks    []mark // when pending bytes were written, for the upload lag
	writeErr error  // a failed write or fsync: the spool cannot vouch for more

	// uploader
	reader   *os.File // data, for reading chunks
	created  bool     // the created marker is uploaded
	cut      int64    // bytes cut into chunks
	chunks   []manifest.Chunk
	chunkAt  []time.Time // for chunks not yet uploaded: when their first byte was written
	chain    *manifest.Chain
	uploaded int // chunks uploaded
}

// mark says that the bytes from off on were written at or after at.
type mark struct {
	off int64
	at  time.Time
}

func (r *rec) path(file string) string { return filepath.Join(r.dir, file) }

func (r *rec) isCreating() bool {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.creating
}

func (r *rec) isEnded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended
}

func (r *rec) info() recorder.ObjectInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recorder.ObjectInfo{Name: r.name, Size: r.written, ModTime: r.modTime}
}

// create makes the recording's spool directory and files, durably.
func (r *rec) create(info map[string]string) error {
	now := time.Now()
	dir, err := os.MkdirTemp(r.s.cfg.Dir, now.UTC().Format("20060102T150405")+"-")
	if err != nil {
		return err
	}
	r.dir = dir
	r.meta = meta{Name: r.name, Token: rand.Text(), Started: now.UTC(), Info: info}
	b, err := json.Marshal(r.meta)
	if err != nil {
		return err
	}
	if err := writeFileSync(r.path(metaFile), b); err != nil {
		return err
	}
	if r.journal, err = os.OpenFile(r.path(journalFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		return err
	}
	if r.data, err = os.OpenFile(r.path(dataFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		return err
	}
	if err := errors.Join(r.journal.Sync(), r.data.Sync(), syncDir(dir), syncDir(r.s.cfg.Dir)); err != nil {
		return err
	}
	r.chain = manifest.NewChain(r.name)
	r.modTime = now
	return nil
}

// object is the recorder.Object of a recording being written.
type object struct{ r *rec }

// Write appends p to the spool file, if the spool has room for it.
func (o *object) Write(p []byte) (int, error) {
	r := o.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended || r.data == nil { // closed, or the spool closed under it
		return 0, fmt.Errorf("spool: write %s: %w", r.name, fs.ErrClosed)
	}
	if r.writeErr != nil {
		return 0, r.writeErr
	}
	if pending := r.s.pending.Load(); pending+int64(len(p)) > r.s.cfg.Quota {
		return 0, fmt.Errorf("spool: write %s: %w (%d bytes waiting for upload, quota %d)", r.name, ErrFull, pending, r.s.cfg.Quota)
	}
	now := time.Now()
	if len(r.marks) == 0 || now.Sub(r.marks[len(r.marks)-1].at) >= markEvery {
		r.marks = append(r.marks, mark{off: r.written, at: now})
	}
	n, err := r.data.Write(p)
	r.written += int64(n)
	r.s.pending.Add(int64(n))
	r.modTime = now
	if err != nil {
		r.writeErr = fmt.Errorf("spool: write %s: %w", r.name, err)
		r.s.spoolFailed(r.writeErr)
		return n, r.writeErr
	}
	if r.s.cfg.FsyncInterval == FsyncAlways {
		return n, r.syncLocked()
	}
	return n, nil
}

// markEvery is the resolution of the upload lag measure.
const markEvery = 20 * time.Millisecond

// Sync fsyncs the spool file and lets the uploader cut what it holds.
func (o *object) Sync() error {
	r := o.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended || r.data == nil {
		return fmt.Errorf("spool: sync %s: %w", r.name, fs.ErrClosed)
	}
	return r.syncLocked()
}

// Commit makes what was written durable with the spool's group commit:
// one syncfs for every recording waiting, instead of an fsync each. A
// failed round fails the recording, as a failed fsync does.
func (o *object) Commit(ctx context.Context) error {
	r := o.r
	r.mu.Lock()
	if r.ended || r.data == nil {
		r.mu.Unlock()
		return fmt.Errorf("spool: commit %s: %w", r.name, fs.ErrClosed)
	}
	if r.writeErr != nil || r.synced == r.written {
		r.mu.Unlock()
		return r.writeErr
	}
	upTo := r.written
	r.mu.Unlock()

	err := r.s.commit.Wait(ctx)

	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("spool: commit %s: %w", r.name, err)
	case err != nil:
		if r.writeErr == nil {
			r.writeErr = fmt.Errorf("spool: fsync %s: %w", r.name, err)
			r.s.spoolFailed(r.writeErr)
		}
		return r.writeErr
	case r.writeErr != nil:
		return r.writeErr
	}
	r.synced = max(r.synced, upTo)
	r.s.wake()
	return nil
}

var _ recorder.Committer = (*object)(nil)

// syncLocked fsyncs the data file if it holds unsynced bytes. r.mu is held.
func (r *rec) syncLocked() error {
	if r.writeErr != nil {
		return r.writeErr
	}
	if r.synced == r.written {
		return nil
	}
	if err := r.data.Sync(); err != nil {
		r.writeErr = fmt.Errorf("spool: fsync %s: %w", r.name, err)
		r.s.spoolFailed(r.writeErr)
		return r.writeErr
	}
	r.synced = r.written
	r.s.wake()
	return nil
}

// Close fsyncs the spool file and records the end in the journal; the
// uploader then uploads the rest and seals the recording. It does not wait
// for the storage.
func (o *object) Close() error {
	r := o.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended || r.data == nil {
		return fmt.Errorf("spool: close %s: %w", r.name, fs.ErrClosed)
	}
	err := r.syncLocked()
	r.ended, r.status, r.endedAt = true, manifest.Complete, time.Now().UTC()
	if err == nil {
		err = r.appendJournal(fmt.Sprintf("end %s %d", manifest.Complete, r.endedAt.UnixNano()), true)
	}
	err = errors.Join(err, r.data.Close())
	r.data = nil
	r.s.wake()
	if err != nil {
		return fmt.Errorf("spool: close %s: %w", r.name, err)
	}
	return nil
}

// appendJournal appends one line, fsynced if sync.
func (r *rec) appendJournal(line string, sync bool) error {
	if _, err := r.journal.WriteString(line + "\n"); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if sync {
		if err := r.journal.Sync(); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
	}
	return nil
}

// closeFiles closes what the recording has open (the spool is closing).
func (r *rec) closeFiles() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, f := range []**os.File{&r.data, &r.reader, &r.journal} {
		if *f != nil {
			errs = append(errs, (*f).Close())
			*f = nil
		}
	}
	return errors.Join(errs...)
}

// cutChunks cuts the synced bytes not yet in a chunk into chunks of at
// most MaxChunk bytes, hashing and journaling each (fsynced) before any is
// uploaded. Uploader only.
func (r *rec) cutChunks() error {
	r.mu.Lock()
	upTo := r.synced
	var marks []mark
	marks, r.marks = cutMarks(r.marks, upTo)
	r.mu.Unlock()
	if upTo <= r.cut {
		return nil
	}
	if err := r.openReader(); err != nil {
		return err
	}
	for r.cut < upTo {
		size := min(upTo-r.cut, r.s.cfg.MaxChunk)
		buf := make([]byte, size)
		if _, err := r.reader.ReadAt(buf, r.cut); err != nil {
			return fmt.Errorf("read spool: %w", err)
		}
		sum := sha256.Sum256(buf)
		c := manifest.Chunk{N: len(r.chunks) + 1, Size: size, SHA256: hex.EncodeToString(sum[:])}
		r.mu.Lock()
		err := r.appendJournal(fmt.Sprintf("chunk %d %d %s", c.N, c.Size, c.SHA256), true)
		r.mu.Unlock()
		if err != nil {
			return err
		}
		r.chunks = append(r.chunks, c)
		r.chunkAt = append(r.chunkAt, firstMark(marks, r.cut))
		r.chain.Add(sum)
		r.cut += size
	}
	return nil
}

// cutMarks splits marks at off: those before it (returned, with the last
// of them kept as the start of what follows) and the rest.
func cutMarks(marks []mark, off int64) (before, rest []mark) {
	i := 0
	for i < len(marks) && marks[i].off < off {
		i++
	}
	before = slices.Clone(marks[:i])
	rest = marks[i:]
	if i > 0 && (len(rest) == 0 || rest[0].off > off) {
		// The bytes from off on were written at or after the last mark
		// before it.
		rest = append([]mark{{off: off, at: marks[i-1].at}}, rest...)
	}
	return before, slices.Clip(rest)
}

// firstMark is when the byte at off was (at the earliest) written.
func firstMark(marks []mark, off int64) time.Time {
	var at time.Time
	for _, m := range marks {
		if m.off > off {
			break
		}
		at = m.at
	}
	return at
}

func (r *rec) openReader() error {
	if r.reader != nil {
		return nil
	}
	f, err := os.Open(r.path(dataFile))
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	r.reader = f
	return nil
}

// chunkData reads chunk i (from 0) back from the spool file.
func (r *rec) chunkData(i int) ([]byte, error) {
	if err := r.openReader(); err != nil {
		return nil, err
	}
	var off int64
	for _, c := range r.chunks[:i] {
		off += c.Size
	}
	buf := make([]byte, r.chunks[i].Size)
	if _, err := r.reader.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	return buf, nil
}

// buildManifest signs the manifest of a recording whose chunks are all
// uploaded.
func (r *rec) buildManifest() ([]byte, error) {
	r.mu.Lock()
	status, ended := r.status, r.endedAt
	r.mu.Unlock()
	m := &manifest.Manifest{
		Version: manifest.Version, Name: r.name, Status: status,
		Started: r.meta.Started, Ended: ended, Session: r.meta.Info,
		Chunks: r.chunks, Size: r.cut, Chain: r.chain.Sum(), Signer: r.s.cfg.Signer,
	}
	return manifest.Sign(m, r.s.cfg.Key)
}

// remove deletes the spool directory of a sealed recording.
func (r *rec) remove() error {
	if err := r.closeFiles(); err != nil {
		return err
	}
	return os.RemoveAll(r.dir)
}

// loadRec reads a recording's spool directory left by an earlier process.
// A journal line cut short by a crash, and what follows it, is dropped.
// A recording its writer did not close ends at the last complete line of
// its data (both formats are line-based) and is marked interrupted.
func (s *Store) loadRec(dir string) (*rec, error) {
	r := &rec{s: s, dir: dir}
	b, err := os.ReadFile(r.path(metaFile))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &r.meta); err != nil {
		return nil, fmt.Errorf("%s: %w", metaFile, err)
	}
	if err := recorder.ValidateName(r.meta.Name); err != nil {
		return nil, fmt.Errorf("%s: %w", metaFile, err)
	}
	r.name = r.meta.Name
	r.chain = manifest.NewChain(r.name)
	fi, err := os.Stat(r.path(dataFile))
	if err != nil {
		return nil, err
	}
	r.written, r.modTime = fi.Size(), fi.ModTime()
	if err := r.replayJournal(); err != nil {
		return nil, err
	}
	if r.cut > r.written {
		return nil, fmt.Errorf("journal names %d bytes of chunks, data holds %d", r.cut, r.written)
	}
	if !r.ended {
		// Keep whole lines only: a write cut short by the crash would
		// break the format.
		end, err := lastLineEnd(r.path(dataFile), r.cut, r.written)
		if err != nil {
			return nil, err
		}
		if end < r.written {
			s.log.Warn("spool: dropping an incomplete last line of an interrupted recording", "recording", r.name, "bytes", r.written-end)
		}
		r.written = end
		r.ended, r.status, r.endedAt = true, manifest.Interrupted, r.modTime.UTC()
		if r.journal, err = os.OpenFile(r.path(journalFile), os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
			return nil, err
		}
		if err := r.appendJournal(fmt.Sprintf("end %s %d", manifest.Interrupted, r.endedAt.UnixNano()), true); err != nil {
			return nil, err
		}
	} else if r.journal, err = os.OpenFile(r.path(journalFile), os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, err
	}
	r.synced = r.written
	r.recovered = r.status == manifest.Interrupted
	for range r.chunks[r.uploaded:] {
		r.chunkAt = append(r.chunkAt, time.Time{})
	}
	var up int64
	for _, c := range r.chunks[:r.uploaded] {
		up += c.Size
	}
	s.pending.Add(r.written - up)
	return r, nil
}

// replayJournal rebuilds the uploader's state from the journal, truncating
// it after its last complete, valid line.
func (r *rec) replayJournal() error {
	f, err := os.OpenFile(r.path(journalFile), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var good int64
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			break // EOF, or a line without its newline: cut short
		}
		if !r.applyJournal(strings.TrimSuffix(line, "\n")) {
			break
		}
		good += int64(len(line))
	}
	if err := f.Truncate(good); err != nil {
		return err
	}
	return f.Sync()
}

// applyJournal applies one journal line; false if it is not valid.
func (r *rec) applyJournal(line string) bool {
	f := strings.Fields(line)
	switch {
	case len(f) == 1 && f[0] == "created":
		r.created = true
	case len(f) == 4 && f[0] == "chunk":
		n, err1 := strconv.Atoi(f[1])
		size, err2 := strconv.ParseInt(f[2], 10, 64)
		sum, err3 := hex.DecodeString(f[3])
		if err1 != nil || err2 != nil || err3 != nil || n != len(r.chunks)+1 || size <= 0 || len(sum) != sha256.Size {
			return false
		}
		r.chunks = append(r.chunks, manifest.Chunk{N: n, Size: size, SHA256: f[3]})
		r.chain.Add([sha256.Size]byte(sum))
		r.cut += size
	case len(f) == 2 && f[0] == "up":
		n, err := strconv.Atoi(f[1])
		if err != nil || n != r.uploaded+1 || n > len(r.chunks) {
			return false
		}
		r.uploaded = n
	case len(f) == 3 && f[0] == "end":
		ns, err := strconv.ParseInt(f[2], 10, 64)
		st := manifest.Status(f[1])
		if err != nil || (st != manifest.Complete && st != manifest.Interrupted) {
			return false
		}
		r.ended, r.status, r.endedAt = true, st, time.Unix(0, ns).UTC()
	default:
		return false
	}
	return true
}

// lastLineEnd returns the offset just past the last newline in the file
// between from and to, or from if there is none.
func lastLineEnd(path string, from, to int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	const block = 64 << 10
	for end := to; end > from; {
		start := max(from, end-block)
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return from, nil
}

// writeFileSync writes a new file and fsyncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Sync(), f.Close())
}

// syncDir fsyncs a directory, so that its entries survive a crash.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// mergeInfos adds the recordings in the spool to a backend listing (the
// spool's copy wins), sorted by name.
func mergeInfos(infos []recorder.ObjectInfo, spooled []*rec) []recorder.ObjectInfo {
	byName := map[string]int{}
	for i, in := range infos {
		byName[in.Name] = i
	}
	for _, r := range spooled {
		in := r.info()
		if i, ok := byName[in.Name]; ok {
			infos[i] = in
		} else {
			infos = append(infos, in)
		}
	}
	slices.SortFunc(infos, func(a, b recorder.ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos
}
