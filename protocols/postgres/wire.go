package postgres

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// Message types this package reads or writes (PostgreSQL protocol 3).
const (
	// From the client.
	msgQuery        = 'Q'
	msgParse        = 'P'
	msgBind         = 'B'
	msgExecute      = 'E'
	msgSync         = 'S'
	msgClose        = 'C'
	msgFunctionCall = 'F'
	msgTerminate    = 'X'
	msgPassword     = 'p' // PasswordMessage, SASLInitialResponse, SASLResponse

	// From the server.
	msgCommandComplete  = 'C'
	msgErrorResponse    = 'E'
	msgReadyForQuery    = 'Z'
	msgEmptyQuery       = 'I'
	msgPortalSuspended  = 's'
	msgBackendKeyData   = 'K'
	msgParameterStatus  = 'S'
	msgNegotiateVersion = 'v'
	msgNotice           = 'N'
	msgNotification     = 'A'
)

// headerLen is the length of a typed message's header: the type byte and
// the int32 length (which counts itself, not the type byte).
const headerLen = 5

// errMalformed is wrapped by the decoders' errors.
var errMalformed = errors.New("malformed message")

// bodyLen returns the body length a message header announces.
func bodyLen(hdr []byte, limit int) (int, error) {
	n := int(int32(binary.BigEndian.Uint32(hdr[1:5]))) - 4
	if n < 0 {
		return 0, fmt.Errorf("%w: %q with length %d", errMalformed, hdr[0], n+4)
	}
	if limit > 0 && n > limit {
		return 0, fmt.Errorf("%w: %q of %d bytes exceeds the limit of %d", errMalformed, hdr[0], n, limit)
	}
	return n, nil
}

// cstring reads a NUL-terminated string at the start of b.
func cstring(b []byte) (s string, rest []byte, err error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, fmt.Errorf("%w: unterminated string", errMalformed)
	}
	return string(b[:i]), b[i+1:], nil
}

// parseQuery decodes a Query body: the query string.
func parseQuery(body []byte) (string, error) {
	s, rest, err := cstring(body)
	if err != nil {
		return "", fmt.Errorf("query: %w", err)
	}
	if len(rest) != 0 {
		return "", fmt.Errorf("query: %w: trailing bytes", errMalformed)
	}
	return s, nil
}

// parseMsg is the part of a Parse message the proxy needs.
type parseMsg struct {
	Name  string // the prepared statement, "" for the unnamed one
	Query string
}

// parseParse decodes a Parse body; the parameter types are left to the
// server.
func parseParse(body []byte) (parseMsg, error) {
	var m parseMsg
	var err error
	if m.Name, body, err = cstring(body); err != nil {
		return m, fmt.Errorf("parse: %w", err)
	}
	if m.Query, body, err = cstring(body); err != nil {
		return m, fmt.Errorf("parse: %w", err)
	}
	if len(body) < 2 {
		return m, fmt.Errorf("parse: %w: no parameter count", errMalformed)
	}
	if n := int(binary.BigEndian.Uint16(body)); len(body) != 2+4*n {
		return m, fmt.Errorf("parse: %w: %d parameter types in %d bytes", errMalformed, n, len(body)-2)
	}
	return m, nil
}

// bindMsg is the part of a Bind message the proxy needs.
type bindMsg struct {
	Portal    string
	Statement string
	Params    [][]byte // nil for NULL; aliases the body
	Binary    []bool   // per parameter: sent in binary format
}

// parseBind decodes a Bind body.
func parseBind(body []byte) (bindMsg, error) {
	var m bindMsg
	var err error
	bad := func(what string) (bindMsg, error) {
		return m, fmt.Errorf("bind: %w: %s", errMalformed, what)
	}
	if m.Portal, body, err = cstring(body); err != nil {
		return m, fmt.Errorf("bind: %w", err)
	}
	if m.Statement, body, err = cstring(body); err != nil {
		return m, fmt.Errorf("bind: %w", err)
	}
	if len(body) < 2 {
		return bad("no format count")
	}
	nf := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	if len(body) < 2*nf {
		return bad("short format codes")
	}
	formats := body[:2*nf]
	body = body[2*nf:]
	if len(body) < 2 {
		return bad("no parameter count")
	}
	np := int(binary.BigEndian.Uint16(body))
	body = body[2:]
	if nf > 1 && nf != np {
		return bad(fmt.Sprintf("%d format codes for %d parameters", nf, np))
	}
	m.Params = make([][]byte, np)
	m.Binary = make([]bool, np)
	for i := range np {
		if len(body) < 4 {
			return bad("short parameter")
		}
		n := int(int32(binary.BigEndian.Uint32(body)))
		body = body[4:]
		switch {
		case n == -1:
		case n < 0 || n > len(body):
			return bad("parameter length")
		default:
			m.Params[i] = body[:n:n]
			body = body[n:]
		}
		switch nf {
		case 0:
		case 1:
			m.Binary[i] = binary.BigEndian.Uint16(formats) == 1
		default:
			m.Binary[i] = binary.BigEndian.Uint16(formats[2*i:]) == 1
		}
	}
	if len(body) < 2 {
		return bad("no result format count")
	}
	if n := int(binary.BigEndian.Uint16(body)); len(body) != 2+2*n {
		return bad("result format codes")
	}
	return m, nil
}

