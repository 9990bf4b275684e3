package pgsql

import (
	"errors"
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// libpg_query writes a parse tree out recursively in C, on the calling
// thread's stack and without a depth check: a left-deep chain of some
// 40,000 operators ("SELECT 1+1+1…", "x::int::int…", "'a'||'a'||…")
// overflows it and kills the process. PostgreSQL's own parser refuses such
// statements later, at its stack depth limit; Bastion must not hand them to
// libpg_query at all.
const (
	// maxNesting bounds the depth of a statement's parse tree that Bastion
	// hands to libpg_query: the C code was measured to survive 20,000
	// levels on an 8 MiB thread stack, glibc's default, and to overflow it
	// at 40,000. (Go's protobuf decoding gives up at 10,000 nested
	// messages, about 5,000 levels, so deeper statements fail to parse
	// anyway, but cleanly.)
	maxNesting = 20000
	// shallowText is the length below which a statement cannot nest
	// maxNesting deep: every level of a tree costs at least two bytes (an
	// operator and an operand, a prefix operator and a space, a pair of
	// parentheses).
	shallowText = 2 * maxNesting
)

// MaxText bounds the text Bastion parses: parsing costs about a second of
// CPU and 150 MB of memory per MiB of SQL (libpg_query's tree, its
// protobuf, the summary), which must not be anyone's to ask for at will.
// Bulk data goes through COPY, which is not parsed.
const MaxText = 1 << 20

// ErrTooDeep is returned for a statement whose parse tree could nest
// deeper than Bastion parses.
var ErrTooDeep = errors.New("the statement nests too deeply to be parsed safely")

// ErrTooLarge is returned for a text longer than MaxText.
var ErrTooLarge = errors.New("the statement is larger than Bastion parses (1 MiB; send bulk data with COPY)")

// checkSize returns ErrTooLarge when sql is longer than MaxText.
func checkSize(sql string) error {
	if len(sql) > MaxText {
		return fmt.Errorf("pgsql: %w: %d bytes", ErrTooLarge, len(sql))
	}
	return nil
}

// checkNesting returns ErrTooDeep when sql could nest deeper than
// maxNesting. It bounds the depth from sql's tokens, as PostgreSQL's own
// (iterative) scanner reads them: within parentheses or brackets, the
// tokens between two commas or semicolons (list items and statements are
// siblings in the tree, never nested in one another) plus the deepest group
// among them. The bound is never below the real depth; it is above it for
// flattened chains (a OR b OR …), which only a statement of more than
// maxNesting tokens between two commas can meet.
func checkNesting(sql string) error {
	if len(sql) < shallowText {
		return nil
	}
	res, err := pg_query.Scan(sql)
	if err != nil {
		return nil // the parser fails on it too, before building a tree
	}
	type frame struct{ count, child, best int }
	stack := []frame{{}}
	end := func(f frame) int { return max(f.best, f.count+f.child) }
	for _, t := range res.GetTokens() {
		top := &stack[len(stack)-1]
		switch t.GetToken() {
		case pg_query.Token_ASCII_40, pg_query.Token_ASCII_91: // ( [
			top.count++
			stack = append(stack, frame{})
		case pg_query.Token_ASCII_41, pg_query.Token_ASCII_93: // ) ]
			if len(stack) == 1 {
				top.count++ // unbalanced: the parser fails on it
				continue
			}
			inner := end(*top) + 1
			stack = stack[:len(stack)-1]
			top = &stack[len(stack)-1]
			top.count++
			top.child = max(top.child, inner)
		case pg_query.Token_ASCII_44, pg_query.Token_ASCII_59: // , ;
			top.best, top.count, top.child = end(*top), 0, 0
		default:
			top.count++
		}
		if top.count+top.child > maxNesting {
			return fmt.Errorf("pgsql: %w (over %d levels)", ErrTooDeep, maxNesting)
		}
	}
	return nil
}
