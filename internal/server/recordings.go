package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/manifest"
	"github.com/bastionhq/bastion/recorder/s3store"
	"github.com/bastionhq/bastion/recorder/spool"
)

// RecordingKeyFile is the recording key in the data dir: it signs the
// manifests of recordings; its public key (RecordingKeyFile+".pub")
// verifies them offline.
const RecordingKeyFile = "recording_ed25519_key"

// storageCheckTimeout bounds checking the bucket at start; an unreachable
// storage does not stop Bastion (recordings wait in the spool).
const storageCheckTimeout = 5 * time.Second

// recordings is where sessions are recorded, and what keeps them: a local
// directory, or a spool streaming to object storage.
type recordings struct {
	recorder.Storage
	spool     *spool.Store  // nil for a local directory
	retention time.Duration // 0: recordings are kept
	log       *slog.Logger
	wg        sync.WaitGroup // the retention sweep
	started   bool           // start was called: the spool uploads
	// record emits an audit event; set by the server before start.
	record func(audit.Event)
	// sessions ends the sessions of recordings a failed spool disk ended;
	// set by start.
	sessions atomic.Pointer[recordingSessions]
	marks    sync.WaitGroup // diskInterrupted's, until the spool closes
}

// openRecordings opens recording storage: a local directory (the embedded
// default), or, for recordings: s3://…, a spool in front of the bucket,
// with the recording key from the data dir (generated at first start).
func openRecordings(ctx context.Context, cfg *config.Config, log *slog.Logger) (*recordings, error) {
	r := &recordings{log: log.With("component", "recordings"), record: func(audit.Event) {}, retention: cfg.Recording.Retention}
	s3 := cfg.Recording.S3
	if s3 == nil {
		d, err := recorder.NewDir(cfg.Recordings)
		if err != nil {
			return nil, fmt.Errorf("recordings: %w", err)
		}
		r.Storage = d
		return r, nil
	}
	key, err := manifest.LoadOrCreateKey(filepath.Join(cfg.DataDir, RecordingKeyFile))
	if err != nil {
		return nil, err
	}
	sc := s3store.Config{
		Endpoint: s3.Endpoint, Bucket: s3.Bucket, Prefix: s3.Prefix, Region: s3.Region, Secure: s3.TLS,
		VirtualHost: !s3.PathStyle, AccessKey: s3.AccessKey, SecretKey: s3.SecretKey,
		MaxRetries: 1, // the spool retries, with backoff
		ObjectLock: s3store.ObjectLock{Mode: cfg.Recording.ObjectLockMode, For: cfg.Recording.ObjectLockFor},
	}
	if sc.AccessKey == "" {
		sc.AccessKey, sc.SecretKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	cctx, cancel := context.WithTimeout(ctx, storageCheckTimeout)
	backend, err := s3store.New(cctx, sc)
	cancel()
	if err != nil {
		// Sessions can still be recorded: into the spool, uploaded once
		// the storage answers. Fail-closed roles wait for it.
		r.log.Error("recording storage unavailable at start; recordings wait in the spool", "err", err)
		if backend, err = s3store.NewUnchecked(sc); err != nil {
			return nil, fmt.Errorf("recordings: %w", err)
		}
	}
	fsync := cfg.Recording.Fsync
	if fsync == config.FsyncAlways {
		fsync = spool.FsyncAlways
	}
	host, _ := os.Hostname()
	r.spool, err = spool.Open(spool.Config{
		Dir: cfg.Recording.SpoolDir, Backend: backend, Key: key, Signer: host,
		FsyncInterval: fsync, Quota: cfg.Recording.SpoolQuota, Logger: log,
		OnHealth: r.storageHealth, OnInterrupted: r.diskInterrupted,
	})
	if err != nil {
		return nil, fmt.Errorf("recordings: %w", err)
	}
	r.Storage = r.spool
	return r, nil
}

// storageHealth audits the start and the end of a storage outage.
func (r *recordings) storageHealth(err error) {
	e := audit.Event{Type: audit.RecordingStorage, Actor: "bastion", Outcome: audit.OutcomeOK,
		Reason: "recording storage reachable again; spooled recordings are uploading"}
	if err != nil {
		e.Outcome, e.Reason = audit.OutcomeError, "recording storage unreachable; recordings wait in the spool: "+err.Error()
	}
	r.record(e)
}

// recordingSessions is the subset of the store the recordings use: every
// store keeps legal holds (store.Store), so retention never runs without
// them.
type recordingSessions interface {
	Sessions(ctx context.Context, f store.SessionFilter) ([]*store.Session, error)
	EndSession(ctx context.Context, id string, state store.SessionState, at time.Time, reason string, exitStatus int) error
	heldRecordings
}

// start begins uploading, after marking the sessions whose recordings a
// previous process left unfinished as interrupted, and the retention sweep
// until ctx ends.
func (r *recordings) start(ctx context.Context, sessions recordingSessions, rec func(context.Context, access.Actor, audit.Event)) {
	r.record = func(e audit.Event) { rec(context.Background(), access.Actor{User: "bastion"}, e) }
	r.sessions.Store(&sessions)
	r.started = true
	if r.retention > 0 {
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.retainLoop(ctx, sessions) }()
	}
	if r.spool == nil {
		return
	}
	if names := r.spool.Recovered(); len(names) > 0 {
		const reason = "Bastion stopped while the session ran; its recording is kept up to the last spooled byte"
		if err := r.interrupted(ctx, sessions, names, reason); err != nil {
			r.log.Error("mark interrupted sessions", "err", err)
		}
	}
	r.spool.Start()
}

