package dbrec

import (
	"context"
	"log/slog"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/internal/frontend"
)

// LoginFailed is a database login that failed to prove its secret (a
// wrong or unknown one): it counts against t's budgets (nil: none) and
// holds the caller as long as t says, so guessing tokens is slowed as
// guessing SSH keys is. The failure is audited on its own unless it is
// over a budget, when the burst's one event, audited as it starts, speaks
// for it.
func LoginFailed(ctx context.Context, l Logins, t *frontend.AuthThrottle, log *slog.Logger, in access.DBLogin, why error) {
	if t == nil {
		l.DBLoginFailed(ctx, in, why)
		return
	}
	bursts, over := t.Hold(ctx, in.Source, in.User)
	for _, b := range bursts {
		l.Record(ctx, access.Actor{Source: in.Source}, b.Event(string(in.Kind)))
		log.Warn("authentication failures throttled", "reason", b.Reason)
	}
	if !over {
		l.DBLoginFailed(ctx, in, why)
	}
}
