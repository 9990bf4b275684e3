package ssh

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/bastionhq/bastion/bastion/policy"
)

func TestParseHostSpellings(t *testing.T) {
	tests := []struct {
		host, addr, name, err string
	}{
		{host: "127.0.0.1", addr: "127.0.0.1"},
		{host: "2130706433", addr: "127.0.0.1"},
		{host: "0177.0.0.1", addr: "127.0.0.1"},
		{host: "127.1", addr: "127.0.0.1"},
		{host: "127.0.1", addr: "127.0.0.1"},
		{host: "0x7f.1", addr: "127.0.0.1"},
		{host: "0x7F000001", addr: "127.0.0.1"},
		{host: "017700000001", addr: "127.0.0.1"},
		{host: "::ffff:127.0.0.1", addr: "127.0.0.1"},
		{host: "[::ffff:7f00:1]", addr: "127.0.0.1"},
		{host: "0", addr: "0.0.0.0"},
		{host: "10.1.2.3", addr: "10.1.2.3"},
		{host: "fd00:ec2::254", addr: "fd00:ec2::254"},
		{host: "DB-Admin.Internal.", name: "db-admin.internal"},
		{host: "localhost", name: "localhost"},
		{host: "256.1.1.1", err: "reads one way only"},
		{host: "1.2.3.4.5", err: "reads one way only"},
		{host: "08.1.1.1", err: "reads one way only"}, // 08 is not octal
		{host: "127.0.0.0x", addr: "127.0.0.0"},       // "0x" alone is 0 to inet_aton
		{host: "4294967296", err: "reads one way only"},
		{host: "fe80::1%eth0", err: "has a zone"},
		{host: "a b", err: "not a host name"},
		{host: "evil.com\x00.internal", err: "not a host name"},
		{host: "", err: "not a host name"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			addr, name, err := parseHost(tt.host)
			switch {
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("parseHost(%q) = %v, %q, %v; want error %q", tt.host, addr, name, err, tt.err)
				}
			case err != nil:
				t.Fatalf("parseHost(%q): %v", tt.host, err)
			case tt.name != "" && (name != tt.name || addr.IsValid()):
				t.Fatalf("parseHost(%q) = %v, %q; want name %q", tt.host, addr, name, tt.name)
			case tt.addr != "" && (addr != netip.MustParseAddr(tt.addr) || name != ""):
				t.Fatalf("parseHost(%q) = %v, %q; want %s", tt.host, addr, name, tt.addr)
			}
		})
	}
}