// diskInterrupted ends, as interrupted, the sessions whose recordings a
// failed spool disk ended, once the spool sealed them (space returned). It
// runs on the spool's dispatcher: the store is written apart.
func (r *recordings) diskInterrupted(names []string) {
	sessions := r.sessions.Load()
	if sessions == nil {
		return
	}
	r.marks.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), diskInterruptedTimeout)
		defer cancel()
		const reason = "the recording spool's disk failed while the session ran; its recording is kept up to the last spooled line"
		if err := r.interrupted(ctx, *sessions, names, reason); err != nil {
			r.log.Error("mark sessions interrupted by the spool's disk", "err", err)
		}
	})
}

// diskInterruptedTimeout bounds marking the sessions a failed disk ended.
const diskInterruptedTimeout = 30 * time.Second

// interrupted ends the live sessions recorded in names as interrupted,
// for reason.
func (r *recordings) interrupted(ctx context.Context, sessions recordingSessions, names []string, reason string) error {
	live, err := sessions.Sessions(ctx, store.SessionFilter{States: []store.SessionState{store.SessionLive}})
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range live {
		if !slices.Contains(names, s.Recording) {
			continue
		}
		if err := sessions.EndSession(ctx, s.ID, store.SessionInterrupted, time.Now(), reason, -1); err != nil {
			errs = append(errs, err)
			continue
		}
		r.record(audit.Event{Type: audit.RecordingInterrupted, Actor: "bastion", Outcome: audit.OutcomeOK, Subject: s.User,
			Target: s.Target, Reason: reason, Details: map[string]string{"session": s.ID, "recording": s.Recording}})
	}
	return errors.Join(errs...)
}

// close uploads what it can within grace, then stops the spool; what is
// left is uploaded at the next start. A spool that never started (New
// failed, or a local command) uploads nothing: it is only closed.
func (r *recordings) close(grace time.Duration) {
	r.wg.Wait()
	if r.spool == nil {
		return
	}
	if r.started {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := r.spool.Drain(ctx); err != nil {
			r.log.Warn("recordings left in the spool for the next start", "err", err)
		}
	}
	if err := r.spool.Close(); err != nil {
		r.log.Warn("close the spool", "err", err)
	}
	r.marks.Wait() // the spool's dispatcher, which starts them, has stopped
}

// heldRecordings is the part of the store that keeps legal holds.
type heldRecordings interface {
	HeldRecordings(ctx context.Context) ([]string, error)
}

// retentionEvery is how often the retention sweep looks for recordings past
// their age.
const retentionEvery = time.Hour

// retainLoop sweeps at start, then every retentionEvery until ctx ends.
func (r *recordings) retainLoop(ctx context.Context, holds heldRecordings) {
	tick := time.NewTicker(retentionEvery)
	defer tick.Stop()
	for {
		if _, err := r.sweep(ctx, holds, time.Now().Add(-r.retention)); err != nil && ctx.Err() == nil {
			r.log.Error("retention sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sweep deletes the recordings last written before cutoff, except those
// under legal hold, auditing each deletion; it returns their names.
func (r *recordings) sweep(ctx context.Context, holds heldRecordings, cutoff time.Time) ([]string, error) {
	held, err := holds.HeldRecordings(ctx)
	if err != nil {
		return nil, err
	}
	infos, err := r.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var deleted []string
	var errs []error
	for _, in := range infos {
		if !in.ModTime.Before(cutoff) || slices.Contains(held, in.Name) {
			continue
		}
		if err := r.Delete(ctx, in.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		deleted = append(deleted, in.Name)
		r.record(audit.Event{Type: audit.RecordingDelete, Actor: "bastion", Outcome: audit.OutcomeOK,
			Reason:  fmt.Sprintf("older than the retention of %s", r.retention),
			Details: map[string]string{"recording": in.Name, "last_written": in.ModTime.UTC().Format(time.RFC3339)}})
	}
	return deleted, errors.Join(errs...)
}
