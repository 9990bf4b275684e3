package provision

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/internal/leakcheck"
	"github.com/bastionhq/bastion/protocols/mysql"
)

// mysqlShopSQL makes what an operator would on MariaDB: a template role
// with the privileges users get, a table it may not read, and an admin
// account with only what provisioning needs (nothing on shop itself: the
// admin connection names no database).
const mysqlShopSQL = `
CREATE TABLE items (id int);
INSERT INTO items VALUES (1), (2);
CREATE TABLE secrets (s text);
CREATE ROLE app_readonly;
GRANT SELECT ON shop.items TO app_readonly;
CREATE USER 'bastion_admin'@'127.0.0.1' IDENTIFIED BY 'admin-pw';
GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO 'bastion_admin'@'127.0.0.1';
GRANT SELECT ON mysql.user TO 'bastion_admin'@'127.0.0.1';
GRANT UPDATE ON mysql.* TO 'bastion_admin'@'127.0.0.1';
GRANT app_readonly TO 'bastion_admin'@'127.0.0.1' WITH ADMIN OPTION;
`

// mysqlFixture is a MariaDB server with mysqlShopSQL in database shop.
type mysqlFixture struct {
	db       *harness.MariaDB
	reqs     *requests
	connects atomic.Int32 // admin logins
}

func newMySQLFixture(t *testing.T) *mysqlFixture {
	leakcheck.Check(t)
	db := harness.NewMariaDB(t, harness.MariaDBConfig{Databases: []string{"shop"}, InitSQL: map[string]string{"shop": mysqlShopSQL}})
	return &mysqlFixture{db: db, reqs: &requests{m: map[int64]*store.Request{}}}
}

