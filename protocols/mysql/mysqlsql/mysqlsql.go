// Package mysqlsql summarises MySQL and MariaDB statements for the policy.
//
// Parse splits a query string into statements with a MySQL grammar and
// describes each as a policy.Statement: its kind, the tables and functions
// it references, and the facts query rules look at (an unbounded UPDATE or
// DELETE, INTO OUTFILE/DUMPFILE, LOAD DATA, LOAD_FILE(), SET ROLE). The
// package decides nothing: the policy decides on these values, the proxy
// (protocols/mysql) wires the two.
//
// # The parser
//
// The grammar is TiDB's MySQL parser (github.com/pingcap/tidb/pkg/parser),
// chosen over vitess's sqlparser: both are maintained MySQL grammars with a
// full AST, but the TiDB parser is one module with a dozen small
// dependencies (zap, pingcap/errors, modernc goyacc runtime) and asks for
// Go 1.25, while vitess drags grpc, protobuf and about 270 modules into the
// build and pins the newest Go toolchain exactly. Neither knows every
// MariaDB extension; what does not parse is refused where rules apply
// (fail closed), so a gap costs a refusal, never a bypass.
//
// # What the server sees that a naive parser would not
//
// Before parsing, the text is rewritten (same length, so positions hold)
// so that the parser sees what the target runs (Options.Server, from its
// handshake): an executable comment it runs becomes plain /*! … */ code,
// one it skips is blanked. MariaDB runs /*M!NNNNNN … */ and ignores
// /*!NNNNN … */ for MySQL 5.7 and later versions (50700 to 99999), which
// MySQL runs; a later version than the server's is skipped by both. With
// the server unknown, both readings are decided. # and -- comments,
// backtick identifiers (with “ escapes) and both string quotes are the
// lexer's own.
//
// The session's sql_mode changes the reading too (Options.Mode):
// NO_BACKSLASH_ESCAPES makes 'a\'; DROP TABLE t; -- ' one string with
// escapes and a DROP without; ANSI_QUOTES makes "x" an identifier;
// PIPES_AS_CONCAT, HIGH_NOT_PRECEDENCE and IGNORE_SPACE change expressions.
// The proxy follows the mode the server reports; when it is unknown, a
// string is read both with and without NO_BACKSLASH_ESCAPES, and each
// reading must parse.
//
// HANDLER (not in TiDB's grammar) is recognised by a small scanner of its
// own: HANDLER t OPEN/READ/CLOSE is a read of table t.
package mysqlsql

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/pingcap/tidb/pkg/parser"
	"github.com/pingcap/tidb/pkg/parser/ast"
	"github.com/pingcap/tidb/pkg/parser/mysql"
	_ "github.com/pingcap/tidb/pkg/parser/test_driver" // value expressions for the parser

	"github.com/bastionhq/bastion/bastion/policy"
)

// Statement is the summary of one statement.
type Statement struct {
	policy.Statement
	// Dynamic is set for SQL whose text is only known when it runs:
	// PREPARE … FROM @variable. It cannot be checked.
	Dynamic bool
	// Database is the database a USE statement switches to.
	Database string
	// LocalInfile is set for LOAD DATA LOCAL INFILE, which reads a file
	// on the client's machine.
	LocalInfile bool
	// ClientCharset is the character set a SET statement gives the
	// client's side of the connection (SET NAMES, SET CHARACTER SET, SET
	// character_set_client), lower case; "?" when it is an expression
	// that cannot be known before it runs.
	ClientCharset string
	// Alternate is set for a statement that is decided but not recorded:
	// one of another reading of a string (ParseWith), or the statement a
	// PREPARE … FROM 'text' prepares. They come after the others.
	Alternate bool
	// SetsSQLMode is set for a SET statement that assigns sql_mode (and
	// for a PREPARE of one, whose EXECUTE does): the statements after it
	// in the same string are read under the new mode.
	SetsSQLMode bool
	// SQLModeDynamic is set when that value is an expression the server
	// evaluates (SET sql_mode = @x, CONCAT(…)), not a constant.
	SQLModeDynamic bool

	inner []Statement // what PREPARE prepares
}

// SyntaxError is returned by Parse for a string the grammar rejects.
type SyntaxError struct {
	Message string
}

