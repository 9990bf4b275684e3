package pgsql

import pg_query "github.com/pganalyze/pg_query_go/v6"

// dblinkSQL are the functions of the dblink extension that run SQL given
// as text on a database (this one or another), each with how to find that
// argument among the arguments of a call; nil when it cannot be told (an
// arity dblink does not have, or a second argument that may be either the
// SQL or the fail_on_error flag and is not a constant). The SQL is decided
// as the statement it is, wherever it runs: a rule on a table is about the
// name, and the connection string may well name the same database.
var dblinkSQL = map[string]func(args []*pg_query.Node) *pg_query.Node{
	// dblink(sql), dblink(conn, sql), dblink(sql, fail), dblink(conn, sql, fail).
	"dblink":      sqlOrFlag(0),
	"dblink_exec": sqlOrFlag(0),
	// dblink_open(cursor, sql), (conn, cursor, sql), (cursor, sql, fail), (conn, cursor, sql, fail).
	"dblink_open": sqlOrFlag(1),
	// dblink_send_query(conn, sql).
	"dblink_send_query": func(args []*pg_query.Node) *pg_query.Node {
		if len(args) != 2 {
			return nil
		}
		return args[1]
	},
}

// sqlOrFlag finds the SQL argument of a function whose SQL comes after
// lead arguments, optionally after a connection name, optionally followed
// by a boolean: with lead+1 arguments it is the last; with lead+2 it is
// the second to last when the last is a boolean constant, else the last
// when that is a string constant; with lead+3, the second to last.
func sqlOrFlag(lead int) func(args []*pg_query.Node) *pg_query.Node {
	return func(args []*pg_query.Node) *pg_query.Node {
		switch len(args) - lead {
		case 1:
			return args[lead]
		case 2:
			last := args[lead+1]
			if v := eval(last); v.kind == valBool {
				return args[lead]
			}
			if _, ok := constString(last); ok {
				return last
			}
			return nil
		case 3:
			return args[lead+1]
		}
		return nil
	}
}
