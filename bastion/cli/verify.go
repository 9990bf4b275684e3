package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/recorder/manifest"
	"github.com/bastionhq/bastion/recorder/spool"
)

// RecordingVerifier is recording storage whose recordings carry a signed
// manifest (the spool in front of object storage): found on
// Config.Recordings by type assertion.
type RecordingVerifier interface {
	Source(name string) manifest.Source
	PublicKey() ssh.PublicKey
}

// RecordingStatus is recording storage that reports on its uploads.
type RecordingStatus interface {
	Status() spool.Status
}

// verifyView is the --json output of verify.
type verifyView struct {
	OK        bool              `json:"ok"`
	Session   string            `json:"session,omitempty"`
	Recording string            `json:"recording"`
	Status    manifest.Status   `json:"status"`
	Chunks    int               `json:"chunks"`
	Size      int64             `json:"size"`
	Chain     string            `json:"chain"`
	KeyID     string            `json:"key_id"`
	Started   time.Time         `json:"started"`
	Ended     time.Time         `json:"ended"`
	Facts     map[string]string `json:"facts,omitempty"`
}

func (r *run) verify() error {
	if err := r.positional(1, 1); err != nil {
		return err
	}
	sess, err := r.sessionFor(r.args.pos[0])
	if err != nil {
		return err
	}
	v, ok := r.recordings.(RecordingVerifier)
	if !ok {
		return &policy.Refusal{Reason: "recordings kept in a local directory are not signed; verification needs recordings in object storage (recordings: s3://…)"}
	}
	if sess.State == store.SessionLive {
		return &policy.Refusal{Reason: fmt.Sprintf("session %s is still being recorded; its manifest is signed when it ends", sess.ID)}
	}
	m, err := manifest.Verify(r.ctx, v.Source(sess.Recording), v.PublicKey())
	outcome, reason := audit.OutcomeOK, ""
	if err != nil {
		outcome, reason = audit.OutcomeRefused, err.Error()
	}
	r.access.Record(r.ctx, r.actor, audit.Event{Type: audit.Replay, Subject: sess.User, Target: sess.Target, RequestID: sess.RequestID,
		Outcome: outcome, Reason: reason, Details: map[string]string{"session": sess.ID, "how": "verify"}})
	if err != nil {
		return verifyRefusal(sess.Recording, err)
	}
	return r.printVerified(sess.ID, m)
}

// verifyRefusal is what a failed verification tells: the first missing,
// altered or extra chunk, a bad signature, or a missing manifest.
func verifyRefusal(name string, err error) error {
	var f *manifest.Failure
	switch {
	case errors.As(err, &f), errors.Is(err, manifest.ErrSignature):
		return &policy.Refusal{Reason: fmt.Sprintf("FAILED: recording %s: %v", name, err)}
	}
	return &policy.Refusal{Reason: fmt.Sprintf("FAILED: recording %s cannot be verified: %v", name, err)}
}

func (r *run) printVerified(session string, m *manifest.Manifest) error {
	view := verifyView{OK: true, Session: session, Recording: m.Name, Status: m.Status, Chunks: len(m.Chunks), Size: m.Size,
		Chain: m.Chain, KeyID: m.KeyID, Started: m.Started, Ended: m.Ended, Facts: m.Session}
	if r.json {
		r.printJSON(view)
		return nil
	}
	r.printf("ok: recording %s is complete and unaltered (%s)\n", m.Name, m.Status)
	r.printf("  chunks %d, %d bytes, chain %s\n  signed by %s (%s), %s to %s\n", len(m.Chunks), m.Size, m.Chain, m.Signer, m.KeyID,
		m.Started.UTC().Format(time.RFC3339), m.Ended.UTC().Format(time.RFC3339))
	return nil
}

