package demo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bastionhq/bastion/internal/harness"
)

// Where the demo records: an S3 gateway (versitygw) in DIR/s3 unless
// DEMO_STORAGE=file, which keeps recordings in the data directory.
const (
	demoBucket = "recordings"
	demoPrefix = "bastion"
)

// S3Info is the "s3" of demo.json: enough for any S3 client to look at the
// recordings (`s3cmd`, `aws --endpoint-url http://ENDPOINT s3 ls`).
type S3Info struct {
	Endpoint  string `json:"endpoint"`
	Bucket    string `json:"bucket"`
	Prefix    string `json:"prefix"`
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
}

// startStorage starts the demo's S3 gateway and its bucket; nil, nil with
// DEMO_STORAGE=file.
func startStorage(ctx context.Context, dir string) (*harness.S3, *S3Info, error) {
	if os.Getenv("DEMO_STORAGE") == "file" {
		return nil, nil, nil
	}
	gw, err := harness.StartS3(ctx, harness.S3Config{Dir: filepath.Join(dir, "s3")})
	if err != nil {
		return nil, nil, fmt.Errorf("start the demo's S3 server (DEMO_STORAGE=file records to a directory instead): %w", err)
	}
	client, err := gw.Client()
	if err == nil {
		var exists bool
		if exists, err = client.BucketExists(ctx, demoBucket); err == nil && !exists {
			err = gw.CreateBucket(ctx, demoBucket)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("demo bucket: %w (and %v)", err, gw.Stop())
	}
	return gw, &S3Info{Endpoint: gw.Endpoint, Bucket: demoBucket, Prefix: demoPrefix, AccessKey: gw.AccessKey, SecretKey: gw.SecretKey}, nil
}

// addStorage appends the recordings settings for the demo's bucket to the
// config file.
func addStorage(cfgPath string, s *S3Info) error {
	if s == nil {
		return nil
	}
	f, err := os.OpenFile(cfgPath, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "recordings: s3://%s/%s\nrecording:\n  endpoint: %q\n  access_key: %q\n  secret_key: %q\n",
		s.Bucket, s.Prefix, s.Endpoint, s.AccessKey, s.SecretKey)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
