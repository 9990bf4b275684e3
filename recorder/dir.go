package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Dir is a Storage in a local directory: each object is a file, and the
// slashes in its name are subdirectories. Directories are created with mode
// 0700 and files with 0600. Writes go straight to the file, so readers see
// them at once; Sync is fsync.
//
// Because names are paths, an object cannot have the name of a "directory"
// of other objects: with "a/b" stored, Create("a") fails.
type Dir struct {
	root string

	// durable holds directories whose own entry in their parent is known
	// to be on disk: a new file's first Sync fsyncs its directory and only
	// the ancestors not known yet, not every directory up to the root.
	// Making a directory forgets them all, in case one was removed and is
	// made again.
	mu      sync.Mutex
	durable map[string]bool

	syncDir func(dir string) error // syncDir; tests count the calls

	// commit makes the records of every recording in the directory
	// durable together (Commit).
	commit *GroupCommit
}

var (
	_ Storage   = (*Dir)(nil)
	_ Committer = (*dirObject)(nil)
)

// Modes of what Dir creates: recordings are readable by Bastion alone.
const (
	dirMode  = 0o700
	fileMode = 0o600
)

// NewDir returns a Dir storing objects under path, which it creates (mode
// 0700) if missing. An existing directory keeps its mode. A symbolic link to
// a directory is resolved once, here.
func NewDir(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("recorder: dir: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("recorder: dir: %w", err)
	}
	if err := os.MkdirAll(abs, dirMode); err != nil {
		return nil, fmt.Errorf("recorder: dir: %w", err)
	}
	// List walks the tree, and a walk does not enter a root that is a
	// symbolic link.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("recorder: dir: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("recorder: dir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("recorder: dir: %s is not a directory", abs)
	}
	commit, err := NewGroupCommit(abs)
	if err != nil {
		return nil, err
	}
	return &Dir{root: abs, durable: map[string]bool{}, syncDir: syncDir, commit: commit}, nil
}

// Path returns the directory's absolute path.
func (d *Dir) Path() string { return d.root }

// path returns the file of a valid name.
func (d *Dir) path(name string) string {
	return filepath.Join(d.root, filepath.FromSlash(name))
}

// Create creates the object's file, and its directories, exclusively.
func (d *Dir) Create(ctx context.Context, name string) (Object, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("recorder: create: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("recorder: create %s: %w", name, err)
	}
	p := d.path(name)
	if _, err := os.Stat(filepath.Dir(p)); errors.Is(err, fs.ErrNotExist) {
		d.mu.Lock()
		clear(d.durable)
		d.mu.Unlock()
	}
	if err := os.MkdirAll(filepath.Dir(p), dirMode); err != nil {
		return nil, fmt.Errorf("recorder: create %s: %w", name, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, fileMode)
	if err != nil {
		return nil, fmt.Errorf("recorder: create %s: %w", name, err)
	}
	return &dirObject{f: f, name: name, d: d, dir: filepath.Dir(p), entries: true}, nil
}

// syncEntries makes the entry of a new file in dir durable: it fsyncs dir,
// then each ancestor up to the root whose child on the way is not known to
// be durable yet.
func (d *Dir) syncEntries(dir string) error {
	if err := d.syncDir(dir); err != nil {
		return err
	}
	for dir != d.root && strings.HasPrefix(dir, d.root) {
		d.mu.Lock()
		known := d.durable[dir]
		d.mu.Unlock()
		if known {
			return nil
		}
		parent := filepath.Dir(dir)
		if err := d.syncDir(parent); err != nil {
			return err
		}
		d.mu.Lock()
		d.durable[dir] = true
		d.mu.Unlock()
		dir = parent
	}
	return nil
}

// Open opens the object's file for reading.
func (d *Dir) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("recorder: open: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("recorder: open %s: %w", name, err)
	}
	// O_NOFOLLOW: a symbolic link is not an object, as Stat and List agree.
	f, err := os.OpenFile(d.path(name), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("recorder: open %s: %w", name, notExist(err))
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist // a directory of other objects
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("recorder: open %s: %w", name, err), f.Close())
	}
	return f, nil
}

