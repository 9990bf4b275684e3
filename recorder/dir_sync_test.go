package recorder

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestDirSyncsNewEntries: a new file's first Sync fsyncs its directory and
// the ancestors whose entries are not known durable, up to the root; a
// second file in the same directory needs only its directory; after a
// directory is made (a new day, or one removed behind Bastion's back and
// made again) everything is synced up again.
func TestDirSyncsNewEntries(t *testing.T) {
	root := t.TempDir()
	d, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var synced []string
	d.syncDir = func(dir string) error {
		rel, err := filepath.Rel(d.root, dir)
		if err != nil {
			return err
		}
		synced = append(synced, filepath.ToSlash(rel))
		return syncDir(dir)
	}
	create := func(name string, want ...string) {
		t.Helper()
		synced = nil
		obj, err := d.Create(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if err := obj.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := obj.Sync(); err != nil { // the entries are synced once
			t.Fatal(err)
		}
		if err := obj.Close(); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(synced, want) {
			t.Fatalf("creating %s synced directories %q, want %q", name, synced, want)
		}
	}
	create("p/2031/01/a.jsonl", "p/2031/01", "p/2031", "p", ".")
	create("p/2031/01/b.jsonl", "p/2031/01")
	create("p/2031/02/c.jsonl", "p/2031/02", "p/2031", "p", ".")
	create("p/2031/01/e.jsonl", "p/2031/01", "p/2031") // forgotten when 02 was made
	create("p/2031/01/f.jsonl", "p/2031/01")
	if err := os.RemoveAll(filepath.Join(d.root, "p", "2031")); err != nil {
		t.Fatal(err)
	}
	create("p/2031/01/d.jsonl", "p/2031/01", "p/2031", "p", ".")
	create("top.jsonl", ".")
}
