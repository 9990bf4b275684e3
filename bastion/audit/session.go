package audit

import (
	"maps"
	"strconv"
)

// The constructors below build the events every front end writes about
// logins and sessions, so that SSH, PostgreSQL and MySQL write the same
// fields for the same thing. They leave Actor, Source and Time empty: the
// access service fills them from the actor the event is recorded for, as
// it does for every event.
//
// A field of Session or LoginAttempt left empty is not written. So a front
// end that sets what it wrote by hand before gets exactly the events it
// wrote before; the aim is that every front end sets every field it knows.

// Session is one session on a target, as its audit events name it.
type Session struct {
	User      string // whose grant the session runs under: the events' Subject
	Target    string
	RequestID int64  // 0 for standing access
	Protocol  string // "ssh", "postgres", "mysql": Details["protocol"]
	ID        string // the session's ID, once it has one: Details["session"]
	Login     string // the login or database user upstream: Details["login"]
	Serial    uint64 // the SSH certificate's serial, 0 for none: Details["serial"]
}

// details returns the session's details: protocol, session, login, serial.
func (s Session) details() map[string]string {
	d := map[string]string{}
	set(d, "protocol", s.Protocol)
	set(d, "session", s.ID)
	set(d, "login", s.Login)
	if s.Serial != 0 {
		d["serial"] = strconv.FormatUint(s.Serial, 10)
	}
	return d
}

func (s Session) event(typ, outcome, reason string, details map[string]string) Event {
	if len(details) == 0 {
		details = nil
	}
	return Event{Type: typ, Subject: s.User, Target: s.Target, RequestID: s.RequestID,
		Outcome: outcome, Reason: reason, Details: details}
}

// Start is the session.start event of a session that started: it reached
// its target, and its recording runs (or it goes on unrecorded by a
// fail-open role, which StartFailed audits first).
func (s Session) Start() Event {
	return s.event(SessionStart, OutcomeOK, "", s.details())
}

// StartRefused is the session.start event of a session that policy or
// state kept from starting: its recording cannot be guaranteed, the client
// asked for settings under which statements could not be checked.
func (s Session) StartRefused(reason string) Event {
	return s.event(SessionStart, OutcomeRefused, reason, s.details())
}

// StartFailed is the session.start event of a session that failed to start
// for another reason (the target cannot be reached, the recording cannot
// be opened), or of a fail-open session whose recording failed and that
// goes on unrecorded.
func (s Session) StartFailed(reason string) Event {
	return s.event(SessionStart, OutcomeError, reason, s.details())
}

// End is the session.end event: why the session ended, and extra details
// (duration, exit status, counts) added to the session's own.
func (s Session) End(reason string, extra map[string]string) Event {
	d := s.details()
	maps.Copy(d, extra)
	return s.event(SessionEnd, OutcomeOK, reason, d)
}

// About completes an event about something that happened in the session
// (a query refused or held, a forwarding, a file transfer): it sets the
// Subject, Target and RequestID, and the protocol and session details,
// keeping the event's own details. e's Details map is not modified.
func (s Session) About(e Event) Event {
	e.Subject, e.Target, e.RequestID = s.User, s.Target, s.RequestID
	d := maps.Clone(e.Details)
	if d == nil {
		d = map[string]string{}
	}
	set(d, "protocol", s.Protocol)
	set(d, "session", s.ID)
	if len(d) == 0 {
		d = nil
	}
	e.Details = d
	return e
}

// LoginAttempt is a login to Bastion, as its audit event names it.
type LoginAttempt struct {
	User      string // who logged in: the Subject of a successful login
	Target    string // the target asked for, if any
	RequestID int64  // the request whose grant is used, if any
	Protocol  string // "ssh", "postgres", "mysql": Details["protocol"]
	Login     string // the login asked for upstream: Details["login"]
	Key       string // the SSH key's fingerprint: Details["key"]
	Via       string // SSH: "target" or "self-service": Details["via"]
}

func (l LoginAttempt) details(extra map[string]string) map[string]string {
	d := map[string]string{}
	set(d, "protocol", l.Protocol)
	set(d, "login", l.Login)
	set(d, "key", l.Key)
	set(d, "via", l.Via)
	maps.Copy(d, extra)
	if len(d) == 0 {
		return nil
	}
	return d
}

// OK is the login event of a client that authenticated and was
// authorised.
func (l LoginAttempt) OK() Event {
	return Event{Type: Login, Subject: l.User, Target: l.Target, RequestID: l.RequestID,
		Outcome: OutcomeOK, Details: l.details(nil)}
}

// Refused is the login event of a refused login, with extra details (the
// certificate's key ID, the secret tried). It has no Subject: who a refused
// client claimed to be is not an identity; the event's Actor (set by the
// access service) is who the key or secret belongs to, if anyone.
func (l LoginAttempt) Refused(reason string, extra map[string]string) Event {
	return Event{Type: Login, Target: l.Target, RequestID: l.RequestID,
		Outcome: OutcomeRefused, Reason: reason, Details: l.details(extra)}
}

func set(d map[string]string, k, v string) {
	if v != "" {
		d[k] = v
	}
}
