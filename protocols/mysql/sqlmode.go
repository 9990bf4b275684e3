package mysql

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/bastionhq/bastion/protocols/mysql/mysqlsql"
)

// The session's sql_mode decides how the target reads a statement
// (NO_BACKSLASH_ESCAPES, ANSI_QUOTES, …), so Bastion reads it under the
// same mode. The target says what the mode is: after login Bastion asks
// for sql_mode to be among the session variables whose changes OK packets
// report (Bastion asks for CLIENT_SESSION_TRACK whatever the client does,
// and takes the state out of OK packets for a client that did not) and reads
// @@SESSION.sql_mode; it reads every change an OK packet reports; and
// after a statement that may have changed the mode without a report (SET
// sql_mode, EXECUTE, COM_RESET_CONNECTION, or the OK's
// NO_BACKSLASH_ESCAPES status flag disagreeing) it asks again.

const (
	// trackModeSQL adds sql_mode to the session variables whose changes
	// the target reports; "*" already has it.
	trackModeSQL = "SET @@SESSION.session_track_system_variables = IF(@@SESSION.session_track_system_variables = '*', '*', " +
		"CONCAT_WS(',', NULLIF(@@SESSION.session_track_system_variables, ''), 'sql_mode'))"
	modeSQL = "SELECT @@SESSION.sql_mode"
)

// sessionTrackSystemVariables is SESSION_TRACK_SYSTEM_VARIABLES, the type
// of a session state change that names a variable and its new value.
const sessionTrackSystemVariables = 0

// trackMode asks the target to report sql_mode changes, when the
// connection has session tracking; a target that refuses (an ERR, which
// ends the answer) is still asked after each statement that may change
// the mode.
func (u *upstreamConn) trackMode() error {
	if u.caps&capSessionTrack == 0 {
		return nil
	}
	_, err := u.command(trackModeSQL)
	return err
}

// command sends a query of Bastion's own and reads the first packet of
// the answer.
func (u *upstreamConn) command(sql string) ([]byte, error) {
	if err := u.w.send(0, append([]byte{comQuery}, sql...)); err != nil {
		return nil, err
	}
	p, _, err := u.r.readMessage(1 << 16)
	return p, err
}

// sqlMode reads @@SESSION.sql_mode from the target.
func (u *upstreamConn) sqlMode() (string, error) { return u.selectValue(modeSQL) }

// okStatusAt is where an OK packet's status flags are (after its header,
// affected rows and last insert id, and followed by the warnings count), or
// -1 for a packet too short.
func okStatusAt(ok []byte) int {
	i := 1
	for range 2 {
		if i > len(ok) {
			return -1
		}
		_, n, _, good := readLenEnc(ok[i:])
		if !good {
			return -1
		}
		i += n
	}
	if len(ok) < i+4 {
		return -1
	}
	return i
}

// trackedSQLMode reads the sql_mode an OK packet (with session tracking)
// reports as changed: its last value, and whether it reports one.
// Malformed state is an error: Bastion then asks the target.
func trackedSQLMode(ok []byte) (string, bool, error) {
	i := okStatusAt(ok)
	if i < 0 {
		return "", false, errMalformed
	}
	status := uint16(ok[i]) | uint16(ok[i+1])<<8
	b := ok[i+4:] // after status, warnings
	if status&statusSessionStateChg == 0 {
		return "", false, nil
	}
	_, n, good := readLenEncString(b) // info
	if !good {
		return "", false, errMalformed
	}
	state, _, good := readLenEncString(b[n:])
	if !good {
		return "", false, errMalformed
	}
	var mode string
	found := false
	for len(state) > 0 {
		typ := state[0]
		data, n, good := readLenEncString(state[1:])
		if !good {
			return "", false, errMalformed
		}
		state = state[1+n:]
		if typ != sessionTrackSystemVariables {
			continue
		}
		name, n, good := readLenEncString(data)
		if !good {
			return "", false, errMalformed
		}
		value, _, good := readLenEncString(data[n:])
		if !good {
			return "", false, errMalformed
		}
		if strings.EqualFold(string(name), "sql_mode") {
			mode, found = string(value), true
		}
	}
	return mode, found, nil
}

