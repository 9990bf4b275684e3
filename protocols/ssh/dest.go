package ssh

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bastionhq/bastion/bastion/policy"
)

// Forwarding destinations are decided by Bastion, not left to the target:
// a direct-tcpip channel (ssh -L, -W) goes only to an address Bastion
// checked, sent to the target as that address (never a name the target
// would resolve again), and never to what refusedNets lists, Bastion's own
// listeners or a configured target.

// resolveTimeout bounds resolving a forwarding destination's name.
const resolveTimeout = 5 * time.Second

// Resolver resolves forwarding destinations' names; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// refusedNets are the addresses no forward may reach, whatever a role
// says, and why (the reason is shown to the user). Reviewed as a table:
// add a class here, and a case to TestDestinationRefused.
var refusedNets = []struct {
	prefix netip.Prefix
	why    string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified address"}, // 0.0.0.0 reaches the host itself
	{netip.MustParsePrefix("::/128"), "an unspecified address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (cloud metadata services answer there)"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fd00:ec2::254/128"), "a cloud metadata address"},  // AWS, over IPv6
	{netip.MustParsePrefix("100.100.100.200/32"), "a cloud metadata address"}, // Alibaba Cloud
	{netip.MustParsePrefix("168.63.129.16/32"), "a cloud platform address"},   // Azure's wire server
	{netip.MustParsePrefix("::/96"), "an IPv4-compatible IPv6 address"},       // deprecated; may reach IPv4
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("255.255.255.255/32"), "a broadcast address"},
}

// embeddedV4 is the IPv4 address inside a NAT64 or 6to4 address, which
// may reach it: checked against refusedNets as well.
func embeddedV4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case !a.Is6():
		return netip.Addr{}, false
	case netip.MustParsePrefix("64:ff9b::/96").Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case netip.MustParsePrefix("2002::/16").Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// refusedClass is why a is never a forwarding destination, or "".
func refusedClass(a netip.Addr) string {
	a = a.Unmap()
	for _, n := range refusedNets {
		if n.prefix.Contains(a) {
			// ::/96 also holds :: and ::1, listed first with their own reason.
			return n.why
		}
	}
	if v4, ok := embeddedV4(a); ok {
		if why := refusedClass(v4); why != "" {
			return why + " inside an IPv6 address"
		}
	}
	return ""
}

// parseHost reads a forwarding host the way the target's resolver would:
// an address in any spelling inet_aton accepts (2130706433, 0177.0.0.1,
// 127.1, 0x7f.1), an IPv6 address (IPv4-mapped ones as IPv4), or else a
// host name. What reads as neither is an error.
func parseHost(host string) (addr netip.Addr, name string, err error) {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}, "", fmt.Errorf("%q has a zone", host)
		}
		return a.Unmap(), "", nil
	}
	if looksNumeric(h) {
		a, ok := inetAton(h)
		if !ok {
			return netip.Addr{}, "", fmt.Errorf("%q is not an address that reads one way only", host)
		}
		return a, "", nil
	}
	name, err = policy.HostName(h)
	return netip.Addr{}, name, err
}

// looksNumeric reports whether s is meant as an IPv4 address: its last
// dot-separated part (after an optional trailing dot) is a number.
func looksNumeric(s string) bool {
	s = strings.TrimSuffix(s, ".")
	last := s[strings.LastIndexByte(s, '.')+1:]
	if last == "" {
		return false
	}
	if l := strings.ToLower(last); strings.HasPrefix(l, "0x") {
		return true
	}
	return strings.Trim(last, "0123456789") == ""
}

