// Package provision gives each user and grant an upstream database
// account of their own on a target configured with `provision:`, so that
// the target's own logs, pg_stat_activity and privileges name the real
// user rather than one account all sessions share.
//
// Before each upstream login of a grant's session, Account makes sure the
// role bastion_<user>_<request> exists, may log in until the grant ends and
// is a member of the template role (INHERIT: it has the template's
// privileges, and nothing else). Its password is random, held in memory
// only and sent to PostgreSQL as a SCRAM verifier, so it appears in no
// server log; after a Bastion restart the next session sets a new one.
//
// Sweep, run every SweepInterval and whenever a request changes, drops
// every role named bastion_… whose grant no longer holds (expired,
// revoked, unknown): NOLOGIN first, then its backends are terminated, then
// DROP OWNED BY and DROP ROLE. It is idempotent; an error is logged and the
// next sweep tries again, so what a crash leaves behind is dropped at the
// next start.
//
// MySQL (mysql.go) does the same on MySQL and MariaDB targets with
// 'bastion_<user>_<request>'@'%' accounts whose default role is the
// template; as MariaDB has no VALID UNTIL, only the sweep ends them:
// ACCOUNT LOCK, KILL CONNECTION of each of their connections, DROP USER.
package provision

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/dbauth"
	"github.com/bastionhq/bastion/bastion/store"
)

// SweepInterval is how often the roles of ended grants are looked for,
// besides every change of a request.
const SweepInterval = 10 * time.Second

// adminTimeout bounds one exchange with the admin account: an account's
// creation, or one sweep.
const adminTimeout = 15 * time.Second

// rolePrefix starts every role Bastion provisions.
const rolePrefix = "bastion_"

// maxRoleName is PostgreSQL's NAMEDATALEN-1: longer names are truncated
// by the server.
const maxRoleName = 63

// Grants is the subset of the store a sweep reads: the request behind a
// role.
type Grants interface {
	Request(ctx context.Context, id int64) (*store.Request, error)
}

// Config configures a Postgres provisioner for one target.
type Config struct {
	Target          string // the target's name, as requests name it
	Template        string // the role whose privileges each account gets
	ConnectionLimit int    // of each account
	// Connect logs in as the target's admin account (CREATEROLE, and
	// ADMIN of Template).
	Connect func(ctx context.Context) (*pgconn.PgConn, error)
	Grants  Grants
	// Server holds the passwords of the roles of one PostgreSQL server:
	// roles are the server's, so the provisioners of every target on it
	// must share one, or each would set its own password on a role the
	// others use. nil: a Server of the provisioner's own.
	Server *Server
	Logger *slog.Logger
	Now    func() time.Time // time.Now if nil
}

// Server is what Bastion knows of the roles it provisioned on one
// PostgreSQL server.
type Server struct {
	mu       sync.Mutex
	accounts map[string]*account // by role name
}

// NewServer returns an empty Server.
func NewServer() *Server { return &Server{accounts: map[string]*account{}} }

// Postgres provisions the accounts of one PostgreSQL target.
type Postgres struct {
	cfg Config
	log *slog.Logger
}

// account is what Bastion knows of a role it provisioned; mu serialises
// its creation, password change and drop.
type account struct {
	mu        sync.Mutex
	password  string          // "" until set by this process
	until     time.Time       // the VALID UNTIL set with password
	templates map[string]bool // granted to the role by this process
}

// NewPostgres checks cfg and returns a provisioner.
func NewPostgres(cfg Config) (*Postgres, error) {
	if cfg.Connect == nil || !valid(cfg.Target, cfg.Template, cfg.ConnectionLimit, cfg.Grants) {
		return nil, errConfig
	}
	cfg.Now, cfg.Logger, cfg.Server = defaults(cfg.Now, cfg.Logger, cfg.Server)
	return &Postgres{cfg: cfg, log: cfg.Logger.With("component", "provision", "target", cfg.Target)}, nil
}

// errConfig is what NewPostgres and NewMySQL say of a config missing a
// field.
var errConfig = errors.New("provision: Target, Connect, Grants, a template role name and a connection limit of at least 1 are required")

// valid says whether the fields every provisioner's config needs are set.
func valid(target, template string, limit int, grants Grants) bool {
	return grants != nil && target != "" && limit >= 1 && templateRE.MatchString(template)
}

// defaults fills in a config's optional fields.
func defaults(now func() time.Time, log *slog.Logger, s *Server) (func() time.Time, *slog.Logger, *Server) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	if s == nil {
		s = NewServer()
	}
	return now, log, s
}

// templateRE is the template role names accepted (the config's check):
// unquoted identifiers.
var templateRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// RoleName is the role of user's grant requestID: bastion_<user>_<id>, the
// user's name lower-cased with every character but [a-z0-9_] replaced by
// _, and cut so that the whole is at most 63 bytes.
func RoleName(user string, requestID int64) string { return accountName(user, requestID, maxRoleName) }

