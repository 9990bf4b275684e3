package s3store

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/storagetest"
)

// startTimeout bounds starting the gateway, building versitygw included
// (about 70 s on a cold cache).
const startTimeout = 12 * time.Minute

// gw is the S3 gateway every test of this binary uses.
var gw *harness.S3

// TestMain starts one versitygw for the whole binary. There is no skipping:
// if it cannot be built or started, the tests fail.
func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	s, err := harness.StartS3(ctx, harness.S3Config{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3store tests: cannot start the S3 gateway:", err)
		os.Exit(1)
	}
	gw = s
	code := m.Run()
	if err := gw.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "s3store tests: stop the S3 gateway:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// buckets numbers the buckets the tests create.
var buckets atomic.Int64

// newBucket creates a new, empty bucket.
func newBucket(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("bastion-test-%04d", buckets.Add(1))
	if err := gw.CreateBucket(t.Context(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

func config(bucket, prefix string) Config {
	return Config{
		Endpoint:  gw.Endpoint,
		Bucket:    bucket,
		Prefix:    prefix,
		AccessKey: gw.AccessKey,
		SecretKey: gw.SecretKey,
		Region:    gw.Region,
	}
}

// newStore returns a Store in a new bucket.
func newStore(t *testing.T, prefix string) (*Store, string) {
	t.Helper()
	bucket := newBucket(t)
	st, err := New(t.Context(), config(bucket, prefix))
	if err != nil {
		t.Fatal(err)
	}
	return st, bucket
}

func TestContract(t *testing.T) {
	for _, prefix := range []string{"", "recordings/2031", "/slashes/"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			t.Parallel()
			storagetest.Run(t, func(t *testing.T) recorder.Storage {
				st, _ := newStore(t, prefix)
				return st
			})
		})
	}
}

func TestNewErrors(t *testing.T) {
	bucket := newBucket(t)
	tests := []struct {
		name string
		cfg  Config
		want []string // in the message
	}{
		{"missing bucket", config("no-such-bucket", ""), []string{"no-such-bucket", "does not exist"}},
		{"wrong secret key", func() Config {
			c := config(bucket, "")
			c.SecretKey = "wrong-" + c.SecretKey
			return c
		}(), []string{bucket, "access denied", "access key and secret key"}},
		{"unknown access key", func() Config {
			c := config(bucket, "")
			c.AccessKey = "NOBODY"
			return c
		}(), []string{bucket, "access denied"}},
		{"invalid prefix", config(bucket, "a b"), []string{"prefix", "invalid object name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := New(t.Context(), tt.cfg)
			if err == nil {
				t.Fatalf("New = %v, nil; want an error", st)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tt.cfg.SecretKey != "" && strings.Contains(err.Error(), tt.cfg.SecretKey) {
				t.Errorf("error %q holds the secret key", err)
			}
		})
	}
}

// listKeys lists the keys of a bucket with the plain minio client.
func listKeys(t *testing.T, bucket string) []string {
	t.Helper()
	client, err := gw.Client()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for o := range client.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// getKey returns the content of a key, read with the plain minio client.
func getKey(t *testing.T, bucket, key string) string {
	t.Helper()
	client, err := gw.Client()
	if err != nil {
		t.Fatal(err)
	}
	o, err := client.GetObject(t.Context(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return string(b)
}

func write(t *testing.T, o recorder.Object, s string) {
	t.Helper()
	if _, err := io.WriteString(o, s); err != nil {
		t.Fatal(err)
	}
}

func syncObject(t *testing.T, o recorder.Object) {
	t.Helper()
	if err := o.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestChunkLayout checks the keys of an object: one chunk per Sync that had
// something to upload, and the two markers.
func TestChunkLayout(t *testing.T) {
	st, bucket := newStore(t, "rec")
	o, err := st.Create(t.Context(), "2031/ssh-1.cast")
	if err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, bucket); strings.Join(got, " ") != "rec/2031/ssh-1.cast/created" {
		t.Errorf("after Create, keys %q, want only the created marker", got)
	}
	write(t, o, "first")
	syncObject(t, o)
	syncObject(t, o) // nothing new: no chunk
	write(t, o, "second")
	syncObject(t, o)
	if err := o.Close(); err != nil { // nothing new: no chunk
		t.Fatal(err)
	}
	want := []string{
		"rec/2031/ssh-1.cast/chunk-000001",
		"rec/2031/ssh-1.cast/chunk-000002",
		"rec/2031/ssh-1.cast/closed",
		"rec/2031/ssh-1.cast/created",
	}
	got := listKeys(t, bucket)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("keys %q, want %q", got, want)
	}
	for key, content := range map[string]string{want[0]: "first", want[1]: "second", want[2]: ""} {
		if got := getKey(t, bucket, key); got != content {
			t.Errorf("%s holds %q, want %q", key, got, content)
		}
	}
	if got := getKey(t, bucket, want[3]); !strings.HasPrefix(got, "2031/ssh-1.cast\n") {
		t.Errorf("created marker holds %q, want the name on the first line", got)
	}
	if info, err := st.Stat(t.Context(), "2031/ssh-1.cast"); err != nil || info.Size != int64(len("firstsecond")) {
		t.Errorf("Stat = %+v, %v; want size %d", info, err, len("firstsecond"))
	}

	if err := st.Delete(t.Context(), "2031/ssh-1.cast"); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(t, bucket); len(got) != 0 {
		t.Errorf("after Delete, keys %q left", got)
	}
}

// TestLongName checks that a name too long for the plain layout goes under
// ~long/ and is still listed by name.
func TestLongName(t *testing.T) {
	st, bucket := newStore(t, "rec")
	name := strings.Repeat("abcdefg/", 127) + "xyz"
	o, err := st.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	write(t, o, "long")
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	for _, key := range listKeys(t, bucket) {
		if !strings.HasPrefix(key, "rec/~long/") || len(key) > maxKeyLen {
			t.Errorf("key %q, want one under rec/~long/ of at most %d bytes", key, maxKeyLen)
		}
	}
	for _, prefix := range []string{"", "abcdefg/abc", name} {
		infos, err := st.List(t.Context(), prefix)
		if err != nil || len(infos) != 1 || infos[0].Name != name || infos[0].Size != 4 {
			t.Errorf("List(%.20q…) = %+v, %v; want the long name, size 4", prefix, infos, err)
		}
	}
	if infos, err := st.List(t.Context(), "abcdefg/x"); err != nil || len(infos) != 0 {
		t.Errorf("List(other prefix) = %+v, %v; want nothing", infos, err)
	}
}

// TestReadWhileWriting checks that a reader sees what was synced, and
// nothing written since.
func TestReadWhileWriting(t *testing.T) {
	st, _ := newStore(t, "rec")
	const name = "live.cast"
	o, err := st.Create(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	check := func(when, want string) {
		t.Helper()
		rc, err := st.Open(t.Context(), name)
		if err != nil {
			t.Fatalf("%s: Open: %v", when, err)
		}
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("%s: read: %v", when, err)
		}
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("%s: a reader sees %q, want %q", when, b, want)
		}
		info, err := st.Stat(t.Context(), name)
		if err != nil || info.Size != int64(len(want)) {
			t.Errorf("%s: Stat = %+v, %v; want size %d", when, info, err, len(want))
		}
		infos, err := st.List(t.Context(), "")
		if err != nil || len(infos) != 1 || infos[0].Size != int64(len(want)) {
			t.Errorf("%s: List = %+v, %v; want %s with size %d", when, infos, err, name, len(want))
		}
	}
	check("after Create", "")
	write(t, o, "header\n")
	check("before Sync", "")
	syncObject(t, o)
	write(t, o, "event 1\n")
	check("after Sync and a Write", "header\n")
	syncObject(t, o)
	check("after the second Sync", "header\nevent 1\n")
	write(t, o, "event 2\n")
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	check("after Close", "header\nevent 1\nevent 2\n")
}
