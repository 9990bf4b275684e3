package config

import (
	"regexp"

	"github.com/bastionhq/bastion/bastion/policy"
)

// DefaultProvisionConnectionLimit caps the upstream connections of one
// provisioned account when `provision.connection_limit` is left out.
const DefaultProvisionConnectionLimit = 16

// Provision has Bastion create an upstream account per user and grant on a
// database target, for the grant's duration, as a member of Template; the
// target's username is then the admin account that creates and drops
// them.
type Provision struct {
	Template        string // the role whose privileges each account gets
	ConnectionLimit int    // of each account
}

type rawProvision struct {
	Template        string `yaml:"template"`
	ConnectionLimit int    `yaml:"connection_limit"`
}

// roleNameRE is a role name Bastion accepts as a template: an unquoted
// identifier, at most 63 bytes (PostgreSQL's NAMEDATALEN-1; within
// MariaDB's and MySQL's limits too).
var roleNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// provision checks a database target's `provision:`.
func (v *validator) provision(field string, t rawTarget, target *Target) {
	if t.Provision == nil {
		return
	}
	field += ".provision"
	p := t.Provision
	switch {
	case target.Kind != policy.KindPostgres && target.Kind != policy.KindMySQL:
		v.errorf(field, "only postgres and mysql targets provision accounts (this one is %s)", target.Kind)
		return
	case p.Template == "":
		v.errorf(field+".template", "required: the role whose privileges each user's account gets")
		return
	case !roleNameRE.MatchString(p.Template):
		v.errorf(field+".template", "invalid role name %q (letters, digits, _; not starting with a digit; at most 63)", p.Template)
		return
	case p.ConnectionLimit < 0:
		v.errorf(field+".connection_limit", "must be at least 1 (or left out: %d)", DefaultProvisionConnectionLimit)
		return
	case target.Username == "":
		v.errorf(field, "the target's username must name the admin account that creates the users' accounts (it needs %s)", adminNeeds(target.Kind, p.Template))
		return
	}
	target.Provision = &Provision{Template: p.Template, ConnectionLimit: p.ConnectionLimit}
	if target.Provision.ConnectionLimit == 0 {
		target.Provision.ConnectionLimit = DefaultProvisionConnectionLimit
	}
}

// adminNeeds is what a target's admin account needs to provision accounts
// from template.
func adminNeeds(kind policy.Kind, template string) string {
	if kind == policy.KindMySQL {
		return "CREATE USER, PROCESS, CONNECTION ADMIN, SELECT on mysql.user, on MariaDB UPDATE on mysql.*, and " + template + " WITH ADMIN OPTION"
	}
	return "CREATEROLE and ADMIN of " + template
}