// TestDestinationDecisions: what a forward may reach, with the role
// allowing any destination or a list; every refusal names its class.
func TestDestinationDecisions(t *testing.T) {
	resolver := fakeResolver{
		"db.internal":       {netip.MustParseAddr("10.0.0.5")},
		"db-admin.internal": {netip.MustParseAddr("10.9.0.7")},
		"localhost":         {netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
		"sneaky.example":    {netip.MustParseAddr("10.0.0.6"), netip.MustParseAddr("169.254.169.254")},
		"web02.internal":    {netip.MustParseAddr("10.0.0.22")},
		"bastion.internal":  {netip.MustParseAddr("192.0.2.10")},
	}
	d := &destCheck{
		allow:       policy.Destinations{Any: true},
		resolve:     resolver,
		own:         []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:2222"), netip.MustParseAddrPort("192.0.2.10:8080")},
		ownHosts:    []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("fd00::10")},
		targets:     []netip.AddrPort{netip.MustParseAddrPort("10.0.0.21:22"), netip.MustParseAddrPort("10.0.0.22:22")},
		targetNames: map[string]bool{"web02.internal:22": true},
	}
	list := *d
	list.allow = policy.Destinations{List: []policy.Destination{
		{Host: "db-admin.internal", Port: 8443},
		{Prefix: netip.MustParsePrefix("10.1.2.0/24"), Port: 443},
		{Prefix: netip.MustParsePrefix("10.0.0.0/16")}, // any port, so the refused set is what stops 10.0.0.21:22
	}}
	tests := []struct {
		name  string
		check *destCheck
		host  string
		port  uint32
		to    string // the address to connect to, or
		why   string // the refusal's distinguishing part
	}{
		{"an address", d, "10.0.0.5", 5432, "10.0.0.5:5432", ""},
		{"a name is resolved once and sent as its address", d, "db.internal", 5432, "10.0.0.5:5432", ""},
		{"loopback", d, "127.0.0.1", 80, "", "a loopback address"},
		{"loopback in decimal", d, "2130706433", 80, "", "a loopback address"},
		{"loopback in octal", d, "0177.0.0.1", 80, "", "a loopback address"},
		{"loopback short", d, "127.1", 80, "", "a loopback address"},
		{"loopback IPv4-mapped", d, "::ffff:127.0.0.1", 80, "", "a loopback address"},
		{"loopback IPv6", d, "::1", 80, "", "a loopback address"},
		{"loopback by name", d, "localhost", 80, "", "localhost resolves to a loopback address"},
		{"loopback by name, trailing dot", d, "LOCALHOST.", 80, "", "localhost resolves to a loopback address"},
		{"unspecified", d, "0.0.0.0", 80, "", "an unspecified address"},
		{"unspecified short", d, "0", 80, "", "an unspecified address"},
		{"unspecified IPv6", d, "::", 80, "", "an unspecified address"},
		{"metadata", d, "169.254.169.254", 80, "", "a link-local address"},
		{"metadata IPv6", d, "fd00:ec2::254", 80, "", "a cloud metadata address"},
		{"metadata in NAT64", d, "64:ff9b::a9fe:a9fe", 80, "", "link-local address (cloud metadata services answer there) inside an IPv6 address"},
		{"link-local IPv6", d, "fe80::1", 80, "", "a link-local address"},
		{"IPv4-compatible", d, "::7f00:1", 80, "", "an IPv4-compatible IPv6 address"},
		{"multicast", d, "224.0.0.1", 80, "", "a multicast address"},
		{"one bad address among a name's", d, "sneaky.example", 80, "", "sneaky.example resolves to a link-local address"},
		{"a name that does not resolve", d, "nowhere.internal", 80, "", "Bastion cannot resolve nowhere.internal"},
		{"Bastion's listener on every address", d, "192.0.2.10", 2222, "", "one of Bastion's own listeners"},
		{"Bastion's listener, IPv6 address", d, "fd00::10", 2222, "", "one of Bastion's own listeners"},
		{"Bastion's listener by name", d, "bastion.internal", 2222, "", "bastion.internal resolves to one of Bastion's own listeners"},
		{"Bastion's host on another port", d, "192.0.2.10", 9999, "192.0.2.10:9999", ""},
		{"Bastion's specific listener", d, "192.0.2.10", 8080, "", "one of Bastion's own listeners"},
		{"a target's address", d, "10.0.0.21", 22, "", "a target of Bastion"},
		{"a target's address, mapped", d, "::ffff:10.0.0.21", 22, "", "a target of Bastion"},
		{"a target's name", d, "web02.internal", 22, "", "a target of Bastion"},
		{"a target's name, other case", d, "WEB02.internal", 22, "", "a target of Bastion"},
		{"a target host on another port", d, "10.0.0.21", 80, "10.0.0.21:80", ""},
		{"not a port", d, "10.0.0.5", 0, "", "not a port"},
		{"unreadable", d, "1.2.3.4.5", 80, "", "reads one way only"},

		{"list: a listed name", &list, "db-admin.internal", 8443, "10.9.0.7:8443", ""},
		{"list: a listed name, other port", &list, "db-admin.internal", 22, "", "not among the destinations your role allows"},
		{"list: the listed name's address is not the name", &list, "10.9.0.7", 8443, "", "not among the destinations"},
		{"list: in a listed network", &list, "10.1.2.9", 443, "10.1.2.9:443", ""},
		{"list: in a listed network, other port", &list, "10.1.2.9", 80, "", "not among the destinations"},
		{"list: a name resolving into a listed network", &list, "db.internal", 5432, "10.0.0.5:5432", ""},
		{"list: the refused set still applies", &list, "10.0.0.21", 22, "", "a target of Bastion"},
		{"list: loopback still refused", &list, "127.0.0.1", 443, "", "a loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to, why := tt.check.decide(context.Background(), tt.host, tt.port)
			if tt.why == "" {
				if why != "" || to.String() != tt.to {
					t.Fatalf("decide(%s, %d) = %v, %q; want %s", tt.host, tt.port, to, why, tt.to)
				}
				return
			}
			if to.IsValid() || !strings.Contains(why, tt.why) {
				t.Fatalf("decide(%s, %d) = %v, %q; want a refusal saying %q", tt.host, tt.port, to, why, tt.why)
			}
		})
	}
}

