package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
)

func (r *run) hold() error {
	if err := r.positional(1, 1); err != nil {
		return err
	}
	if !r.auditor() {
		return &policy.Refusal{Reason: "legal holds need the audit permission"}
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
	err = r.sessionLog.SetLegalHold(r.ctx, sess.ID, !release, r.actor.User, reason, time.Now())
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
