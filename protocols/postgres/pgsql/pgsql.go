// Package pgsql summarises PostgreSQL statements for the policy.
//
// Parse splits a query string into statements with PostgreSQL's own grammar
// (libpg_query, through github.com/pganalyze/pg_query_go) and describes each
// one as a plain Statement value: its kind, the tables and functions it
// references, and the facts that matter to query rules (an unbounded
// UPDATE or DELETE, a write hidden in a CTE, EXPLAIN ANALYZE of a write,
// COPY … PROGRAM, a change of role). The package decides nothing: the policy
// package decides on these values, the proxy wires the two.
//
// The parse tree is walked generically (over the protobuf messages), so a
// table or function call is found wherever the grammar puts it: in
// subqueries, CTEs, joins, USING, RETURNING, function arguments, EXPLAIN,
// PREPARE and COPY queries.
package pgsql

import (
	"errors"
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
)

// Kind is the broad class of a statement.
type Kind string

const (
	KindRead        Kind = "read"        // SELECT, TABLE, VALUES, COPY … TO without writes
	KindWrite       Kind = "write"       // INSERT, UPDATE, DELETE, MERGE, COPY … FROM, SELECT … INTO / FOR UPDATE
	KindDDL         Kind = "ddl"         // CREATE, ALTER, DROP, TRUNCATE, COMMENT, …
	KindDCL         Kind = "dcl"         // GRANT, REVOKE, CREATE/ALTER/DROP ROLE, …
	KindUtility     Kind = "utility"     // SET, SHOW, DO, CALL, EXECUTE, VACUUM, EXPLAIN, …
	KindTransaction Kind = "transaction" // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE, …
	KindUnknown     Kind = "unknown"     // a statement this package does not classify
)

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	switch k {
	case KindRead, KindWrite, KindDDL, KindDCL, KindUtility, KindTransaction, KindUnknown:
		return true
	}
	return false
}

// Table is a relation named in a statement, as PostgreSQL resolves the
// identifiers: unquoted names are lower-cased, quoted and U&"…" names are
// kept as written (after unescaping), names are truncated to 63 bytes.
type Table struct {
	Schema string // "" when the name is not schema-qualified
	Name   string
}

// String returns schema.name, or name when unqualified.
func (t Table) String() string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// Statement is the summary of one statement.
type Statement struct {
	// Text is the statement's own text, without the separating semicolon
	// and surrounding white space.
	Text string
	// Fingerprint is pg_query's fingerprint of Text. It ignores constants:
	// DELETE … WHERE 1=1 and DELETE … WHERE 1=2 share it, as do
	// set_config('role', …) and set_config('work_mem', …), and SET ROLE a
	// and SET ROLE b. A decision that depends on Unbounded, Roles or a
	// constant must not be cached by the fingerprint alone.
	Fingerprint string
	Kind        Kind
	// Command names the statement in upper case: "SELECT", "UPDATE",
	// "DROP TABLE", "COPY", "SET ROLE", "PREPARE", …
	Command string
	// Actions name the sub-actions of an ALTER, each as a command of its
	// own ("ALTER TABLE DROP COLUMN", "ALTER TABLE RENAME"; see
	// alterActions), in the order written; nil for other statements.
	Actions []string
	// Tables are all the relations referenced, deduplicated and sorted.
	// A reference to a CTE by its name, where PostgreSQL resolves the name
	// to the CTE, is not a table (see cteRefs).
	Tables []Table
	// Functions are all the functions called, lower-cased, deduplicated
	// and sorted; a schema-qualified call is reported both qualified and
	// bare ("pg_catalog.pg_read_file" and "pg_read_file").
	Functions []string
	// SideEffects is set when the statement calls a built-in function that
	// changes state (see sideEffects). Not for EXPLAIN without ANALYZE,
	// which calls nothing.
	SideEffects bool
	// Unbounded is set when an UPDATE or DELETE anywhere in the statement
	// has no WHERE clause, or one that is a constant tautology (TRUE, 1=1,
	// 'a'='a', x IS NULL OR TRUE, …). Only constants are evaluated.
	Unbounded bool
	// (EXPLAIN without ANALYZE runs nothing: neither is set for it.)
	// WritesInCTE is set when a CTE modifies data
	// (WITH d AS (DELETE …) SELECT …).
	WritesInCTE bool
	// ExplainAnalyze is set for EXPLAIN ANALYZE of a statement that is not
	// a read: EXPLAIN ANALYZE runs it. Kind is then the inner statement's.
	ExplainAnalyze bool
	// CopyDirection is "from" (into the table) or "to" for COPY, "" otherwise.
	CopyDirection string
	// CopyProgram is set for COPY … FROM/TO PROGRAM.
	CopyProgram bool
	// Program is set when the statement runs a program on the server:
	// COPY … PROGRAM, or file_fdw's program option.
	Program bool
	// ServerFiles is set when the statement calls a function that reads or
	// writes the server's files (pg_read_file, lo_import, lo_export, …),
	// or gives a foreign table or server a file to read or a program to
	// run (file_fdw's filename and program options).
	ServerFiles bool
	// CopyFile is set for COPY … FROM/TO 'file': a file on the server
	// (STDIN and STDOUT are the client's).
	CopyFile bool
	// Roles is set when the statement may change the current role or
	// session authorization: SET ROLE, SET SESSION AUTHORIZATION, RESET of
	// either, DISCARD ALL (which resets the session authorization), or a
	// call of set_config whose setting is 'role' or 'session_authorization'
	// or is not a constant.
	Roles bool
	// Misreads says why, after this statement, the server may read text
	// differently from this parser: it may set client_encoding to one in
	// which a backslash can be part of a character (see HidesBackslash), or
	// turn standard_conforming_strings off, by SET, SET NAMES, ALTER … SET
	// or set_config, with a value or a setting name that is not a constant
	// taken at its worst. "" when it may not.
	Misreads string
	// Prepares is the name a PREPARE statement defines.
	Prepares string
	// Executes are the prepared statements the statement runs, sorted:
	// EXECUTE name, also inside EXPLAIN ANALYZE or CREATE TABLE … AS.
	Executes []string
	// Inner are the statements in the code of a DO block, or of a function
	// or procedure being created (SQL or PL/pgSQL, its expressions read as
	// SELECTs), each summarised as a statement of its own.
	Inner []Statement
	// Unchecked says why the code of a DO block or of a function or
	// procedure being created cannot be checked: dynamic SQL, another
	// language, compiled code; or why SQL a function runs cannot be.
	Unchecked string

	sqlArgs []string // SQL that functions called run, parsed into Inner
}