func (f *mysqlFixture) provisioner(t *testing.T) *MySQL {
	p, err := NewMySQL(MySQLConfig{Target: "shop", Template: "app_readonly", ConnectionLimit: 4, Grants: f.reqs,
		Connect: func(ctx context.Context) (MySQLAdmin, error) {
			f.connects.Add(1)
			return mysql.ConnectAdmin(ctx, mysql.Target{Name: "shop", Address: f.db.Addr, Database: "shop", Username: "bastion_admin", Password: "admin-pw"})
		}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// open logs in to shop as user; the caller closes it.
func (f *mysqlFixture) open(t *testing.T, user, password string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/shop", user, password, f.db.Addr))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

// asSuper runs a query as the harness's all-privileged account and
// returns its first column, rows joined by commas.
func (f *mysqlFixture) asSuper(t *testing.T, q string) string {
	t.Helper()
	db, err := sql.Open("mysql", f.db.DSN("shop"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s.String)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, ",")
}

func scanOne(ctx context.Context, db *sql.DB, q string) (string, error) {
	var s string
	err := db.QueryRowContext(ctx, q).Scan(&s)
	return s, err
}

// TestMySQLAccountLifecycle: a grant's account logs in as itself with the
// template's privileges only (MariaDB refuses the rest); a second session
// of the grant reuses it; after a restart it gets a new password; revoking
// the grant locks and drops it and ends its open connection, and leaves
// other grants' accounts and accounts that are not Bastion's alone.
func TestMySQLAccountLifecycle(t *testing.T) {
	f := newMySQLFixture(t)
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
		t.Fatalf("user %q", name)
	}
	ac := f.open(t, name, pw)
	defer ac.Close()
	if got, err := scanOne(ctx, ac, "SELECT CURRENT_USER()"); err != nil || got != "bastion_alice_7@%" {
		t.Fatalf("CURRENT_USER() = %q, %v", got, err)
	}
	if got, err := scanOne(ctx, ac, "SELECT COUNT(*) FROM items"); err != nil || got != "2" {
		t.Fatalf("items: %q, %v (the template may read it)", got, err)
	}
	var me *gomysql.MySQLError
	if _, err := scanOne(ctx, ac, "SELECT * FROM secrets"); !errors.As(err, &me) || me.Number != 1142 {
		t.Fatalf("secrets: %v, want MariaDB's SELECT command denied (1142)", err)
	}
	if got := f.asSuper(t, "SELECT CONCAT(max_user_connections, ' ', default_role) FROM mysql.user WHERE User = 'bastion_alice_7' AND Host = '%'"); got != "4 app_readonly" {
		t.Fatalf("account: %q, want 4 connections and the template as default role", got)
	}

	before := f.connects.Load()
	if n2, pw2, err := p.Account(ctx, alice); err != nil || n2 != name || pw2 != pw {
		t.Fatalf("second session: %q, same password %v, %v", n2, pw2 == pw, err)
	}
	if f.connects.Load() != before {
		t.Error("a second session of the same grant logged in as the admin again")
	}

	// A restart: the account exists, its password is lost; the next
	// session sets a new one, and what the account was given meanwhile is
	// taken back.
	f.asSuper(t, "GRANT SELECT ON shop.secrets TO 'bastion_alice_7'@'%'")
	p = f.provisioner(t)
	_, pw3, err := p.Account(ctx, alice)
	if err != nil || pw3 == pw {
		t.Fatalf("after a restart: new password %v, %v", pw3 != pw, err)
	}
	old := f.open(t, name, pw)
	defer old.Close()
	if err := old.PingContext(ctx); err == nil {
		t.Error("the password from before the restart still logs in")
	}
	a3 := f.open(t, name, pw3)
	defer a3.Close()
	if _, err := scanOne(ctx, a3, "SELECT * FROM secrets"); err == nil {
		t.Error("a privilege given to the account outside Bastion survived its setup")
	}

	bob := &access.Grant{User: "bob", Target: "shop", RequestID: 8, Ends: end}
	bobName, bobPW, err := p.Account(ctx, bob)
	if err != nil {
		t.Fatal(err)
	}
	f.asSuper(t, "CREATE USER 'bastion_other'@'%'")
	f.asSuper(t, "CREATE USER 'bastion_carol_99'@'%'")

	f.reqs.set(7, "alice", store.Revoked, end)
	if err := p.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.asSuper(t, "SELECT CONCAT(User, '@', Host) FROM mysql.user WHERE User LIKE 'bastion%' ORDER BY User, Host"); got != "bastion@127.0.0.1,bastion@localhost,bastion_admin@127.0.0.1,bastion_bob_8@%,bastion_other@%" {
		t.Fatalf("users after the sweep: %s (want alice's and the unknown request's dropped, bob's and bastion_other kept)", got)
	}
	if _, err := scanOne(ctx, a3, "SELECT 1"); err == nil {
		t.Error("alice's open connection survived the drop of her account")
	}
	if err := p.Sweep(ctx); err != nil {
		t.Errorf("a second sweep: %v", err)
	}
	bc := f.open(t, bobName, bobPW)
	defer bc.Close()
	if got, err := scanOne(ctx, bc, "SELECT CURRENT_USER()"); err != nil || got != "bastion_bob_8@%" {
		t.Fatalf("bob's account after alice's drop: %q, %v", got, err)
	}
}

// TestMySQLAccountAdminRefused: an admin account that may not create
// users fails the account, naming the target and the user, and leaves no
// password behind (the next session tries again).
func TestMySQLAccountAdminRefused(t *testing.T) {
	f := newMySQLFixture(t)
	f.asSuper(t, "REVOKE CREATE USER ON *.* FROM 'bastion_admin'@'127.0.0.1'")
	p := f.provisioner(t)
	g := &access.Grant{User: "alice", Target: "shop", RequestID: 9, Ends: time.Now().Add(time.Hour)}
	_, _, err := p.Account(t.Context(), g)
	var ae *mysql.AdminError
	if !errors.As(err, &ae) || ae.Code != 1227 || !strings.Contains(err.Error(), "shop: user bastion_alice_9") {
		t.Fatalf("Account with an admin lacking CREATE USER = %v, want MariaDB's access denied (1227)", err)
	}
	f.asSuper(t, "GRANT CREATE USER ON *.* TO 'bastion_admin'@'127.0.0.1'")
	if _, _, err := p.Account(t.Context(), g); err != nil {
		t.Fatalf("after CREATE USER was given back: %v", err)
	}
}

// TestMySQLUserName: names stay within MySQL 8's 32 bytes and keep the
// request ID whole.
func TestMySQLUserName(t *testing.T) {
	for _, tc := range []struct {
		name, user string
		id         int64
		want       string
	}{
		{"short", "alice", 7, "bastion_alice_7"},
		{"sanitized", "Alice.Smith@corp", 12, "bastion_alice_smith_corp_12"},
		{"cut", "a-very-long-user-name-indeed", 123456, "bastion_a_very_long_user__123456"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := MySQLUserName(tc.user, tc.id)
			if got != tc.want || len(got) > maxMySQLUser {
				t.Fatalf("MySQLUserName(%q, %d) = %q, want %q", tc.user, tc.id, got, tc.want)
			}
			if id, ok := requestOf(got); !ok || id != tc.id {
				t.Fatalf("requestOf(%q) = %d, %v", got, id, ok)
			}
		})
	}
}

// TestNativeHash: MariaDB's PASSWORD('secret').
func TestNativeHash(t *testing.T) {
	if got := nativeHash("secret"); got != "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7" {
		t.Fatalf("nativeHash = %s", got)
	}
}