func (r *run) status() error {
	if err := r.positional(0, 0); err != nil {
		return err
	}
	if !r.auditor() {
		return &policy.Refusal{Reason: "status needs the audit permission"}
	}
	var proc *ProcessStatus
	if r.process != nil {
		p := r.process()
		proc = &p
	}
	st, ok := r.recordings.(RecordingStatus)
	if !ok {
		if r.json {
			r.printJSON(withProcess(map[string]any{"recordings": "directory", "storage_ok": true}, proc))
		} else {
			r.printProcess(proc)
			r.printf("recordings:     local directory\n")
		}
		return nil
	}
	s := st.Status()
	key := ""
	if v, ok := r.recordings.(RecordingVerifier); ok {
		key = string(ssh.MarshalAuthorizedKey(v.PublicKey()))
	}
	if r.json {
		r.printJSON(withProcess(map[string]any{"recordings": "s3", "storage": s, "recording_key": key}, proc))
		return nil
	}
	r.printProcess(proc)
	state := "ok"
	if !s.StorageOK {
		state = fmt.Sprintf("UNREACHABLE since %s: %s", s.DownSince.UTC().Format(time.RFC3339), s.StorageError)
	}
	r.printf("recordings:     object storage, via the spool\nstorage:        %s\n", state)
	r.printf("spool:          %d recordings, %d bytes waiting for upload (quota %d)\n", s.Recordings, s.Pending, s.Quota)
	r.printf("uploaded:       %d chunks, %d bytes since start; lag p50 %s, p99 %s\n", s.Chunks, s.Uploaded,
		time.Duration(s.LagP50), time.Duration(s.LagP99))
	if s.DiskError != "" {
		r.printf("spool disk:     FAILING: %s\n", s.DiskError)
	}
	if s.SpoolError != "" {
		r.printf("spool error:    %s (%s)\n", s.SpoolError, s.SpoolErrorAt.UTC().Format(time.RFC3339))
	}
	for _, f := range s.Failing {
		r.printf("failing:        %s: %s\n", f.Name, f.Error)
	}
	r.printf("recording key:  %s", lines(key))
	return nil
}

// withProcess adds the process's status to status's --json output, when
// it is known.
func withProcess(out map[string]any, p *ProcessStatus) map[string]any {
	if p != nil {
		out["process"] = p
	}
	return out
}

// printProcess prints the first line of status: open files against the
// limits.
func (r *run) printProcess(p *ProcessStatus) {
	if p == nil {
		return
	}
	open := "unknown"
	if p.OpenFiles >= 0 {
		open = strconv.Itoa(p.OpenFiles)
	}
	r.printf("open files:     %s of %d (hard limit %d)\n", open, p.SoftLimit, p.HardLimit)
}

// VerifyOffline runs `bastion verify --dir DIR --pubkey FILE [--json]`: it
// verifies a downloaded copy of a recording (its parts as files) with the
// recording public key, without a configuration or a server. ok is false
// when args are not an offline verification (no --dir).
func VerifyOffline(ctx context.Context, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", "", "a downloaded copy of a recording: its manifest and chunk-NNNNNN files")
	pubPath := fs.String("pubkey", "", "the recording public key (recording_ed25519_key.pub)")
	asJSON := fs.Bool("json", false, "JSON output")
	if err := fs.Parse(args); err != nil || *dir == "" {
		return 0, false
	}
	r := &run{CLI: New(Config{Access: offlineAccess{}}), ctx: ctx, io: IO{Stdout: stdout, Stderr: stderr}, json: *asJSON}
	if *pubPath == "" || fs.NArg() > 0 {
		return r.finish("verify", usagef("verify: usage: verify --dir DIR --pubkey FILE [--json]")), true
	}
	pub, err := manifest.ReadPublicKey(*pubPath)
	if err != nil {
		return r.finish("verify", usagef("verify: %v", err)), true
	}
	m, err := manifest.Verify(ctx, manifest.DirSource(*dir), pub)
	if err != nil {
		return r.finish("verify", verifyRefusal(*dir, err)), true
	}
	return r.finish("verify", r.printVerified("", m)), true
}

// offlineAccess is the Access of offline verification: there is no audit
// log to record in, and no other method is called.
type offlineAccess struct{ Access }

func (offlineAccess) Record(context.Context, access.Actor, audit.Event) {}