// Copy direction values of Statement.CopyDirection.
const (
	CopyFrom = "from"
	CopyTo   = "to"
)

// SyntaxError is returned by Parse for a string PostgreSQL would reject.
type SyntaxError struct {
	// Position is the 1-based character position of the error in the
	// string passed to Parse, 0 when unknown.
	Position int
	Message  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("pgsql: %s at position %d", e.Message, e.Position)
}

// Parse splits sql into statements and summarises each. Empty statements
// (";;", comments only) are skipped: an empty string yields no statements.
// A string that does not parse returns a *SyntaxError and no statements.
func Parse(sql string) ([]Statement, error) {
	return parse(sql, 0)
}

// parse is Parse for code nested depth bodies deep.
func parse(sql string, depth int) ([]Statement, error) {
	if err := checkSize(sql); err != nil {
		return nil, err
	}
	if err := checkNesting(sql); err != nil {
		return nil, err
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		var pe *parser.Error
		if errors.As(err, &pe) {
			return nil, &SyntaxError{Position: pe.Cursorpos, Message: pe.Message}
		}
		return nil, fmt.Errorf("pgsql: parse: %w", err)
	}
	stmts := make([]Statement, 0, len(tree.GetStmts()))
	for _, raw := range tree.GetStmts() {
		if raw.GetStmt() == nil {
			continue
		}
		s := summarise(raw.GetStmt())
		s.Text = stmtText(sql, raw)
		body(raw.GetStmt(), s.Text, &s, depth)
		runs(&s, depth)
		fp, err := pg_query.Fingerprint(s.Text)
		if err != nil {
			return nil, fmt.Errorf("pgsql: fingerprint %q: %w", s.Text, err)
		}
		s.Fingerprint = fp
		stmts = append(stmts, s)
	}
	return stmts, nil
}

// stmtText cuts a statement's text out of sql; a length of 0 means "to the
// end of the string".
func stmtText(sql string, raw *pg_query.RawStmt) string {
	start := int(raw.GetStmtLocation())
	if start < 0 || start > len(sql) {
		start = 0
	}
	end := len(sql)
	if l := int(raw.GetStmtLen()); l > 0 && start+l <= len(sql) {
		end = start + l
	}
	return strings.TrimSpace(sql[start:end])
}
