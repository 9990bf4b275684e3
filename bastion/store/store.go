// Package store defines Bastion's persistent state — access requests, their
// approvals, issued certificates, sessions and their legal holds, and the
// audit log — as one Store interface, with a contract test suite (package
// storetest) that every implementation must pass. The embedded default is SQLite (package store/sqlite); a
// PostgreSQL implementation for several replicas shares the same contract.
//
// A Store does no policy: callers decide, the store records atomically.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
)

// State is the lifecycle state of an access request.
type State string

const (
	Pending   State = "pending"   // waiting for approvals
	Approved  State = "approved"  // granted; live until GrantEnd
	Denied    State = "denied"    // refused by an approver
	Expired   State = "expired"   // pending too long, or grant ended
	Revoked   State = "revoked"   // grant ended early (requester released it, or an approver revoked it)
	Cancelled State = "cancelled" // withdrawn by the requester while pending
)

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	switch s {
	case Pending, Approved, Denied, Expired, Revoked, Cancelled:
		return true
	}
	return false
}

// Final reports whether no further transition is possible from s.
func (s State) Final() bool { return s != Pending && s != Approved }

// Request is a just-in-time access request and, once approved, its grant.
type Request struct {
	ID        int64
	Requester string
	Role      string   // the requester's role whose rule covers the request
	Targets   []string // target names
	Logins    []string // SSH logins (empty for database targets)
	Reason    string
	Duration  time.Duration // how long the grant lasts once approved
	Source    string        // client address the request came from

	State        State
	CreatedAt    time.Time
	PendingUntil time.Time // a pending request expires then

	ApprovalsRequired int
	Approvers         []string // roles whose members may approve
	Approvals         []Approval

	// Set when the request is approved (the grant's clock starts at approval) or denied.
	DecidedAt      time.Time
	DecidedBy      string
	DecisionReason string
	GrantStart     time.Time
	GrantEnd       time.Time

	// Set when the request is revoked, cancelled or expired.
	ClosedAt    time.Time
	ClosedBy    string
	CloseReason string

	// Command, when set, makes this a request to run one command in a
	// session (a rule requires approval for it), not a request for access:
	// it grants nothing else, and is closed once the command has run.
	Command string
}

// StateAt is the request's state at now, taking expiry into account even
// before a sweep has recorded it.
func (r *Request) StateAt(now time.Time) State {
	switch {
	case r.State == Pending && !now.Before(r.PendingUntil):
		return Expired
	case r.State == Approved && !now.Before(r.GrantEnd):
		return Expired
	}
	return r.State
}

// HasApproved reports whether user has already approved r.
func (r *Request) HasApproved(user string) bool {
	for _, a := range r.Approvals {
		if a.Approver == user {
			return true
		}
	}
	return false
}

// Approval is one approver's approval of a request.
type Approval struct {
	Approver string
	Comment  string
	At       time.Time
}

// Transition moves a request out of Pending or Approved.
type Transition struct {
	From   []State // the request must currently be in one of these
	To     State   // Denied, Revoked, Cancelled or Expired
	By     string
	Reason string
	At     time.Time
}

// Certificate records an issued SSH user certificate.
type Certificate struct {
	Serial         uint64 // assigned by the store, unique across the CA
	RequestID      int64  // 0 for certificates not tied to a request
	User           string
	KeyFingerprint string // SHA256 fingerprint of the certified key
	Principals     []string
	Targets        []string
	ValidAfter     time.Time
	ValidBefore    time.Time
	IssuedAt       time.Time
}

