package postgres

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/bastionhq/bastion/bastion/policy"
)

// What a client may send once logged in, as a reviewed table: every other
// type byte (a backend-only message, a PasswordMessage after
// authentication, an unknown type) ends the session with a FATAL
// protocol_violation instead of reaching the target.
var clientMessageNames = map[byte]string{
	msgQuery: "Query", msgParse: "Parse", msgBind: "Bind", msgExecute: "Execute",
	msgSync: "Sync", msgClose: "Close", msgFunctionCall: "FunctionCall", msgTerminate: "Terminate",
	msgDescribe: "Describe", msgFlush: "Flush",
	msgCopyData: "CopyData", msgCopyDone: "CopyDone", msgCopyFail: "CopyFail",
}

// backendMessageNames names the backend-only types in a refusal; the
// types both sides use (C, D, E, S, H, d, c) are named as the client's.
var backendMessageNames = map[byte]string{
	'R': "Authentication", 'K': "BackendKeyData", '2': "BindComplete", '3': "CloseComplete",
	'G': "CopyInResponse", 'W': "CopyBothResponse", 'T': "RowDescription", 'n': "NoData",
	'N': "NoticeResponse", 'A': "NotificationResponse", 't': "ParameterDescription",
	'1': "ParseComplete", 's': "PortalSuspended", 'Z': "ReadyForQuery", 'v': "NegotiateProtocolVersion",
	'I': "EmptyQueryResponse", 'V': "FunctionCallResponse",
	msgPassword: "PasswordMessage (authentication is over)",
}

// Client message types the relay forwards as they are, besides those it
// decodes.
const (
	msgDescribe = 'D'
	msgCopyData = 'd'
	msgCopyDone = 'c'
	msgCopyFail = 'f'
)

// Server messages that open copy-in mode: the client may send CopyData,
// CopyDone and CopyFail until it ends the copy.
const (
	msgCopyInResponse   = 'G'
	msgCopyBothResponse = 'W'
)

// protocolViolation is the end of a session for something no client may
// send: the client is told with a FATAL ErrorResponse of SQLSTATE 08P01.
func protocolViolation(format string, args ...any) error {
	return &endError{err: fmt.Errorf("protocol violation: "+format, args...), code: codeProtocolViolation}
}

// checkClientType refuses a message type a client never sends after login.
func checkClientType(typ byte) error {
	if _, ok := clientMessageNames[typ]; ok {
		return nil
	}
	if name, ok := backendMessageNames[typ]; ok {
		return protocolViolation("the client sent %s (%q), which only a server sends", name, typ)
	}
	return protocolViolation("unknown message type %q", typ)
}

// isCopyMessage reports whether typ is one of the client's copy-in
// messages.
func isCopyMessage(typ byte) bool {
	return typ == msgCopyData || typ == msgCopyDone || typ == msgCopyFail
}

// copyState is whether the client may send copy-in messages. The target
// opens it (CopyInResponse, CopyBothResponse: serverOpen, set by the
// target-to-client loop before the client sees the response); the client's
// COPY statement opens it too (expected: clients such as pgx send their
// data right after the statement, before the target answers). The client
// ends it with CopyDone or CopyFail, or with any other message but Sync
// and Flush, which the target ignores in copy-in mode.
type copyState struct {
	serverOpen atomic.Bool
	expected   bool // client-to-target loop only
}

// check refuses a copy message outside a copy and ends the copy on its
// last message.
func (s *copyState) check(typ byte) error {
	if !s.expected && !s.serverOpen.Load() {
		return protocolViolation("%s outside COPY FROM STDIN", clientMessageNames[typ])
	}
	if typ != msgCopyData {
		s.end()
	}
	return nil
}

// clientMessage ends a copy when the client sends typ, another message
// than a copy message, Sync or Flush.
func (s *copyState) clientMessage(typ byte) {
	if !isCopyMessage(typ) && typ != msgSync && typ != msgFlush {
		s.end()
	}
}

func (s *copyState) end() {
	s.expected = false
	s.serverOpen.Store(false)
}

// startsCopy reports whether a query string may start a COPY: one of its
// parsed statements is a COPY, or, unparsed, it begins with the keyword.
// A COPY it misses is still opened by the target's CopyInResponse for a
// client that waits for it.
func startsCopy(stmts []policy.Statement, text string) bool {
	for i := range stmts {
		if stmts[i].Command == "COPY" {
			return true
		}
	}
	return firstKeyword(text) == "COPY"
}

// firstKeyword is the first word of a statement, upper case, after
// white space and comments ("" when a comment does not end).
func firstKeyword(s string) string {
	comments := [...]struct{ open, close string }{{"--", "\n"}, {"/*", "*/"}}
skip:
	for {
		s = strings.TrimLeft(s, " \t\r\n\f(")
		for _, c := range comments {
			if strings.HasPrefix(s, c.open) {
				_, rest, ok := strings.Cut(s[len(c.open):], c.close)
				if !ok {
					return ""
				}
				s = rest
				continue skip
			}
		}
		i := 0
		for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
			i++
		}
		return strings.ToUpper(s[:i])
	}
}
