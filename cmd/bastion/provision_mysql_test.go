package main

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
)

// provisionMySQLSetup is the operator's part on MariaDB: a template role
// with the privileges users get (items, not secrets), and the admin
// account Bastion logs in with. It first drops what an earlier run left
// (users and roles are the server's, not the database's).
const provisionMySQLSetup = `
DROP DATABASE IF EXISTS provmy;
DROP USER IF EXISTS 'provmy_admin'@'127.0.0.1';
DROP ROLE IF EXISTS provmy_readonly;
CREATE DATABASE provmy;
CREATE TABLE provmy.items (id int);
INSERT INTO provmy.items VALUES (1), (2), (3);
CREATE TABLE provmy.secrets (value text);
INSERT INTO provmy.secrets VALUES ('the launch codes');
CREATE ROLE provmy_readonly;
GRANT SELECT ON provmy.items TO provmy_readonly;
CREATE USER 'provmy_admin'@'127.0.0.1' IDENTIFIED BY 'provmy-admin-pw';
GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO 'provmy_admin'@'127.0.0.1';
GRANT SELECT ON mysql.user TO 'provmy_admin'@'127.0.0.1';
GRANT UPDATE ON mysql.* TO 'provmy_admin'@'127.0.0.1';
GRANT provmy_readonly TO 'provmy_admin'@'127.0.0.1' WITH ADMIN OPTION;
`

const provisionMySQLRoles = `
roles:
  developer:
    request:
      - targets: [provmy]
        approvers: [lead]
  lead:
    request:
      - targets: [provmy]
        approvers: [lead]
  auditor:
    permissions: [audit]
`

// mariadbValue is the first column of q's first row, as the harness's
// all-privileged account.
func mariadbValue(t *testing.T, m *harness.MariaDB, q string, args ...any) string {
	t.Helper()
	db, err := sql.Open("mysql", m.DSN("")+"?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s sql.NullString
	if err := db.QueryRowContext(t.Context(), q, args...).Scan(&s); err != nil && err != sql.ErrNoRows {
		t.Fatalf("%.40s: %v", q, err)
	}
	return s.String
}

// myLoginAs logs in through Bastion with tok and checks that MariaDB sees
// the session as user; the connection closes when t ends.
func myLoginAs(t *testing.T, tok dbToken, user string) *sql.Conn {
	t.Helper()
	conn, err := tok.open(t, "").Conn(t.Context())
	if err != nil {
		t.Fatalf("login with request %d's token: %v", tok.Request, err)
	}
	t.Cleanup(func() { conn.Close() })
	var s string
	if err := conn.QueryRowContext(t.Context(), "SELECT CURRENT_USER()").Scan(&s); err != nil || s != user+"@%" {
		t.Fatalf("CURRENT_USER() = %q, %v; want %s@%%", s, err, user)
	}
	return conn
}

// TestProvisionedMySQLAccounts: with provision on a MariaDB target, a
// user's session logs in upstream as an account of their own, named for
// them and their request, with the template role's privileges only
// (MariaDB itself refuses the rest); revoking the grant ends the session
// and drops the account, and another user's session goes on.
func TestProvisionedMySQLAccounts(t *testing.T) {
	m := testMariaDB(t)
	mariadbValue(t, m, provisionMySQLSetup)
	b := startBastionWith(t, options{mysql: true, roles: provisionMySQLRoles, targets: func(*testing.T, *ca.Set) string {
		return fmt.Sprintf(`
targets:
  - name: provmy
    kind: mysql
    address: %q
    database: provmy
    username: provmy_admin
    password: provmy-admin-pw
    provision: {template: provmy_readonly}
`, m.Addr)
	}})
	ctx := t.Context()
	aliceTok := b.grantDB(t, "alice", "provmy")
	malTok := b.grantDB(t, "mallory", "provmy")
	aliceUser := fmt.Sprintf("bastion_alice_%d", aliceTok.Request)
	malUser := fmt.Sprintf("bastion_mallory_%d", malTok.Request)

	alice := myLoginAs(t, aliceTok, aliceUser)
	var n int
	if err := alice.QueryRowContext(ctx, "SELECT COUNT(*) FROM items").Scan(&n); err != nil || n != 3 {
		t.Fatalf("items through the template's privilege: %d, %v", n, err)
	}
	var s string
	err := alice.QueryRowContext(ctx, "SELECT value FROM secrets").Scan(&s)
	if me := myError(t, err); me.Number != 1142 || !strings.Contains(me.Message, aliceUser) {
		t.Fatalf("secrets: %v; want MariaDB's own SELECT command denied to %s", err, aliceUser)
	}
	// The target's own view names her.
	if got := mariadbValue(t, m, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", aliceUser); got != "1" {
		t.Fatalf("the process list shows %s connections of %s", got, aliceUser)
	}

	mallory := myLoginAs(t, malTok, malUser)

	b.mustRun("bob", "revoke", fmt.Sprint(aliceTok.Request), "--reason", "incident over")
	userGone := func() bool {
		return mariadbValue(t, m, "SELECT COUNT(*) FROM mysql.user WHERE User = ?", aliceUser) == "0"
	}
	waitFor(t, 30*time.Second, userGone)
	if err := alice.QueryRowContext(ctx, "SELECT 1").Scan(&n); err == nil {
		t.Error("alice's session outlived her grant")
	}
	if got := mariadbValue(t, m, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = ?", aliceUser); got != "0" {
		t.Errorf("%s connections of %s are left on MariaDB", got, aliceUser)
	}
	if err := mallory.QueryRowContext(ctx, "SELECT COUNT(*) FROM items").Scan(&n); err != nil || n != 3 {
		t.Fatalf("mallory's session after alice's revocation: %d, %v", n, err)
	}
	if got := mariadbValue(t, m, "SELECT COUNT(*) FROM mysql.user WHERE User = ?", malUser); got != "1" {
		t.Fatal("mallory's account was dropped with alice's")
	}
}
