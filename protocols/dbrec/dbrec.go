// Package dbrec is what the database front ends (protocols/postgres,
// protocols/mysql) share: the interfaces they need of the access service and
// the store, and the start of a session's recording, the same way for every
// database: a buffered JSON Lines query log carrying the session's facts (for
// the signed manifest of object storage), its start event, and the session's
// row in the store; and the recording mode of the grant's role (fail-closed
// or fail-open).
package dbrec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// BufferSize is the write buffer in front of a query log: events reach the
// storage at the recording's once-a-second Sync (or, under durability:
// statement, at the group commit before a statement is forwarded), not one
// system call each.
const BufferSize = 32 << 10

// Logins is the part of the access service that authenticates and
// authorises database logins, and audits them.
type Logins interface {
	DBSecretFor(ctx context.Context, in access.DBLogin) (*store.DBSecret, error)
	DBLoginFailed(ctx context.Context, in access.DBLogin, why error)
	AuthorizeDB(ctx context.Context, in access.DBLogin, secret *store.DBSecret) (*access.Grant, error)
	CheckGrant(ctx context.Context, g *access.Grant) error
	// Record appends an event about what happened (kept and retried when
	// the store cannot take it); Audit one whose action must not happen
	// unaudited (a session start), failing when it cannot be made durable.
	Record(ctx context.Context, a access.Actor, e audit.Event)
	Audit(ctx context.Context, a access.Actor, e audit.Event) error
}

// Approvals is the part of the access service that holds statements for
// approval (require-approval rules).
type Approvals interface {
	RequestCommand(ctx context.Context, a access.Actor, in access.CommandRequest) (*store.Request, error)
	Wait(ctx context.Context, a access.Actor, id int64) (*store.Request, error)
	CommandDone(ctx context.Context, a access.Actor, id int64)
}

// Sessions is the subset of the store that keeps session rows.
type Sessions interface {
	CreateSession(ctx context.Context, sess *store.Session) error
	EndSession(ctx context.Context, id string, state store.SessionState, at time.Time, reason string, exitStatus int) error
}

// Session is a database session whose recording starts.
type Session struct {
	ID       string
	Protocol string // querylog.ProtocolPostgres or querylog.ProtocolMySQL
	Grant    *access.Grant
	Login    string // the user Bastion logs in as upstream
	Database string // the database upstream
	Client   string // the client's address
	Start    time.Time
}

// Open creates s's query log in st (named by protocol and day), writes its
// start event and stores its row (state live) in sessions. On error nothing
// is left open.
func Open(ctx context.Context, st recorder.Storage, sessions Sessions, s Session) (*recorder.QueryLog, string, error) {
	g := s.Grant
	name := recorder.DailyName(s.Protocol, s.Start, s.ID, "jsonl")
	info := map[string]string{"session": s.ID, "user": g.User, "target": g.Target, "login": s.Login,
		"protocol": s.Protocol, "kind": "query", "source": s.Client}
	ql, err := recorder.NewQueryLog(recorder.WithInfo(ctx, info), recorder.Buffered(st, BufferSize), name, s.Start)
	if err != nil {
		return nil, "", err
	}
	req := ""
	if g.RequestID != 0 {
		req = strconv.FormatInt(g.RequestID, 10)
	}
	if err := ql.Write(querylog.Event{Time: s.Start, Type: querylog.TypeStart, User: g.User, Target: g.Target, Database: s.Database,
		RequestID: req, ClientAddr: s.Client, Protocol: s.Protocol}); err != nil {
		return nil, "", errors.Join(err, ql.Close())
	}
	row := &store.Session{ID: s.ID, User: g.User, Target: g.Target, Login: s.Login, Protocol: s.Protocol, Kind: "query",
		RequestID: g.RequestID, Source: s.Client, Recording: name, State: store.SessionLive, StartedAt: s.Start, ExitStatus: -1}
	if err := sessions.CreateSession(ctx, row); err != nil {
		return nil, "", errors.Join(fmt.Errorf("record session: %w", err), ql.Close())
	}
	return ql, name, nil
}

// FailOpen reports whether the sessions of g may go on unrecorded when
// their recording fails (the role says fail-open).
func FailOpen(p *policy.Policy, g *access.Grant) bool {
	return p.RecordingFor(g.User, g.Target, g.Role) == policy.FailOpen
}

// Durable reports whether g's role asks that a statement reach the target
// only once its record is durable (durability: statement, the default of
// fail-closed roles): the session then writes an exec event before it
// forwards a statement and waits for the storage's group commit.
func Durable(p *policy.Policy, g *access.Grant) bool {
	return p.DurabilityFor(g.User, g.Target, g.Role) == policy.DurableStatement
}

// Guarantee asks storage that can tell (the spool in front of object
// storage) whether a fail-closed session's recording would be kept, before
// the target is opened. It is nil for fail-open sessions and for storage
// that cannot tell.
func Guarantee(ctx context.Context, st recorder.Storage, failOpen bool) error {
	g, ok := st.(recorder.Guarantor)
	if !ok || failOpen {
		return nil
	}
	return g.Guarantee(ctx)
}

// Unrecorded logs and audits that a fail-open session of protocol goes on
// without (the rest of) its recording, which failed with err.
func Unrecorded(ctx context.Context, log *slog.Logger, a Logins, actor access.Actor, g *access.Grant, protocol string, err error) {
	log.Error("recording failed; the session goes on unrecorded (fail-open role)", "err", err)
	a.Record(ctx, actor, g.AuditSession(protocol, "").StartFailed("recording failed, session continues unrecorded (fail-open): "+err.Error()))
}

// AuditEnd starts writing the session.end audit event of a database
// session and returns a wait for it. The caller ends the session's
// recording and row meanwhile, so that the store commits the row's end and
// the event together (group commit).
func AuditEnd(ctx context.Context, a Logins, actor access.Actor, g *access.Grant, protocol, session, reason string) (wait func()) {
	var wg sync.WaitGroup
	wg.Go(func() {
		a.Record(ctx, actor, g.AuditSession(protocol, session).End(reason, nil))
	})
	return wg.Wait
}

// MaxRecordedParam bounds one recorded statement parameter; longer ones
// are cut, with a note of their length.
const MaxRecordedParam = 1024
