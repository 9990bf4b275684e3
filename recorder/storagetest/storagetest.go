// Package storagetest is the contract test suite for recorder.Storage. Every
// implementation runs it from its own tests:
//
//	func TestContract(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) recorder.Storage { ... a new, empty storage ... })
//	}
//
// The suite pins down what the doc comments of recorder.Storage and
// recorder.Object promise: creating, appending, reading (also while an object
// is being written), describing, listing and deleting objects; fs.ErrExist
// and fs.ErrNotExist in the errors; the name rule of recorder.ValidateName;
// and use from concurrent goroutines.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder"
)

// Run runs the contract tests. open is called once per subtest, from
// parallel subtests, and must return a new, empty storage, cleaned up by
// the caller through t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) recorder.Storage) {
	tests := []struct {
		name string
		run  func(t *testing.T, st recorder.Storage)
	}{
		{"RoundTrip", testRoundTrip},
		{"Empty", testEmpty},
		{"Large", testLarge},
		{"Exists", testExists},
		{"NotExist", testNotExist},
		{"WriteAfterClose", testWriteAfterClose},
		{"ReadWhileWriting", testReadWhileWriting},
		{"Delete", testDelete},
		{"List", testList},
		{"ValidNames", testValidNames},
		{"InvalidNames", testInvalidNames},
		{"InvalidPrefix", testInvalidPrefix},
		{"CanceledContext", testCanceledContext},
		{"ConcurrentObjects", testConcurrentObjects},
		{"ConcurrentCreate", testConcurrentCreate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, open(t))
		})
	}
}

// modTimeSlack is how far a ModTime may be from the clock around the write:
// object stores keep whole seconds, and their clocks differ from ours.
const modTimeSlack = 2 * time.Second

// put creates an object with the given content and closes it.
func put(t *testing.T, st recorder.Storage, name, content string) {
	t.Helper()
	o, err := st.Create(t.Context(), name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	if _, err := io.WriteString(o, content); err != nil {
		t.Fatalf("Write(%q): %v", name, err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("Close(%q): %v", name, err)
	}
}

// read returns the content of an object.
func read(t *testing.T, st recorder.Storage, name string) string {
	t.Helper()
	rc, err := st.Open(t.Context(), name)
	if err != nil {
		t.Fatalf("Open(%q): %v", name, err)
	}
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", name, err)
	}
	if err := rc.Close(); err != nil {
		t.Fatalf("close reader of %q: %v", name, err)
	}
	return string(b)
}

// checkContent fails unless the object holds want.
func checkContent(t *testing.T, st recorder.Storage, name, want string) {
	t.Helper()
	if got := read(t, st, name); got != want {
		t.Errorf("%q holds %s, want %s", name, excerpt(got), excerpt(want))
	}
}

// excerpt quotes content for messages, shortened if long.
func excerpt(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%q… (%d bytes)", s[:80], len(s))
	}
	return fmt.Sprintf("%q", s)
}

// checkNotExist fails unless err wraps fs.ErrNotExist.
func checkNotExist(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: error %v, want one wrapping fs.ErrNotExist", what, err)
	}
}

// canceled returns a context that is already canceled.
func canceled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}
