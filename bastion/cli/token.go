package cli

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bastionhq/bastion/bastion/policy"
)

// dbConnection is one way into a database target, as `token` prints it.
type dbConnection struct {
	URL       string    `json:"url"`
	Host      string    `json:"host"`
	Port      int       `json:"port"`
	User      string    `json:"user"`
	Password  string    `json:"password"`
	Database  string    `json:"database"`
	Kind      string    `json:"kind"`
	Request   int64     `json:"request"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (r *run) token() error {
	id, err := r.id()
	if err != nil {
		return err
	}
	want := r.args.str("target")
	if r.databases == nil {
		return refusal("database access is not configured on this Bastion")
	}
	// Pick the target before making a secret, so that a wrong --target
	// does not replace the request's current secret.
	req, err := r.access.Get(r.ctx, r.actor, id)
	if err != nil {
		return err
	}
	db := r.databases()
	pol := r.policy()
	var targets []string
	for _, t := range req.Targets {
		if pt := pol.Targets[t]; pt != nil && port(db, pt.Kind) != 0 {
			targets = append(targets, t)
		}
	}
	switch {
	case want != "" && !slices.Contains(targets, want):
		return refusal("request %d grants no database target %q (it grants: %s)", id, want, orNone(targets))
	case want == "" && len(targets) > 1 && r.json:
		return usagef("request %d grants several databases (%s): choose one with --target", id, strings.Join(targets, ", "))
	case want != "":
		targets = []string{want}
	}
	sec, err := r.access.IssueDBSecret(r.ctx, r.actor, id)
	if err != nil {
		return err
	}
	if len(targets) == 0 {
		return refusal("request %d grants no database this Bastion serves", id)
	}
	var conns []dbConnection
	for _, t := range targets {
		kind := pol.Targets[t].Kind
		c := dbConnection{Host: db.Host, Port: port(db, kind), User: sec.User, Password: sec.Secret, Database: t,
			Kind: string(kind), Request: id, ExpiresAt: sec.ExpiresAt.UTC()}
		c.URL = connURL(c)
		conns = append(conns, c)
	}
	if r.json {
		r.printJSON(conns[0])
		return nil
	}
	r.printf("# valid until %s; a new token replaces this one\n", sec.ExpiresAt.UTC().Format(time.RFC3339))
	for _, c := range conns {
		r.printf("%s\n", c.URL)
		switch policy.Kind(c.Kind) {
		case policy.KindPostgres:
			r.printf("#   psql %q\n#   (to check Bastion's certificate: ca --tls > bastion-ca.pem, then sslmode=verify-full&sslrootcert=bastion-ca.pem)\n", c.URL)
		case policy.KindMySQL:
			r.printf("#   mariadb --ssl --protocol=TCP -h %s -P %d -u %s -p%s %s\n", c.Host, c.Port, c.User, c.Password, c.Database)
			r.printf("#   (TLS is required; to check Bastion's certificate: ca --tls > bastion-ca.pem, then --ssl-ca=bastion-ca.pem --ssl-verify-server-cert)\n")
		}
	}
	return nil
}

func port(db Databases, k policy.Kind) int {
	switch k {
	case policy.KindPostgres:
		return db.PostgresPort
	case policy.KindMySQL:
		return db.MySQLPort
	}
	return 0
}

// connURL is the connection URL of c: postgres://…?sslmode=require (the
// PostgreSQL front end always offers TLS) or mysql://….
func connURL(c dbConnection) string {
	u := url.URL{User: url.UserPassword(c.User, c.Password), Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port)), Path: "/" + c.Database}
	switch policy.Kind(c.Kind) {
	case policy.KindPostgres:
		u.Scheme, u.RawQuery = "postgres", "sslmode=require"
	default:
		u.Scheme = "mysql"
	}
	return u.String()
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// refusal is a refusal the CLI itself decides (exit 1).
func refusal(format string, args ...any) error {
	return &policy.Refusal{Reason: fmt.Sprintf(format, args...)}
}
