package config_test

import (
	"cmp"
	"testing"

	"github.com/bastionhq/bastion/bastion/config"
)

const provisionHead = `
data_dir: /var/lib/bastion
users:
  - {name: alice, keys: ["` + aliceKey + `"]}
targets:
  - name: shop
`

const provisionBase = provisionHead + `    kind: postgres
    address: "10.0.0.2:5432"
    username: bastion_admin
`

// TestParseProvision: a postgres or mysql target's provision is read with its
// template; the connection limit defaults.
func TestParseProvision(t *testing.T) {
	for _, tc := range []struct {
		name, base, extra string // base: provisionBase if empty
		want              config.Provision
	}{
		{name: "default limit", extra: "    provision: {template: app_readonly}\n",
			want: config.Provision{Template: "app_readonly", ConnectionLimit: config.DefaultProvisionConnectionLimit}},
		{name: "mysql", base: provisionHead + "    kind: mysql\n    address: \"10.0.0.2:3306\"\n    username: bastion_admin\n", extra: "    provision: {template: app_ro}\n",
			want: config.Provision{Template: "app_ro", ConnectionLimit: config.DefaultProvisionConnectionLimit}},
		{name: "limit", extra: "    provision: {template: App_RO2, connection_limit: 3}\n",
			want: config.Provision{Template: "App_RO2", ConnectionLimit: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := cmp.Or(tc.base, provisionBase)
			cfg, err := config.Parse("bastion.yaml", []byte(base+tc.extra), testEnv)
			if err != nil {
				t.Fatal(err)
			}
			p := cfg.Targets["shop"].Provision
			if p == nil {
				t.Fatal("no provision")
			}
			eq(t, *p, tc.want)
		})
	}
	cfg, err := config.Parse("bastion.yaml", []byte(provisionBase), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Targets["shop"].Provision != nil {
		t.Error("a target without provision: provisions")
	}
}

// TestParseProvisionErrors: each error names the field and its line.
func TestParseProvisionErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"no template", provisionBase + "    provision: {connection_limit: 2}\n",
			`bastion.yaml:10: targets[0].provision.template: required: the role whose privileges each user's account gets`},
		{"quoted name", provisionBase + "    provision: {template: 'app\"; DROP ROLE x; --'}\n",
			`bastion.yaml:10: targets[0].provision.template: invalid role name "app\"; DROP ROLE x; --" (letters, digits, _; not starting with a digit; at most 63)`},
		{"negative limit", provisionBase + "    provision: {template: ro, connection_limit: -1}\n",
			`bastion.yaml:10: targets[0].provision.connection_limit: must be at least 1 (or left out: 16)`},
		{"ssh", provisionHead + "    kind: ssh\n    address: \"10.0.0.2:22\"\n    username: a\n    provision: {template: ro}\n",
			`bastion.yaml:10: targets[0].provision: only postgres and mysql targets provision accounts (this one is ssh)`},
		{"mysql no admin", provisionHead + "    kind: mysql\n    address: \"10.0.0.2:3306\"\n    provision: {template: ro}\n",
			`bastion.yaml:9: targets[0].provision: the target's username must name the admin account that creates the users' accounts (it needs CREATE USER, PROCESS, CONNECTION ADMIN, SELECT on mysql.user, on MariaDB UPDATE on mysql.*, and ro WITH ADMIN OPTION)`},
		{"no admin", provisionHead + "    kind: postgres\n    address: \"10.0.0.2:5432\"\n    provision: {template: ro}\n",
			`bastion.yaml:9: targets[0].provision: the target's username must name the admin account that creates the users' accounts (it needs CREATEROLE and ADMIN of ro)`},
	} {
		t.Run(tc.name, func(t *testing.T) { checkParseError(t, tc.yaml, tc.want) })
	}
}
