package provision

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/internal/leakcheck"
)

// shopSQL makes what an operator would: a template role with the
// privileges users get, a table it may not read, and an admin account
// with CREATEROLE and ADMIN of the template.
const shopSQL = `
CREATE ROLE app_readonly NOLOGIN;
CREATE TABLE items (id int);
INSERT INTO items VALUES (1), (2);
CREATE TABLE secrets (s text);
GRANT SELECT ON items TO app_readonly;
GRANT CREATE ON SCHEMA public TO app_readonly;
CREATE ROLE app_reports NOLOGIN;
GRANT SELECT ON secrets TO app_reports;
CREATE ROLE bastion_admin LOGIN CREATEROLE PASSWORD 'admin-pw';
GRANT app_readonly TO bastion_admin WITH ADMIN OPTION;
GRANT app_reports TO bastion_admin WITH ADMIN OPTION;
`

// requests is a store's requests, as a sweep reads them.
type requests struct {
	mu sync.Mutex
	m  map[int64]*store.Request
}

func (r *requests) Request(_ context.Context, id int64) (*store.Request, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if q, ok := r.m[id]; ok {
		c := *q
		return &c, nil
	}
	return nil, fmt.Errorf("request %d: %w", id, store.ErrNotFound)
}

func (r *requests) set(id int64, user string, st store.State, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[id] = &store.Request{ID: id, Requester: user, Targets: []string{"shop"}, State: st, GrantEnd: end}
}

// provisionFixture is a PostgreSQL server with shopSQL in database shop.
type provisionFixture struct {
	pg       *harness.Postgres
	reqs     *requests
	connects atomic.Int32 // admin logins
}

func newFixture(t *testing.T) *provisionFixture {
	leakcheck.Check(t)
	pg := harness.NewPostgres(t, harness.PostgresConfig{Databases: []string{"shop"}, InitSQL: map[string]string{"shop": shopSQL}})
	return &provisionFixture{pg: pg, reqs: &requests{m: map[int64]*store.Request{}}}
}

func (f *provisionFixture) dsn(user, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: f.pg.Addr, Path: "/shop", RawQuery: "sslmode=disable"}
	return u.String()
}

