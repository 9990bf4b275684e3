// Package querylog writes and reads the query logs of database sessions
// (PostgreSQL and MySQL) as JSON Lines: one JSON object per line, one line
// per event. A session's log is a "start" event, a "query" event per
// statement, and an "end" event:
//
//	{"time":"2031-03-04T05:06:07.891011Z","type":"start","user":"alice","target":"orders","database":"orders","protocol":"postgres"}
//	{"time":"2031-03-04T05:06:08.1Z","type":"query","statement":"SELECT * FROM t WHERE id = $1","params":["42"],"decision":"allow","duration_ms":1.25,"tag":"SELECT 1","rows":1}
//	{"time":"2031-03-04T05:06:09Z","type":"end","reason":"client closed the connection"}
//
// Under `durability: statement` an "exec" event precedes each statement
// allowed: it is written, and made durable, before the statement is
// forwarded to the target, and its "query" event follows when the statement
// completes. A log cut short by a crash may end with exec events whose
// outcome it does not hold: those statements may have run.
//
// Fields that do not apply to an event's type are left out. Readers ignore
// fields they do not know, so fields can be added.
package querylog

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Event types.
const (
	TypeStart = "start" // the session began; User, Target, Database, RequestID, ClientAddr, Protocol
	TypeQuery = "query" // a statement; Statement, Params, Decision, Rule, DurationMS, Tag, Rows, Error
	TypeEnd   = "end"   // the session ended; Reason
	// TypeExec is a statement about to be forwarded to the target
	// (durability: statement); Statement, Params, Rule. Its query event
	// follows.
	TypeExec = "exec"
)

// Protocols of a start event.
const (
	ProtocolPostgres = "postgres"
	ProtocolMySQL    = "mysql"
)

// Decisions of a query event.
const (
	Allow = "allow"
	Deny  = "deny"
)

// MaxLineSize is the longest line, in bytes, the Reader accepts.
const MaxLineSize = 64 << 20

// Event is one line of a query log.
type Event struct {
	Time time.Time `json:"time"` // written in UTC
	Type string    `json:"type"` // TypeStart, TypeExec, TypeQuery or TypeEnd

	// start
	User       string `json:"user,omitempty"`        // the Bastion user
	Target     string `json:"target,omitempty"`      // the target's name
	Database   string `json:"database,omitempty"`    // the database on the target
	RequestID  string `json:"request_id,omitempty"`  // the access request that granted the session, if any
	ClientAddr string `json:"client_addr,omitempty"` // host:port
	Protocol   string `json:"protocol,omitempty"`    // ProtocolPostgres or ProtocolMySQL

	// query
	Statement  string   `json:"statement,omitempty"`   // the statement's text
	Params     []string `json:"params,omitempty"`      // bound parameters, already redacted by the caller; nil when not recorded
	Decision   string   `json:"decision,omitempty"`    // Allow or Deny
	Rule       string   `json:"rule,omitempty"`        // the rule that decided, if any
	DurationMS float64  `json:"duration_ms,omitempty"` // from forwarding the statement to its completion
	Tag        string   `json:"tag,omitempty"`         // the command tag ("SELECT 3", "UPDATE 1")
	Rows       int64    `json:"rows,omitempty"`        // rows returned or affected
	Error      string   `json:"error,omitempty"`       // the error the statement ended with, or why it was denied

	// end
	Reason string `json:"reason,omitempty"` // why the session ended
}

// Validate reports what is wrong with e, if anything: a missing or
// out-of-range time, an unknown type, protocol or decision, or a negative
// duration or row count. The Writer writes, and the Reader returns, only
// valid events.
func (e Event) Validate() error {
	if e.Time.IsZero() {
		return errors.New("no time")
	}
	if y := e.Time.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("time %v: the year must be within 1 to 9999", e.Time)
	}
	switch e.Type {
	case TypeStart:
		if e.Protocol != ProtocolPostgres && e.Protocol != ProtocolMySQL {
			return fmt.Errorf("start event: protocol %q: want %q or %q", e.Protocol, ProtocolPostgres, ProtocolMySQL)
		}
	case TypeQuery:
		if e.Decision != Allow && e.Decision != Deny {
			return fmt.Errorf("query event: decision %q: want %q or %q", e.Decision, Allow, Deny)
		}
		if e.DurationMS < 0 || math.IsNaN(e.DurationMS) || math.IsInf(e.DurationMS, 0) {
			return fmt.Errorf("query event: duration %v ms: want a non-negative number", e.DurationMS)
		}
		if e.Rows < 0 {
			return fmt.Errorf("query event: %d rows: want a non-negative number", e.Rows)
		}
	case TypeEnd, TypeExec:
	case "":
		return errors.New("no type")
	default:
		return fmt.Errorf("unknown type %q: want %q, %q, %q or %q", e.Type, TypeStart, TypeExec, TypeQuery, TypeEnd)
	}
	return nil
}