func (e *SyntaxError) Error() string { return "mysqlsql: " + e.Message }

var parsers = sync.Pool{New: func() any { return parser.New() }}

// baseMode is the parser's mode before the session's lexing modes: the
// server's default, which changes no reading.
var baseMode = func() mysql.SQLMode {
	m, err := mysql.GetSQLMode(mysql.DefaultSQLMode)
	if err != nil {
		panic(err)
	}
	return m
}()

// MaxText bounds the text Bastion parses: parsing costs CPU and memory in
// proportion (about 130 MB allocated per MiB of SQL), which must not be
// anyone's to ask for at will. Bulk data goes through LOAD DATA LOCAL,
// which is not parsed.
const MaxText = 1 << 20

// ErrTooLarge is returned for a text longer than MaxText.
var ErrTooLarge = errors.New("the statement is larger than Bastion parses (1 MiB)")

// Options say how the server reads a query string: the session's sql_mode
// and the server's flavour and version.
type Options struct {
	// Mode is the session's sql_mode, as far as it changes the reading.
	Mode Mode
	// ModeUnknown is set when the session's sql_mode is not known: the
	// string is read both without and with NO_BACKSLASH_ESCAPES.
	ModeUnknown bool
	// Server decides executable comments; the zero Server is unknown, and
	// the string is read both with every versioned comment run and with
	// none.
	Server Server
}

// reading is one way the server may read a string.
type reading struct {
	mode Mode
	srv  Server
	runs func(maria bool, version int) bool
}

func runAll(bool, int) bool                 { return true }
func runUnversioned(maria bool, v int) bool { return !maria && v == 0 }

// readings are the ways o lets the server read a string: one when the
// mode and the server are known.
func (o Options) readings() []reading {
	modes := []Mode{o.Mode}
	if o.ModeUnknown {
		modes = append(modes, o.Mode|NoBackslashEscapes)
	}
	rules := []func(bool, int) bool{o.Server.runs}
	if o.Server.Version == 0 {
		rules = []func(bool, int) bool{runAll, runUnversioned}
	}
	var out []reading
	for _, m := range modes {
		for _, r := range rules {
			out = append(out, reading{mode: m, srv: o.Server, runs: r})
		}
	}
	return out
}

// Parse splits sql into statements and summarises each, with the session's
// sql_mode and the server unknown (ParseWith with every reading).
func Parse(sql string) ([]Statement, error) {
	return ParseWith(sql, Options{ModeUnknown: true})
}

// ParseWith splits sql into statements as the server o describes reads
// it, and summarises each. Empty statements are skipped: an empty string
// yields none. When o leaves more than one reading, each must parse, and
// the statements of the readings that differ from the first are returned
// after its own, marked Alternate, so that the decision covers them all.
// A string that does not parse (in any reading) returns a *SyntaxError and
// no statements.
func ParseWith(sql string, o Options) ([]Statement, error) {
	if len(sql) > MaxText {
		return nil, ErrTooLarge
	}
	rs := o.readings()
	var out []Statement
	var seen [][]Statement // each reading's own statements, once
	for _, r := range rs {
		stmts, err := r.parse(sql)
		if err != nil {
			var se *SyntaxError
			if len(rs) > 1 && errors.As(err, &se) {
				return nil, &SyntaxError{Message: se.Message + " (" + r.describe() + ")"}
			}
			return nil, err
		}
		own := slices.Clone(stmts[:countPrimary(stmts)])
		if slices.ContainsFunc(seen, func(s []Statement) bool { return reflect.DeepEqual(s, own) }) {
			continue
		}
		seen = append(seen, own)
		if len(seen) > 1 {
			for i := range stmts {
				stmts[i].Alternate = true
			}
		}
		out = append(out, stmts...)
	}
	return out, nil
}

// describe names a reading for a syntax error.
func (r reading) describe() string {
	nbe := "without"
	if r.mode&NoBackslashEscapes != 0 {
		nbe = "with"
	}
	comments := "the server's"
	if r.srv.Version == 0 {
		comments = "none"
		if r.runs(true, 99999) {
			comments = "all"
		}
	}
	return fmt.Sprintf("read %s NO_BACKSLASH_ESCAPES, %s versioned comments run", nbe, comments)
}

