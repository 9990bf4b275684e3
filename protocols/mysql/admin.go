package mysql

import (
	"context"
	"fmt"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
)

// Accounts gives each session on a target an upstream account of its own
// (the target's `provision:`).
type Accounts interface {
	// Account is called before each upstream login of g's sessions: it
	// makes sure g's account exists and may log in, and returns its name
	// and password.
	Account(ctx context.Context, g *access.Grant) (user, password string, err error)
}

// openUpstream logs in to t as g's own account when t provisions them, and
// with its configured credentials otherwise. MySQL sessions are not pooled,
// so an account is never shared between grants.
func openUpstream(ctx context.Context, t Target, g *access.Grant, clientCaps uint32, charset byte) (*upstreamConn, error) {
	if t.Accounts != nil {
		user, password, err := t.Accounts.Account(ctx, g)
		if err != nil {
			return nil, &upstreamError{code: erAccessDenied, state: "28000",
				tell: "bastion: Bastion could not prepare your account on target " + t.Name + " (the operator's log has the details)", err: err}
		}
		t.Username, t.Password = user, password
	}
	return dialUpstream(ctx, t, clientCaps, charset)
}

// adminCharset is utf8mb4_general_ci, the admin connection's collation.
const adminCharset = 45

// AdminConn is a login as a target's configured account, for Bastion's own
// statements (the provisioning of accounts).
type AdminConn struct{ u *upstreamConn }

// ConnectAdmin logs in to t with its configured credentials (with
// provisioning, the admin account that creates the users' accounts), under
// the same TLS and authentication rules as a session's login.
// It connects to no database: the admin account needs no privilege on
// the target's.
func ConnectAdmin(ctx context.Context, t Target) (*AdminConn, error) {
	t.Accounts, t.Database = nil, ""
	u, err := dialUpstream(ctx, t, requiredCaps, adminCharset)
	if err != nil {
		return nil, err
	}
	return &AdminConn{u: u}, nil
}

// Close ends the connection.
func (a *AdminConn) Close() error { return a.u.Close() }

// Exec runs one statement that returns no rows.
func (a *AdminConn) Exec(ctx context.Context, sql string) error {
	p, err := a.send(ctx, sql)
	if err != nil {
		return err
	}
	switch {
	case len(p) > 0 && p[0] == iOK:
		return nil
	case len(p) > 0 && p[0] == iERR:
		return adminError(p)
	}
	return fmt.Errorf("mysql: %.40s: rows where none were expected", sql)
}

// Column runs one query and returns the first column of each row (NULL as
// "").
func (a *AdminConn) Column(ctx context.Context, sql string) ([]string, error) {
	p, err := a.send(ctx, sql)
	if err != nil {
		return nil, err
	}
	switch {
	case len(p) == 0:
		return nil, errMalformed
	case p[0] == iERR:
		return nil, adminError(p)
	case p[0] == iOK:
		return nil, nil
	}
	cols, _, _, ok := readLenEnc(p)
	if !ok || cols == 0 {
		return nil, errMalformed
	}
	// Without CLIENT_DEPRECATE_EOF (not asked for), the column
	// definitions end with an EOF, and so do the rows.
	for range cols + 1 {
		if _, _, err := a.u.r.readMessage(1 << 16); err != nil {
			return nil, err
		}
	}
	var out []string
	for {
		p, _, err := a.u.r.readMessage(1 << 24)
		if err != nil {
			return nil, err
		}
		switch {
		case len(p) > 0 && p[0] == iERR:
			return nil, adminError(p)
		case len(p) > 0 && p[0] == iEOF && len(p) < 9:
			return out, nil
		case len(p) > 0 && p[0] == 0xfb: // NULL
			out = append(out, "")
			continue
		}
		v, _, ok := readLenEncString(p)
		if !ok {
			return nil, errMalformed
		}
		out = append(out, string(v))
	}
}

// send sends a query, under ctx's deadline, and reads the first packet of
// its answer.
func (a *AdminConn) send(ctx context.Context, sql string) ([]byte, error) {
	dl, _ := ctx.Deadline()
	a.u.conn.SetDeadline(dl) // zero: none
	defer a.u.conn.SetDeadline(time.Time{})
	return a.u.command(sql)
}

// AdminError is the target's refusal of a statement of Bastion's own.
type AdminError struct {
	Code    uint16
	Message string
}

// ErrorCode is the server's error number.
func (e *AdminError) ErrorCode() uint16 { return e.Code }

func (e *AdminError) Error() string { return fmt.Sprintf("mysql: error %d: %s", e.Code, e.Message) }

func adminError(p []byte) error {
	code, msg := parseErr(p)
	return &AdminError{Code: code, Message: msg}
}
