package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
)

// provisionSetup is the operator's part, run as the superuser: a template
// role with the privileges users get (items, not secrets), and the admin
// account Bastion logs in with (CREATEROLE, ADMIN of the template). It
// first drops what an earlier run left (roles are the cluster's, not the
// database's).
var provisionSetup = []string{
	"DROP DATABASE IF EXISTS provshop WITH (FORCE)",
	`DO $$ DECLARE r text; BEGIN
	   FOR r IN SELECT rolname FROM pg_roles WHERE rolname ~ '^bastion_[a-z0-9_]*_[0-9]+$' LOOP EXECUTE format('DROP ROLE %I', r); END LOOP;
	 END $$`,
	"DROP ROLE IF EXISTS prov_admin",
	"DROP ROLE IF EXISTS prov_readonly",
	"CREATE DATABASE provshop",
	"CREATE ROLE prov_readonly NOLOGIN",
	"CREATE ROLE prov_admin LOGIN CREATEROLE PASSWORD 'prov-admin-pw'",
	"GRANT prov_readonly TO prov_admin WITH ADMIN OPTION",
}

const provisionShopSQL = `
CREATE TABLE items (id int);
INSERT INTO items VALUES (1), (2), (3);
CREATE TABLE secrets (value text);
INSERT INTO secrets VALUES ('the launch codes');
GRANT SELECT ON items TO prov_readonly;
`

const provisionRoles = `
roles:
  developer:
    request:
      - targets: [provshop]
        approvers: [lead]
  lead:
    request:
      - targets: [provshop]
        approvers: [lead]
  auditor:
    permissions: [audit]
`

// execAll runs each statement in dsn's database.
func execAll(t *testing.T, dsn string, sqls ...string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, sql := range sqls {
		if _, err := conn.Exec(t.Context(), sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// superValue is the first column of sql's first row, as the superuser.
func superValue(t *testing.T, pg *harness.Postgres, sql string, args ...any) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), pg.DSN("provshop"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(t.Context(), sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// loginAs logs in through Bastion with tok and checks that the target
// sees the session as role; the connection closes when t ends.
func loginAs(t *testing.T, tok dbToken, role string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), tok.URL)
	if err != nil {
		t.Fatalf("login with request %d's token: %v", tok.Request, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	var s string
	if err := conn.QueryRow(t.Context(), "SELECT current_user").Scan(&s); err != nil || s != role {
		t.Fatalf("current_user = %q, %v; want %s", s, err, role)
	}
	return conn
}

// TestProvisionedAccounts: with provision, a user's session logs in upstream
// as an account of their own, named for them and their request, with the
// template's privileges only (PostgreSQL itself refuses the rest); revoking
// the grant ends the session and drops the account, and another user's
// session goes on.
func TestProvisionedAccounts(t *testing.T) {
	pg := testPostgres(t)
	execAll(t, pg.DSN("postgres"), provisionSetup...)
	execAll(t, pg.DSN("provshop"), provisionShopSQL)
	b := startBastionWith(t, options{postgres: true, roles: provisionRoles, targets: func(*testing.T, *ca.Set) string {
		return fmt.Sprintf(`
targets:
  - name: provshop
    kind: postgres
    address: %q
    database: provshop
    username: prov_admin
    password: prov-admin-pw
    tls: require
    provision: {template: prov_readonly}
`, pg.Addr)
	}})
	ctx := t.Context()
	aliceTok := b.grantDB(t, "alice", "provshop")
	malTok := b.grantDB(t, "mallory", "provshop")
	aliceRole := fmt.Sprintf("bastion_alice_%d", aliceTok.Request)
	malRole := fmt.Sprintf("bastion_mallory_%d", malTok.Request)

	alice := loginAs(t, aliceTok, aliceRole)
	var s string
	var n int
	if err := alice.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 3 {
		t.Fatalf("items through the template's privilege: %d, %v", n, err)
	}
	_, err := alice.Exec(ctx, "SELECT * FROM secrets")
	if pe := pgError(t, err); pe.Code != "42501" || !strings.Contains(pe.Message, "permission denied for table secrets") {
		t.Fatalf("secrets: %v; want PostgreSQL's own permission denied", err)
	}
	// The target's own view names her.
	if got := superValue(t, pg, "SELECT count(*)::text FROM pg_stat_activity WHERE usename = $1", aliceRole); got != "1" {
		t.Fatalf("pg_stat_activity shows %s backends of %s", got, aliceRole)
	}

	mallory := loginAs(t, malTok, malRole)

	// Sessions cannot reach each other: alice sees none of mallory's
	// statement text, and PostgreSQL refuses her terminating his backend.
	if err := mallory.QueryRow(ctx, "SELECT 'mallory was here'").Scan(&s); err != nil {
		t.Fatal(err)
	}
	if err := alice.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%mallory was here%' AND usename = $1", malRole).Scan(&n); err != nil || n != 0 {
		t.Fatalf("alice sees %d of mallory's statements, %v", n, err)
	}
	malPID := superValue(t, pg, "SELECT pid::text FROM pg_stat_activity WHERE usename = $1", malRole)
	_, err = alice.Exec(ctx, "SELECT pg_terminate_backend("+malPID+")")
	if pe := pgError(t, err); pe.Code != "42501" {
		t.Fatalf("alice terminating mallory's backend: %v; want PostgreSQL's refusal", err)
	}

	b.mustRun("bob", "revoke", fmt.Sprint(aliceTok.Request), "--reason", "incident over")
	roleGone := func() bool {
		return superValue(t, pg, "SELECT count(*)::text FROM pg_roles WHERE rolname = $1", aliceRole) == "0"
	}
	waitFor(t, 30*time.Second, roleGone)
	if _, err := alice.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("alice's session outlived her grant")
	}
	if err := mallory.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 3 {
		t.Fatalf("mallory's session after alice's revocation: %d, %v", n, err)
	}
	if got := superValue(t, pg, "SELECT count(*)::text FROM pg_roles WHERE rolname = $1", malRole); got != "1" {
		t.Fatalf("mallory's role was dropped with alice's")
	}

	// A crash loses the accounts' passwords (kept in memory only): after
	// kill -9 and a restart, mallory's live grant keeps its role, and her
	// next session sets a new password and logs in as it.
	mallory.Close(ctx)
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.exited
	oldPort := b.sshPort
	b.start()
	kh, err := os.ReadFile(b.knownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.knownHosts, bytes.Replace(kh, []byte("]:"+oldPort+" "), []byte("]:"+b.sshPort+" "), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(b.mustRun("mallory", "token", fmt.Sprint(malTok.Request), "--json")), &malTok); err != nil {
		t.Fatal(err)
	}
	loginAs(t, malTok, malRole)
}
