package policy_test

import (
	"net/netip"
	"testing"

	"github.com/bastionhq/bastion/bastion/policy"
)

func TestDestinationsAllows(t *testing.T) {
	list := policy.Destinations{List: []policy.Destination{
		{Host: "db-admin.internal", Port: 8443},
		{Prefix: netip.MustParsePrefix("10.1.2.0/24"), Port: 443},
		{Prefix: netip.MustParsePrefix("fd00::/64")},
	}}
	tests := []struct {
		name  string
		d     policy.Destinations
		host  string
		addr  string
		port  uint16
		allow bool
	}{
		{"none allows nothing", policy.Destinations{}, "", "10.1.2.3", 443, false},
		{"any allows anything", policy.Destinations{Any: true}, "", "10.9.9.9", 1, true},
		{"listed name and port", list, "db-admin.internal", "10.9.0.7", 8443, true},
		{"listed name, other port", list, "db-admin.internal", "10.9.0.7", 22, false},
		{"the listed name's address, not named", list, "", "10.9.0.7", 8443, false},
		{"in the listed network", list, "", "10.1.2.200", 443, true},
		{"in the network, named otherwise", list, "other.internal", "10.1.2.200", 443, true},
		{"in the network, other port", list, "", "10.1.2.200", 80, false},
		{"outside the network", list, "", "10.1.3.1", 443, false},
		{"IPv4-mapped in the network", list, "", "::ffff:10.1.2.3", 443, true},
		{"any port of an IPv6 network", list, "", "fd00::5", 65535, true},
		{"port 0 matches only any-port entries", list, "", "10.1.2.3", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.Allows(tt.host, netip.MustParseAddr(tt.addr), tt.port); got != tt.allow {
				t.Errorf("Allows(%q, %s, %d) = %v; want %v", tt.host, tt.addr, tt.port, got, tt.allow)
			}
		})
	}
}

// For standing access the forwarding of every role covering the target
// adds up; under a request, only the request's role counts.
func TestForwardingForAddsUp(t *testing.T) {
	web := policy.Selector{Names: []string{"web01"}}
	p := &policy.Policy{
		Users:   map[string]*policy.User{"alice": {Name: "alice", Roles: []string{"a", "b"}}},
		Targets: map[string]*policy.Target{"web01": {Name: "web01", Kind: policy.KindSSH}},
		Roles: map[string]*policy.Role{
			"a": {Name: "a", Standing: []policy.Access{{Targets: web, Logins: []string{"root"}}},
				Forwarding: policy.Forwarding{Local: policy.Destinations{List: []policy.Destination{{Host: "db", Port: 5432}}}, Agent: true}},
			"b": {Name: "b", Standing: []policy.Access{{Targets: web, Logins: []string{"root"}}},
				Forwarding: policy.Forwarding{Local: policy.Destinations{List: []policy.Destination{{Host: "cache", Port: 6379}}}, Remote: policy.Destinations{Any: true}}},
		},
	}
	f := p.ForwardingFor("alice", "web01", "")
	if !f.Local.Allows("db", netip.Addr{}, 5432) || !f.Local.Allows("cache", netip.Addr{}, 6379) || !f.Remote.Any || !f.Agent || f.X11 {
		t.Errorf("standing forwarding %+v; want both lists, remote from b, agent from a", f)
	}
	if got := p.ForwardingFor("alice", "web01", "a").CertPermits(); len(got) != 2 {
		t.Errorf("role a's certificate permits %v; want port and agent forwarding", got)
	}
	if f := p.ForwardingFor("mallory", "web01", "a"); f.Local.Allowed() || f.Agent {
		t.Errorf("a user without role a got its forwarding: %+v", f)
	}
}
