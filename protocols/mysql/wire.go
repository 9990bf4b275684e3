package mysql

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error codes of the wire checks (the server's range).
const (
	erPacketsOutOfOrder  = 1156 // 08S01: ER_NET_PACKETS_OUT_OF_ORDER
	erUnknownStmtHandler = 1243 // HY000: ER_UNKNOWN_STMT_HANDLER
)

// errSequence is returned for a packet whose sequence number does not
// follow the one before it.
var errSequence = errors.New("mysql: packets out of order")

// checkCommandSeq refuses a command whose first packet is not numbered 0:
// a client starts every command at 0, and a number out of step means the
// two sides no longer agree on where one message ends.
func checkCommandSeq(seq byte) error {
	if seq != 0 {
		return fmt.Errorf("%w: a command starts at sequence number 0, got %d", errSequence, seq)
	}
	return nil
}

// wireInfoSQL reads what the session needs to know of its target
// connection: its connection ID (what KILL names) and max_allowed_packet
// (the largest command the target accepts), in one round trip.
const wireInfoSQL = "SELECT CONCAT(CONNECTION_ID(), ' ', @@max_allowed_packet)"

// parseWireInfo reads wireInfoSQL's value.
func parseWireInfo(v string) (connID uint32, maxAllowed int, err error) {
	id, max, ok := strings.Cut(v, " ")
	n, err1 := strconv.ParseUint(id, 10, 32)
	m, err2 := strconv.ParseInt(max, 10, 64)
	if !ok || err1 != nil || err2 != nil || m <= 0 {
		return 0, 0, fmt.Errorf("%w: connection ID and max_allowed_packet %q", errMalformed, v)
	}
	return uint32(n), int(min(m, 1<<40)), nil
}

// startWire reads the target connection's ID and max_allowed_packet: the
// session's command limit is kept at or below the target's, so that Bastion
// refuses a command the target would fail on, after reading it whole.
func (c *clientConn) startWire() error {
	v, err := c.up.selectValue(wireInfoSQL)
	if err != nil {
		return err
	}
	id, maxAllowed, err := parseWireInfo(v)
	if err != nil {
		return err
	}
	c.dec.ownConn = id
	c.maxMessage = min(c.srv.cfg.MaxMessage, maxAllowed)
	return nil
}

// stmtName names the prepared-statement commands in refusals.
var stmtName = map[byte]string{
	comStmtExecute: "COM_STMT_EXECUTE", comStmtSendLongData: "COM_STMT_SEND_LONG_DATA",
	comStmtClose: "COM_STMT_CLOSE", comStmtReset: "COM_STMT_RESET", comStmtFetch: "COM_STMT_FETCH",
}

// stmtOf returns the prepared statement a COM_STMT_* command names, nil
// when this session never prepared it (or the command is too short to
// name one): such a command is not forwarded, since the ID may be another
// session's on a shared target connection, or a guess.
func (c *clientConn) stmtOf(p []byte) (uint32, *prepared) {
	if len(p) < 5 {
		return 0, nil
	}
	id := binary.LittleEndian.Uint32(p[1:])
	return id, c.stmts[id]
}

// unknownStmt refuses a command on a statement this session never
// prepared: an ERR for the commands the target answers, nothing for
// COM_STMT_SEND_LONG_DATA and COM_STMT_CLOSE, which it never answers.
func (c *clientConn) unknownStmt(p []byte, seq byte, id uint32) {
	name := stmtName[p[0]]
	c.log.Info("refused a command on an unknown prepared statement", "command", name, "statement", id)
	if p[0] == comStmtSendLongData || p[0] == comStmtClose {
		return
	}
	c.fail(seq+1, erUnknownStmtHandler, "HY000",
		fmt.Sprintf("bastion: unknown prepared statement handler (%d) given to %s: this session did not prepare it", id, name))
}

// selectValue runs a query of Bastion's own that returns one row of one
// column (sql_mode, the connection's ID) and returns the value.
func (u *upstreamConn) selectValue(sql string) (string, error) {
	p, err := u.command(sql)
	if err != nil {
		return "", err
	}
	switch {
	case len(p) == 0:
		return "", errMalformed
	case p[0] == iERR:
		_, msg := parseErr(p)
		return "", fmt.Errorf("%w %s: %s", errRefused, sql, msg)
	case p[0] == iOK:
		return "", fmt.Errorf("%w %s with no rows", errRefused, sql)
	}
	cols, _, _, ok := readLenEnc(p)
	if !ok || cols != 1 {
		return "", errMalformed
	}
	defs := 1
	if u.caps&capDeprecateEOF == 0 {
		defs++ // and an EOF
	}
	for range defs {
		if _, _, err := u.r.readMessage(1 << 16); err != nil {
			return "", err
		}
	}
	var mode string
	rows := 0
	for {
		p, _, err := u.r.readMessage(1 << 16)
		if err != nil {
			return "", err
		}
		switch {
		case len(p) > 0 && p[0] == iERR:
			_, msg := parseErr(p)
			return "", fmt.Errorf("%w %s: %s", errRefused, sql, msg)
		case len(p) > 0 && p[0] == iEOF && len(p) < 1<<16:
			if rows != 1 {
				return "", fmt.Errorf("%w %s with %d rows", errRefused, sql, rows)
			}
			return mode, nil
		}
		v, _, ok := readLenEncString(p)
		if !ok {
			return "", errMalformed
		}
		mode, rows = string(v), rows+1
	}
}
