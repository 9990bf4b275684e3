package ssh

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
)

// TestNarrowByCertificate: a session may do what its role allows and, when
// the user logged in with a certificate, what the certificate permits too.
func TestNarrowByCertificate(t *testing.T) {
	all := Permits{Local: policy.Destinations{Any: true}, Remote: policy.Destinations{Any: true}, Agent: true, X11: true}
	cert := func(permits ...string) map[string]string {
		c := &ssh.Certificate{Permissions: ssh.Permissions{Extensions: map[string]string{"target-web01@bastionhq.dev": ""}}}
		for _, p := range permits {
			c.Extensions[p] = ""
		}
		return map[string]string{extCertPermits: certPermits(c)}
	}
	tests := []struct {
		name string
		role Permits
		ext  map[string]string
		want string // upstream extensions, sorted
	}{
		{"plain key: the role decides", all, map[string]string{}, "permit-X11-forwarding permit-agent-forwarding permit-port-forwarding permit-pty"},
		{"plain key, role allows nothing", Permits{}, map[string]string{}, "permit-pty"},
		{"certificate permitting everything", all, cert("permit-pty", "permit-port-forwarding", "permit-agent-forwarding", "permit-X11-forwarding", "permit-user-rc"),
			"permit-X11-forwarding permit-agent-forwarding permit-port-forwarding permit-pty"},
		{"certificate permitting nothing", all, cert(), ""},
		{"certificate permitting only a terminal", all, cert("permit-pty"), "permit-pty"},
		{"certificate permits what the role does not", Permits{}, cert("permit-pty", "permit-port-forwarding", "permit-agent-forwarding"), "permit-pty"},
		{"role and certificate agree on agent only", Permits{Agent: true, Local: policy.Destinations{Any: true}}, cert("permit-agent-forwarding"), "permit-agent-forwarding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(slices.Sorted(maps.Keys(narrow(tt.role, tt.ext).upstreamExtensions())), " ")
			if got != tt.want {
				t.Errorf("upstream extensions %q; want %q", got, tt.want)
			}
		})
	}
	if why := notPermitted("port forwarding (-L)", true, "permit-port-forwarding"); why != "port forwarding (-L) is not permitted by your certificate (it lacks permit-port-forwarding)" {
		t.Errorf("refusal for a certificate: %q", why)
	}
	if why := notPermitted("port forwarding (-L)", false, "permit-port-forwarding"); why != "port forwarding (-L) is not allowed by your role" {
		t.Errorf("refusal by the role: %q", why)
	}
}

// TestUpstreamCertificateCarriesOnlyWhatIsAllowed: the per-session
// certificate to the target has no blanket permits.
func TestUpstreamCertificateCarriesOnlyWhatIsAllowed(t *testing.T) {
	e := newEnv(t, func(_ *env, cfg *Config) {
		cfg.Permits = func(*access.Grant) Permits { return Permits{Agent: true} }
	})
	c := e.mustDial("root@web01", "alice")
	if r := run(t, c, "echo ok", nil); r.stdout != "ok\n" {
		t.Fatalf("exec: %v", r)
	}
	e.upstreamCA.mu.Lock()
	defer e.upstreamCA.mu.Unlock()
	if len(e.upstreamCA.reqs) != 1 {
		t.Fatalf("%d upstream certificates; want 1", len(e.upstreamCA.reqs))
	}
	got := strings.Join(slices.Sorted(maps.Keys(e.upstreamCA.reqs[0].Extensions)), " ")
	if got != "permit-agent-forwarding permit-pty" {
		t.Errorf("upstream certificate extensions %q; want only permit-agent-forwarding permit-pty", got)
	}
}

