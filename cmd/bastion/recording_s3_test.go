package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/recorder/s3store"
)

// These tests record SSH sessions into a real S3 server (versitygw) and
// inject faults: the storage stopped mid-session, Bastion killed with
// SIGKILL, chunks altered, deleted and added in the bucket, and a
// fail-closed role while the storage is down. Objects are checked with
// s3cmd, a client nobody here wrote, and exports with the real asciinema.

// s3Wait bounds waiting for something the bastion must do.
const s3Wait = 3 * time.Minute

// outage is how long the storage stays down in TestRecordingS3Outage:
// the scenario's length, not a synchronisation.
const outage = 10 * time.Second

// s3Bastion is a proxyBastion recording into a bucket.
type s3Bastion struct {
	*proxyBastion
	gw     *harness.S3
	bucket string
	prefix string
	store  *s3store.Store // reads the bucket
	s3cmd  string         // s3cmd's config file
	steps  string         // the directory of step files
}

func startS3Bastion(t *testing.T) *s3Bastion {
	t.Helper()
	gw := harness.NewS3(t, harness.S3Config{})
	sb := &s3Bastion{gw: gw, bucket: "recordings", prefix: "bastion", steps: t.TempDir()}
	if err := gw.CreateBucket(t.Context(), sb.bucket); err != nil {
		t.Fatal(err)
	}
	sb.proxyBastion = startProxyBastion(t, fmt.Sprintf(`
recordings: s3://%s/%s
recording:
  endpoint: %q
  access_key: %q
  secret_key: %q
`, sb.bucket, sb.prefix, gw.Endpoint, gw.AccessKey, gw.SecretKey))
	var err error
	sb.store, err = s3store.New(t.Context(), s3store.Config{Endpoint: gw.Endpoint, Bucket: sb.bucket, Prefix: sb.prefix,
		AccessKey: gw.AccessKey, SecretKey: gw.SecretKey, Region: gw.Region})
	if err != nil {
		t.Fatal(err)
	}
	sb.s3cmd = filepath.Join(t.TempDir(), "s3cfg")
	cfg := fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n",
		gw.AccessKey, gw.SecretKey, gw.Endpoint, gw.Endpoint)
	if err := os.WriteFile(sb.s3cmd, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return sb
}

// stepScript is a target command that prints step-N-output once the test
// creates the file go-N, for N = 1…n: each step is recorded apart. When the
// test ends every step is released, so that a command whose session was cut
// (the bastion killed) ends too.
func (sb *s3Bastion) stepScript(t *testing.T, n int) string {
	t.Cleanup(func() {
		for i := 1; i <= n; i++ {
			os.WriteFile(filepath.Join(sb.steps, fmt.Sprintf("go-%d", i)), nil, 0o644)
		}
	})
	return fmt.Sprintf(`for i in $(seq 1 %d); do while [ ! -e %s/go-$i ]; do sleep 0.05; done; echo step-$i-output; done`, n, sb.steps)
}