func TestDecideBind(t *testing.T) {
	allow := policy.Destinations{List: []policy.Destination{
		{Host: "localhost", Port: 8080},
		{Prefix: netip.MustParsePrefix("127.0.0.1/32")},
	}}
	tests := []struct {
		name  string
		allow policy.Destinations
		host  string
		port  uint32
		ok    bool
	}{
		{"any: every address", policy.Destinations{Any: true}, "", 8080, true},
		{"listed name and port", allow, "localhost", 8080, true},
		{"listed name, other port", allow, "localhost", 9090, false},
		{"listed address, any port", allow, "127.0.0.1", 9090, true},
		{"listed address, other spelling", allow, "127.1", 9090, true},
		{"listed address, port chosen by the target", allow, "127.0.0.1", 0, true},
		{"listed name, port chosen by the target", allow, "localhost", 0, false},
		{"every address", allow, "", 8080, false},
		{"every address, star", allow, "*", 8080, false},
		{"another address", allow, "192.0.2.2", 8080, false},
		{"unreadable", allow, "1.2.3.4.5", 8080, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			why := decideBind(tt.allow, tt.host, tt.port)
			if (why == "") != tt.ok {
				t.Fatalf("decideBind(%q, %d) = %q; want allowed %v", tt.host, tt.port, why, tt.ok)
			}
		})
	}
}

// FuzzParseHost: any host a client sends is read one way or refused, and
// an address read from any spelling is refused exactly when its plain
// spelling is.
func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "2130706433", "0177.0.0.1", "127.1", "0x7f.1", "::ffff:127.0.0.1", "[::1]", "db.internal", "1.2.3.4.5", "0x", "08.1", "fe80::1%eth0", "LOCALHOST."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		addr, name, err := parseHost(host)
		switch {
		case err != nil:
			if addr.IsValid() || name != "" {
				t.Fatalf("parseHost(%q) = %v, %q with error %v", host, addr, name, err)
			}
		case addr.IsValid() == (name != ""):
			t.Fatalf("parseHost(%q) = %v, %q: want exactly one of an address and a name", host, addr, name)
		case addr.IsValid():
			if addr.Is4In6() || addr.Zone() != "" {
				t.Fatalf("parseHost(%q) = %v: not unmapped or has a zone", host, addr)
			}
			again, _, err := parseHost(addr.String())
			if err != nil || again != addr || refusedClass(again) != refusedClass(addr) {
				t.Fatalf("parseHost(%q) = %v, but its plain spelling reads %v, %v", host, addr, again, err)
			}
		default:
			if _, err := netip.ParseAddr(name); err == nil || looksNumeric(name) {
				t.Fatalf("parseHost(%q) = name %q, which reads as an address", host, name)
			}
		}
	})
}

// countingResolver counts its lookups.
type countingResolver struct {
	fakeResolver
	n *int
}

func (r countingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	*r.n++
	return r.fakeResolver.LookupNetIP(ctx, network, host)
}

// TestDestCheckGathers: a connection's forwards are checked against
// Bastion's listeners (one on every address counts on the connection's
// own addresses) and every target's address, names resolved once for the
// whole server.
func TestDestCheckGathers(t *testing.T) {
	lookups := 0
	s := &Server{cfg: Config{
		Listening: func() []string { return []string{"[::]:2222", "127.0.0.1:8080"} },
		TargetAddresses: func() []string {
			return []string{"10.0.0.21:22", "web02.internal:22", "gone.internal:22", "orders.internal:5432"}
		},
		Resolver: countingResolver{fakeResolver{
			"web02.internal": {netip.MustParseAddr("10.0.0.22")}, "orders.internal": {netip.MustParseAddr("10.0.0.30")},
		}, &lookups},
	}}
	local := []net.Addr{&net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 2222}}
	log := slog.New(slog.DiscardHandler)
	var d *destCheck
	for range 2 {
		d = s.newDestCheck(context.Background(), policy.Destinations{Any: true}, local, log)
	}
	if lookups != 3 {
		t.Errorf("%d lookups for two connections; want the three target names once", lookups)
	}
	for _, tc := range []struct {
		host string
		port uint32
		why  string
	}{
		{"198.51.100.7", 2222, "one of Bastion's own listeners"},
		{"10.0.0.21", 22, "a target of Bastion"},
		{"10.0.0.22", 22, "a target of Bastion"},
		{"web02.internal", 22, "a target of Bastion"},
		{"gone.internal", 22, "a target of Bastion"}, // unresolvable: compared by name
		{"10.0.0.30", 5432, "a target of Bastion"},
		{"198.51.100.7", 22, ""},
	} {
		_, why := d.decide(context.Background(), tc.host, tc.port)
		if (tc.why == "") != (why == "") || !strings.Contains(why, tc.why) {
			t.Errorf("decide(%s, %d) = %q; want %q", tc.host, tc.port, why, tc.why)
		}
	}
}
