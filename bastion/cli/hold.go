package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
)

// LegalHolds is the part of the store that keeps legal holds, found on
// Config.Sessions by type assertion.
type LegalHolds interface {
	SetLegalHold(ctx context.Context, sessionID string, hold bool, by, reason string, at time.Time) error
	LegalHold(ctx context.Context, sessionID string) (bool, error)
}

func (r *run) hold() error {
	if err := r.positional(1, 1); err != nil {
		return err
	}
	if !r.auditor() {
		return &policy.Refusal{Reason: "legal holds need the audit permission"}
	}
	holds, ok := r.sessionLog.(LegalHolds)
	if !ok {
		return &policy.Refusal{Reason: "legal holds are not kept by this store"}
	}
	release := r.args.bools["release"]
	reason, err := r.text("reason")
	if err != nil {
		return err
	}
	if !release && reason == "" {
		return usagef("hold: --reason is required (why the recording must be kept)")
	}
	sess, err := r.sessionFor(r.args.pos[0])
	if err != nil {
		return err
	}
	err = holds.SetLegalHold(r.ctx, sess.ID, !release, r.actor.User, reason, time.Now())
	if errors.Is(err, store.ErrNotFound) {
		return &policy.Refusal{Reason: fmt.Sprintf("no such session %q", sess.ID)}
	}
	if err != nil {
		return err
	}
	what := "placed"
	if release {
		what = "lifted"
	}
	r.access.Record(r.ctx, r.actor, audit.Event{Type: audit.RecordingHold, Subject: sess.User, Target: sess.Target, RequestID: sess.RequestID,
		Reason: reason, Details: map[string]string{"session": sess.ID, "recording": sess.Recording, "hold": what}})
	if r.json {
		r.printJSON(map[string]any{"session": sess.ID, "held": !release})
		return nil
	}
	r.printf("legal hold %s on session %s\n", what, sess.ID)
	return nil
}
