package config_test

import (
	"net/netip"
	"testing"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
)

const forwardingHead = `data_dir: /data
users:
  - {name: alice, roles: [ops]}
roles:
  ops:
    forwarding:
`

func TestParseForwarding(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want policy.Forwarding
	}{
		{"unset", "      agent: true\n", policy.Forwarding{Agent: true}},
		{"booleans", "      local: true\n      remote: false\n      x11: true\n",
			policy.Forwarding{Local: policy.Destinations{Any: true}, X11: true}},
		{"lists", `      local: ["DB-Admin.internal.:8443", "10.1.2.0/24:443", "[fd00::/64]:*", "192.0.2.7:22"]
      remote: ["localhost:8080", "0.0.0.0:*"]
`, policy.Forwarding{
			Local: policy.Destinations{List: []policy.Destination{
				{Host: "db-admin.internal", Port: 8443},
				{Prefix: netip.MustParsePrefix("10.1.2.0/24"), Port: 443},
				{Prefix: netip.MustParsePrefix("fd00::/64")},
				{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Port: 22},
			}},
			Remote: policy.Destinations{List: []policy.Destination{
				{Host: "localhost", Port: 8080},
				{Prefix: netip.MustParsePrefix("0.0.0.0/32")},
			}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("bastion.yaml", []byte(forwardingHead+tt.yaml), testEnv)
			if err != nil {
				t.Fatal(err)
			}
			eq(t, cfg.Policy.Roles["ops"].Forwarding, tt.want)
		})
	}
}

func TestParseForwardingErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"a string instead of a bool", "      local: yes please\n",
			`bastion.yaml:7: roles.ops.forwarding.local: want true, false or a list of destinations like "db.internal:5432" or "10.1.2.0/24:443", not "yes please"`},
		{"an empty list", "      remote: []\n",
			`bastion.yaml:7: roles.ops.forwarding.remote: want true, false or a list of destinations like "db.internal:5432" or "10.1.2.0/24:443", not an empty list (write false to allow none)`},
		{"no port", "      local: [db.internal]\n",
			`bastion.yaml:7: roles.ops.forwarding.local[0]: destination "db.internal": want host:port, address:port or network/bits:port (IPv6 in [brackets]): address db.internal: missing port in address`},
		{"octal address", "      local:\n        - ok.internal:80\n        - 0177.0.0.1:80\n",
			`bastion.yaml:9: roles.ops.forwarding.local[1]: destination "0177.0.0.1:80": host "0177.0.0.1" looks like an address but is not one written plainly`},
		{"decimal address", "      local: [\"2130706433:80\"]\n",
			`bastion.yaml:7: roles.ops.forwarding.local[0]: destination "2130706433:80": host "2130706433" looks like an address but is not one written plainly`},
		{"bad port", "      local: [\"db:99999\"]\n",
			`bastion.yaml:7: roles.ops.forwarding.local[0]: destination "db:99999": port "99999" is not a port number from 1 to 65535 or *`},
		{"network with host bits", "      local: [\"10.1.2.3/24:443\"]\n",
			`bastion.yaml:7: roles.ops.forwarding.local[0]: destination "10.1.2.3/24:443": network "10.1.2.3/24" has host bits set (did you mean 10.1.2.0/24?)`},
		{"bad name", "      local: [\"db admin:443\"]\n",
			`bastion.yaml:7: roles.ops.forwarding.local[0]: destination "db admin:443": host "db admin" is not a host name or an address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkParseError(t, forwardingHead+tt.yaml, tt.want) })
	}
}