// inetAton parses s as inet_aton(3) does: one to four parts, each decimal,
// octal (leading 0) or hexadecimal (0x), the last filling the remaining
// bytes.
func inetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals []uint64
	for _, p := range parts {
		base, digits := 10, p
		switch {
		case len(p) > 1 && (p[:2] == "0x" || p[:2] == "0X"):
			base, digits = 16, p[2:]
			if digits == "" { // "0x" alone is 0 to inet_aton
				digits = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		if digits == "" || strings.ContainsAny(digits, "+-_") {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(digits, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals = append(vals, v)
	}
	last := vals[len(vals)-1]
	var out uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		out |= v << (24 - 8*i)
	}
	if rest := 32 - 8*(len(vals)-1); last >= 1<<rest {
		return netip.Addr{}, false
	}
	out |= last
	return netip.AddrFrom4([4]byte{byte(out >> 24), byte(out >> 16), byte(out >> 8), byte(out)}), true
}

// destCheck decides the forwarding destinations of one connection.
type destCheck struct {
	allow   policy.Destinations
	resolve Resolver
	// own are Bastion's listeners; one bound to an unspecified address is
	// any of ownHosts on its port.
	own      []netip.AddrPort
	ownHosts []netip.Addr
	// targets are every configured target's address; targetNames those
	// given as names, as written.
	targets     []netip.AddrPort
	targetNames map[string]bool
}

// decide returns the address to forward to host:port, or why not (safe to
// show: it names what the user asked for, never anything else, and a host
// that does not parse only quoted).
func (d *destCheck) decide(ctx context.Context, host string, port uint32) (netip.AddrPort, string) {
	addr, name, err := parseHost(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Sprintf("forwarding is refused: %v", err)
	}
	dest := net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
	if port == 0 || port > 0xffff {
		return netip.AddrPort{}, fmt.Sprintf("forwarding to %s is refused: not a port", dest)
	}
	if name != "" && d.targetNames[net.JoinHostPort(name, strconv.FormatUint(uint64(port), 10))] {
		return netip.AddrPort{}, fmt.Sprintf("forwarding to %s is refused: it is a target of Bastion (connect through Bastion instead)", dest)
	}
	addrs := []netip.Addr{addr}
	if name != "" {
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		defer cancel()
		addrs, err = d.resolve.LookupNetIP(rctx, "ip", name)
		if err != nil || len(addrs) == 0 {
			return netip.AddrPort{}, fmt.Sprintf("forwarding to %s is refused: Bastion cannot resolve %s", dest, name)
		}
	}
	// Every address the name has is checked: the target must not be able
	// to reach a refused one, whichever it would pick.
	var chosen netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if why := d.refused(a, uint16(port)); why != "" {
			if name != "" {
				why = fmt.Sprintf("%s resolves to %s", name, why)
			}
			return netip.AddrPort{}, fmt.Sprintf("forwarding to %s is refused: %s", dest, why)
		}
		if !chosen.IsValid() && d.allow.Allows(name, a, uint16(port)) {
			chosen = a
		}
	}
	if !chosen.IsValid() {
		return netip.AddrPort{}, fmt.Sprintf("forwarding to %s is not among the destinations your role allows", dest)
	}
	return netip.AddrPortFrom(chosen, uint16(port)), ""
}

// refused is why a:port is never a destination, or "".
func (d *destCheck) refused(a netip.Addr, port uint16) string {
	if why := refusedClass(a); why != "" {
		return why
	}
	for _, l := range d.own {
		if l.Port() != port {
			continue
		}
		if l.Addr().Unmap() == a || (l.Addr().IsUnspecified() && containsAddr(d.ownHosts, a)) {
			return "one of Bastion's own listeners"
		}
	}
	for _, t := range d.targets {
		if t.Port() == port && t.Addr().Unmap() == a {
			return "a target of Bastion (connect through Bastion instead)"
		}
	}
	return ""
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if b.Unmap() == a {
			return true
		}
	}
	return false
}

