package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
)

// TestRecordingS3OutagePostgres: the recording storage stops for 10 s in
// the middle of a recorded PostgreSQL session, which goes on (the spool
// absorbs its statements); once the storage is back the recording is
// complete in the bucket, every statement in order, and verifies.
func TestRecordingS3OutagePostgres(t *testing.T) {
	t.Parallel()
	pg := testPostgres(t)
	gw := harness.NewS3(t, harness.S3Config{})
	if err := gw.CreateBucket(t.Context(), "recordings"); err != nil {
		t.Fatal(err)
	}
	b := startBastionWith(t, options{postgres: true, roles: pgRoles,
		targets: func(t *testing.T, _ *ca.Set) string {
			return fmt.Sprintf(`
targets:
  - {name: plain, kind: postgres, address: %q, database: plain, username: postgres, password: %q, labels: {env: sandbox}}
`, pg.Addr, pg.Password)
		},
		extra: fmt.Sprintf(`
recordings: s3://recordings/bastion
recording:
  endpoint: %q
  access_key: %q
  secret_key: %q
`, gw.Endpoint, gw.AccessKey, gw.SecretKey)})
	sb := &s3Bastion{proxyBastion: &proxyBastion{testBastion: b}, gw: gw, bucket: "recordings", prefix: "bastion"}
	p := &pgBastion{testBastion: b, pg: pg}
	conn := p.connect(t, p.grantDB(t, "alice", "plain"), "")
	step := func(n int) {
		t.Helper()
		var got string
		if err := conn.QueryRow(t.Context(), fmt.Sprintf("SELECT 'step-%d-output'", n)).Scan(&got); err != nil || got != fmt.Sprintf("step-%d-output", n) {
			t.Fatalf("step %d: %q, %v", n, got, err)
		}
	}
	step(1)
	sess := sb.session(t, "live")
	if err := gw.Pause(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	step(2) // while the storage is down: its upload fails
	waitFor(t, s3Wait, func() bool {
		o, _, code := b.local("status")
		return code == 0 && strings.Contains(o, "UNREACHABLE")
	})
	time.Sleep(time.Until(down.Add(outage)))
	if err := gw.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	step(3)
	if err := conn.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	sb.session(t, "ended")
	if v := sb.waitVerified(t, sess.ID); v["status"] != "complete" {
		t.Errorf("verify: %v", v)
	}
	if log := b.mustRun("carol", "export", sess.ID); !regexpOrder(log, "step-1-output", "step-2-output", "step-3-output") {
		t.Errorf("the recording lacks a statement:\n%s", log)
	}
}
