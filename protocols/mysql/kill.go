package mysql

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bastionhq/bastion/protocols/mysql/mysqlsql"
)

// killRefusal refuses a KILL of any connection but the session's own
// target connection, where rules apply: every session to a target shares
// one upstream account, which may end any of its connections, so KILL 23
// would end another user's session. A KILL whose target is an expression,
// or that Bastion cannot read, is refused too. sql is read only when a
// statement is a KILL or its text names one (a routine's body).
func (d *decider) killRefusal(sql string, stmts []mysqlsql.Statement) string {
	isKill := func(s mysqlsql.Statement) bool { return s.Command == "KILL" }
	if !slices.ContainsFunc(stmts, isKill) && !strings.Contains(strings.ToLower(sql), "kill") {
		return ""
	}
	kills, err := mysqlsql.Kills(sql, d.opts)
	switch {
	case err != nil && slices.ContainsFunc(stmts, isKill):
		return fmt.Sprintf("KILL: the statement cannot be checked (%v), and queries are restricted on %s", err, d.target)
	case err != nil:
		// Read by one of Parse's own readers (SELECT … INTO @var,
		// HANDLER), which the grammar lacks: no KILL in those.
		return ""
	}
	for _, k := range kills {
		switch {
		case k.Own || k.Constant && k.ConnectionID == uint64(d.ownConn):
		case !k.Constant:
			return fmt.Sprintf("KILL of a connection named by an expression is not allowed on %s: name this session's own connection, %d", d.target, d.ownConn)
		default:
			return fmt.Sprintf("KILL %d: only this session's own connection (%d) may be killed on %s: other sessions share the target's account", k.ConnectionID, d.ownConn, d.target)
		}
	}
	return ""
}