// decideBind is why a remote forward (ssh -R) may not bind host:port on
// the target, or "". "" and "*" (every address) read as 0.0.0.0.
func decideBind(allow policy.Destinations, host string, port uint32) string {
	addr, name := netip.IPv4Unspecified(), ""
	if host != "" && host != "*" {
		var err error
		if addr, name, err = parseHost(host); err != nil {
			return fmt.Sprintf("remote forwarding is refused: %v", err)
		}
	}
	bind := net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
	switch {
	case port > 0xffff:
		return fmt.Sprintf("remote forwarding on %s is refused: not a port", bind)
	case allow.Any:
		return ""
	case !allow.Allows(name, addr, uint16(port)):
		// Port 0 asks the target to pick one: Allows matches it only with
		// an entry for any port ("*").
		return fmt.Sprintf("remote forwarding on %s is not among the bind addresses your role allows", bind)
	}
	return ""
}

// newDestCheck gathers what a connection's forwards are checked against:
// Bastion's listeners and addresses (local are those of the connection's
// two sockets), and every configured target's address (see targetCache).
func (s *Server) newDestCheck(ctx context.Context, allow policy.Destinations, local []net.Addr, log interface{ Warn(string, ...any) }) *destCheck {
	d := &destCheck{allow: allow, resolve: s.resolver(), ownHosts: hostAddrs()}
	for _, a := range local {
		if ta, ok := a.(*net.TCPAddr); ok {
			if ip, ok := netip.AddrFromSlice(ta.IP); ok {
				d.ownHosts = append(d.ownHosts, ip.Unmap())
			}
		}
	}
	if s.cfg.Listening != nil {
		d.own = listenerAddrs(s.cfg.Listening())
	}
	d.targets, d.targetNames = s.targets.get(ctx, s, log)
	return d
}

func (s *Server) resolver() Resolver {
	if s.cfg.Resolver == nil {
		return net.DefaultResolver
	}
	return s.cfg.Resolver
}

// targetsTTL is how long the targets' resolved addresses are reused: a
// connection's first forward must not resolve every target's name again.
const targetsTTL = time.Minute

// targetCache holds every configured target's address, names resolved.
type targetCache struct {
	mu    sync.Mutex
	at    time.Time
	addrs []netip.AddrPort
	names map[string]bool // "name:port" of targets given by name, as written
}

// get returns the targets' addresses, resolving them again when older than
// targetsTTL. A target name that does not resolve is logged and compared
// by name only.
func (c *targetCache) get(ctx context.Context, s *Server, log interface{ Warn(string, ...any) }) ([]netip.AddrPort, map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names != nil && time.Since(c.at) < targetsTTL {
		return c.addrs, c.names
	}
	c.addrs, c.names, c.at = nil, map[string]bool{}, time.Now()
	if s.cfg.TargetAddresses == nil {
		return c.addrs, c.names
	}
	for _, t := range s.cfg.TargetAddresses() {
		host, port, err := net.SplitHostPort(t)
		if err != nil {
			continue
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			continue
		}
		addr, name, err := parseHost(host)
		if err != nil {
			log.Warn("target address not understood; not compared with forwarding destinations", "address", t, "err", err)
			continue
		}
		if name == "" {
			c.addrs = append(c.addrs, netip.AddrPortFrom(addr, uint16(p)))
			continue
		}
		c.names[net.JoinHostPort(name, port)] = true
		rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
		addrs, err := s.resolver().LookupNetIP(rctx, "ip", name)
		cancel()
		if err != nil {
			log.Warn("target name does not resolve; compared with forwarding destinations by name only", "address", t, "err", err)
		}
		for _, a := range addrs {
			c.addrs = append(c.addrs, netip.AddrPortFrom(a.Unmap(), uint16(p)))
		}
	}
	return c.addrs, c.names
}

// listenerAddrs reads Bastion's listener addresses ("host:port"), leaving
// out those that do not parse as addresses (a listener is always bound to
// one).
func listenerAddrs(addrs []string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range addrs {
		if ap, err := netip.ParseAddrPort(s); err == nil {
			out = append(out, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	}
	return out
}

// hostAddrs are the addresses of this host's interfaces.
func hostAddrs() []netip.Addr {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ia := range ifaddrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}
