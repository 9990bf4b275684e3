package ssh

import (
	"maps"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// extCertPermits carries the permit-* extensions of the user's certificate
// (space-separated) from authentication to the session; absent when the
// user logged in with a plain key.
const extCertPermits = "bastion-cert-permits"

// certPermits is the value of extCertPermits for cert.
func certPermits(cert *ssh.Certificate) string {
	var names []string
	for _, k := range slices.Sorted(maps.Keys(cert.Extensions)) {
		if strings.HasPrefix(k, "permit-") {
			names = append(names, k)
		}
	}
	return strings.Join(names, " ")
}

// allowed is what one session may do beyond running commands: the role's
// forwarding, narrowed by the user's certificate.
type allowed struct {
	Permits
	PTY bool
}

// narrow is what the role allows (role) that the user's certificate also
// permits. A certificate permits only the extensions it carries, as
// OpenSSH's sshd reads them; with a plain key (no extCertPermits) the role
// alone decides, and a terminal is allowed.
func narrow(role Permits, ext map[string]string) allowed {
	list, isCert := ext[extCertPermits]
	if !isCert {
		return allowed{Permits: role, PTY: true}
	}
	has := map[string]bool{}
	for _, p := range strings.Fields(list) {
		has[p] = true
	}
	a := allowed{Permits: role, PTY: has["permit-pty"]}
	if !has["permit-port-forwarding"] {
		a.Local, a.Remote = Permits{}.Local, Permits{}.Remote
	}
	a.Agent = a.Agent && has["permit-agent-forwarding"]
	a.X11 = a.X11 && has["permit-X11-forwarding"]
	return a
}

// upstreamExtensions are the permit-* extensions of the per-session
// certificate to the target: what this session is allowed, nothing more
// (never permit-user-rc: ~/.ssh/rc would run commands no rule checks).
func (a allowed) upstreamExtensions() map[string]string {
	ext := a.Permits.CertPermits()
	if a.PTY {
		ext["permit-pty"] = ""
	}
	return ext
}

// notPermitted is why what (a forwarding kind or a terminal) is refused:
// the role, if it does not allow it (a certificate Bastion issued then
// lacks it too), else the user's certificate, naming the extension.
func notPermitted(what string, roleAllows bool, certKey string) string {
	if !roleAllows {
		return what + " is not allowed by your role"
	}
	return what + " is not permitted by your certificate (it lacks " + certKey + ")"
}
