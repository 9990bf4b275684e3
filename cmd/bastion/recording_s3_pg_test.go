package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestRecordingS3OutagePostgres: the recording storage stops for 10 s in
// the middle of a recorded PostgreSQL session, which goes on (the spool
// absorbs its statements); once the storage is back the recording is
// complete in the bucket, every statement in order, and verifies.
func TestRecordingS3OutagePostgres(t *testing.T) {
	t.Parallel()
	p, sb := startPGS3Bastion(t, "")
	b, gw := p.testBastion, sb.gw
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