// parseExecute decodes an Execute body: the portal (and a row limit).
func parseExecute(body []byte) (portal string, err error) {
	portal, rest, err := cstring(body)
	if err != nil {
		return "", fmt.Errorf("execute: %w", err)
	}
	if len(rest) != 4 {
		return "", fmt.Errorf("execute: %w: row limit", errMalformed)
	}
	return portal, nil
}

// parseClose decodes a Close body: 'S' (statement) or 'P' (portal) and
// the name.
func parseClose(body []byte) (kind byte, name string, err error) {
	if len(body) < 1 {
		return 0, "", fmt.Errorf("close: %w: empty", errMalformed)
	}
	kind = body[0]
	name, rest, err := cstring(body[1:])
	if err != nil {
		return 0, "", fmt.Errorf("close: %w", err)
	}
	if (kind != 'S' && kind != 'P') || len(rest) != 0 {
		return 0, "", fmt.Errorf("close: %w: kind %q", errMalformed, kind)
	}
	return kind, name, nil
}

// errorFields reads the code and message of an ErrorResponse or
// NoticeResponse body.
func errorFields(body []byte) (code, message string) {
	for len(body) > 0 && body[0] != 0 {
		f := body[0]
		v, rest, err := cstring(body[1:])
		if err != nil {
			return code, message
		}
		switch f {
		case 'C':
			code = v
		case 'M':
			message = v
		}
		body = rest
	}
	return code, message
}

// parameterStatus reads a ParameterStatus body as a one-entry map; an
// empty one when it is malformed.
func parameterStatus(body []byte) map[string]string {
	name, rest, err := cstring(body)
	if err != nil {
		return nil
	}
	value, _, err := cstring(rest)
	if err != nil {
		return nil
	}
	return map[string]string{name: value}
}

// commandRows is the row count at the end of a command tag ("SELECT 3",
// "INSERT 0 5", "UPDATE 2"), 0 when there is none.
func commandRows(tag string) int64 {
	i := len(tag)
	for i > 0 && tag[i-1] >= '0' && tag[i-1] <= '9' {
		i--
	}
	if i == len(tag) || i == 0 || tag[i-1] != ' ' {
		return 0
	}
	n, err := strconv.ParseInt(tag[i:], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// appendMsg appends a typed message with body to dst.
func appendMsg(dst []byte, typ byte, body ...[]byte) []byte {
	n := 4
	for _, b := range body {
		n += len(b)
	}
	dst = append(dst, typ)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	for _, b := range body {
		dst = append(dst, b...)
	}
	return dst
}

// cstr is s NUL-terminated.
func cstr(s string) []byte { return append([]byte(s), 0) }

// Error severities.
const (
	severityError  = "ERROR"
	severityFatal  = "FATAL"
	severityNotice = "NOTICE"
)

// SQLSTATE codes Bastion answers with.
const (
	codeSuccessfulCompletion  = "00000"
	codeInsufficientPrivilege = "42501"
	codeInvalidPassword       = "28P01"
	codeInvalidAuthorization  = "28000"
	codeProtocolViolation     = "08P01"
	codeConnectionFailure     = "08006"
	codeAdminShutdown         = "57P01"
	codeTooManyConnections    = "53300"
)

// noticeResponse encodes a NoticeResponse of severity NOTICE.
func noticeResponse(message string) []byte {
	m := errorResponse(severityNotice, codeSuccessfulCompletion, message, "")
	m[0] = msgNotice
	return m
}

// errorResponse encodes an ErrorResponse message.
func errorResponse(severity, code, message, detail string) []byte {
	var b []byte
	b = append(b, 'S')
	b = append(b, cstr(severity)...)
	b = append(b, 'V')
	b = append(b, cstr(severity)...)
	b = append(b, 'C')
	b = append(b, cstr(code)...)
	b = append(b, 'M')
	b = append(b, cstr(message)...)
	if detail != "" {
		b = append(b, 'D')
		b = append(b, cstr(detail)...)
	}
	b = append(b, 0)
	return appendMsg(nil, msgErrorResponse, b)
}