// DBSecret is a database secret handed out for a request: only its
// verifiers are stored, never the secret.
type DBSecret struct {
	ID          int64 // assigned by the store
	RequestID   int64
	User        string
	SCRAM       string // SCRAM-SHA-256 verifier, PostgreSQL's format
	MySQLNative []byte // SHA1(SHA1(secret))
	MySQLSHA2   []byte // SHA256(SHA256(secret))
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// SessionState is the state of a recorded session.
type SessionState string

const (
	SessionLive        SessionState = "live"        // running now
	SessionEnded       SessionState = "ended"       // ended normally, or ended by Bastion with a reason
	SessionInterrupted SessionState = "interrupted" // Bastion stopped while it ran
)

// Session is one session on a target: a shell, an exec, a file transfer,
// or a database connection.
type Session struct {
	ID         string
	User       string
	Target     string
	Login      string // SSH login, or database user upstream
	Protocol   string // "ssh", "postgres", "mysql"
	Kind       string // "shell", "exec", "sftp", "subsystem", "query"
	Command    string // the exec command, if any
	RequestID  int64  // 0 for standing access
	Source     string // client address
	Recording  string // name of the recording in recording storage
	State      SessionState
	StartedAt  time.Time
	EndedAt    time.Time
	EndReason  string
	ExitStatus int // -1 when unknown
}

// SessionFilter selects sessions; zero fields match everything.
type SessionFilter struct {
	User   string
	Target string
	Since  time.Time // StartedAt >= Since
	States []SessionState
	Limit  int // 0: no limit; newest first
}

// RequestFilter selects requests; zero fields match everything.
type RequestFilter struct {
	Requester string
	States    []State
	Since     time.Time // CreatedAt >= Since
	Limit     int       // 0: no limit; newest first
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	User      string // Actor or Subject
	Type      string // exact type, or a prefix ending in "." ("request.")
	RequestID int64
	Since     time.Time
	AfterSeq  int64 // Seq > AfterSeq (for paging in order)
	Limit     int   // 0: no limit
}

// Store is Bastion's persistent state. Implementations are safe for
// concurrent use, and every method is atomic: it either happens whole or
// not at all.
type Store interface {
	// CreateRequest stores r as a new request, assigns r.ID and returns it.
	// r.State must be Pending, or Approved for auto-approved requests (then
	// r.Approvals, DecidedAt and the grant window are stored as given).
	// events are appended to the audit chain in the same transaction, in
	// order, as AppendAudit would, each with RequestID set to the new id
	// where it is 0: the request exists only if its events are stored.
	CreateRequest(ctx context.Context, r *Request, events ...audit.Event) (int64, error)

	// Request returns the request with the given id, with its approvals, or
	// an error wrapping ErrNotFound.
	Request(ctx context.Context, id int64) (*Request, error)

	// Requests returns the requests matching f, newest first, with approvals.
	Requests(ctx context.Context, f RequestFilter) ([]*Request, error)

	// Approve records a's approval of a pending request. When the number
	// of approvals reaches ApprovalsRequired the request becomes Approved in
	// the same transaction: DecidedAt = GrantStart = a.At, DecidedBy =
	// a.Approver, GrantEnd = a.At + Duration. It fails with ErrConflict if
	// the request is not pending (or has passed PendingUntil) and with
	// ErrDuplicate if a.Approver already approved it. Concurrent calls are
	// serialised: exactly one of them completes the grant.
	Approve(ctx context.Context, id int64, a Approval) (*Request, error)

	// Transition moves a request from one of t.From to t.To, recording who,
	// why and when (DecidedAt/By/Reason for Denied, ClosedAt/By/Reason for
	// the others). It fails with an error wrapping ErrConflict if the request
	// is not in one of t.From; exactly one of several concurrent transitions
	// of the same request succeeds.
	Transition(ctx context.Context, id int64, t Transition) (*Request, error)

	// IssueCertificate assigns the next serial to c, stores it and returns
	// the serial. Serials start at 1 and are never reused.
	IssueCertificate(ctx context.Context, c *Certificate) (uint64, error)

	// Certificates returns the certificates issued for a request.
	Certificates(ctx context.Context, requestID int64) ([]*Certificate, error)

	// CreateDBSecret assigns the next id to d, stores it and deletes the
	// other secrets of the same request and user (a new secret replaces
	// the old one). It fails with ErrNotFound if the request does not
	// exist.
	CreateDBSecret(ctx context.Context, d *DBSecret) (int64, error)

	// DBSecrets returns user's secrets that expire after now, newest first.
	DBSecrets(ctx context.Context, user string, now time.Time) ([]*DBSecret, error)

	// CreateSession stores a new session (State must be SessionLive). It
	// fails with ErrDuplicate if the ID exists.
	CreateSession(ctx context.Context, sess *Session) error

	// EndSession records the end of a live session: state (SessionEnded or
	// SessionInterrupted), time, reason and exit status. It fails with an
	// error wrapping ErrNotFound for an unknown ID and ErrConflict for a
	// session that already ended.
	EndSession(ctx context.Context, id string, state SessionState, at time.Time, reason string, exitStatus int) error

	// Session returns one session, or an error wrapping ErrNotFound.
	Session(ctx context.Context, id string) (*Session, error)

	// Sessions returns the sessions matching f, newest first.
	Sessions(ctx context.Context, f SessionFilter) ([]*Session, error)

	// SetLegalHold places a legal hold on a session's recording (hold) or
	// lifts it (!hold), recording who, why and when. A held recording is
	// never deleted by the retention sweep. Holding a held session again
	// replaces who, why and when; lifting a hold that is not there does
	// nothing. It fails with an error wrapping ErrNotFound for an unknown
	// session.
	SetLegalHold(ctx context.Context, sessionID string, hold bool, by, reason string, at time.Time) error

	// LegalHold reports whether a session is under legal hold (false for an
	// unknown session).
	LegalHold(ctx context.Context, sessionID string) (bool, error)

	// HeldRecordings returns the recording names of the sessions under
	// legal hold, in no particular order.
	HeldRecordings(ctx context.Context) ([]string, error)

	// AppendAudit seals e after the last stored event (see audit.Event.Seal),
	// stores it and returns the sealed event. Appends are serialised so that
	// the chain never forks.
	AppendAudit(ctx context.Context, e audit.Event) (audit.Event, error)

	// Audit returns the events matching f in ascending Seq order.
	Audit(ctx context.Context, f AuditFilter) ([]audit.Event, error)

	// Close releases the store's resources.
	Close() error
}

// Errors callers branch on.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrDuplicate = errors.New("duplicate")
)

// ConflictError reports the state a request was in when a transition or
// approval could not apply. It wraps ErrConflict.
type ConflictError struct {
	ID    int64
	State State
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("request %d is %s", e.ID, e.State)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }
