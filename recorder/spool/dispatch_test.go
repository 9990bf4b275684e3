package spool

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/manifest"
)

// The spool's timers (the dispatcher's tick, retry backoff, probes of an
// unreachable storage) are tested in a synctest bubble against a fake
// backend: time is virtual, so the waits are exact and take no real time.

// fakeBackend is an in-memory Backend whose chunk uploads fail while
// failChunks > 0 and whose probes fail while down.
type fakeBackend struct {
	mu         sync.Mutex
	failChunks int  // PutChunk calls that fail before they work
	down       bool // Reachable fails
	attempts   []time.Time
	chunks     map[string][]byte // by name and number: "name#n"
	sealed     map[string]bool
	manifests  map[string][]byte // signed, by name
}

var errDown = errors.New("fake storage down")

func (b *fakeBackend) PutCreated(context.Context, string, string) error { return nil }

func (b *fakeBackend) PutChunk(_ context.Context, name string, n int, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.attempts = append(b.attempts, time.Now())
	if b.failChunks > 0 {
		b.failChunks--
		return errDown
	}
	if b.chunks == nil {
		b.chunks = map[string][]byte{}
	}
	b.chunks[fmt.Sprintf("%s#%d", name, n)] = append([]byte(nil), data...)
	return nil
}

func (b *fakeBackend) Seal(_ context.Context, name string, signed []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed == nil {
		b.sealed = map[string]bool{}
	}
	b.sealed[name] = true
	if b.manifests == nil {
		b.manifests = map[string][]byte{}
	}
	b.manifests[name] = signed
	return nil
}

func (b *fakeBackend) Reachable(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return errDown
	}
	return nil
}

func (b *fakeBackend) setDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

func (b *fakeBackend) Source(string) manifest.Source { return nil }

func (b *fakeBackend) Create(context.Context, string) (recorder.Object, error) {
	return nil, errors.New("fake backend: written through the spool only")
}

func (b *fakeBackend) Open(context.Context, string) (io.ReadCloser, error) {
	return nil, fs.ErrNotExist
}

func (b *fakeBackend) Stat(context.Context, string) (recorder.ObjectInfo, error) {
	return recorder.ObjectInfo{}, fs.ErrNotExist
}

func (b *fakeBackend) List(context.Context, string) ([]recorder.ObjectInfo, error) { return nil, nil }

func (b *fakeBackend) Delete(context.Context, string) error { return nil }

var _ Backend = (*fakeBackend)(nil)

// healthLog records what OnHealth was told.
type healthLog struct {
	mu     sync.Mutex
	events []string // "down" or "up", with the virtual time
}

func (h *healthLog) record(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	what := "up"
	if err != nil {
		what = "down"
	}
	h.events = append(h.events, what)
}

func (h *healthLog) get() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

// openFake opens and starts a spool over b in a temporary directory; it is
// closed when the test ends.
func openFake(t *testing.T, b *fakeBackend, h *healthLog) *Store {
	t.Helper()
	s, err := Open(Config{Dir: t.TempDir(), Backend: b, Key: testKey(t), Signer: "test",
		Logger: slog.New(slog.DiscardHandler), OnHealth: h.record})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// testKey is a manifest signing key.
func testKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestRetryBackoff: a chunk whose upload fails is retried after a delay
// that doubles from minBackoff to maxBackoff (with jitter: between half the
// delay and the delay, plus up to one dispatcher tick), and once an upload
// works the recording is sealed and leaves the spool. The storage answers
// probes all along (it refuses only writes): OnHealth still hears of the
// failure and of the recovery once each, not of a recovery between retries
// (it did, at every retry, when the dispatcher probed while a recording
// waited to retry).
func TestRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const failures = 8 // enough to reach maxBackoff
		b := &fakeBackend{failChunks: failures}
		h := &healthLog{}
		s := openFake(t, b, h)
		o, err := s.Create(t.Context(), "ssh/a.cast")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(o, "a line\n"); err != nil {
			t.Fatal(err)
		}
		if err := o.Close(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		if err := s.Drain(ctx); err != nil {
			t.Fatal(err)
		}

		b.mu.Lock()
		attempts, chunk, sealed := b.attempts, b.chunks["ssh/a.cast#1"], b.sealed["ssh/a.cast"]
		b.mu.Unlock()
		if len(attempts) != failures+1 || string(chunk) != "a line\n" || !sealed {
			t.Fatalf("%d upload attempts, chunk %q, sealed %v; want %d, %q, true", len(attempts), chunk, sealed, failures+1, "a line\n")
		}
		backoff := time.Duration(0)
		for i := 1; i < len(attempts); i++ {
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			gap := attempts[i].Sub(attempts[i-1])
			if gap < backoff/2 || gap > backoff+dispatchInterval {
				t.Errorf("retry %d came %s after the failure; want between %s and %s", i, gap, backoff/2, backoff+dispatchInterval)
			}
		}
		if backoff != maxBackoff {
			t.Fatalf("the test never reached maxBackoff (last %s)", backoff)
		}
		if got := h.get(); len(got) != 2 || got[0] != "down" || got[1] != "up" {
			t.Errorf("OnHealth calls %v, want [down up]", got)
		}
		entries, err := os.ReadDir(s.cfg.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() {
				t.Errorf("the spool still holds %s after sealing", e.Name())
			}
		}
		if st := s.Status(); !st.StorageOK || st.Pending != 0 || st.Recordings != 0 {
			t.Errorf("status after sealing: %+v", st)
		}
	})
}

// TestProbeWhileIdle: when a probe found the storage down and nothing is
// waiting for upload, the dispatcher probes again every probeInterval, so
// that Guarantee and the status say when it is back: not before
// probeInterval has passed, and within a dispatcher tick after.
func TestProbeWhileIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &fakeBackend{down: true}
		h := &healthLog{}
		s := openFake(t, b, h)
		if err := s.Guarantee(t.Context()); !errors.Is(err, errDown) {
			t.Fatalf("Guarantee with the storage down: %v", err)
		}
		probed := time.Now()
		b.setDown(false)
		// Wait for the next probe, tick by tick.
		for !s.Status().StorageOK {
			if time.Since(probed) > probeInterval+dispatchInterval {
				t.Fatalf("no probe found the storage back within %s", probeInterval+dispatchInterval)
			}
			time.Sleep(dispatchInterval / 10)
			synctest.Wait()
		}
		if since := time.Since(probed); since < probeInterval {
			t.Errorf("probed again after %s, before probeInterval (%s)", since, probeInterval)
		}
		if got := h.get(); len(got) != 2 || got[0] != "down" || got[1] != "up" {
			t.Errorf("OnHealth calls %v, want [down up]", got)
		}
		if err := s.Guarantee(t.Context()); err != nil {
			t.Errorf("Guarantee after the recovery: %v", err)
		}
	})
}