// TestNewChannelAfterRevocation: a channel opened on a live connection
// after its grant stopped holding is refused at once, not at the watcher's
// next pass, and never reaches the target.
func TestNewChannelAfterRevocation(t *testing.T) {
	e := newEnv(t, func(_ *env, cfg *Config) {
		cfg.Permits = func(*access.Grant) Permits {
			return Permits{Local: policy.Destinations{Any: true}, Remote: policy.Destinations{Any: true}}
		}
		cfg.Resolver = fakeResolver{}
	})
	c := e.mustDial("root@web01", "alice")
	if r := run(t, c, "echo before", nil); r.stdout != "before\n" {
		t.Fatalf("exec before the revocation: %v", r)
	}
	e.grants.fail(&policy.Refusal{Reason: "request 7 was revoked by carol"})
	// No wake and well inside the watcher's second: only the check at
	// channel open can refuse it.
	r := run(t, c, "echo after", nil)
	if r.err == nil || !strings.Contains(r.err.Error(), "your access to web01 ended: request 7 was revoked by carol") {
		t.Errorf("exec after the revocation: %v; want the channel refused with the reason", r)
	}
	if slices.Contains(e.target.commands(), "echo after") {
		t.Error("the command reached the target after the revocation")
	}
	waitFor(t, "the refusal's audit event", func() bool {
		return slices.ContainsFunc(e.audit.of(audit.Forward), func(ev audit.Event) bool { return strings.Contains(ev.Reason, "revoked by carol") })
	})
}

// TestNewForwardAfterRevocation: likewise a remote forward (-R).
func TestNewForwardAfterRevocation(t *testing.T) {
	e := newEnv(t, func(_ *env, cfg *Config) {
		cfg.Permits = func(*access.Grant) Permits { return Permits{Remote: policy.Destinations{Any: true}} }
	})
	c := e.mustDial("root@web01", "alice")
	e.grants.fail(&policy.Refusal{Reason: "request 7 was revoked by carol"})
	if l, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
		t.Fatal("-R after the revocation succeeded")
	}
	e.target.mu.Lock()
	n := len(e.target.forwards)
	e.target.mu.Unlock()
	if n != 0 {
		t.Errorf("the target was asked for %d forwards after the revocation", n)
	}
}

// TestRemoteForwardBindList: with a list, -R binds only on the listed
// addresses and ports; the refusal is audited with its reason.
func TestRemoteForwardBindList(t *testing.T) {
	e := newEnv(t, func(_ *env, cfg *Config) {
		cfg.Permits = func(*access.Grant) Permits {
			return Permits{Remote: policy.Destinations{List: []policy.Destination{{Prefix: netip.MustParsePrefix("127.0.0.1/32"), Port: 8080}}}}
		}
	})
	c := e.mustDial("root@web01", "alice")
	for _, bind := range []string{"0.0.0.0:8080", "127.0.0.1:9090"} {
		if l, err := c.Listen("tcp", bind); err == nil {
			l.Close()
			t.Errorf("-R on %s succeeded; want it refused", bind)
		}
	}
	l, err := c.Listen("tcp", "127.0.0.1:8080")
	if err != nil {
		t.Fatalf("-R on the listed 127.0.0.1:8080: %v", err)
	}
	l.Close()
	fwd := e.audit.of(audit.Forward)
	if len(fwd) != 2 || !strings.Contains(fwd[0].Reason, "remote forwarding on 0.0.0.0:8080 is not among the bind addresses your role allows") {
		t.Errorf("forward events %+v; want the two refusals with their reason", fwd)
	}
}

// TestUnixSocketForwardRefused: ssh -R with a Unix socket is refused and
// audited even where the role allows remote forwarding.
func TestUnixSocketForwardRefused(t *testing.T) {
	e := newEnv(t, func(_ *env, cfg *Config) {
		cfg.Permits = func(*access.Grant) Permits { return Permits{Remote: policy.Destinations{Any: true}} }
	})
	c := e.mustDial("root@web01", "alice")
	if l, err := c.ListenUnix("/tmp/bastion-test.sock"); err == nil {
		l.Close()
		t.Fatal("-R of a Unix socket succeeded")
	}
	fwd := e.audit.of(audit.Forward)
	if len(fwd) != 1 || fwd[0].Reason != "remote forwarding of Unix sockets is not allowed" {
		t.Errorf("forward events %+v; want the refusal", fwd)
	}
}