func (sb *s3Bastion) step(t *testing.T, n int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(sb.steps, fmt.Sprintf("go-%d", n)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startTarget starts ssh through the bastion to dest in the background.
func (sb *s3Bastion) startTarget(t *testing.T, cert, dest, command string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	args := append(sb.sshArgs("alice", "-o", "CertificateFile="+cert), dest+"@127.0.0.1", command)
	cmd := exec.Command("ssh", args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = writerFunc(out.WriteString), writerFunc(out.WriteString)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, out
}

type s3SessionJSON struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Recording string `json:"recording"`
	EndReason string `json:"end_reason"`
}

// session waits until the one session is in state (any if "").
func (sb *s3Bastion) session(t *testing.T, state string) s3SessionJSON {
	t.Helper()
	var sess s3SessionJSON
	waitFor(t, s3Wait, func() bool {
		out, _, code := sb.local("sessions", "--json")
		var list []s3SessionJSON
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 {
			return false
		}
		sess = list[0]
		return state == "" || sess.State == state
	})
	return sess
}

// waitBucket waits until the recording in the bucket holds want.
func (sb *s3Bastion) waitBucket(t *testing.T, name, want string) {
	t.Helper()
	err := harness.WaitFor(t.Context(), s3Wait, func(ctx context.Context) error {
		rc, err := sb.store.Open(ctx, name)
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), want) {
			return fmt.Errorf("the bucket's copy lacks %q", want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitVerified waits until `bastion verify ID` says ok, and returns its
// --json output.
func (sb *s3Bastion) waitVerified(t *testing.T, id string) map[string]any {
	t.Helper()
	var v map[string]any
	waitFor(t, s3Wait, func() bool {
		out, _, code := sb.local("verify", id, "--json")
		return code == 0 && json.Unmarshal([]byte(out), &v) == nil && v["ok"] == true
	})
	return v
}

// s3cmdRun runs s3cmd with the gateway's config.
func (sb *s3Bastion) s3cmdRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runCmd(t, nil, "s3cmd", append([]string{"-c", sb.s3cmd}, args...)...)
	if code != 0 {
		t.Fatalf("s3cmd %v: exit %d: %s%s", args, code, out, errOut)
	}
	return out
}

func (sb *s3Bastion) url(name, part string) string {
	return fmt.Sprintf("s3://%s/%s/%s/%s", sb.bucket, sb.prefix, name, part)
}

// stepOneThenOutage starts a three-step session as alice on web01, waits
// for step 1 in the bucket, stops the storage, and waits for step 2 in the
// spool (the local CLI reads it there).
func (sb *s3Bastion) stepOneThenOutage(t *testing.T) (*exec.Cmd, *syncBuffer, s3SessionJSON) {
	t.Helper()
	_, cert := sb.grant(t, "30m", "web01")
	cmd, out := sb.startTarget(t, cert, "root@web01", sb.stepScript(t, 3))
	sess := sb.session(t, "live")
	sb.step(t, 1)
	sb.waitBucket(t, sess.Recording, "step-1-output")
	if err := sb.gw.Pause(); err != nil {
		t.Fatal(err)
	}
	sb.step(t, 2)
	waitFor(t, s3Wait, func() bool {
		o, _, code := sb.local("export", sess.ID)
		return code == 0 && strings.Contains(o, "step-2-output")
	})
	return cmd, out, sess
}

// TestRecordingS3Outage stops the storage for 10 s in the middle of a
// recorded SSH session: the session goes on, the spool keeps what it
// records, `status` and the audit log show the gap, and once the storage is
// back the recording is complete in the bucket and verifies.
func TestRecordingS3Outage(t *testing.T) {
	t.Parallel()
	sb := startS3Bastion(t)
	cmd, out, sess := sb.stepOneThenOutage(t)
	down := time.Now()
	waitFor(t, s3Wait, func() bool {
		o, _, code := sb.local("status")
		return code == 0 && strings.Contains(o, "UNREACHABLE")
	})
	time.Sleep(time.Until(down.Add(outage)))
	if err := sb.gw.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	sb.waitBucket(t, sess.Recording, "step-2-output")
	sb.step(t, 3)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ssh: %v: %s", err, out.String())
	}
	if o := out.String(); !strings.Contains(o, "step-1-output\nstep-2-output\nstep-3-output") {
		t.Fatalf("the user saw %q", o)
	}
	sb.session(t, "ended")
	v := sb.waitVerified(t, sess.ID)
	if v["status"] != "complete" {
		t.Errorf("verify: %v", v)
	}
	cast := sb.mustRun("carol", "export", sess.ID)
	if !regexpOrder(cast, "step-1-output", "step-2-output", "step-3-output") {
		t.Errorf("export lacks a step:\n%s", cast)
	}
	audit := sb.mustRun("carol", "audit", "--type", "recording.storage", "--json")
	if !strings.Contains(audit, `"outcome":"error"`) || !strings.Contains(audit, `"outcome":"ok"`) {
		t.Errorf("the outage is not audited as a gap:\n%s", audit)
	}
}

// regexpOrder reports whether s holds the words in this order.
func regexpOrder(s string, words ...string) bool {
	for _, w := range words {
		i := strings.Index(s, w)
		if i < 0 {
			return false
		}
		s = s[i+len(w):]
	}
	return true
}

// TestRecordingS3Kill kills Bastion with SIGKILL mid-session while the
// storage is down: after a restart the recording is uploaded complete up to
// what reached the spool, sealed as interrupted, and verifies; the session
// is marked interrupted.
func TestRecordingS3Kill(t *testing.T) {
	t.Parallel()
	sb := startS3Bastion(t)
	cmd, _, sess := sb.stepOneThenOutage(t)
	if err := sb.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-sb.exited
	cmd.Wait() // the client loses its connection
	if err := sb.gw.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	oldPort := sb.sshPort
	sb.start()
	kh, err := os.ReadFile(sb.knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	kh = bytes.Replace(kh, []byte("]:"+oldPort+" "), []byte("]:"+sb.sshPort+" "), 1)
	if err := os.WriteFile(sb.knownHosts, kh, 0o644); err != nil {
		t.Fatal(err)
	}

	v := sb.waitVerified(t, sess.ID)
	if v["status"] != "interrupted" {
		t.Errorf("verify: %v", v)
	}
	if s := sb.session(t, "interrupted"); !strings.Contains(s.EndReason, "stopped") {
		t.Errorf("session: %+v", s)
	}
	cast := sb.mustRun("carol", "export", sess.ID)
	if !regexpOrder(cast, "step-1-output", "step-2-output") || strings.Contains(cast, "step-3-output") {
		t.Errorf("export:\n%s", cast)
	}
	if audit := sb.mustRun("carol", "audit", "--type", "recording.interrupted", "--json"); !strings.Contains(audit, sess.ID) {
		t.Errorf("no recording.interrupted event:\n%s", audit)
	}
}

// TestRecordingS3Tamper records a session in several chunks, checks the
// objects with s3cmd, plays the export with asciinema, verifies a
// downloaded copy offline, then alters, deletes and adds chunks in the
// bucket: verify names each.
func TestRecordingS3Tamper(t *testing.T) {
	t.Parallel()
	sb := startS3Bastion(t)
	_, cert := sb.grant(t, "30m", "web01")
	cmd, out := sb.startTarget(t, cert, "root@web01", sb.stepScript(t, 3))
	sess := sb.session(t, "live")
	for i := 1; i <= 3; i++ {
		sb.step(t, i)
		sb.waitBucket(t, sess.Recording, fmt.Sprintf("step-%d-output", i))
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ssh: %v: %s", err, out.String())
	}
	sb.session(t, "ended")
	v := sb.waitVerified(t, sess.ID)
	chunks := int(v["chunks"].(float64))
	if chunks < 4 { // the header, then each step uploaded before the next was printed
		t.Fatalf("%d chunks, want at least 4", chunks)
	}

	// s3cmd sees the layout.
	ls := sb.s3cmdRun(t, "ls", "--recursive", fmt.Sprintf("s3://%s/%s/", sb.bucket, sb.prefix))
	for _, part := range []string{"created", "closed", "manifest", "chunk-000001", fmt.Sprintf("chunk-%06d", chunks)} {
		if !strings.Contains(ls, sess.Recording+"/"+part) {
			t.Errorf("s3cmd ls lacks %s:\n%s", part, ls)
		}
	}

	// asciinema plays the export, one file made of the chunks.
	cast := sb.mustRun("carol", "export", sess.ID)
	file := filepath.Join(t.TempDir(), "s.cast")
	if err := os.WriteFile(file, []byte(cast), 0o644); err != nil {
		t.Fatal(err)
	}
	played, err := exec.Command("script", "-qec", "asciinema cat "+file, "/dev/null").CombinedOutput()
	if err != nil || !regexpOrder(string(played), "step-1-output", "step-2-output", "step-3-output") {
		t.Fatalf("asciinema cat: %v: %q", err, played)
	}

	// Offline: a copy downloaded with s3cmd and the public key.
	copyDir := filepath.Join(t.TempDir(), "copy")
	os.MkdirAll(copyDir, 0o700)
	sb.s3cmdRun(t, "get", "--recursive", sb.url(sess.Recording, ""), copyDir+"/")
	pub := filepath.Join(sb.dir, "data", "recording_ed25519_key.pub")
	if o, e, code := runCmd(t, nil, binary, "verify", "--dir", copyDir, "--pubkey", pub); code != 0 || !strings.Contains(o, "ok") {
		t.Fatalf("offline verify: exit %d: %s%s", code, o, e)
	}
	if err := os.WriteFile(filepath.Join(copyDir, "chunk-000001"), []byte("forged"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, e, code := runCmd(t, nil, binary, "verify", "--dir", copyDir, "--pubkey", pub); code != 1 || !strings.Contains(e, "chunk 1 is altered") {
		t.Errorf("offline verify of a forged copy: exit %d: %s", code, e)
	}

	// In the bucket, through s3cmd.
	saved := filepath.Join(t.TempDir(), "chunk-2")
	sb.s3cmdRun(t, "get", sb.url(sess.Recording, "chunk-000002"), saved)
	forged := filepath.Join(t.TempDir(), "forged")
	os.WriteFile(forged, []byte("forged output\n"), 0o600)
	extra := fmt.Sprintf("chunk-%06d", chunks+1)
	tests := []struct {
		name         string
		tamper, undo []string
		want         string
	}{
		{"altered", []string{"put", forged, sb.url(sess.Recording, "chunk-000002")}, []string{"put", saved, sb.url(sess.Recording, "chunk-000002")}, "chunk 2 is altered"},
		{"deleted", []string{"del", sb.url(sess.Recording, "chunk-000002")}, []string{"put", saved, sb.url(sess.Recording, "chunk-000002")}, "chunk 2 is missing"},
		{"added", []string{"put", forged, sb.url(sess.Recording, extra)}, []string{"del", sb.url(sess.Recording, extra)}, fmt.Sprintf("chunk %d is extra", chunks+1)},
	}
	for _, tt := range tests {
		sb.s3cmdRun(t, tt.tamper...)
		if _, e, code := sb.ssh("carol", "verify", sess.ID); code != 1 || !strings.Contains(e, tt.want) {
			t.Errorf("%s: verify: exit %d: %s (want %q)", tt.name, code, e, tt.want)
		}
		sb.s3cmdRun(t, tt.undo...)
		if o, e, code := sb.ssh("carol", "verify", sess.ID); code != 0 {
			t.Errorf("%s: verify after undoing: exit %d: %s%s", tt.name, code, o, e)
		}
	}

	// A legal hold needs the audit permission, and is audited.
	if _, e, code := sb.ssh("alice", "hold", sess.ID, "--reason", "mine"); code != 1 || !strings.Contains(e, "audit permission") {
		t.Errorf("alice holds: exit %d: %s", code, e)
	}
	sb.mustRun("carol", "hold", sess.ID, "--reason", "litigation", "LIT-7")
	if audit := sb.mustRun("carol", "audit", "--type", "recording.hold", "--json"); !strings.Contains(audit, "LIT-7") {
		t.Errorf("the hold is not audited:\n%s", audit)
	}
}

// TestRecordingS3FailClosed: with the storage down, a fail-closed role's
// new session is refused with a message and the audit log says why; once
// the storage is back it works.
func TestRecordingS3FailClosed(t *testing.T) {
	t.Parallel()
	sb := startS3Bastion(t)
	_, cert := sb.grant(t, "30m", "web01")
	if err := sb.gw.Pause(); err != nil {
		t.Fatal(err)
	}
	// Session starts judge from the uploader's requests, not a probe of
	// their own: wait until its probes of the idle storage find it down.
	waitFor(t, s3Wait, func() bool {
		o, _, code := sb.local("status")
		return code == 0 && strings.Contains(o, "UNREACHABLE")
	})
	o, e, code := sb.target("alice", cert, "root@web01", "echo should-not-run")
	if code == 0 || strings.Contains(o, "should-not-run") || !strings.Contains(e, "cannot be recorded") {
		t.Fatalf("with the storage down: exit %d: %s%s", code, o, e)
	}
	audit := sb.mustRun("carol", "audit", "--type", "session.start", "--json")
	if !strings.Contains(audit, "recording cannot be guaranteed") {
		t.Errorf("the refusal's reason is not audited:\n%s", audit)
	}
	// A fail-open role (lead) goes on with the storage down: the spool
	// keeps its recording until the storage is back.
	r := sb.mustRequest("bob", "web01", "--login", "root", "--for", "30m", "--reason", "test")
	sb.mustRun("dave", "approve", fmt.Sprint(r.ID))
	bobCert := filepath.Join(sb.dir, "bob-cert.pub")
	if err := os.WriteFile(bobCert, []byte(sb.mustRun("bob", "cert", fmt.Sprint(r.ID))), 0o644); err != nil {
		t.Fatal(err)
	}
	if o, e, code := sb.target("bob", bobCert, "root@web01", "echo fail-open-runs"); code != 0 || !strings.Contains(o, "fail-open-runs") {
		t.Fatalf("fail-open role with the storage down: exit %d: %s%s", code, o, e)
	}
	if err := sb.gw.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Health is judged from the uploader's requests (a probe every few
	// seconds while idle): wait until they find the storage back.
	waitFor(t, s3Wait, func() bool {
		o, _, code := sb.local("status")
		return code == 0 && !strings.Contains(o, "UNREACHABLE")
	})
	if o, e, code := sb.target("alice", cert, "root@web01", "echo runs-now"); code != 0 || !strings.Contains(o, "runs-now") {
		t.Fatalf("with the storage back: exit %d: %s%s", code, o, e)
	}
}