// accountName is bastion_<user>_<id> cut to at most max bytes.
func accountName(user string, requestID int64, max int) string {
	id := "_" + strconv.FormatInt(requestID, 10)
	u := sanitize(user)
	if room := max - len(rolePrefix) - len(id); len(u) > room {
		u = u[:room]
	}
	return rolePrefix + u + id
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		default:
			return '_'
		}
	}, s)
}

// roleRE is a role name RoleName makes.
var roleRE = regexp.MustCompile(`^bastion_[a-z0-9_]*_([0-9]{1,19})$`)

// requestOf is the request ID in a role name RoleName made, or false for
// any other name (left alone).
func requestOf(role string) (int64, bool) {
	m := roleRE.FindStringSubmatch(role)
	if m == nil || len(role) > maxRoleName {
		return 0, false
	}
	id, err := strconv.ParseInt(m[1], 10, 64)
	return id, err == nil && id > 0
}

// Account makes sure g's role exists, may log in until g ends and has a
// password this process knows, and returns its name and password.
func (p *Postgres) Account(ctx context.Context, g *access.Grant) (string, string, error) {
	if g == nil || g.Standing() {
		return "", "", errors.New("provision: only a request's grant gets an account")
	}
	name := RoleName(g.User, g.RequestID)
	a := p.account(name)
	a.mu.Lock()
	defer a.mu.Unlock()
	// Targets on one server share the role: each grants its own template.
	if a.password != "" && !g.Ends.After(a.until) && a.templates[p.cfg.Template] {
		return name, a.password, nil
	}
	password, until := a.password, g.Ends
	if password == "" {
		password = newPassword()
	}
	if until.Before(a.until) {
		until = a.until
	}
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	pc, err := p.cfg.Connect(ctx)
	if err != nil {
		return "", "", fmt.Errorf("provision: %s: admin login: %w", p.cfg.Target, err)
	}
	defer pc.Close(context.Background())
	if err := p.ensure(ctx, pc, name, password, until); err != nil {
		return "", "", fmt.Errorf("provision: %s: role %s: %w", p.cfg.Target, name, err)
	}
	a.password, a.until = password, until
	if a.templates == nil {
		a.templates = map[string]bool{}
	}
	a.templates[p.cfg.Template] = true
	p.log.Info("account ready", "role", name, "user", g.User, "request", g.RequestID, "until", until)
	return name, password, nil
}

// account is the entry of role name, made when missing.
func (p *Postgres) account(name string) *account { return p.cfg.Server.account(name) }

// account is the entry of account name, made when missing.
func (s *Server) account(name string) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[name]
	if a == nil {
		a = &account{}
		s.accounts[name] = a
	}
	return a
}

// ensure creates role name, or sets its password, LOGIN and VALID UNTIL
// when it exists (made before a restart, or by a concurrent Bastion).
func (p *Postgres) ensure(ctx context.Context, pc *pgconn.PgConn, name, password string, until time.Time) error {
	exists, err := roleExists(ctx, pc, name)
	if err != nil {
		return err
	}
	opts := fmt.Sprintf("LOGIN INHERIT CONNECTION LIMIT %d PASSWORD %s VALID UNTIL %s",
		p.cfg.ConnectionLimit, quoteLiteral(dbauth.Derive(password).SCRAM), quoteLiteral(until.UTC().Format("2006-01-02 15:04:05.999999+00")))
	var sql string
	if exists {
		// Only a superuser may alter a role with SUPERUSER, REPLICATION
		// or BYPASSRLS, so PostgreSQL refuses this ALTER for one (the
		// session is then refused); CREATEDB and CREATEROLE are cleared.
		sql = "ALTER ROLE " + quoteIdent(name) + " WITH NOCREATEDB NOCREATEROLE " + opts + "; GRANT " + quoteIdent(p.cfg.Template) + " TO " + quoteIdent(name)
	} else {
		// ADMIN CURRENT_USER makes the admin account a member of the new
		// role: what PostgreSQL 15 asks of DROP OWNED BY and of
		// terminating its backends.
		sql = "CREATE ROLE " + quoteIdent(name) + " WITH NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS " + opts +
			" IN ROLE " + quoteIdent(p.cfg.Template) + " ADMIN CURRENT_USER"
	}
	_, err = pc.Exec(ctx, sql).ReadAll()
	return err
}

func roleExists(ctx context.Context, pc *pgconn.PgConn, name string) (bool, error) {
	r := pc.ExecParams(ctx, "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", [][]byte{[]byte(name)}, nil, nil, nil).Read()
	return len(r.Rows) > 0, r.Err
}

// newPassword is 32 random characters of [A-Za-z0-9].
func newPassword() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 32)
	for i := range b {
		b[i] = alphabet[randIntn(len(alphabet))]
	}
	return string(b)
}

