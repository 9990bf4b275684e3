package access

import "github.com/bastionhq/bastion/bastion/audit"

// AuditSession is a session under g as its audit events name it (see
// audit.Session's constructors): protocol is "ssh", "postgres" or "mysql";
// id is the session's ID, or "" before it has one.
func (g *Grant) AuditSession(protocol, id string) audit.Session {
	return audit.Session{User: g.User, Target: g.Target, RequestID: g.RequestID, Protocol: protocol, ID: id,
		Login: g.Login, Serial: g.Serial}
}
