package access

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/dbauth"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
)

// DBSecret is a fresh database secret, as `token` shows it once.
type DBSecret struct {
	Secret    string
	RequestID int64
	User      string
	Targets   []string // the request's database targets
	ExpiresAt time.Time
}

// IssueDBSecret makes a fresh secret for the actor's approved request id,
// valid until the grant ends, and keeps only its verifiers (a new secret
// replaces the request's previous one). The request must name at least one
// PostgreSQL or MySQL target.
func (s *Service) IssueDBSecret(ctx context.Context, a Actor, id int64) (*DBSecret, error) {
	sec, err := s.issueDBSecret(ctx, a, id)
	if err != nil {
		s.refused(ctx, a, audit.TokenIssue, id, "", err)
		return nil, err
	}
	s.emit(ctx, a, audit.Event{Type: audit.TokenIssue, RequestID: id, Target: sec.Targets[0], Outcome: audit.OutcomeOK,
		Details: map[string]string{"expires_at": sec.ExpiresAt.UTC().Format(time.RFC3339), "targets": fmt.Sprint(sec.Targets)}})
	return sec, nil
}

func (s *Service) issueDBSecret(ctx context.Context, a Actor, id int64) (*DBSecret, error) {
	r, err := s.usableGrant(ctx, a, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(r.GrantEnd) {
		return nil, refusef("request %d ended at %s", id, r.GrantEnd.UTC().Format(time.RFC3339))
	}
	var dbs []string
	pol := s.policy()
	for _, t := range r.Targets {
		if pt := pol.Targets[t]; pt != nil && (pt.Kind == policy.KindPostgres || pt.Kind == policy.KindMySQL) {
			dbs = append(dbs, t)
		}
	}
	if len(dbs) == 0 {
		return nil, refusef("request %d grants no database target (tokens are for PostgreSQL and MySQL targets; use cert for SSH)", id)
	}
	secret := dbauth.NewSecret()
	v := dbauth.Derive(secret)
	d := &store.DBSecret{RequestID: id, User: a.User, SCRAM: v.SCRAM, MySQLNative: v.MySQLNative, MySQLSHA2: v.MySQLSHA2,
		CreatedAt: now, ExpiresAt: r.GrantEnd}
	if _, err := s.store.CreateDBSecret(ctx, d); err != nil {
		return nil, fmt.Errorf("access: token for request %d: %w", id, err)
	}
	return &DBSecret{Secret: secret, RequestID: id, User: a.User, Targets: dbs, ExpiresAt: r.GrantEnd}, nil
}

// DBLogin is an attempt to open a database session: the database name the
// client asked for is the target.
type DBLogin struct {
	User   string
	Target string
	Kind   policy.Kind // the protocol the client speaks
	Source netip.Addr
}

// ErrNoDBSecret is wrapped by DBSecretFor when the user has no live secret
// for the target. Protocol front ends answer it exactly like a wrong
// password, after a mock exchange, so that a client cannot tell which users
// exist.
var ErrNoDBSecret = errors.New("no live database secret")

// DBSecretFor returns the secret a login's proof is checked against: the
// newest unexpired secret of in.User whose request names in.Target. It
// does not audit: call DBLoginFailed or AuthorizeDB after the proof.
func (s *Service) DBSecretFor(ctx context.Context, in DBLogin) (*store.DBSecret, error) {
	pt := s.policy().Targets[in.Target]
	if pt == nil || pt.Kind != in.Kind {
		return nil, fmt.Errorf("%w: no %s target %q", ErrNoDBSecret, in.Kind, in.Target)
	}
	secrets, err := s.store.DBSecrets(ctx, in.User, s.now())
	if err != nil {
		return nil, fmt.Errorf("access: database secrets: %w", err)
	}
	for _, d := range secrets {
		r, err := s.store.Request(ctx, d.RequestID)
		if err != nil {
			return nil, fmt.Errorf("access: database secret %d: %w", d.ID, err)
		}
		if slices.Contains(r.Targets, in.Target) {
			return d, nil
		}
	}
	return nil, fmt.Errorf("%w: %s has no token for %s (run: token <request-id>)", ErrNoDBSecret, in.User, in.Target)
}

// DBLoginFailed audits a database login refused before authorisation: a
// wrong password, no secret, a protocol error. why is for the audit log
// only; the client is told no more than that authentication failed.
func (s *Service) DBLoginFailed(ctx context.Context, in DBLogin, why error) {
	s.emit(ctx, Actor{User: in.User, Source: in.Source}, audit.Event{Type: audit.Login, Target: in.Target,
		Outcome: audit.OutcomeRefused, Reason: why.Error(), Details: map[string]string{"protocol": string(in.Kind)}})
}

// AuthorizeDB decides, once the client has proved it holds secret, whether
// the session may open: the secret's request is approved and live, names
// the target, and the role's conditions hold now. A refusal is audited;
// success is not (the caller audits the session start).
func (s *Service) AuthorizeDB(ctx context.Context, in DBLogin, secret *store.DBSecret) (*Grant, error) {
	g, err := s.authorizeDB(ctx, in, secret)
	if err != nil {
		s.emit(ctx, Actor{User: in.User, Source: in.Source}, audit.Event{Type: audit.Login, Target: in.Target,
			RequestID: secret.RequestID, Outcome: audit.OutcomeRefused, Reason: err.Error(),
			Details: map[string]string{"protocol": string(in.Kind), "secret": strconv.FormatInt(secret.ID, 10)}})
		return nil, err
	}
	return g, nil
}

func (s *Service) authorizeDB(ctx context.Context, in DBLogin, secret *store.DBSecret) (*Grant, error) {
	now := s.now()
	if secret.User != in.User {
		return nil, refusef("secret %d is not %s's", secret.ID, in.User)
	}
	if !now.Before(secret.ExpiresAt) {
		return nil, refusef("the token expired at %s", secret.ExpiresAt.UTC().Format(time.RFC3339))
	}
	pt := s.policy().Targets[in.Target]
	if pt == nil || pt.Kind != in.Kind {
		return nil, refusef("no %s target %q", in.Kind, in.Target)
	}
	r, err := s.store.Request(ctx, secret.RequestID)
	if err != nil {
		return nil, fmt.Errorf("access: authorize database: %w", err)
	}
	if r.Requester != in.User {
		return nil, refusef("request %d is not %s's", r.ID, in.User)
	}
	if st := r.StateAt(now); st != store.Approved {
		return nil, refusef("request %d is %s%s", r.ID, st, closedBy(r))
	}
	if !slices.Contains(r.Targets, in.Target) {
		return nil, refusef("request %d does not grant %s", r.ID, in.Target)
	}
	if err := s.policy().CheckGrantUse(in.User, r.Role, []string{in.Target}, nil, policy.Env{Now: now, Source: in.Source}); err != nil {
		return nil, err
	}
	ends := r.GrantEnd
	if secret.ExpiresAt.Before(ends) {
		ends = secret.ExpiresAt
	}
	return &Grant{User: in.User, Target: in.Target, Role: r.Role, RequestID: r.ID, Ends: ends, Source: in.Source}, nil
}
