package access

import "github.com/bastionhq/bastion/bastion/policy"

// certPermits are the permit-* extensions of a certificate issued under a
// role with forwarding f: a terminal always, forwarding only what the role
// allows. Bastion's SSH front end honours a certificate's extensions and
// the role's forwarding together, so a certificate lacking one refuses it
// even where the role allows it.
func certPermits(f policy.Forwarding) map[string]string {
	ext := map[string]string{"permit-pty": ""}
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
