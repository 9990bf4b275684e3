// Package dbrec starts the recording of a database session, the same way
// for every database front end: a buffered JSON Lines query log carrying the
// session's facts (for the signed manifest of object storage), its start
// event, and the session's row in the store; and the recording mode of the
// grant's role (fail-closed or fail-open).
package dbrec

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// BufferSize is the write buffer in front of a query log: events reach the
// storage at the recording's once-a-second Sync, not one system call each.
const BufferSize = 32 << 10

// Sessions is where session rows go.
type Sessions interface {
	CreateSession(ctx context.Context, sess *store.Session) error
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
