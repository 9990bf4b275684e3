package recorder_test

import (
	"io"
	"testing"

	"github.com/bastionhq/bastion/recorder"
)

func TestBuffered(t *testing.T) {
	dir, err := recorder.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := recorder.Buffered(dir, 1024)
	obj, err := st.Create(t.Context(), "db/a.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		t.Helper()
		rc, err := dir.Open(t.Context(), "db/a.jsonl")
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if _, err := io.WriteString(obj, "one\n"); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "" {
		t.Errorf("before Sync the storage has %q: the write was not buffered", got)
	}
	if err := obj.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "one\n" {
		t.Errorf("after Sync: %q", got)
	}
	if _, err := io.WriteString(obj, "two\n"); err != nil {
		t.Fatal(err)
	}
	if err := obj.Close(); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "one\ntwo\n" {
		t.Errorf("after Close: %q", got)
	}
	if _, err := io.WriteString(obj, "late\n"); err == nil {
		// The buffer takes it, but Close already closed the object: a
		// later Sync must fail.
		if obj.Sync() == nil {
			t.Error("a write after Close reached the storage")
		}
	}
}
