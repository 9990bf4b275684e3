package pgsql

import (
	"regexp"
	"strings"

	"github.com/bastionhq/bastion/internal/ascii"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// redacted replaces a secret in recorded or audited text.
const redacted = "'<redacted>'"

// unscannable replaces text that mentions a password but cannot be
// scanned, so that its secret cannot be told from the rest.
const unscannable = "<statement not shown: it mentions a password and cannot be read>"

// conninfoSecret matches a connection string that holds a password:
// libpq's password=… or a URI with one (postgres://user:secret@host).
var conninfoSecret = regexp.MustCompile(`(?i)\bpassword\s*=|[a-z][a-z0-9+.-]*://[^/?#@\s]*:[^/?#@\s]*@`)

// Redact returns sql with the secrets in it replaced by '<redacted>', for
// recordings, audit events and approvers: the string after PASSWORD (CREATE
// or ALTER ROLE … [ENCRYPTED] PASSWORD '…', a user mapping's OPTIONS
// (password '…')), and every string constant that holds a connection
// string with a password (CREATE SUBSCRIPTION … CONNECTION '…',
// dblink_connect('…')). The statement itself reaches the server
// unchanged; only what is kept of it is redacted.
func Redact(sql string) string {
	if !ascii.ContainsFold(sql, "password") && !strings.Contains(sql, "://") {
		return sql // the common case, without a scan
	}
	if checkSize(sql) != nil {
		return unscannable
	}
	res, err := pg_query.Scan(sql)
	if err != nil {
		return unscannable
	}
	var b strings.Builder
	last := 0
	afterPassword := false
	for _, t := range res.GetTokens() {
		start, end := int(t.GetStart()), int(t.GetEnd())
		if start < last || end > len(sql) || start > end {
			return unscannable
		}
		switch tok := t.GetToken(); {
		case tok == pg_query.Token_SCONST || tok == pg_query.Token_USCONST:
			if afterPassword || conninfoSecret.MatchString(sql[start:end]) {
				b.WriteString(sql[last:start])
				b.WriteString(redacted)
				last = end
			}
			afterPassword = false
		case tok == pg_query.Token_SQL_COMMENT || tok == pg_query.Token_C_COMMENT:
		default:
			afterPassword = tok == pg_query.Token_PASSWORD
		}
	}
	if last == 0 {
		return sql
	}
	b.WriteString(sql[last:])
	return b.String()
}
