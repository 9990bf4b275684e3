package ssh

import (
	"fmt"
	"strings"
)

// MaxUsernameLength bounds the SSH user name (OpenSSH allows far longer; no
// login@target needs more).
const MaxUsernameLength = 128

// Destination is what the SSH user name asks for: the self-service
// interface of a Bastion user ("alice"), or a login on a target
// ("root@web01": OpenSSH splits user@host at the last '@', so
// `ssh root@web01@bastion` sends the user "root@web01").
type Destination struct {
	User   string // self-service: the Bastion user name
	Login  string // target session: the login on the target
	Target string // target session: the target name
}

// IsTarget reports whether the destination is a target session.
func (d Destination) IsTarget() bool { return d.Target != "" }

// ParseUsername parses and validates an SSH user name.
func ParseUsername(s string) (Destination, error) {
	if s == "" {
		return Destination{}, fmt.Errorf("empty user name")
	}
	if len(s) > MaxUsernameLength {
		return Destination{}, fmt.Errorf("user name too long (%d bytes, at most %d)", len(s), MaxUsernameLength)
	}
	login, target, isTarget := strings.Cut(s, "@")
	if !isTarget {
		if !validName(s, false) {
			return Destination{}, fmt.Errorf("invalid user name \"%s\" (want USER, or LOGIN@TARGET)", printable(s))
		}
		return Destination{User: s}, nil
	}
	if !validName(login, false) || !validName(target, true) {
		return Destination{}, fmt.Errorf("invalid user name \"%s\" (want LOGIN@TARGET, e.g. root@web01)", printable(s))
	}
	return Destination{Login: login, Target: target}, nil
}

// validName accepts user and login names ([a-z_][a-z0-9._-]*, as
// useradd does by default, plus upper case) and target names (which may
// start with a digit).
func validName(s string, target bool) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case c >= '0' && c <= '9', c == '-', c == '.':
			if i == 0 && !target && c != '_' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// printable quotes s with control and non-ASCII bytes escaped, for error
// messages and logs.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}