func countPrimary(stmts []Statement) int {
	n := 0
	for _, s := range stmts {
		if !s.Alternate {
			n++
		}
	}
	return n
}

// parse reads sql one way. HANDLER and SELECT … INTO @var, which the
// grammar lacks, have readers of their own.
func (r reading) parse(sql string) ([]Statement, error) {
	code, err := exposeCode(sql, r.mode, r.srv, r.runs)
	if err != nil {
		return nil, err
	}
	stmts, err := r.parseCode(sql, code)
	if err != nil {
		if stripped, ok := stripIntoVars(code, r.mode); ok {
			// Read without its INTO @var clause, a lone SELECT is the
			// query it runs; anything else stays unreadable.
			if s, serr := r.parseCode(sql, stripped); serr == nil && len(s) > 0 && countPrimary(s) == 1 && s[0].Command == "SELECT" {
				return s, nil
			}
		}
		if h, ok := parseHandler(code, r.mode); ok {
			h.Text = strings.TrimSpace(sql)
			return []Statement{h}, nil
		}
		return nil, err
	}
	return stmts, nil
}

// parseNodes parses code with a parser from the pool, under sql_mode m.
// TiDB's parser panics on some input (its literal driver, on a decimal of
// more than 81 digits): that is text Bastion cannot read, a *SyntaxError,
// and the parser is not reused.
func parseNodes(code string, m Mode) (nodes []ast.StmtNode, err error) {
	p := parsers.Get().(*parser.Parser)
	defer func() {
		if r := recover(); r != nil {
			nodes, err = nil, &SyntaxError{Message: "the parser failed on it: " + firstLine(fmt.Sprint(r))}
			return
		}
		parsers.Put(p)
	}()
	p.SetSQLMode(baseMode | m.sqlMode())
	nodes, _, err = p.Parse(code, "", "")
	if err != nil {
		return nil, &SyntaxError{Message: firstLine(err.Error())}
	}
	// The slice is the parser's own, refilled by its next Parse: once the
	// parser is back in the pool, another session's parse would overwrite
	// it while the caller reads it.
	return slices.Clone(nodes), nil
}

func (r reading) parseCode(orig, code string) ([]Statement, error) {
	nodes, err := parseNodes(code, r.mode)
	if err != nil {
		return nil, err
	}
	out := make([]Statement, 0, len(nodes))
	var inner []Statement
	from := 0
	for _, n := range nodes {
		s := r.summarise(n)
		s.Text = cutText(orig, code, n.Text(), &from)
		for _, in := range s.inner {
			in.Alternate = true
			inner = append(inner, in)
		}
		s.inner = nil
		out = append(out, s)
	}
	return append(out, inner...), nil
}

// cutText returns the original text of a statement whose text in the
// rewritten string is text, searching from *from on.
func cutText(orig, code, text string, from *int) string {
	i := strings.Index(code[*from:], text)
	if i < 0 {
		return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(text), ";"))
	}
	start := *from + i
	*from = start + len(text)
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(orig[start:start+len(text)]), ";"))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// Statements returns the policy summaries of stmts.
func Statements(stmts []Statement) []policy.Statement {
	out := make([]policy.Statement, len(stmts))
	for i := range stmts {
		out[i] = stmts[i].Statement
	}
	return out
}

// ErrDynamic is the reason a Dynamic statement cannot be checked.
var ErrDynamic = errors.New("the statement's SQL comes from a variable and cannot be checked")

// BackslashCharset reports whether the server could read a string in
// charset differently from the parser: big5, cp932, gbk, gb18030 and sjis
// have multibyte characters whose second byte is 0x5c, the backslash, so
// that in them '\xbf\x5c' is one character and a quote after it ends the
// string, where the parser sees an escaped quote. "?" (unknown) counts.
func BackslashCharset(charset string) bool {
	switch strings.ToLower(charset) {
	case "big5", "cp932", "gbk", "gb18030", "sjis", "?":
		return true
	}
	return false
}

// Describe names a statement for messages: its command, else "statement".
func Describe(s *Statement) string {
	if s.Command == "" {
		return "statement"
	}
	return fmt.Sprintf("%s statement", s.Command)
}
