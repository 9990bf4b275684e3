package storagetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder"
)

func testRoundTrip(t *testing.T, st recorder.Storage) {
	const name = "2031/03/04/ssh-42.cast"
	before := time.Now()
	o, err := st.Create(t.Context(), name)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	parts := []string{"first line\n", "", "second ", "line\n"}
	for _, p := range parts {
		n, err := io.WriteString(o, p)
		if err != nil || n != len(p) {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if err := o.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	after := time.Now()
	want := strings.Join(parts, "")
	checkContent(t, st, name, want)

	info, err := st.Stat(t.Context(), name)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Name != name || info.Size != int64(len(want)) {
		t.Errorf("Stat = %+v, want name %q and size %d", info, name, len(want))
	}
	if info.ModTime.Before(before.Add(-modTimeSlack)) || info.ModTime.After(after.Add(modTimeSlack)) {
		t.Errorf("ModTime %v, want between %v and %v", info.ModTime, before, after)
	}
}

func testEmpty(t *testing.T, st recorder.Storage) {
	put(t, st, "empty", "")
	checkContent(t, st, "empty", "")
	info, err := st.Stat(t.Context(), "empty")
	if err != nil || info.Size != 0 {
		t.Errorf("Stat = %+v, %v; want size 0", info, err)
	}
}

// testLarge writes more than an S3 multipart part (5 MiB) in small writes.
func testLarge(t *testing.T, st recorder.Storage) {
	data := make([]byte, 6<<20+12345)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	o, err := st.Create(t.Context(), "large")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 32<<10)
		if _, err := o.Write(rest[:n]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		rest = rest[n:]
	}
	if err := o.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := read(t, st, "large"); !bytes.Equal([]byte(got), data) {
		t.Errorf("read back %d bytes that differ from the %d written", len(got), len(data))
	}
	if info, err := st.Stat(t.Context(), "large"); err != nil || info.Size != int64(len(data)) {
		t.Errorf("Stat = %+v, %v; want size %d", info, err, len(data))
	}
}

func testExists(t *testing.T, st recorder.Storage) {
	o, err := st.Create(t.Context(), "once")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := io.WriteString(o, "original"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(t.Context(), "once"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create while the object is open: error %v, want one wrapping fs.ErrExist", err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(t.Context(), "once"); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create after Close: error %v, want one wrapping fs.ErrExist", err)
	}
	checkContent(t, st, "once", "original")
}

func testNotExist(t *testing.T, st recorder.Storage) {
	put(t, st, "dir/object", "x")
	for _, name := range []string{
		"missing",
		"dir",          // only a prefix of other objects
		"dir/obj",      // a prefix of another object's name
		"dir/object/x", // below an object
	} {
		_, err := st.Open(t.Context(), name)
		checkNotExist(t, "Open("+name+")", err)
		_, err = st.Stat(t.Context(), name)
		checkNotExist(t, "Stat("+name+")", err)
		checkNotExist(t, "Delete("+name+")", st.Delete(t.Context(), name))
	}
	checkContent(t, st, "dir/object", "x")
}

func testWriteAfterClose(t *testing.T, st recorder.Storage) {
	o, err := st.Create(t.Context(), "closed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(o, "kept"); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(o, "late"); err == nil {
		t.Error("Write after Close succeeded")
	}
	checkContent(t, st, "closed", "kept")
}

// testReadWhileWriting opens an object between writes: live watching reads
// what was synced so far.
func testReadWhileWriting(t *testing.T, st recorder.Storage) {
	o, err := st.Create(t.Context(), "live.cast")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i, chunk := range []string{"header\n", "event 1\n", "event 2\n"} {
		if _, err := io.WriteString(o, chunk); err != nil {
			t.Fatal(err)
		}
		want.WriteString(chunk)
		if err := o.Sync(); err != nil {
			t.Fatalf("Sync %d: %v", i, err)
		}
		if got := read(t, st, "live.cast"); !strings.HasPrefix(got, want.String()) {
			t.Fatalf("after write %d and Sync, a reader sees %q, want %q", i, got, want.String())
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	checkContent(t, st, "live.cast", want.String())
}

func testDelete(t *testing.T, st recorder.Storage) {
	put(t, st, "a/gone", "old")
	put(t, st, "a/kept", "kept")
	if err := st.Delete(t.Context(), "a/gone"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := st.Open(t.Context(), "a/gone")
	checkNotExist(t, "Open after Delete", err)
	_, err = st.Stat(t.Context(), "a/gone")
	checkNotExist(t, "Stat after Delete", err)
	checkNotExist(t, "Delete after Delete", st.Delete(t.Context(), "a/gone"))
	infos, err := st.List(t.Context(), "a/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(infos) != 1 || infos[0].Name != "a/kept" {
		t.Errorf("List after Delete = %+v, want only a/kept", infos)
	}
	put(t, st, "a/gone", "new")
	checkContent(t, st, "a/gone", "new")
	checkContent(t, st, "a/kept", "kept")
}