func (f *provisionFixture) provisioner(t *testing.T) *Postgres {
	p, err := NewPostgres(Config{Target: "shop", Template: "app_readonly", ConnectionLimit: 4, Grants: f.reqs,
		Connect: func(ctx context.Context) (*pgconn.PgConn, error) {
			f.connects.Add(1)
			return pgconn.Connect(ctx, f.dsn("bastion_admin", "admin-pw"))
		}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// query runs sql on pc and returns the first column of its first row.
func query(ctx context.Context, pc *pgconn.PgConn, sql string) (string, error) {
	r := pc.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	if r.Err != nil {
		return "", r.Err
	}
	if len(r.Rows) == 0 {
		return "", nil
	}
	return string(r.Rows[0][0]), nil
}

// asSuper is query as the superuser in shop.
func (f *provisionFixture) asSuper(t *testing.T, sql string) string {
	t.Helper()
	ctx := t.Context()
	pc, err := pgconn.Connect(ctx, f.pg.DSN("shop"))
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(context.Background())
	out, err := query(ctx, pc, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// TestPostgresAccountLifecycle: a grant's account logs in as itself with
// the template's privileges only; a second session of the grant reuses it;
// after a restart it gets a new password; revoking the grant drops it and
// ends its open session, and leaves other grants' accounts and roles that
// are not Bastion's alone.
func TestPostgresAccountLifecycle(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	end := time.Now().Add(time.Hour)
	f.reqs.set(7, "alice", store.Approved, end)
	f.reqs.set(8, "bob", store.Approved, end)
	p := f.provisioner(t)
	alice := &access.Grant{User: "alice", Target: "shop", RequestID: 7, Ends: end}

	name, pw, err := p.Account(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if name != "bastion_alice_7" {
		t.Fatalf("role %q", name)
	}
	pc, err := pgconn.Connect(ctx, f.dsn(name, pw))
	if err != nil {
		t.Fatalf("login as %s: %v", name, err)
	}
	defer pc.Close(context.Background())
	if got, err := query(ctx, pc, "SELECT current_user"); err != nil || got != name {
		t.Fatalf("current_user = %q, %v", got, err)
	}
	if got, err := query(ctx, pc, "SELECT count(*) FROM items"); err != nil || got != "2" {
		t.Fatalf("items: %q, %v (the template may read it)", got, err)
	}
	var pe *pgconn.PgError
	if _, err := query(ctx, pc, "SELECT * FROM secrets"); !errors.As(err, &pe) || pe.Code != "42501" {
		t.Fatalf("secrets: %v, want PostgreSQL's permission denied (42501)", err)
	}
	if _, err := query(ctx, pc, "CREATE TABLE mine (x int)"); err != nil {
		t.Fatalf("create a table (the template may): %v", err)
	}
	if got := f.asSuper(t, "SELECT rolvaliduntil IS NOT NULL AND rolconnlimit = 4 AND NOT rolsuper FROM pg_roles WHERE rolname = 'bastion_alice_7'"); got != "t" {
		t.Fatalf("role attributes: %q", got)
	}

	before := f.connects.Load()
	if n2, pw2, err := p.Account(ctx, alice); err != nil || n2 != name || pw2 != pw {
		t.Fatalf("second session: %q, same password %v, %v", n2, pw2 == pw, err)
	}
	if f.connects.Load() != before {
		t.Error("a second session of the same grant logged in as the admin again")
	}

	// A restart: the role exists, its password is lost; the next session
	// sets a new one.
	p = f.provisioner(t)
	_, pw3, err := p.Account(ctx, alice)
	if err != nil || pw3 == pw {
		t.Fatalf("after a restart: new password %v, %v", pw3 != pw, err)
	}
	if _, err := pgconn.Connect(ctx, f.dsn(name, pw)); err == nil {
		t.Error("the password from before the restart still logs in")
	}

	bob := &access.Grant{User: "bob", Target: "shop", RequestID: 8, Ends: end}
	bobName, bobPW, err := p.Account(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	f.asSuper(t, "CREATE ROLE bastion_other NOLOGIN")
	f.asSuper(t, "CREATE ROLE bastion_carol_99 NOLOGIN")

	f.reqs.set(7, "alice", store.Revoked, end)
	if err := p.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.asSuper(t, "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'bastion%'"); got != "bastion_admin,bastion_bob_8,bastion_other" {
		t.Fatalf("roles after the sweep: %s (want alice's and the unknown request's dropped, bob's and bastion_other kept)", got)
	}
	if _, err := query(ctx, pc, "SELECT 1"); err == nil {
		t.Error("alice's open session survived the drop of her role")
	}
	if err := p.Sweep(ctx); err != nil {
		t.Errorf("a second sweep: %v", err)
	}
	bc, err := pgconn.Connect(ctx, f.dsn(bobName, bobPW))
	if err != nil {
		t.Fatalf("bob's account after alice's drop: %v", err)
	}
	bc.Close(context.Background())
}

// TestPostgresAccountRefusesStanding: standing access names no request, so
// it gets no account.
func TestPostgresAccountRefusesStanding(t *testing.T) {
	p, err := NewPostgres(Config{Target: "shop", Template: "ro", ConnectionLimit: 1, Grants: &requests{},
		Connect: func(context.Context) (*pgconn.PgConn, error) { return nil, errors.New("not called") }})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Account(t.Context(), &access.Grant{User: "alice", Target: "shop"}); err == nil {
		t.Fatal("standing access got an account")
	}
}

// TestPostgresAccountAdminRefused: an admin account that may not create
// roles fails the account, naming the target and the role, and leaves no
// password behind (the next session tries again).
func TestPostgresAccountAdminRefused(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	f.asSuper(t, "ALTER ROLE bastion_admin NOCREATEROLE")
	p := f.provisioner(t)
	g := &access.Grant{User: "alice", Target: "shop", RequestID: 9, Ends: time.Now().Add(time.Hour)}
	_, _, err := p.Account(ctx, g)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" || !strings.Contains(err.Error(), "shop: role bastion_alice_9") {
		t.Fatalf("Account with an admin lacking CREATEROLE = %v", err)
	}
	f.asSuper(t, "ALTER ROLE bastion_admin CREATEROLE")
	if _, _, err := p.Account(ctx, g); err != nil {
		t.Fatalf("after CREATEROLE was given back: %v", err)
	}
}

// TestPostgresTwoTargetsOneServer: two targets on one PostgreSQL server
// share a request's role (roles are the server's); sharing a Server, the
// second target's session neither changes the first's password nor has
// its role dropped by the first target's sweep.
func TestPostgresTwoTargetsOneServer(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	end := time.Now().Add(time.Hour)
	f.reqs.set(3, "alice", store.Approved, end)
	f.reqs.m[3].Targets = []string{"shop", "shop-reports"}
	srv := NewServer()
	shop := f.provisioner(t)
	shop.cfg.Server = srv
	reports := f.provisioner(t)
	reports.cfg.Server, reports.cfg.Target, reports.cfg.Template = srv, "shop-reports", "app_reports"

	name, pw, err := shop.Account(ctx, &access.Grant{User: "alice", Target: "shop", RequestID: 3, Ends: end})
	if err != nil {
		t.Fatal(err)
	}
	if _, pw2, err := reports.Account(ctx, &access.Grant{User: "alice", Target: "shop-reports", RequestID: 3, Ends: end}); err != nil || pw2 != pw {
		t.Fatalf("the second target's account: same password %v, %v", pw2 == pw, err)
	}
	if err := shop.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	pc, err := pgconn.Connect(ctx, f.dsn(name, pw))
	if err != nil {
		t.Fatalf("login as %s after both targets' accounts and a sweep: %v", name, err)
	}
	defer pc.Close(context.Background())
	// The role has each target's template: the second target's too.
	for _, table := range []string{"items", "secrets"} {
		if _, err := query(ctx, pc, "SELECT count(*) FROM "+table); err != nil {
			t.Errorf("%s reads %s (app_readonly: items, app_reports: secrets): %v", name, table, err)
		}
	}
}
