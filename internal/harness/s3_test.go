package harness

import (
	"bytes"
	"io"
	"net"
	"os"
	"testing"

	"github.com/minio/minio-go/v7"
)

func TestS3(t *testing.T) {
	t.Parallel()
	s3 := NewS3(t, S3Config{})
	ctx := t.Context()
	if err := s3.CreateBucket(ctx, "recordings"); err != nil {
		t.Fatal(err)
	}
	client, err := s3.Client()
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("an asciicast, say\n")
	if _, err := client.PutObject(ctx, "recordings", "a/b/session.cast", bytes.NewReader(want), int64(len(want)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	obj, err := client.GetObject(ctx, "recordings", "a/b/session.cast", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := obj.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("got object %q, want %q", got, want)
	}

	// Stop frees the port and removes the dir; a second Stop (t.Cleanup's)
	// is a no-op.
	if err := s3.Stop(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", s3.Endpoint)
	if err != nil {
		t.Fatalf("port still taken after Stop: %v", err)
	}
	l.Close()
	if _, err := os.Stat(s3.Dir); !os.IsNotExist(err) {
		t.Errorf("Dir %s still there after Stop: %v", s3.Dir, err)
	}
	if err := s3.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
