package recorder

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder/asciicast"
)

// fakeStorage hands out fakeObjects; the other Storage methods are not used.
type fakeStorage struct {
	Storage // nil: calling another method panics
	mu      sync.Mutex
	objects []*fakeObject
	syncErr error // given to new objects
}

func (s *fakeStorage) Create(ctx context.Context, name string) (Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := &fakeObject{syncErr: s.syncErr}
	s.objects = append(s.objects, o)
	return o, nil
}

// object returns the only object created.
func (s *fakeStorage) object(t *testing.T) *fakeObject {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.objects) != 1 {
		t.Fatalf("%d objects created, want 1", len(s.objects))
	}
	return s.objects[0]
}

// fakeObject is an Object in memory that counts Syncs and can fail them.
type fakeObject struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	syncs   int
	syncErr error
	closed  bool
}

func (o *fakeObject) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return 0, fs.ErrClosed
	}
	return o.buf.Write(p)
}

func (o *fakeObject) Sync() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.syncs++
	return o.syncErr
}

func (o *fakeObject) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	return nil
}

func (o *fakeObject) failSyncs(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.syncErr = err
}

func (o *fakeObject) state() (syncs int, closed bool, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.syncs, o.closed, bytes.Clone(o.buf.Bytes())
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fastSync is a clock with the real time and a short sync interval.
var fastSync = clock{now: time.Now, syncInterval: 2 * time.Millisecond}

var header = asciicast.Header{Width: 80, Height: 24}

func TestRecordingPeriodicSync(t *testing.T) {
	st := &fakeStorage{}
	term, err := newTerminal(t.Context(), st, "s.cast", header, time.Now(), fastSync)
	if err != nil {
		t.Fatal(err)
	}
	o := st.object(t)
	if syncs, _, _ := o.state(); syncs != 1 {
		t.Errorf("%d Syncs after the start, want 1", syncs)
	}
	if err := term.Output([]byte("x")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a periodic Sync", func() bool { syncs, _, _ := o.state(); return syncs == 2 })
	time.Sleep(20 * fastSync.syncInterval)
	if syncs, _, _ := o.state(); syncs != 2 {
		t.Errorf("%d Syncs while idle, want still 2", syncs)
	}
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	if _, closed, _ := o.state(); !closed {
		t.Error("object not closed")
	}
}

func TestRecordingSyncFailure(t *testing.T) {
	errSync := errors.New("I/O error")
	st := &fakeStorage{}
	term, err := newTerminal(t.Context(), st, "s.cast", header, time.Now(), fastSync)
	if err != nil {
		t.Fatal(err)
	}
	o := st.object(t)
	o.failSyncs(errSync)
	waitFor(t, "an Output to fail", func() bool {
		err := term.Output([]byte("x"))
		if err != nil && !errors.Is(err, errSync) {
			t.Fatalf("Output: %v, want %v", err, errSync)
		}
		return err != nil
	})
	for name, err := range map[string]error{
		"Input": term.Input([]byte("y")), "Marker": term.Marker("m"), "Resize": term.Resize(1, 1), "Close": term.Close(),
	} {
		if !errors.Is(err, errSync) {
			t.Errorf("%s after the failure: %v, want %v", name, err, errSync)
		}
	}
	if _, closed, _ := o.state(); !closed {
		t.Error("object not closed")
	}
}

func TestRecordingStartSyncFailure(t *testing.T) {
	errSync := errors.New("read-only file system")
	st := &fakeStorage{syncErr: errSync}
	if _, err := newQueryLog(t.Context(), st, "s.jsonl", time.Now(), fastSync); !errors.Is(err, errSync) {
		t.Errorf("newQueryLog: %v, want %v", err, errSync)
	}
	if _, closed, _ := st.object(t).state(); !closed {
		t.Error("object not closed")
	}
}

func TestRecordingClosed(t *testing.T) {
	st := &fakeStorage{}
	term, err := newTerminal(t.Context(), st, "s.cast", header, time.Now(), fastSync)
	if err != nil {
		t.Fatal(err)
	}
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Output": term.Output([]byte("x")), "Input": term.Input([]byte("y")), "Marker": term.Marker("m"),
		"Resize": term.Resize(1, 1), "Close": term.Close(),
	} {
		if !errors.Is(err, fs.ErrClosed) {
			t.Errorf("%s after Close: %v, want fs.ErrClosed", name, err)
		}
	}
}