// randIntn is a uniform random int in [0, n), n ≤ 256.
func randIntn(n int) int {
	var b [1]byte
	limit := 256 - 256%n // reject what would bias the result
	for {
		rand.Read(b[:]) // never fails (crypto/rand)
		if int(b[0]) < limit {
			return int(b[0]) % n
		}
	}
}

// quoteIdent quotes a PostgreSQL identifier (role names here are checked
// against an allow-list already; quoting keeps their case).
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// quoteLiteral quotes a string literal as quote_literal does with
// standard_conforming_strings: every ' doubled, and, when it has a
// backslash, every \\ doubled and the E prefix.
func quoteLiteral(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		return "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}

// Sweep drops the roles of grants that no longer hold. An error dropping
// one role is logged and the others are still swept; the error returned is
// the first.
func (p *Postgres) Sweep(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	pc, err := p.cfg.Connect(ctx)
	if err != nil {
		return fmt.Errorf("provision: %s: admin login: %w", p.cfg.Target, err)
	}
	defer pc.Close(context.Background())
	r := pc.ExecParams(ctx, `SELECT rolname FROM pg_catalog.pg_roles WHERE rolname LIKE 'bastion\_%'`, nil, nil, nil, nil).Read()
	if r.Err != nil {
		return fmt.Errorf("provision: %s: list roles: %w", p.cfg.Target, r.Err)
	}
	var first error
	for _, row := range r.Rows {
		name := string(row[0])
		why, err := p.ended(ctx, name)
		if err != nil || why == "" {
			if err != nil {
				p.log.Warn("role kept: its grant cannot be read", "role", name, "err", err)
			}
			continue
		}
		if err := p.drop(ctx, pc, name); err != nil {
			p.log.Error("role not dropped; retried at the next sweep", "role", name, "err", err)
			first = cmpOr(first, err)
			continue
		}
		p.log.Info("role dropped", "role", name, "why", why)
	}
	return first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// ended says why role's grant no longer holds (its request is not
// approved now, or is not the role's user's, or does not exist), or ""
// while it does or when role is not one RoleName makes.
func (p *Postgres) ended(ctx context.Context, role string) (string, error) {
	return ended(ctx, p.cfg.Grants, p.cfg.Now(), role, RoleName)
}

// ended is Postgres.ended for any kind of server, nameOf naming the
// account of a user's request there.
func ended(ctx context.Context, grants Grants, now time.Time, role string, nameOf func(string, int64) string) (string, error) {
	id, ok := requestOf(role)
	if !ok {
		return "", nil
	}
	r, err := grants.Request(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fmt.Sprintf("request %d does not exist", id), nil
	case err != nil:
		return "", err
	case nameOf(r.Requester, r.ID) != role:
		return fmt.Sprintf("request %d is not %s's", id, role), nil
	}
	// Roles are the server's, not one database's: a role of a request
	// for another target on the same server is that target's to keep, so
	// the request's targets are not checked.
	if st := r.StateAt(now); st != store.Approved {
		return fmt.Sprintf("request %d is %s", id, st), nil
	}
	return "", nil
}

// drop locks role out, ends its sessions and drops it with what it owns
// in the admin connection's database. Each step is idempotent.
func (p *Postgres) drop(ctx context.Context, pc *pgconn.PgConn, role string) error {
	a := p.account(role)
	a.mu.Lock()
	defer a.mu.Unlock()
	q := quoteIdent(role)
	// Membership is what PostgreSQL 15 asks of terminating a role's
	// backends and of DROP OWNED BY; Bastion's own roles have it from
	// their creation, one left by an earlier version or an operator may
	// not.
	if _, err := pc.Exec(ctx, "ALTER ROLE "+q+" NOLOGIN; GRANT "+q+" TO CURRENT_USER").ReadAll(); err != nil {
		return err
	}
	a.password = "" // a later Account sets a new one
	r := pc.ExecParams(ctx, "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE usename = $1",
		[][]byte{[]byte(role)}, nil, nil, nil).Read()
	if r.Err != nil {
		return r.Err
	}
	if _, err := pc.Exec(ctx, "DROP OWNED BY "+q+"; DROP ROLE "+q).ReadAll(); err != nil {
		return err
	}
	p.cfg.Server.forget(role)
	return nil
}

// forget drops what is known of account name (dropped).
func (s *Server) forget(name string) {
	s.mu.Lock()
	delete(s.accounts, name)
	s.mu.Unlock()
}

// Run sweeps at once, then every SweepInterval and whenever wake fires,
// until ctx ends.
func (p *Postgres) Run(ctx context.Context, wake <-chan struct{}) { run(ctx, wake, p.Sweep, p.log) }

// run calls sweep at once, then every SweepInterval and whenever wake
// fires, until ctx ends.
func run(ctx context.Context, wake <-chan struct{}, sweep func(context.Context) error, log *slog.Logger) {
	t := time.NewTicker(SweepInterval)
	defer t.Stop()
	for {
		if err := sweep(ctx); err != nil && ctx.Err() == nil {
			log.Warn("sweep failed; retried", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-wake:
		}
	}
}
