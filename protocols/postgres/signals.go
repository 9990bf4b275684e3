package postgres

import (
	"fmt"
	"strings"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/protocols/postgres/pgsql"
)

// maxSignalChecks bounds a connection's cache of signal checks; it is
// emptied when full.
const maxSignalChecks = 1000

// checkSignals refuses, where query rules apply, a statement that ends or
// cancels any backend but the session's own: every session to a target
// shares one upstream account, which may signal any of its backends, so
// pg_terminate_backend(123) would end another user's session. A backend
// named by an expression (pg_stat_activity's pid, a parameter) is refused
// too. d is the decision so far; sql is read again only when it may call
// one of the functions (see maySignal).
func (c *conn) checkSignals(sql string, d policy.QueryDecision) policy.QueryDecision {
	if d.Action == policy.CommandDeny || !c.dec.restricted || !maySignal(sql) {
		return d
	}
	why, ok := c.signalChecks[sql]
	if !ok {
		why = signalRefusal(sql, c.up.pid)
		if c.signalChecks == nil || len(c.signalChecks) >= maxSignalChecks {
			c.signalChecks = map[string]string{}
		}
		c.signalChecks[sql] = why
	}
	if why == "" {
		return d
	}
	return policy.QueryDecision{Action: policy.CommandDeny, Reason: why}
}

// maySignal reports whether sql may call pg_terminate_backend or
// pg_cancel_backend: it names them, or hides a name behind an escape
// (U&"…", E'\x5f…').
func maySignal(sql string) bool {
	l := strings.ToLower(sql)
	return strings.Contains(l, "backend") || strings.Contains(l, "u&") || strings.Contains(l, `\`)
}

// signalRefusal says why sql may not run in the session whose backend is
// own, "" when it may.
func signalRefusal(sql string, own uint32) string {
	sigs, err := pgsql.BackendSignals(sql)
	if err != nil {
		return "the statement cannot be checked for signals to other sessions: " + err.Error()
	}
	for _, s := range sigs {
		switch {
		case s.Own || s.Constant && s.PID == int64(own):
		case !s.Constant:
			return fmt.Sprintf("%s of a backend named by an expression is not allowed where query rules apply: name this session's own backend, %d (pg_backend_pid())", s.Function, own)
		default:
			return fmt.Sprintf("%s(%d): only this session's own backend (%d) may be signalled where query rules apply: other sessions share the target's account", s.Function, s.PID, own)
		}
	}
	return ""
}
