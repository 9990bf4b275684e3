// Package audit defines Bastion's audit events and the hash chain that links
// them: every event carries the hash of the one before it, so removing,
// reordering or altering any event breaks the chain at a point Verify names.
//
// Events about logins and sessions are built by the constructors of Session
// and LoginAttempt, so that every front end writes the same fields. Text
// from users may hold any bytes: Seal keeps it in a canonical form that
// survives a store (see Canonical).
//
// The package is pure: storing events is the store's job, emitting them the
// access service's.
package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Outcomes of an audited action.
const (
	OutcomeOK      = "ok"      // the action happened
	OutcomeRefused = "refused" // policy or state refused it
	OutcomeError   = "error"   // it failed for another reason
)

// Event types. The set is open: these are the ones the control plane emits.
const (
	RequestCreate  = "request.create"
	RequestApprove = "request.approve" // one approval recorded
	RequestGrant   = "request.grant"   // the request became approved (grant starts)
	RequestDeny    = "request.deny"
	RequestRevoke  = "request.revoke"
	RequestCancel  = "request.cancel"
	RequestExpire  = "request.expire"
	CertIssue      = "cert.issue"
	TokenIssue     = "token.issue" // a database secret was handed out
	Login          = "login"
	// LoginThrottle: failed logins from one source or naming one user went
	// over their budget and are slowed; one event per burst.
	LoginThrottle = "login.throttle"
	Command       = "command"
	Query         = "query" // a SQL statement denied or held by a rule
	Notify        = "notify"
	SessionStart  = "session.start"
	SessionEnd    = "session.end"
	Forward       = "forward"  // port, agent or X11 forwarding, allowed or refused
	Replay        = "replay"   // a recording was replayed, exported or watched
	Transfer      = "transfer" // a file operation in an SFTP or scp session
	// RecordingStorage: the recording storage became unreachable (outcome
	// error: the gap starts) or reachable again (ok: the gap ends).
	RecordingStorage = "recording.storage"
	// RecordingInterrupted: a recording found unfinished in the spool at
	// start, uploaded and sealed as interrupted.
	RecordingInterrupted = "recording.interrupted"
	// RecordingDelete: a recording deleted by the retention sweep.
	RecordingDelete = "recording.delete"
	// RecordingHold: a legal hold set on or lifted from a session.
	RecordingHold = "recording.hold"
	// AuditDropped: audit events were dropped because the store could not
	// take them while too many were already waiting; Details["dropped"]
	// says how many.
	AuditDropped = "audit.dropped"
)

// GenesisHash is the PrevHash of the first event in a chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Event is one audited decision or action.
type Event struct {
	Seq       int64             `json:"seq"`
	Time      time.Time         `json:"time"`
	Type      string            `json:"type"`
	Actor     string            `json:"actor,omitempty"`   // who did it
	Subject   string            `json:"subject,omitempty"` // whose request or access it concerns
	Target    string            `json:"target,omitempty"`
	RequestID int64             `json:"request_id,omitempty"`
	Source    string            `json:"source,omitempty"` // client address
	Outcome   string            `json:"outcome"`
	Reason    string            `json:"reason,omitempty"`
	Details   map[string]string `json:"details,omitempty"`
	PrevHash  string            `json:"prev_hash"`
	Hash      string            `json:"hash"`
}

// hashed is what is hashed: every field but Hash, with times in UTC at
// nanosecond precision. encoding/json sorts map keys, so the encoding is
// deterministic. Seal hashes the event's canonical form (see Canonical), in
// which every string is valid UTF-8, so the encoding loses nothing.
type hashed struct {
	Seq       int64  `json:"seq"`
	Time      string `json:"time"`
	Type      string `json:"type"`
	Actor     string `json:"actor"`
	Subject   string `json:"subject"`
	Target    string `json:"target"`
	RequestID int64  `json:"request_id"`
	Source    string `json:"source"`
	Outcome   string `json:"outcome"`
	Reason    string `json:"reason"`
	Details   any    `json:"details"` // map[string]string, or its encoding
	PrevHash  string `json:"prev_hash"`
}

// ComputeHash returns the hex SHA-256 of the event's encoding, which
// includes PrevHash and Seq.
func (e *Event) ComputeHash() string {
	var details map[string]string // nil and empty encode alike
	if len(e.Details) > 0 {
		details = e.Details
	}
	return e.hashWith(details)
}

func (e *Event) hashWith(details any) string {
	b, err := json.Marshal(hashed{
		Seq: e.Seq, Time: e.Time.UTC().Format(time.RFC3339Nano), Type: e.Type,
		Actor: e.Actor, Subject: e.Subject, Target: e.Target, RequestID: e.RequestID,
		Source: e.Source, Outcome: e.Outcome, Reason: e.Reason, Details: details,
		PrevHash: e.PrevHash,
	})
	if err != nil {
		// Only strings, ints and a string map: Marshal cannot fail.
		panic("audit: encode event: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// matches reports whether e's hash is the one computed over its content,
// as sealed now or, for events sealed before the canonical form, then.
func (e *Event) matches() bool {
	if e.ComputeHash() == e.Hash {
		return true
	}
	legacy, ok := e.legacyHash()
	return ok && legacy == e.Hash
}

// Seal links e after prev (nil for the first event): it rewrites e into its
// canonical form (see Canonical) and sets Seq, PrevHash and Hash. A store
// keeps the sealed event as it is.
func (e *Event) Seal(prev *Event) {
	*e = e.Canonical()
	e.Seq, e.PrevHash = 1, GenesisHash
	if prev != nil {
		e.Seq, e.PrevHash = prev.Seq+1, prev.Hash
	}
	e.Hash = e.ComputeHash()
}

// BrokenLinkError names the first event at which a chain does not verify.
type BrokenLinkError struct {
	Seq    int64
	Reason string
}

func (e *BrokenLinkError) Error() string {
	return fmt.Sprintf("audit chain broken at event %d: %s", e.Seq, e.Reason)
}

// Verifier checks a chain incrementally, so that a caller can stream events
// from a store page by page. The zero value expects the chain's first event.
type Verifier struct {
	prev  *Event
	count int64
}

// Next checks the next event of the chain in order.
func (v *Verifier) Next(e Event) error {
	wantSeq, wantPrev := int64(1), GenesisHash
	if v.prev != nil {
		wantSeq, wantPrev = v.prev.Seq+1, v.prev.Hash
	}
	switch {
	case e.Seq != wantSeq:
		return &BrokenLinkError{Seq: wantSeq, Reason: fmt.Sprintf("event missing (next stored event is %d)", e.Seq)}
	case e.PrevHash != wantPrev:
		return &BrokenLinkError{Seq: e.Seq, Reason: "previous-hash link does not match the event before it"}
	case !e.matches():
		return &BrokenLinkError{Seq: e.Seq, Reason: "content does not match its hash (altered)"}
	}
	v.prev, v.count = &e, v.count+1
	return nil
}

// Count is the number of events verified so far.
func (v *Verifier) Count() int64 { return v.count }

// Head is the last verified event's hash (GenesisHash before any).
func (v *Verifier) Head() string {
	if v.prev == nil {
		return GenesisHash
	}
	return v.prev.Hash
}

// Verify checks a whole chain held in memory.
func Verify(events []Event) error {
	var v Verifier
	for _, e := range events {
		if err := v.Next(e); err != nil {
			return err
		}
	}
	return nil
}
