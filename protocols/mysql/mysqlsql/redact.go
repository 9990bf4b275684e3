package mysqlsql

import (
	"strings"

	"github.com/bastionhq/bastion/internal/ascii"
	"github.com/pingcap/tidb/pkg/parser/ast"
)

// unreadable replaces text that may hold a password but does not parse,
// so that its secret cannot be told from the rest.
const unreadable = "<statement not shown: it may hold a password and cannot be read>"

// Redact returns sql with its passwords hidden, for recordings, audit
// events and approvers; the server gets the statement unchanged. A
// statement that sets one (CREATE or ALTER USER … IDENTIFIED BY, SET
// PASSWORD, GRANT … IDENTIFIED BY) is shown as the parser prints it with
// the password masked; text that may hold one and does not parse is not
// shown at all.
func Redact(sql string) string {
	if !ascii.ContainsFold(sql, "password") && !ascii.ContainsFold(sql, "identified") {
		return sql // the common case, without a parse
	}
	if len(sql) > MaxText {
		return unreadable
	}
	code, err := exposeCode(sql, 0, Server{}, runAll) // every executable comment shown
	if err != nil {
		return unreadable
	}
	nodes, err := parseNodes(code, 0)
	if err != nil {
		return unreadable
	}
	parts := make([]string, len(nodes))
	masked := false
	for i, n := range nodes {
		if s, ok := n.(ast.SensitiveStmtNode); ok {
			parts[i], masked = s.SecureText(), true
		} else {
			parts[i] = strings.TrimRight(strings.TrimSpace(n.Text()), ";")
		}
	}
	if !masked {
		return sql
	}
	return strings.Join(parts, "; ")
}