// noteMode reads into r the sql_mode an OK packet of the target reports.
func (c *clientConn) noteMode(r *result, ok []byte) {
	if c.up.caps&capSessionTrack == 0 {
		return
	}
	if _, status, _ := okInfo(ok); status&statusSessionStateChg == 0 {
		return
	}
	mode, seen, err := trackedSQLMode(ok)
	r.mode, r.modeSeen, r.modeBad = mode, seen, err != nil
}

// toClient is an OK packet of the target as the client negotiated it:
// without the session state Bastion asked for, when the client did not.
func (c *clientConn) toClient(ok []byte) []byte {
	if c.caps&capSessionTrack != 0 || c.up.caps&capSessionTrack == 0 {
		return ok
	}
	return stripSessionState(ok)
}

// stripSessionState returns an OK packet of a connection with session
// tracking as the server writes it without: the info (length-encoded,
// absent when empty) and no state, its flag cleared. A packet it cannot
// read is returned as it is.
func stripSessionState(ok []byte) []byte {
	i := okStatusAt(ok)
	if i < 0 {
		return ok
	}
	status := uint16(ok[i]) | uint16(ok[i+1])<<8
	if status&statusSessionStateChg == 0 {
		return ok
	}
	info, n, good := readLenEncString(ok[i+4:])
	if !good {
		return ok
	}
	end := i + 4 + n
	if len(info) == 0 {
		end = i + 4
	}
	out := append([]byte(nil), ok[:end]...)
	status &^= statusSessionStateChg
	out[i], out[i+1] = byte(status), byte(status>>8)
	return out
}

// errRefused marks a complete answer of the target that does not give
// what Bastion asked: the connection is still in step.
var errRefused = errors.New("the target did not answer")

// modeReport is what the target's answer to a command says of sql_mode.
type modeReport struct {
	change bool   // a statement may have changed it without a report
	seen   bool   // an OK packet reported it: mode
	mode   string // the last reported
	bad    bool   // an OK packet's session state could not be read
	status uint16 // the last result's status flags (0: none)
}

// note reads what one result of the answer says.
func (m *modeReport) note(r result) {
	if r.modeSeen {
		m.seen, m.mode = true, r.mode
	}
	m.bad = m.bad || r.modeBad
	if r.err == "" {
		m.status = r.status
	}
}

// followMode updates the decider's sql_mode after a command: from the
// target's report, or by asking it when the mode may have changed
// unreported, or when the NO_BACKSLASH_ESCAPES status flag disagrees.
func (c *clientConn) followMode(m modeReport) error {
	nbe := m.status&statusNoBackslashEsc != 0
	switch {
	case m.status&statusCursorExists != 0:
		return nil // the target is between fetches: it is asked next time
	case m.seen && !m.bad:
		c.dec.setMode(m.mode, nil)
		return nil
	case m.change || m.bad || m.status != 0 && nbe != c.dec.nbe():
		return c.refreshMode()
	}
	return nil
}

// refreshMode reads the session's sql_mode from the target. When the
// target does not answer, the mode is unknown: every reading is decided.
func (c *clientConn) refreshMode() error {
	mode, err := c.up.sqlMode()
	switch {
	case errors.Is(err, errRefused):
		c.log.Warn("sql_mode unknown", "err", err)
		c.dec.setMode("", err)
		return nil
	case err != nil:
		return fmt.Errorf("read sql_mode: %w", err)
	}
	c.dec.setMode(mode, nil)
	return nil
}

// setMode sets the sql_mode statements are read under: value as the
// target reports it, or unknown (err).
func (d *decider) setMode(value string, err error) {
	d.opts.Mode, d.opts.ModeUnknown, d.modeErr = 0, true, nil
	if err != nil {
		return
	}
	m, err := mysqlsql.ParseMode(value)
	if err != nil {
		d.modeErr = err // read every way, and refused where rules apply
		return
	}
	d.opts.Mode, d.opts.ModeUnknown = m, false
}

// nbe reports whether statements are read under NO_BACKSLASH_ESCAPES
// (false when the mode is unknown).
func (d *decider) nbe() bool {
	return !d.opts.ModeUnknown && d.opts.Mode&mysqlsql.NoBackslashEscapes != 0
}

