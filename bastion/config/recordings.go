package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bastionhq/bastion/bastion/policy"
)

// Defaults of the recording settings.
const (
	// DefaultFsync is the most time between a recorded event and its
	// fsync in the spool.
	DefaultFsync = time.Second
	// DefaultSpoolQuota bounds the recorded bytes waiting for upload.
	DefaultSpoolQuota = 1 << 30
	// DefaultS3Endpoint is used, over HTTPS, when recording.endpoint is
	// not set.
	DefaultS3Endpoint = "s3.amazonaws.com"
	// FsyncAlways (Recording.Fsync) fsyncs every event.
	FsyncAlways time.Duration = -1
)

// rawRecording is the `recording:` section: how recordings reach object
// storage when `recordings` is an s3:// URL, and how long they are kept.
type rawRecording struct {
	Endpoint      string `yaml:"endpoint"`
	Region        string `yaml:"region"`
	PathStyle     *bool  `yaml:"path_style"`
	TLS           bool   `yaml:"tls"`
	AccessKey     string `yaml:"access_key"`
	SecretKey     string `yaml:"secret_key"`
	Spool         string `yaml:"spool"`
	Fsync         string `yaml:"fsync"`
	SpoolQuota    string `yaml:"spool_quota"`
	Retention     string `yaml:"retention"`
	ObjectLock    string `yaml:"object_lock"`
	ObjectLockFor string `yaml:"object_lock_for"`
}

// Recording is the validated `recording:` section.
type Recording struct {
	// S3 is set when recordings go to a bucket (recordings: s3://…).
	S3 *S3Recordings
	// SpoolDir holds what is recorded until it is uploaded
	// (default <data_dir>/spool).
	SpoolDir string
	// Fsync is the most time between an event and its fsync, or
	// FsyncAlways.
	Fsync time.Duration
	// SpoolQuota bounds the bytes waiting for upload.
	SpoolQuota int64
	// Retention: recordings older than this are deleted (0: kept).
	Retention time.Duration
	// ObjectLockMode ("GOVERNANCE", "COMPLIANCE" or "") and ObjectLockFor
	// set an Object Lock retention on every object uploaded.
	ObjectLockMode string
	ObjectLockFor  time.Duration
}

// S3Recordings says where recordings are stored in object storage.
type S3Recordings struct {
	Endpoint  string // host:port
	Bucket    string
	Prefix    string
	Region    string
	PathStyle bool
	TLS       bool
	AccessKey string // empty: AWS_ACCESS_KEY_ID from the environment at start
	SecretKey string
}

// recording validates the recording section against the recordings URL.
func (v *validator) recording(r rawRecording, recordings, dataDir string) Recording {
	rec := Recording{
		SpoolDir:   v.path(r.Spool),
		Fsync:      DefaultFsync,
		SpoolQuota: DefaultSpoolQuota,
	}
	if rec.SpoolDir == "" {
		rec.SpoolDir = filepath.Join(dataDir, "spool")
	}
	switch r.Fsync {
	case "":
	case "always":
		rec.Fsync = FsyncAlways
	default:
		rec.Fsync = v.duration("recording.fsync", r.Fsync, DefaultFsync)
	}
	if r.SpoolQuota != "" {
		q, err := parseBytes(r.SpoolQuota)
		if err != nil {
			v.errorf("recording.spool_quota", "%v", err)
		} else {
			rec.SpoolQuota = q
		}
	}
	if r.Retention != "" {
		rec.Retention = v.longDuration("recording.retention", r.Retention)
	}
	switch strings.ToLower(r.ObjectLock) {
	case "":
	case "governance", "compliance":
		rec.ObjectLockMode = strings.ToUpper(r.ObjectLock)
		rec.ObjectLockFor = rec.Retention
		if r.ObjectLockFor != "" {
			rec.ObjectLockFor = v.longDuration("recording.object_lock_for", r.ObjectLockFor)
		}
		if rec.ObjectLockFor <= 0 {
			v.errorf("recording.object_lock", "needs object_lock_for or retention: how long objects are locked")
		}
	default:
		v.errorf("recording.object_lock", "unknown mode %q (use governance or compliance)", r.ObjectLock)
	}

	u, isURL := recordingsURL(recordings)
	if !isURL {
		for field, set := range map[string]bool{"endpoint": r.Endpoint != "", "region": r.Region != "", "path_style": r.PathStyle != nil,
			"tls": r.TLS, "access_key": r.AccessKey != "", "secret_key": r.SecretKey != "", "spool": r.Spool != "",
			"fsync": r.Fsync != "", "spool_quota": r.SpoolQuota != "", "object_lock": r.ObjectLock != ""} {
			if set {
				v.errorf("recording."+field, "applies only to recordings in object storage (recordings: s3://BUCKET/PREFIX)")
			}
		}
		return rec
	}
	if u == nil {
		v.errorf("recordings", "invalid URL %q (use s3://BUCKET/PREFIX)", recordings)
		return rec
	}
	if u.Scheme != "s3" {
		v.errorf("recordings", "unsupported storage %q (use a directory or s3://BUCKET/PREFIX)", u.Scheme+"://")
		return rec
	}
	s3 := &S3Recordings{
		Endpoint: r.Endpoint, Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Region: r.Region,
		PathStyle: r.PathStyle == nil || *r.PathStyle, TLS: r.TLS,
		AccessKey: v.expand("recording.access_key", r.AccessKey),
		SecretKey: v.expand("recording.secret_key", r.SecretKey),
	}
	if s3.Bucket == "" {
		v.errorf("recordings", "no bucket in %q (use s3://BUCKET/PREFIX)", recordings)
	}
	if s3.Endpoint == "" {
		s3.Endpoint, s3.TLS = DefaultS3Endpoint, true
	} else if strings.Contains(s3.Endpoint, "://") {
		v.errorf("recording.endpoint", "host:port without a scheme (set tls: true for https)")
	}
	if s3.Region == "" {
		s3.Region = "us-east-1"
	}
	if (s3.AccessKey == "") != (s3.SecretKey == "") {
		v.errorf("recording.access_key", "set both access_key and secret_key (e.g. ${S3_ACCESS_KEY}, ${S3_SECRET_KEY}), or neither to use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	rec.S3 = s3
	return rec
}

// recordingsURL reports whether recordings names object storage, and its
// parsed URL (nil if it does not parse).
func recordingsURL(recordings string) (*url.URL, bool) {
	if !strings.Contains(recordings, "://") {
		return nil, false
	}
	u, err := url.Parse(recordings)
	if err != nil {
		return nil, true
	}
	return u, true
}

// longDuration parses a duration that may be given in days ("90d").
func (v *validator) longDuration(field, s string) time.Duration {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			v.errorf(field, "invalid duration %q (use e.g. 90d, 2160h)", s)
			return 0
		}
		return time.Duration(n) * 24 * time.Hour
	}
	return v.duration(field, s, 0)
}

// parseBytes parses a size: a number of bytes, or with a unit (KiB, MiB,
// GiB, TiB, KB, MB, GB, TB).
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q (use e.g. 512MiB, 10GiB)", s)
	}
	return n * mult, nil
}

// recordingMode validates a role's recording mode.
func (v *validator) recordingMode(field, s string) policy.RecordingMode {
	switch m := policy.RecordingMode(s); m {
	case "", policy.FailClosed, policy.FailOpen:
		return m // "" is fail-closed
	default:
		v.errorf(field, "unknown recording mode %q (use fail-closed or fail-open)", s)
		return policy.FailClosed
	}
}
