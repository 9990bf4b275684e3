package postgres

import (
	"fmt"
	"strings"
)

// Which of the target's authentication requests Bastion answers with the
// target's configured password, by how the link to the target is secured:
//
//	method requested            verify-full   require   disable
//	SCRAM-SHA-256(-PLUS)        yes           yes       yes      (the password never leaves)
//	MD5                         yes           no        no       (a digest a listener can replay or crack)
//	cleartext password          yes           no        no       (the password itself)
//	none (trust)                yes           yes       yes      (nothing is sent)
//
// Only verify-full (a CA-verified chain and the target's host name) proves
// that the server asking is the target: over require or disable, whoever
// answers on the target's address could be asking. SCRAM proves knowledge of
// the password without sending it; with channel binding
// (SCRAM-SHA-256-PLUS, tls-server-end-point), which Bastion uses whenever
// the target offers it over TLS, the proof is also bound to the TLS
// connection, so a man in the middle cannot relay it.

// channelBinding is pgconn's channel_binding for every target: bind SCRAM
// to the TLS connection when the target offers SCRAM-SHA-256-PLUS. When TLS
// is used but the target does not offer it, pgconn says so ("y" in the GS2
// header), so a real target that supports binding notices a man in the
// middle that removed the offer.
const channelBinding = "prefer"

// requireAuth is pgconn's require_auth for a target's TLS mode: without
// verify-full, the password methods that hand the target the password (or
// an MD5 digest of it) are refused before anything is sent.
func requireAuth(tlsMode string) string {
	if tlsMode == "verify-full" {
		return ""
	}
	return "!password,!md5"
}

// refusedMethod reports which authentication method the target asked for
// that requireAuth refused ("cleartext password", "MD5"), or "" when err is
// something else. pgconn reports the refusal only in its message, in
// libpq's words ("server requested password authentication"); the unit
// tests hold the pinned pgconn to these words.
func refusedMethod(err error) string {
	s := err.Error()
	if !strings.Contains(s, "require_auth check failed") {
		return ""
	}
	switch {
	case strings.Contains(s, "server requested password authentication"):
		return "cleartext password"
	case strings.Contains(s, "server requested md5 authentication"):
		return "MD5"
	}
	return ""
}

// unverifiedPasswordTell is what the user (and the log and audit, with the
// cause) is told when the target asked for method on a link whose server is
// not verified.
func unverifiedPasswordTell(t Target, method string) string {
	mode := t.TLS
	if mode == "" {
		mode = "disable"
	}
	return fmt.Sprintf("target %s asked for %s authentication, and its server is not verified (tls: %s): Bastion sends the target's password only to a server verified by tls: verify-full, or proves it with SCRAM",
		t.Name, method, mode)
}
