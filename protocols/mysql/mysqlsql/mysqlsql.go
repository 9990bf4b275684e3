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
// so that the parser sees what MariaDB executes: MariaDB's /*M! … */
// comments and version-guarded /*!NNNNN … */ and /*!NNNNNN … */ comments
// become plain /*! … */ code (whatever the server version, so a guarded
// statement is always checked). # and -- comments, backtick identifiers
// (with “ escapes) and both string quotes are the lexer's own.
//
// A backslash means something else under sql_mode NO_BACKSLASH_ESCAPES,
// which a client may set: 'a\'; DROP TABLE t; -- ' is one string with
// escapes and a DROP without. A string holding a backslash is therefore
// parsed both ways, and the other reading's statements are returned too
// (Alternate set), so that the decision covers what either mode runs.
//
// HANDLER (not in TiDB's grammar) is recognised by a small scanner of its
// own: HANDLER t OPEN/READ/CLOSE is a read of table t.
package mysqlsql

import (
	"errors"
	"fmt"
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
	// one of the NO_BACKSLASH_ESCAPES reading of a string that reads
	// differently in the two modes, or the statement a PREPARE … FROM
	// 'text' prepares. Parse returns them after the others.
	Alternate bool

	inner []Statement // what PREPARE prepares
}

// SyntaxError is returned by Parse for a string the grammar rejects.
type SyntaxError struct {
	Message string
}

func (e *SyntaxError) Error() string { return "mysqlsql: " + e.Message }

var parsers = sync.Pool{New: func() any { return parser.New() }}

var noBackslashEscapes = func() mysql.SQLMode {
	m, err := mysql.GetSQLMode(mysql.DefaultSQLMode)
	if err != nil {
		panic(err)
	}
	return m | mysql.ModeNoBackslashEscapes
}()

// MaxText bounds the text Bastion parses: parsing costs CPU and memory in
// proportion (about 130 MB allocated per MiB of SQL), which must not be
// anyone's to ask for at will. Bulk data goes through LOAD DATA LOCAL,
// which is not parsed.
const MaxText = 1 << 20

// ErrTooLarge is returned for a text longer than MaxText.
var ErrTooLarge = errors.New("the statement is larger than Bastion parses (1 MiB)")

// Parse splits sql into statements and summarises each. Empty statements
// are skipped: an empty string yields none. A string that does not parse
// returns a *SyntaxError and no statements.
func Parse(sql string) ([]Statement, error) {
	if len(sql) > MaxText {
		return nil, ErrTooLarge
	}
	code := exposeCode(sql)
	stmts, err := parse(sql, code, false)
	if err != nil {
		if h, ok := parseHandler(code); ok {
			h.Text = strings.TrimSpace(sql)
			return []Statement{h}, nil
		}
		return nil, err
	}
	if strings.IndexByte(sql, '\\') >= 0 {
		alt, err := parse(sql, code, true)
		if err == nil && !sameTexts(stmts, alt) {
			for i := range alt {
				alt[i].Alternate = true
			}
			stmts = append(stmts, alt...)
		}
	}
	return stmts, nil
}

// parseNodes parses code with a parser from the pool, under sql_mode
// NO_BACKSLASH_ESCAPES when nbe is set. TiDB's parser panics on some input
// (its literal driver, on a decimal of more than 81 digits): that is text
// Bastion cannot read, a *SyntaxError, and the parser is not reused.
func parseNodes(code string, nbe bool) (nodes []ast.StmtNode, err error) {
	p := parsers.Get().(*parser.Parser)
	defer func() {
		if r := recover(); r != nil {
			nodes, err = nil, &SyntaxError{Message: "the parser failed on it: " + firstLine(fmt.Sprint(r))}
			return
		}
		if nbe {
			p.Reset()
		}
		parsers.Put(p)
	}()
	if nbe {
		p.SetSQLMode(noBackslashEscapes)
	}
	nodes, _, err = p.Parse(code, "", "")
	if err != nil {
		return nil, &SyntaxError{Message: firstLine(err.Error())}
	}
	return nodes, nil
}

func parse(orig, code string, nbe bool) ([]Statement, error) {
	nodes, err := parseNodes(code, nbe)
	if err != nil {
		return nil, err
	}
	out := make([]Statement, 0, len(nodes))
	var inner []Statement
	from := 0
	for _, n := range nodes {
		s := summarise(n)
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

func sameTexts(a, b []Statement) bool {
	return slices.EqualFunc(a, b, func(x, y Statement) bool { return x.Text == y.Text })
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
