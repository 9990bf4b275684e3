package harness

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	// versitygwModule is the S3 gateway built when it is not installed.
	versitygwModule = "github.com/versity/versitygw/cmd/versitygw@v1.8.0"
	// versitygwInstallTimeout bounds building versitygw; a cold build takes
	// about 70 s on two cores.
	versitygwInstallTimeout = 10 * time.Minute
	// s3ProbeTimeout bounds one readiness probe (a ListBuckets call).
	s3ProbeTimeout = 2 * time.Second
	// s3Region is the region versitygw serves by default.
	s3Region = "us-east-1"
)

// S3Config configures an S3 gateway.
type S3Config struct {
	// Dir holds the log and, in Dir/data, the buckets: one directory each,
	// objects as files. The file system needs extended attributes (ext4 and
	// tmpfs have them). Empty means a new temp dir, which Stop removes.
	Dir string
}

// S3 is a running versitygw S3 gateway over a POSIX directory, listening on
// 127.0.0.1 without TLS. AccessKey and SecretKey are its root credentials.
type S3 struct {
	Endpoint  string // "127.0.0.1:PORT", as minio-go wants it
	AccessKey string
	SecretKey string
	Region    string // "us-east-1"
	Dir       string

	logPath  string
	proc     *process
	teardown teardown
}

// NewS3 starts an S3 gateway for t and stops it when t ends.
func NewS3(t testing.TB, cfg S3Config) *S3 {
	t.Helper()
	return startForTest(t, func(ctx context.Context) (*S3, error) { return StartS3(ctx, cfg) })
}

// StartS3 starts an S3 gateway, building versitygw first if it is not
// installed; the caller must call Stop.
func StartS3(ctx context.Context, cfg S3Config) (*S3, error) {
	bin, err := versitygw(ctx)
	if err != nil {
		return nil, fmt.Errorf("harness: s3: %w", err)
	}
	dir, owned, err := makeDir(cfg.Dir, "s3")
	if err != nil {
		return nil, fmt.Errorf("harness: s3: %w", err)
	}
	s := &S3{
		AccessKey: rand.Text(),
		SecretKey: rand.Text() + rand.Text(),
		Region:    s3Region,
		Dir:       dir,
		logPath:   filepath.Join(dir, "versitygw.log"),
		teardown:  teardown{kind: "s3", dir: dir, ownsDir: owned},
	}
	if err := s.start(ctx, bin); err != nil {
		return nil, errors.Join(fmt.Errorf("harness: s3: %w", err), s.Stop())
	}
	return s, nil
}

func (s *S3) start(ctx context.Context, bin string) error {
	if err := os.MkdirAll(filepath.Join(s.Dir, "data"), 0o755); err != nil {
		return err
	}
	_, err := retryOnPortClash(s.teardown.kind, func(port int) error {
		s.Endpoint = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		return s.launch(ctx, bin, s.logPath)
	})
	return err
}

// launch starts the gateway on s.Endpoint and waits until it answers.
func (s *S3) launch(ctx context.Context, bin, logPath string) error {
	// The credentials go in the environment, not the arguments, where every
	// user of ps would see them.
	env := []string{"ROOT_ACCESS_KEY_ID=" + s.AccessKey, "ROOT_SECRET_ACCESS_KEY=" + s.SecretKey}
	p, err := startProcess(bin, []string{"--port", s.Endpoint, "--quiet", "posix", filepath.Join(s.Dir, "data")}, env, logPath)
	if err != nil {
		return err
	}
	// A signed request succeeds only at a gateway with our credentials.
	client, err := s.client(1)
	if err != nil {
		return errors.Join(err, p.stop())
	}
	err = p.waitReady(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, s3ProbeTimeout)
		defer cancel()
		_, err := client.ListBuckets(ctx)
		return err
	})
	if err != nil {
		return startError(errors.Join(err, p.stop()), logPath)
	}
	s.proc = p
	return nil
}

// Client returns a minio-go client for the gateway with its root credentials
// and path-style bucket addressing.
func (s *S3) Client() (*minio.Client, error) {
	return s.client(0)
}

// client returns a client that tries each request maxRetries times (the
// library's default if 0).
func (s *S3) client(maxRetries int) (*minio.Client, error) {
	return minio.New(s.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Secure:       false,
		Region:       s.Region,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   maxRetries,
	})
}

// CreateBucket creates the bucket name.
func (s *S3) CreateBucket(ctx context.Context, name string) error {
	client, err := s.Client()
	if err != nil {
		return err
	}
	if err := client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		return fmt.Errorf("harness: s3: create bucket %s: %w", name, err)
	}
	return nil
}

// Stop stops the gateway by PID and removes Dir if StartS3 created it. Stop
// is idempotent.
func (s *S3) Stop() error {
	return s.teardown.run(s.proc.stop)
}

// versitygwMu keeps this process's goroutines from building versitygw twice;
// a file lock does the same across processes (parallel test binaries).
var versitygwMu sync.Mutex

// versitygw returns the path of versitygw: on PATH, in $(go env GOPATH)/bin,
// or else built there with go install.
func versitygw(ctx context.Context) (string, error) {
	if path, err := exec.LookPath("versitygw"); err == nil {
		return path, nil
	}
	_, err := exec.LookPath("go")
	haveGo := err == nil
	binDir, err := goPathBin(ctx, haveGo)
	if err != nil {
		return "", err
	}
	path := filepath.Join(binDir, "versitygw")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if !haveGo {
		return "", fmt.Errorf("versitygw not found on PATH or in %s, and no go command to build it: %s", binDir, installHint)
	}

	versitygwMu.Lock()
	defer versitygwMu.Unlock()
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, filepath.Join(os.TempDir(), "bastion-harness-versitygw-build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(path); err == nil {
		return path, nil // another process built it while we waited
	}
	slog.InfoContext(ctx, "harness: versitygw not found; building it (about 70 s on a cold cache)",
		"module", versitygwModule, "dir", binDir)
	// Build into a scratch dir and rename, so that nobody sees half a binary.
	tmp, err := os.MkdirTemp(binDir, ".versitygw-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(ctx, versitygwInstallTimeout)
	defer cancel()
	install := exec.CommandContext(ctx, "go", "install", versitygwModule)
	install.Env = append(os.Environ(), "GOBIN="+tmp)
	if _, err := Run(install); err != nil {
		return "", fmt.Errorf("build versitygw (or %s): %w", installHint, err)
	}
	if err := os.Rename(filepath.Join(tmp, "versitygw"), path); err != nil {
		return "", err
	}
	return path, nil
}

// goPathBin returns the bin directory of the first GOPATH entry: as the go
// command says, or as it would default without one.
func goPathBin(ctx context.Context, haveGo bool) (string, error) {
	gopath := os.Getenv("GOPATH")
	if haveGo {
		out, err := Run(exec.CommandContext(ctx, "go", "env", "GOPATH"))
		if err != nil {
			return "", err
		}
		gopath = strings.TrimSpace(out)
	} else if gopath == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		gopath = filepath.Join(home, "go")
	}
	entries := filepath.SplitList(gopath)
	if len(entries) == 0 || entries[0] == "" {
		return "", errors.New("GOPATH is empty")
	}
	return filepath.Join(entries[0], "bin"), nil
}

// lockFile takes an exclusive flock on path, waiting for it as long as ctx
// allows, and returns the function that releases it.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	err = WaitFor(ctx, versitygwInstallTimeout, func(context.Context) error {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != nil && !errors.Is(err, syscall.EWOULDBLOCK) {
			return Permanent(err)
		}
		return err
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing releases the lock
}
