package audit_test

import (
	"fmt"
	"maps"
	"testing"

	"github.com/bastionhq/bastion/bastion/audit"
)

// TestSessionEvents pins each constructor to the event the front ends built
// by hand before them (at 1ccc8ec), so switching to them changes nothing an
// auditor sees, and shows what a front end that sets every field writes.
func TestSessionEvents(t *testing.T) {
	ssh := audit.Session{User: "alice", Target: "web-1", RequestID: 7, ID: "0123abcd", Login: "ubuntu", Serial: 42}
	sshNoCert := audit.Session{User: "alice", Target: "web-1", ID: "0123abcd", Login: "ubuntu"}
	pg := audit.Session{User: "alice", Target: "db-prod", RequestID: 7, Protocol: "postgres", ID: "0123abcd"}
	myNoID := audit.Session{User: "alice", Target: "shop", RequestID: 7, Protocol: "mysql"}
	full := audit.Session{User: "alice", Target: "shop", RequestID: 7, Protocol: "mysql", ID: "0123abcd", Login: "app"}

	tests := []struct {
		name string
		got  audit.Event
		want audit.Event
	}{
		{"ssh start (proxy.go)", ssh.Start(), audit.Event{Type: audit.SessionStart, Subject: "alice", Target: "web-1", RequestID: 7,
			Outcome: audit.OutcomeOK, Details: map[string]string{"login": "ubuntu", "session": "0123abcd", "serial": "42"}}},
		{"ssh start, standing access", sshNoCert.Start(), audit.Event{Type: audit.SessionStart, Subject: "alice", Target: "web-1",
			Outcome: audit.OutcomeOK, Details: map[string]string{"login": "ubuntu", "session": "0123abcd"}}},
		{"ssh upstream failed (proxy.go)", ssh.StartFailed("dial tcp: refused"), audit.Event{Type: audit.SessionStart, Subject: "alice",
			Target: "web-1", RequestID: 7, Outcome: audit.OutcomeError, Reason: "dial tcp: refused",
			Details: map[string]string{"login": "ubuntu", "session": "0123abcd", "serial": "42"}}},
		{"ssh end (proxy.go)", ssh.End("client disconnected", map[string]string{"duration": "1.5s", "refused_requests": "12"}),
			audit.Event{Type: audit.SessionEnd, Subject: "alice", Target: "web-1", RequestID: 7, Outcome: audit.OutcomeOK,
				Reason: "client disconnected", Details: map[string]string{"login": "ubuntu", "session": "0123abcd", "serial": "42",
					"duration": "1.5s", "refused_requests": "12"}}},
		{"ssh event in a session (proxy.go targetConn.audit)",
			ssh.About(audit.Event{Type: audit.Forward, Outcome: audit.OutcomeRefused, Reason: "no", Details: map[string]string{"kind": "x11"}}),
			audit.Event{Type: audit.Forward, Subject: "alice", Target: "web-1", RequestID: 7, Outcome: audit.OutcomeRefused, Reason: "no",
				Details: map[string]string{"kind": "x11", "session": "0123abcd"}}},
		{"postgres start (conn.go)", pg.Start(), audit.Event{Type: audit.SessionStart, Subject: "alice", Target: "db-prod", RequestID: 7,
			Outcome: audit.OutcomeOK, Details: map[string]string{"protocol": "postgres", "session": "0123abcd"}}},
		{"mysql recording not guaranteed (conn.go)", myNoID.StartRefused("recording cannot be guaranteed: spool full"),
			audit.Event{Type: audit.SessionStart, Subject: "alice", Target: "shop", RequestID: 7, Outcome: audit.OutcomeRefused,
				Reason: "recording cannot be guaranteed: spool full", Details: map[string]string{"protocol": "mysql"}}},
		{"mysql target unreachable (conn.go)", myNoID.StartFailed("dial: refused"),
			audit.Event{Type: audit.SessionStart, Subject: "alice", Target: "shop", RequestID: 7, Outcome: audit.OutcomeError,
				Reason: "dial: refused", Details: map[string]string{"protocol": "mysql"}}},
		{"unrecorded, fail-open (dbrec.Unrecorded)", myNoID.StartFailed("recording failed, session continues unrecorded (fail-open): x"),
			audit.Event{Type: audit.SessionStart, Subject: "alice", Target: "shop", RequestID: 7, Outcome: audit.OutcomeError,
				Reason: "recording failed, session continues unrecorded (fail-open): x", Details: map[string]string{"protocol": "mysql"}}},
		{"database end (dbrec.AuditEnd)", pg.End("client closed the connection", nil),
			audit.Event{Type: audit.SessionEnd, Subject: "alice", Target: "db-prod", RequestID: 7, Outcome: audit.OutcomeOK,
				Reason: "client closed the connection", Details: map[string]string{"protocol": "postgres", "session": "0123abcd"}}},
		{"postgres query refused (approval.go conn.audit)",
			pg.About(audit.Event{Type: audit.Query, Outcome: audit.OutcomeRefused, Reason: "denied", Details: map[string]string{"statement": "DROP", "rule": "r"}}),
			audit.Event{Type: audit.Query, Subject: "alice", Target: "db-prod", RequestID: 7, Outcome: audit.OutcomeRefused, Reason: "denied",
				Details: map[string]string{"statement": "DROP", "rule": "r", "protocol": "postgres", "session": "0123abcd"}}},
		{"every field set", full.Start(), audit.Event{Type: audit.SessionStart, Subject: "alice", Target: "shop", RequestID: 7,
			Outcome: audit.OutcomeOK, Details: map[string]string{"protocol": "mysql", "session": "0123abcd", "login": "app"}}},
		{"nothing set", audit.Session{}.End("", nil), audit.Event{Type: audit.SessionEnd, Outcome: audit.OutcomeOK}},
		{"ssh login to a target (server.go)",
			audit.LoginAttempt{User: "alice", Target: "web-1", RequestID: 7, Login: "ubuntu", Key: "SHA256:k", Via: "target"}.OK(),
			audit.Event{Type: audit.Login, Subject: "alice", Target: "web-1", RequestID: 7, Outcome: audit.OutcomeOK,
				Details: map[string]string{"key": "SHA256:k", "login": "ubuntu", "via": "target"}}},
		{"ssh self-service login (server.go)", audit.LoginAttempt{User: "alice", Key: "SHA256:k", Via: "self-service"}.OK(),
			audit.Event{Type: audit.Login, Subject: "alice", Outcome: audit.OutcomeOK, Details: map[string]string{"key": "SHA256:k", "via": "self-service"}}},
		{"ssh login refused (access.AuthorizeTarget)",
			audit.LoginAttempt{User: "carol", Target: "web-1", Login: "root", Key: "SHA256:k"}.Refused("no grant", map[string]string{"key_id": "carol/req-1"}),
			audit.Event{Type: audit.Login, Target: "web-1", Outcome: audit.OutcomeRefused, Reason: "no grant",
				Details: map[string]string{"login": "root", "key": "SHA256:k", "key_id": "carol/req-1"}}},
		{"database login refused (access.AuthorizeDB)",
			audit.LoginAttempt{User: "carol", Target: "db-prod", RequestID: 7, Protocol: "postgres"}.Refused("expired", map[string]string{"secret": "3"}),
			audit.Event{Type: audit.Login, Target: "db-prod", RequestID: 7, Outcome: audit.OutcomeRefused, Reason: "expired",
				Details: map[string]string{"protocol": "postgres", "secret": "3"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if fmt.Sprintf("%+v", tt.got) != fmt.Sprintf("%+v", tt.want) {
				t.Errorf("got\n\t%+v\nwant\n\t%+v", tt.got, tt.want)
			}
		})
	}
}

// TestSessionEventsDoNotShareMaps: events are appended later, possibly
// concurrently; no two may share a details map, nor an argument's.
func TestSessionEventsDoNotShareMaps(t *testing.T) {
	s := audit.Session{User: "alice", Target: "web-1", Protocol: "ssh", ID: "x"}
	extra := map[string]string{"duration": "1s"}
	end := s.End("done", extra)
	end.Details["duration"] = "changed"
	if extra["duration"] != "1s" {
		t.Errorf("End shares its extra map")
	}
	in := audit.Event{Type: audit.Transfer, Details: map[string]string{"path": "/etc"}}
	out := s.About(in)
	if !maps.Equal(in.Details, map[string]string{"path": "/etc"}) {
		t.Errorf("About modified its argument's details: %q", in.Details)
	}
	a, b := s.Start(), s.Start()
	a.Details["session"] = "changed"
	if b.Details["session"] != "x" || out.Details["session"] != "x" {
		t.Errorf("events share a details map")
	}
}
