package provision

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
)

// maxMySQLUser is MySQL 8's limit on user names (MariaDB 10.11 allows 80):
// names are kept within both.
const maxMySQLUser = 32

// errUnknownThread is MariaDB's and MySQL's ER_NO_SUCH_THREAD: a KILL of a
// connection that has ended meanwhile.
const errUnknownThread = 1094

// MySQLAdmin is a login as a MySQL or MariaDB target's admin account.
type MySQLAdmin interface {
	Exec(ctx context.Context, sql string) error
	// Column returns the first column of each row of a query.
	Column(ctx context.Context, sql string) ([]string, error)
	Close() error
}

// MySQLConfig configures a MySQL provisioner for one target.
type MySQLConfig struct {
	Target          string // the target's name, as requests name it
	Template        string // the role whose privileges each account gets
	ConnectionLimit int    // MAX_USER_CONNECTIONS of each account
	// Connect logs in as the target's admin account: CREATE USER, the
	// template WITH ADMIN OPTION, PROCESS and CONNECTION ADMIN (to end an
	// account's connections), SELECT on mysql.user (to list accounts) and,
	// on MariaDB, UPDATE on mysql.* (its SET DEFAULT ROLE FOR another user
	// asks write access to the mysql database; MySQL 8 asks only CREATE
	// USER).
	Connect func(ctx context.Context) (MySQLAdmin, error)
	Grants  Grants
	// Server holds the passwords of the accounts of one MySQL server,
	// shared by the provisioners of every target on it (Config.Server).
	Server *Server
	Logger *slog.Logger
	Now    func() time.Time // time.Now if nil
}

// MySQL provisions the accounts of one MySQL or MariaDB target:
// 'bastion_<user>_<request>'@'%', granted the template role, which is its
// default role. MariaDB has no VALID UNTIL: an account lasts until the
// sweep after its grant ends locks it, ends its connections and drops it.
type MySQL struct {
	cfg MySQLConfig
	log *slog.Logger
}

// NewMySQL checks cfg and returns a provisioner.
func NewMySQL(cfg MySQLConfig) (*MySQL, error) {
	if cfg.Connect == nil || !valid(cfg.Target, cfg.Template, cfg.ConnectionLimit, cfg.Grants) {
		return nil, errConfig
	}
	cfg.Now, cfg.Logger, cfg.Server = defaults(cfg.Now, cfg.Logger, cfg.Server)
	return &MySQL{cfg: cfg, log: cfg.Logger.With("component", "provision", "target", cfg.Target)}, nil
}

// MySQLUserName is the account of user's grant requestID: RoleName's
// bastion_<user>_<id>, cut to 32 bytes.
func MySQLUserName(user string, requestID int64) string {
	return accountName(user, requestID, maxMySQLUser)
}

