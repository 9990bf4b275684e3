package mysqlsql

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pingcap/tidb/pkg/parser/mysql"
)

// Mode is what Bastion follows of a session's sql_mode: the modes that
// change how the server reads a statement. The others (STRICT_*,
// ONLY_FULL_GROUP_BY, …) change what a statement does, not what it is.
type Mode uint8

// The modes that change lexing or precedence.
const (
	NoBackslashEscapes Mode = 1 << iota // a backslash is an ordinary character in strings
	ANSIQuotes                          // "x" is an identifier, not a string
	PipesAsConcat                       // || concatenates instead of OR
	HighNotPrecedence                   // NOT a BETWEEN b AND c is (NOT a) BETWEEN …
	IgnoreSpace                         // a function's name may be followed by spaces
)

var modeNames = []struct {
	m    Mode
	name string
	tidb mysql.SQLMode
}{
	{NoBackslashEscapes, "NO_BACKSLASH_ESCAPES", mysql.ModeNoBackslashEscapes},
	{ANSIQuotes, "ANSI_QUOTES", mysql.ModeANSIQuotes},
	{PipesAsConcat, "PIPES_AS_CONCAT", mysql.ModePipesAsConcat},
	{HighNotPrecedence, "HIGH_NOT_PRECEDENCE", mysql.ModeHighNotPrecedence},
	{IgnoreSpace, "IGNORE_SPACE", mysql.ModeIgnoreSpace},
}

// otherModes are the sql_mode names that leave the reading of a statement
// as it is, or stand for modes listed above (the server reports a
// combination mode with its parts, which are then followed).
var otherModes = map[string]Mode{
	"REAL_AS_FLOAT": 0, "ONLY_FULL_GROUP_BY": 0, "NO_UNSIGNED_SUBTRACTION": 0, "NO_DIR_IN_CREATE": 0,
	"NO_KEY_OPTIONS": 0, "NO_TABLE_OPTIONS": 0, "NO_FIELD_OPTIONS": 0, "NO_AUTO_VALUE_ON_ZERO": 0,
	"STRICT_TRANS_TABLES": 0, "STRICT_ALL_TABLES": 0, "NO_ZERO_IN_DATE": 0, "NO_ZERO_DATE": 0,
	"INVALID_DATES": 0, "ALLOW_INVALID_DATES": 0, "ERROR_FOR_DIVISION_BY_ZERO": 0, "TRADITIONAL": 0,
	"NO_AUTO_CREATE_USER": 0, "NO_ENGINE_SUBSTITUTION": 0, "PAD_CHAR_TO_FULL_LENGTH": 0,
	"TIME_TRUNCATE_FRACTIONAL": 0, "TIME_ROUND_FRACTIONAL": 0, "IGNORE_BAD_TABLE_OPTIONS": 0,
	"EMPTY_STRING_IS_NULL": 0, "SIMULTANEOUS_ASSIGNMENT": 0,
	"ANSI":       PipesAsConcat | ANSIQuotes | IgnoreSpace,
	"DB2":        PipesAsConcat | ANSIQuotes | IgnoreSpace,
	"MAXDB":      PipesAsConcat | ANSIQuotes | IgnoreSpace,
	"POSTGRESQL": PipesAsConcat | ANSIQuotes | IgnoreSpace,
	"MYSQL323":   HighNotPrecedence,
	"MYSQL40":    HighNotPrecedence,
}

// ParseMode reads the value of sql_mode as the server reports it (names
// separated by commas, any case). A mode that changes the grammar itself,
// such as MariaDB's ORACLE and MSSQL, or a name Bastion does not know is an
// error naming it: statements under it cannot be read as the server reads
// them.
func ParseMode(v string) (Mode, error) {
	var m Mode
	for name := range strings.SplitSeq(v, ",") {
		name = strings.ToUpper(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		if bit, ok := lookupMode(name); ok {
			m |= bit
			continue
		}
		return 0, fmt.Errorf("sql_mode %s changes how the server reads statements in a way Bastion does not follow", name)
	}
	return m, nil
}

func lookupMode(name string) (Mode, bool) {
	for _, n := range modeNames {
		if n.name == name {
			return n.m, true
		}
	}
	m, ok := otherModes[name]
	return m, ok
}

// String lists the modes, comma-separated, in the server's spelling.
func (m Mode) String() string {
	var names []string
	for _, n := range modeNames {
		if m&n.m != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// sqlMode is m as TiDB's parser takes it (on top of its default).
func (m Mode) sqlMode() mysql.SQLMode {
	var out mysql.SQLMode
	for _, n := range modeNames {
		if m&n.m != 0 {
			out |= n.tidb
		}
	}
	return out
}

// Server is the flavour and version of a target, which decide what its
// executable comments run. The zero Server is unknown: both readings of a
// versioned comment are considered.
type Server struct {
	MariaDB bool
	// Version as the server compares versioned comments with it:
	// 10.11.6 is 101106, 8.0.40 is 80040. 0: unknown.
	Version int
}

// ParseServerVersion reads the server version of a handshake: MariaDB
// announces itself as "5.5.5-10.11.6-MariaDB…" (10.x) or "11.4.2-MariaDB…";
// anything else is MySQL. A version that cannot be read is the zero
// Server.
func ParseServerVersion(v string) Server {
	maria := strings.Contains(strings.ToLower(v), "mariadb")
	if maria {
		v = strings.TrimPrefix(v, "5.5.5-")
	}
	num, _, _ := strings.Cut(v, "-")
	parts := strings.SplitN(num, ".", 3)
	if len(parts) < 3 {
		return Server{}
	}
	var n [3]int
	for i, p := range parts {
		end := 0
		for end < len(p) && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		x, err := strconv.Atoi(p[:end])
		if err != nil || x > 99 && i > 0 {
			return Server{}
		}
		n[i] = x
	}
	return Server{MariaDB: maria, Version: n[0]*10000 + n[1]*100 + n[2]}
}

// String names the server for messages.
func (s Server) String() string {
	switch {
	case s.Version == 0:
		return "an unknown server"
	case s.MariaDB:
		return fmt.Sprintf("MariaDB %d.%d.%d", s.Version/10000, s.Version/100%100, s.Version%100)
	}
	return fmt.Sprintf("MySQL %d.%d.%d", s.Version/10000, s.Version/100%100, s.Version%100)
}

// runs reports whether s runs the code of an executable comment: a
// MariaDB /*M! one (maria) or a /*! one, with version (0: none).
// MariaDB ignores /*!NNNNN*/ for MySQL 5.7 and later versions (50700 to
// 99999), which MySQL runs; only MariaDB runs /*M!*/.
func (s Server) runs(maria bool, version int) bool {
	switch {
	case maria && !s.MariaDB:
		return false
	case version == 0:
		return true
	case version > s.Version:
		return false
	}
	return !s.MariaDB || maria || version < 50700 || version > 99999
}
