package policy

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Destinations are the forwarding addresses a role allows: none (the zero
// value), any address (Any), or the listed ones. Whatever they say, the
// SSH front end still refuses its own refused set (loopback, link-local,
// metadata, Bastion's listeners, targets' addresses).
type Destinations struct {
	Any  bool
	List []Destination
}

// Destination is one allowed forwarding address: a host name or an address
// (or network), and a port.
type Destination struct {
	Host   string       // a DNS name, lower case, no trailing dot; "" when Prefix is set
	Prefix netip.Prefix // an address (a single-address prefix) or a network
	Port   uint16       // 0: any port (written "*")
}

// Allowed reports whether any destination is allowed.
func (d Destinations) Allowed() bool { return d.Any || len(d.List) > 0 }

// Allows reports whether forwarding to port at addr is allowed, the user
// having named the destination name (a host name, lower case; "" when the
// user gave an address). A name entry matches the name only, never the
// address it resolves to: an allowed name does not allow its neighbours.
func (d Destinations) Allows(name string, addr netip.Addr, port uint16) bool {
	if d.Any {
		return true
	}
	for _, e := range d.List {
		if e.Port != 0 && e.Port != port {
			continue
		}
		if e.Host != "" {
			if name != "" && e.Host == name {
				return true
			}
			continue
		}
		if addr.IsValid() && e.Prefix.Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// CertPermits are the OpenSSH certificate extensions that permit the
// forwarding f allows: permit-port-forwarding for local or remote
// forwarding, permit-agent-forwarding, permit-X11-forwarding.
func (f Forwarding) CertPermits() map[string]string {
	ext := map[string]string{}
	if f.Local.Allowed() || f.Remote.Allowed() {
		ext["permit-port-forwarding"] = ""
	}
	if f.Agent {
		ext["permit-agent-forwarding"] = ""
	}
	if f.X11 {
		ext["permit-X11-forwarding"] = ""
	}
	return ext
}

// union is what either d or o allows.
func (d Destinations) union(o Destinations) Destinations {
	return Destinations{Any: d.Any || o.Any, List: append(append([]Destination(nil), d.List...), o.List...)}
}

// String is the destination as the configuration writes it.
func (e Destination) String() string {
	port := "*"
	if e.Port != 0 {
		port = strconv.Itoa(int(e.Port))
	}
	if e.Host != "" {
		return net.JoinHostPort(e.Host, port)
	}
	if e.Prefix.IsSingleIP() {
		return net.JoinHostPort(e.Prefix.Addr().String(), port)
	}
	return net.JoinHostPort(e.Prefix.String(), port)
}

// ParseDestination parses "host:port", "address:port", "network/bits:port"
// or the same with "[...]" around IPv6, the port a number or "*" for any.
// Addresses must be written plainly (no octal, hexadecimal or short forms),
// so that what the file says is what is matched.
func ParseDestination(s string) (Destination, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Destination{}, fmt.Errorf("want host:port, address:port or network/bits:port (IPv6 in [brackets]): %v", err)
	}
	var d Destination
	if port != "*" {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return Destination{}, fmt.Errorf("port %q is not a port number from 1 to 65535 or *", port)
		}
		d.Port = uint16(n)
	}
	if strings.Contains(host, "/") {
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return Destination{}, fmt.Errorf("network %q: %v", host, err)
		}
		if p.Masked() != p {
			return Destination{}, fmt.Errorf("network %q has host bits set (did you mean %s?)", host, p.Masked())
		}
		d.Prefix = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapBits(p.Addr()))
		return d, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return Destination{}, fmt.Errorf("address %q has a zone", host)
		}
		a = a.Unmap()
		d.Prefix = netip.PrefixFrom(a, a.BitLen())
		return d, nil
	}
	name, err := HostName(host)
	if err != nil {
		return Destination{}, err
	}
	d.Host = name
	return d, nil
}

// unmapBits is how many bits of an IPv4-mapped prefix's length belong to
// the ::ffff: part.
func unmapBits(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// HostName checks that s is a DNS host name (letters, digits, '-' and '_'
// in dot-separated labels, the last not all digits, so that no spelling of
// an address passes for a name) and returns it in lower case without a
// trailing dot.
func HostName(s string) (string, error) {
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if name == "" || len(name) > 253 {
		return "", fmt.Errorf("host %q is not a host name or an address", s)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", fmt.Errorf("host %q is not a host name or an address", s)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("host %q is not a host name or an address", s)
			}
		}
	}
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") {
		return "", fmt.Errorf("host %q looks like an address but is not one written plainly", s)
	}
	return name, nil
}