// Stat describes the object's file.
func (d *Dir) Stat(ctx context.Context, name string) (ObjectInfo, error) {
	if err := ValidateName(name); err != nil {
		return ObjectInfo{}, fmt.Errorf("recorder: stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, fmt.Errorf("recorder: stat %s: %w", name, err)
	}
	fi, err := d.regular(name)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("recorder: stat %s: %w", name, err)
	}
	return ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// regular returns the FileInfo of the object's file, with an error wrapping
// fs.ErrNotExist if it is missing or not a regular file.
func (d *Dir) regular(name string) (fs.FileInfo, error) {
	fi, err := os.Lstat(d.path(name))
	if err != nil {
		return nil, notExist(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fs.ErrNotExist
	}
	return fi, nil
}

// List walks the directories that can hold names starting with prefix.
// Files whose paths are not valid names (put there by other means) are left
// out, as are directories and anything but regular files.
func (d *Dir) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("recorder: list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("recorder: list %q: %w", prefix, err)
	}
	// Start from the deepest directory the prefix names whole.
	start := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = prefix[:i]
		if ValidateName(start) != nil {
			return []ObjectInfo{}, nil // "a//", "../": no name can start so
		}
	}
	infos := []ObjectInfo{}
	root := d.root
	if start != "" {
		root = d.path(start)
	}
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			if p == root && errors.Is(notExist(err), fs.ErrNotExist) {
				return fs.SkipAll // no such directory: nothing to list
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if de.IsDir() {
			// Descend only where names can still start with the prefix.
			if p != root && !strings.HasPrefix(name+"/", prefix) && !strings.HasPrefix(prefix, name+"/") {
				return fs.SkipDir
			}
			return nil
		}
		if !de.Type().IsRegular() || !strings.HasPrefix(name, prefix) || ValidateName(name) != nil {
			return nil
		}
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		infos = append(infos, ObjectInfo{Name: name, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("recorder: list %q: %w", prefix, err)
	}
	slices.SortFunc(infos, func(a, b ObjectInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}

// Delete removes the object's file. Directories left empty stay: removing
// them would race with a Create below them.
func (d *Dir) Delete(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return fmt.Errorf("recorder: delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("recorder: delete %s: %w", name, err)
	}
	if _, err := d.regular(name); err != nil {
		return fmt.Errorf("recorder: delete %s: %w", name, err)
	}
	if err := os.Remove(d.path(name)); err != nil {
		return fmt.Errorf("recorder: delete %s: %w", name, notExist(err))
	}
	return nil
}

// notExist makes an error for a path through a file ("a/b" where "a" is a
// file: ENOTDIR) or for a symbolic link opened with O_NOFOLLOW (ELOOP) wrap
// fs.ErrNotExist, as no object of that name exists.
func notExist(err error) error {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ELOOP) {
		return fmt.Errorf("%w (%w)", fs.ErrNotExist, err)
	}
	return err
}

// dirObject is an object of a Dir being written.
type dirObject struct {
	f    *os.File
	name string

	d   *Dir
	dir string // the file's directory

	mu      sync.Mutex
	entries bool // the file's entry and its directories' are yet to be made durable
	closed  bool
}

func (o *dirObject) Write(p []byte) (int, error) {
	n, err := o.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("recorder: write %s: %w", o.name, err)
	}
	return n, nil
}

// Sync fsyncs the file and, the first time, its directory and those above
// it not yet known durable (Dir.syncEntries), so that the file's entry
// survives a crash too.
func (o *dirObject) Sync() error {
	if err := o.f.Sync(); err != nil {
		return fmt.Errorf("recorder: sync %s: %w", o.name, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.entries {
		if err := o.d.syncEntries(o.dir); err != nil {
			return fmt.Errorf("recorder: sync %s: %w", o.name, err)
		}
		o.entries = false
	}
	return nil
}

// Commit makes what was written durable by the directory's group commit.
// The object's first Sync (every recording syncs once as it starts) has
// made its entry durable already; the round's syncfs would too.
func (o *dirObject) Commit(ctx context.Context) error {
	if err := o.d.commit.Wait(ctx); err != nil {
		return fmt.Errorf("recorder: commit %s: %w", o.name, err)
	}
	return nil
}

func (o *dirObject) Close() error {
	o.mu.Lock()
	closed := o.closed
	o.closed = true
	o.mu.Unlock()
	if closed {
		return fmt.Errorf("recorder: close %s: %w", o.name, fs.ErrClosed)
	}
	return errors.Join(o.Sync(), o.f.Close())
}

// syncDir fsyncs a directory.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
