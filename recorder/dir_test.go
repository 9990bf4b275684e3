package recorder_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/storagetest"
)

func TestDirContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) recorder.Storage { return newDir(t) })
}

// newDir returns a Dir in a new temporary directory.
func newDir(t *testing.T) *recorder.Dir {
	t.Helper()
	d, err := recorder.NewDir(filepath.Join(t.TempDir(), "recordings"))
	if err != nil {
		t.Fatalf("NewDir: %v", err)
	}
	return d
}

// TestDirModes checks that recordings are private to Bastion's user, whatever
// the umask allows.
func TestDirModes(t *testing.T) {
	d := newDir(t)
	o, err := d.Create(t.Context(), "2031/03/ssh-1.cast")
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		want fs.FileMode
	}{
		{d.Path(), fs.ModeDir | 0o700},
		{filepath.Join(d.Path(), "2031"), fs.ModeDir | 0o700},
		{filepath.Join(d.Path(), "2031", "03"), fs.ModeDir | 0o700},
		{filepath.Join(d.Path(), "2031", "03", "ssh-1.cast"), 0o600},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.want {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode(), c.want)
		}
	}
}

func TestNewDirErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"empty", "", "empty path"},
		{"a file", file, "not a directory"},
		{"below a file", filepath.Join(file, "sub"), "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := recorder.NewDir(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewDir(%q) error = %v, want one containing %q", tt.path, err, tt.wantErr)
			}
		})
	}
}

// TestDirSymlinkRoot checks that a recordings directory reached through a
// symbolic link is listed.
func TestDirSymlinkRoot(t *testing.T) {
	tmp := t.TempDir()
	real := filepath.Join(tmp, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(tmp, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	d, err := recorder.NewDir(link)
	if err != nil {
		t.Fatal(err)
	}
	put(t, d, "a/b", "x")
	infos, err := d.List(t.Context(), "")
	if err != nil || len(infos) != 1 || infos[0].Name != "a/b" {
		t.Errorf("List = %+v, %v; want a/b", infos, err)
	}
}

// TestDirForeignFiles checks that files put in the directory by other means,
// under names the Storage would reject, and symbolic links are not listed.
func TestDirForeignFiles(t *testing.T) {
	d := newDir(t)
	put(t, d, "ok", "x")
	for _, name := range []string{"with space", "é"} {
		if err := os.WriteFile(filepath.Join(d.Path(), name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(d.Path(), "ok"), filepath.Join(d.Path(), "link")); err != nil {
		t.Fatal(err)
	}
	infos, err := d.List(t.Context(), "")
	if err != nil || len(infos) != 1 || infos[0].Name != "ok" {
		t.Errorf("List = %+v, %v; want only ok", infos, err)
	}
	if _, err := d.Stat(t.Context(), "link"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a symbolic link: error %v, want one wrapping fs.ErrNotExist", err)
	}
	if rc, err := d.Open(t.Context(), "link"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a symbolic link: error %v, want one wrapping fs.ErrNotExist", err)
		if err == nil {
			_ = rc.Close() // the test has failed already
		}
	}
}

// TestDirObjectNamedLikeDirectory documents the one way Dir differs from an
// object store: a name cannot be both an object and a prefix directory.
func TestDirObjectNamedLikeDirectory(t *testing.T) {
	d := newDir(t)
	put(t, d, "a/b", "x")
	if _, err := d.Create(t.Context(), "a"); err == nil {
		t.Error(`Create("a") with "a/b" stored succeeded`)
	}
	put(t, d, "c", "x")
	if _, err := d.Create(t.Context(), "c/d"); err == nil {
		t.Error(`Create("c/d") with "c" stored succeeded`)
	}
}

// put creates an object with the given content and closes it.
func put(t *testing.T, st recorder.Storage, name, content string) {
	t.Helper()
	o, err := st.Create(t.Context(), name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	if _, err := io.WriteString(o, content); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
}