// modeRefusal is why a query string may not run where rules apply, as far
// as sql_mode goes, or "": the session is in a mode Bastion cannot follow
// (only setting another may run), a statement sets sql_mode from an
// expression, or a SET of sql_mode is followed by other statements, which
// the target reads under the new mode. (An EXECUTE that may set it is
// executeRefusal's: it depends on the session's PREPAREs.)
func (d *decider) modeRefusal(stmts []mysqlsql.Statement) string {
	last := lastPrimary(stmts)
	if d.modeErr != nil && !(last == 0 && stmts[0].SetsSQLMode && !stmts[0].SQLModeDynamic && stmts[0].Prepares == "") {
		return fmt.Sprintf("the session's %v, and queries are restricted on %s: set sql_mode to modes Bastion follows first", d.modeErr, d.target)
	}
	for i := range stmts {
		s := &stmts[i]
		switch {
		case s.SQLModeDynamic:
			return fmt.Sprintf("%s: it sets sql_mode from an expression, which Bastion cannot know before it runs, and queries are restricted on %s: set sql_mode to a constant", mysqlsql.Describe(s), d.target)
		case s.SetsSQLMode && s.Prepares == "" && !s.Alternate && i < last:
			return followedRefusal(s, d.target)
		}
	}
	return ""
}

// executeRefusal is why a query string may not run where rules apply, or
// "": an EXECUTE of a statement that sets sql_mode (or that Bastion could
// not read) is followed by other statements.
func (d *decider) executeRefusal(stmts []mysqlsql.Statement) string {
	last := lastPrimary(stmts)
	prepared := map[string]bool{} // by this string, before the statement
	for i := range last {
		s := &stmts[i]
		if s.Prepares != "" {
			prepared[s.Prepares] = s.SetsSQLMode || s.Dynamic
		}
		if len(s.Executes) > 0 && d.changesMode(s, prepared) {
			return followedRefusal(s, d.target)
		}
	}
	return ""
}

func followedRefusal(s *mysqlsql.Statement, target string) string {
	return fmt.Sprintf("%s: it changes or may change sql_mode, and the statements after it in the same query would be read under the new mode; queries are restricted on %s: send them separately", mysqlsql.Describe(s), target)
}

// lastPrimary is the index of the last statement that is not Alternate.
func lastPrimary(stmts []mysqlsql.Statement) int {
	last := -1
	for i := range stmts {
		if !stmts[i].Alternate {
			last = i
		}
	}
	return last
}

// changesMode reports whether running s may change the session's sql_mode:
// a SET of it, or an EXECUTE of a name prepared (in this string, else in
// the session) as a statement that does, or that Bastion could not read.
func (d *decider) changesMode(s *mysqlsql.Statement, prepared map[string]bool) bool {
	if s.SetsSQLMode && s.Prepares == "" {
		return true
	}
	for _, name := range s.Executes {
		sets, ok := prepared[name]
		if !ok {
			sets, ok = d.preparedMode[name]
		}
		if sets || !ok {
			return true
		}
	}
	return false
}

// ran notes the PREPAREs of a string that ran, and reports whether running
// it may have changed the session's sql_mode.
func (d *decider) ran(stmts []mysqlsql.Statement) bool {
	change := false
	prepared := map[string]bool{}
	for i := range stmts {
		s := &stmts[i]
		if s.Alternate {
			continue
		}
		change = change || d.changesMode(s, prepared)
		if s.Prepares != "" {
			prepared[s.Prepares] = s.SetsSQLMode || s.Dynamic
		}
	}
	if len(d.preparedMode)+len(prepared) > maxCached {
		clear(d.preparedMode) // what is forgotten counts as changing the mode
	}
	if d.preparedMode == nil {
		d.preparedMode = map[string]bool{}
	}
	maps.Copy(d.preparedMode, prepared)
	return change
}

// startMode tells the decider the target's flavour and version (from its
// greeting), asks the target to report sql_mode changes and reads the
// session's mode, before the client's first command is read.
func (c *clientConn) startMode() error {
	c.dec.opts.Server = mysqlsql.ParseServerVersion(c.up.version)
	if err := c.up.trackMode(); err != nil {
		return err
	}
	return c.refreshMode()
}
