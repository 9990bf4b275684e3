package config_test

import (
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
)

const recordingBase = `
data_dir: /var/lib/bastion
users:
  - {name: alice, keys: ["` + aliceKey + `"]}
targets:
  - {name: web01, kind: ssh, address: "10.0.0.1:22", host_key: "` + hostKey + `"}
`

func TestParseRecording(t *testing.T) {
	yaml := `
data_dir: /var/lib/bastion
targets:
  - {name: web01, kind: ssh, address: "10.0.0.1:22", host_key: "` + hostKey + `"}
recordings: s3://rec-bucket/prod/bastion
recording:
  endpoint: 127.0.0.1:9000
  path_style: false
  access_key: ${DB_USER}
  secret_key: ${DB_PASSWORD}
  spool: /var/spool/bastion
  fsync: always
  spool_quota: 512MiB
  retention: 90d
  object_lock: governance
users:
  - {name: alice, keys: ["` + aliceKey + `"], roles: [dev]}
roles:
  dev:
    recording: fail-open
    standing: [{targets: [web01], logins: [root]}]
  ops:
    standing: [{targets: [web01], logins: [root]}]
`
	cfg, err := config.Parse("bastion.yaml", []byte(yaml), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := config.Recording{
		S3: &config.S3Recordings{Endpoint: "127.0.0.1:9000", Bucket: "rec-bucket", Prefix: "prod/bastion", Region: "us-east-1",
			AccessKey: "bastion_user", SecretKey: "s3cret"},
		SpoolDir: "/var/spool/bastion", Fsync: config.FsyncAlways, SpoolQuota: 512 << 20,
		Retention: 90 * 24 * time.Hour, ObjectLockMode: "GOVERNANCE", ObjectLockFor: 90 * 24 * time.Hour,
	}
	eq(t, cfg.Recording, want)
	eq(t, cfg.Policy.Roles["dev"].Recording, policy.FailOpen)
	eq(t, cfg.Policy.Roles["ops"].Recording, policy.RecordingMode(""))
	eq(t, cfg.Policy.RecordingFor("alice", "web01", ""), policy.FailOpen)
	eq(t, cfg.Policy.RecordingFor("alice", "web01", "ops"), policy.FailClosed)
}

func TestParseRecordingDefaults(t *testing.T) {
	cfg, err := config.Parse("bastion.yaml", []byte(recordingBase), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, cfg.Recording, config.Recording{SpoolDir: "/var/lib/bastion/spool", Fsync: time.Second, SpoolQuota: 1 << 30})
}

func TestParseRecordingErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"s3 setting with a directory", "recordings: /srv/rec\nrecording:\n  endpoint: x:1\n",
			"bastion.yaml:9: recording.endpoint: applies only to recordings in object storage (recordings: s3://BUCKET/PREFIX)"},
		{"scheme", "recordings: gs://b/p\n", `bastion.yaml:7: recordings: unsupported storage "gs://" (use a directory or s3://BUCKET/PREFIX)`},
		{"no bucket", "recordings: s3:///p\n", `bastion.yaml:7: recordings: no bucket in "s3:///p" (use s3://BUCKET/PREFIX)`},
		{"fsync", "recordings: s3://b\nrecording:\n  fsync: sometimes\n",
			`bastion.yaml:9: recording.fsync: invalid duration "sometimes" (use e.g. 30m, 4h)`},
		{"quota", "recordings: s3://b\nrecording:\n  spool_quota: lots\n",
			`bastion.yaml:9: recording.spool_quota: invalid size "lots" (use e.g. 512MiB, 10GiB)`},
		{"lock without a time", "recordings: s3://b\nrecording:\n  object_lock: compliance\n",
			"bastion.yaml:9: recording.object_lock: needs object_lock_for or retention: how long objects are locked"},
		{"one key", "recordings: s3://b\nrecording:\n  access_key: x\n",
			"bastion.yaml:9: recording.access_key: set both access_key and secret_key (e.g. ${S3_ACCESS_KEY}, ${S3_SECRET_KEY}), or neither to use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"},
		{"env", "recordings: s3://b\nrecording:\n  access_key: ${NOPE}\n  secret_key: ${EMPTY}\n",
			"bastion.yaml:9: recording.access_key: environment variable NOPE is not set"},
		{"mode", "roles:\n  dev:\n    recording: sometimes\n",
			`bastion.yaml:9: roles.dev.recording: unknown recording mode "sometimes" (use fail-closed or fail-open)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkParseError(t, recordingBase+tt.yaml, tt.want)
		})
	}
}
