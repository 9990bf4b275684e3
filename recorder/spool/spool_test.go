package spool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/internal/leakcheck"
	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/manifest"
	"github.com/bastionhq/bastion/recorder/s3store"
	"github.com/bastionhq/bastion/recorder/spool"
	"github.com/bastionhq/bastion/recorder/storagetest"
)

// startTimeout bounds starting the gateway, building versitygw included.
const startTimeout = 12 * time.Minute

// waitTimeout bounds waiting for an upload that must happen.
const waitTimeout = 60 * time.Second

// shared is the gateway of the tests that do not stop it.
var shared *harness.S3

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	s, err := harness.StartS3(ctx, harness.S3Config{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "spool tests: cannot start the S3 gateway:", err)
		os.Exit(1)
	}
	shared = s
	code := m.Run()
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "spool tests:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

var buckets atomic.Int64

// env is one spool over a new bucket.
type env struct {
	gw      *harness.S3
	bucket  string
	backend *s3store.Store
	key     ssh.Signer
	dir     string
	cfg     spool.Config
}

func newEnv(t *testing.T, gw *harness.S3, cfg spool.Config) *env {
	t.Helper()
	bucket := fmt.Sprintf("spool-test-%04d", buckets.Add(1))
	if err := gw.CreateBucket(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	backend, err := s3store.New(t.Context(), s3store.Config{Endpoint: gw.Endpoint, Bucket: bucket, Prefix: "rec",
		AccessKey: gw.AccessKey, SecretKey: gw.SecretKey, Region: gw.Region, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	key, err := manifest.LoadOrCreateKey(filepath.Join(dir, "recording_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir, cfg.Backend, cfg.Key, cfg.Signer = filepath.Join(dir, "spool"), backend, key, "test"
	return &env{gw: gw, bucket: bucket, backend: backend, key: key, dir: dir, cfg: cfg}
}

func (e *env) open(t *testing.T) *spool.Store {
	t.Helper()
	st, err := spool.Open(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.Start()
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}

// waitSealed waits until name verifies in the bucket and returns its
// manifest.
func (e *env) waitSealed(t *testing.T, name string) *manifest.Manifest {
	t.Helper()
	var m *manifest.Manifest
	err := harness.WaitFor(t.Context(), waitTimeout, func(ctx context.Context) error {
		var err error
		m, err = manifest.Verify(ctx, e.backend.Source(name), e.key.PublicKey())
		return err
	})
	if err != nil {
		t.Fatalf("%s never verified in the bucket: %v", name, err)
	}
	return m
}

func content(t *testing.T, st recorder.Storage, name string) string {
	t.Helper()
	rc, err := st.Open(t.Context(), name)
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

// TestContract runs the storage contract against the spool in front of a
// bucket: the same suite as the backends.
//
// It is not checked for leaks (the other tests are): after its parallel
// subtests, leakcheck finds two HTTP keep-alive connections of a minio-go
// client (net/http's persistConn readLoop and writeLoop) that stay open for
// minio-go's idle timeout, a minute, in every run. s3store.Store has no
// Close that would release its transport's connections.
func TestContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) recorder.Storage {
		return newEnv(t, shared, spool.Config{}).open(t)
	})
}

// TestStreams checks that chunks reach the bucket while the recording is
// still being written, and that the sealed recording verifies.
func TestStreams(t *testing.T) {
	leakcheck.Check(t)
	e := newEnv(t, shared, spool.Config{})
	st := e.open(t)
	ctx := recorder.WithInfo(t.Context(), map[string]string{"user": "alice", "target": "web01"})
	o, err := st.Create(ctx, "ssh/s1.cast")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := range 3 {
		line := fmt.Sprintf("line %d\n", i)
		want.WriteString(line)
		if _, err := io.WriteString(o, line); err != nil {
			t.Fatal(err)
		}
		if err := o.Sync(); err != nil {
			t.Fatal(err)
		}
		// The bucket catches up while the object is open.
		e.waitContent(t, "ssh/s1.cast", want.String())
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	m := e.waitSealed(t, "ssh/s1.cast")
	if m.Status != manifest.Complete || len(m.Chunks) != 3 || m.Session["user"] != "alice" || m.Size != int64(want.Len()) {
		t.Errorf("manifest: status %s, %d chunks, session %v, size %d; want complete, 3, alice, %d", m.Status, len(m.Chunks), m.Session, m.Size, want.Len())
	}
	if got := content(t, st, "ssh/s1.cast"); got != want.String() {
		t.Errorf("after sealing, Open gives %q, want %q", got, want.String())
	}
	// The spool removes the directory after the manifest is in the bucket,
	// so a verified manifest does not yet mean an empty spool: Drain
	// returns once the spool has forgotten every closed recording, which
	// it does only after removing its directory.
	dctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if err := st.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	left, err := os.ReadDir(e.cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range left {
		if d.IsDir() {
			t.Errorf("the spool still holds %s after sealing", d.Name())
		}
	}
}

// TestOutage stops the storage while a recording is written: writes go on
// into the spool, Guarantee says no, and once the storage is back the
// recording is uploaded whole and verifies.
func TestOutage(t *testing.T) {
	leakcheck.Check(t)
	gw := harness.NewS3(t, harness.S3Config{})
	var downs, ups atomic.Int32
	e := newEnv(t, gw, spool.Config{RequestTimeout: 5 * time.Second, OnHealth: func(err error) {
		if err != nil {
			downs.Add(1)
		} else {
			ups.Add(1)
		}
	}})
	st := e.open(t)
	o, err := st.Create(t.Context(), "db/q1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(o, "before\n")
	if err := o.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Pause(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := fmt.Fprintf(o, "during %d\n", i); err != nil {
			t.Fatalf("write during the outage: %v", err)
		}
		if err := o.Sync(); err != nil {
			t.Fatalf("sync during the outage: %v", err)
		}
	}
	// Guarantee judges from the uploads: it says no once they fail (each
	// within RequestTimeout), without probing the storage itself.
	deadline := time.Now().Add(time.Minute)
	for st.Guarantee(t.Context()) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Guarantee still says yes a minute into the outage")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := st.Status(); s.StorageOK || s.StorageError == "" {
		t.Errorf("status during the outage: %+v", s)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("close during the outage: %v", err)
	}
	if err := gw.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	m := e.waitSealed(t, "db/q1.jsonl")
	want := "before\nduring 0\nduring 1\nduring 2\nduring 3\nduring 4\n"
	if got := content(t, e.backend, "db/q1.jsonl"); got != want {
		t.Errorf("bucket holds %q, want %q", got, want)
	}
	if m.Status != manifest.Complete {
		t.Errorf("status %s, want complete", m.Status)
	}
	if downs.Load() == 0 || ups.Load() == 0 {
		t.Errorf("OnHealth: %d failures, %d recoveries; want both", downs.Load(), ups.Load())
	}
	if err := st.Guarantee(t.Context()); err != nil {
		t.Errorf("Guarantee after the outage: %v", err)
	}
}

// TestQuota fills the spool while the storage is down: the write past the
// quota fails with ErrFull and nothing already written is lost.
func TestQuota(t *testing.T) {
	leakcheck.Check(t)
	gw := harness.NewS3(t, harness.S3Config{})
	e := newEnv(t, gw, spool.Config{Quota: 1000, RequestTimeout: 5 * time.Second})
	st := e.open(t)
	if err := gw.Pause(); err != nil {
		t.Fatal(err)
	}
	o, err := st.Create(t.Context(), "full.cast")
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 99) + "\n"
	for range 10 {
		if _, err := io.WriteString(o, line); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.WriteString(o, line); !errors.Is(err, spool.ErrFull) {
		t.Fatalf("write past the quota: %v, want ErrFull", err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.waitSealed(t, "full.cast")
	if got := content(t, e.backend, "full.cast"); got != strings.Repeat(line, 10) {
		t.Errorf("bucket holds %d bytes, want %d", len(got), 10*len(line))
	}
}

// TestRecover leaves a recording unclosed in a spool whose storage is down
// (as a killed process would), with a line cut short at its end; a new
// spool uploads it, whole lines only, sealed as interrupted.
func TestRecover(t *testing.T) {
	leakcheck.Check(t)
	gw := harness.NewS3(t, harness.S3Config{})
	// No periodic fsync: the cut-short line is never synced, as a write
	// torn by a crash would not be.
	e := newEnv(t, gw, spool.Config{RequestTimeout: 5 * time.Second, FsyncInterval: time.Hour})
	first, err := spool.Open(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	first.Start()
	o, err := first.Create(t.Context(), "ssh/crash.cast")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(o, "one\n")
	o.Sync()
	// Wait until the first line is in the bucket, then stop the storage.
	e.waitContent(t, "ssh/crash.cast", "one\n")
	if err := gw.Pause(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(o, "two\n")
	if err := o.Sync(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(o, "thr")
	if err := first.Close(); err != nil { // the "crash": the object is never closed
		t.Fatal(err)
	}
	if err := gw.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	second := e.open(t)
	if got := second.Recovered(); len(got) != 1 || got[0] != "ssh/crash.cast" {
		t.Errorf("Recovered() = %v", got)
	}
	m := e.waitSealed(t, "ssh/crash.cast")
	if m.Status != manifest.Interrupted {
		t.Errorf("status %s, want interrupted", m.Status)
	}
	if got := content(t, e.backend, "ssh/crash.cast"); got != "one\ntwo\n" {
		t.Errorf("bucket holds %q, want %q", got, "one\ntwo\n")
	}
}

func (e *env) waitContent(t *testing.T, name, want string) {
	t.Helper()
	err := harness.WaitFor(t.Context(), waitTimeout, func(ctx context.Context) error {
		rc, err := e.backend.Open(ctx, name)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return err
		}
		if string(b) != want {
			return fmt.Errorf("holds %q, want %q", b, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSecondProcess opens the spool a second time, as the local CLI does
// while the server runs: it reads the recordings and the status of the
// first, and writes nothing.
func TestSecondProcess(t *testing.T) {
	leakcheck.Check(t)
	e := newEnv(t, shared, spool.Config{})
	first := e.open(t)
	o, err := first.Create(t.Context(), "ssh/live.cast")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(o, "live output\n")
	if err := o.Sync(); err != nil {
		t.Fatal(err)
	}
	second, err := spool.Open(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	if got := content(t, second, "ssh/live.cast"); got != "live output\n" {
		t.Errorf("the second opener reads %q", got)
	}
	if _, err := second.Create(t.Context(), "ssh/other.cast"); err == nil {
		t.Error("the second opener could create a recording in a spool it does not hold")
	}
	err = harness.WaitFor(t.Context(), waitTimeout, func(context.Context) error {
		if s := second.Status(); s.Recordings != 1 || !s.StorageOK {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	e.waitSealed(t, "ssh/live.cast")
}