// Account makes sure g's account exists, is unlocked and has a password
// this process knows, and returns its name and password.
func (p *MySQL) Account(ctx context.Context, g *access.Grant) (string, string, error) {
	if g == nil || g.Standing() {
		return "", "", errors.New("provision: only a request's grant gets an account")
	}
	name := MySQLUserName(g.User, g.RequestID)
	a := p.cfg.Server.account(name)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.password != "" && a.templates[p.cfg.Template] {
		return name, a.password, nil
	}
	password := a.password
	if password == "" {
		password = newPassword()
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	ac, err := p.cfg.Connect(ctx)
	if err != nil {
		return "", "", fmt.Errorf("provision: %s: admin login: %w", p.cfg.Target, err)
	}
	defer ac.Close()
	if err := p.ensure(ctx, ac, name, password, a.password == ""); err != nil {
		return "", "", fmt.Errorf("provision: %s: user %s: %w", p.cfg.Target, name, err)
	}
	a.password = password
	if a.templates == nil {
		a.templates = map[string]bool{}
	}
	a.templates[p.cfg.Template] = true
	p.log.Info("account ready", "user", name, "bastion_user", g.User, "request", g.RequestID)
	return name, password, nil
}

// ensure creates account name, or sets its password and unlocks it when
// it exists (made before a restart, or by a concurrent Bastion), and makes
// the template its default role. unknown: this process has not set the
// account up before, so whatever else it holds is revoked first.
func (p *MySQL) ensure(ctx context.Context, ac MySQLAdmin, name, password string, unknown bool) error {
	u := mysqlAccount(name)
	// The password goes as its mysql_native_password hash, so that it
	// appears in no server log. MySQL 8.4 has no mysql_native_password
	// by default, and MySQL 8 spells this IDENTIFIED WITH
	// mysql_native_password AS '*…'.
	auth := "IDENTIFIED BY PASSWORD " + quoteMySQLString(nativeHash(password)) +
		" WITH MAX_USER_CONNECTIONS " + strconv.Itoa(p.cfg.ConnectionLimit)
	stmts := []string{
		"CREATE USER IF NOT EXISTS " + u + " " + auth,
		"ALTER USER " + u + " " + auth + " ACCOUNT UNLOCK",
	}
	if unknown {
		stmts = append(stmts, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM "+u)
	}
	// MariaDB has one default role per account: targets on one server
	// with different templates share the account, and the last one's is
	// the default (MySQL 8 can SET DEFAULT ROLE ALL).
	role := quoteMySQLIdent(p.cfg.Template)
	stmts = append(stmts, "GRANT "+role+" TO "+u, "SET DEFAULT ROLE "+role+" FOR "+u)
	for _, s := range stmts {
		if err := ac.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", strings.Fields(s)[0]+" "+strings.Fields(s)[1], err)
		}
	}
	return nil
}

// nativeHash is mysql_native_password's stored form of password:
// *HEX(SHA1(SHA1(password))).
func nativeHash(password string) string {
	h1 := sha1.Sum([]byte(password))
	h2 := sha1.Sum(h1[:])
	return "*" + strings.ToUpper(hex.EncodeToString(h2[:]))
}

// mysqlAccount is 'name'@'%'.
func mysqlAccount(name string) string { return quoteMySQLString(name) + "@'%'" }

// quoteMySQLString quotes a string literal so that it reads the same
// with and without NO_BACKSLASH_ESCAPES: what is quoted here is
// allow-listed already ([a-z0-9_] names, [*0-9A-F] hashes), and for
// anything else a ' is doubled and a \ dropped.
func quoteMySQLString(s string) string {
	s = strings.ReplaceAll(s, `\`, "")
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// quoteMySQLIdent quotes an identifier with backticks.
func quoteMySQLIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// Sweep drops the accounts of grants that no longer hold. An error
// dropping one is logged and the others are still swept; the error
// returned is the first.
func (p *MySQL) Sweep(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	ac, err := p.cfg.Connect(ctx)
	if err != nil {
		return fmt.Errorf("provision: %s: admin login: %w", p.cfg.Target, err)
	}
	defer ac.Close()
	// Roles have Host ''; Bastion's accounts have '%'. '\_' is a literal
	// _ to LIKE with and without NO_BACKSLASH_ESCAPES.
	names, err := ac.Column(ctx, `SELECT User FROM mysql.user WHERE Host = '%' AND User LIKE 'bastion\_%'`)
	if err != nil {
		return fmt.Errorf("provision: %s: list users: %w", p.cfg.Target, err)
	}
	var first error
	for _, name := range names {
		why, err := ended(ctx, p.cfg.Grants, p.cfg.Now(), name, MySQLUserName)
		if err != nil || why == "" {
			if err != nil {
				p.log.Warn("user kept: its grant cannot be read", "user", name, "err", err)
			}
			continue
		}
		if err := p.drop(ctx, ac, name); err != nil {
			p.log.Error("user not dropped; retried at the next sweep", "user", name, "err", err)
			first = cmpOr(first, err)
			continue
		}
		p.log.Info("user dropped", "user", name, "why", why)
	}
	return first
}

// drop locks the account, ends its connections and drops it. Each step
// is idempotent.
func (p *MySQL) drop(ctx context.Context, ac MySQLAdmin, name string) error {
	a := p.cfg.Server.account(name)
	a.mu.Lock()
	defer a.mu.Unlock()
	u := mysqlAccount(name)
	// Locked first: no new connection between the listing of its
	// connections and the drop.
	if err := ac.Exec(ctx, "ALTER USER IF EXISTS "+u+" ACCOUNT LOCK"); err != nil {
		return err
	}
	a.password = "" // a later Account sets a new one
	ids, err := ac.Column(ctx, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = "+quoteMySQLString(name))
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := strconv.ParseUint(id, 10, 64); err != nil {
			return fmt.Errorf("connection ID %q: %w", id, err)
		}
		var ae interface{ ErrorCode() uint16 }
		if err := ac.Exec(ctx, "KILL CONNECTION "+id); err != nil && !(errors.As(err, &ae) && ae.ErrorCode() == errUnknownThread) {
			return err
		}
	}
	if err := ac.Exec(ctx, "DROP USER IF EXISTS "+u); err != nil {
		return err
	}
	p.cfg.Server.forget(name)
	return nil
}

// Run sweeps at once, then every SweepInterval and whenever wake fires,
// until ctx ends.
func (p *MySQL) Run(ctx context.Context, wake <-chan struct{}) { run(ctx, wake, p.Sweep, p.log) }
