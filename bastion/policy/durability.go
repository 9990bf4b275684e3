package policy

import "slices"

// Durability is when the record of a statement (or of an SSH exec command)
// is durable in the spool, relative to its reaching the target: what a crash
// of Bastion can lose.
type Durability string

const (
	// DurableStatement forwards a statement to the target only once its
	// record is durable (group commit: one fsync for every session's
	// records waiting). A crash loses no statement that reached the target.
	// The default of fail-closed roles.
	DurableStatement Durability = "statement"
	// DurableSecond buffers records and makes them durable every second: a
	// crash can lose the statements of the last second. The default of
	// fail-open roles.
	DurableSecond Durability = "second"
)

// durability is r's own, with the default of its recording mode.
func (r *Role) durability() Durability {
	switch {
	case r.Durability != "":
		return r.Durability
	case r.Recording == FailOpen:
		return DurableSecond
	default:
		return DurableStatement
	}
}

// DurabilityFor is the durability of a session of user on target under the
// grant of role ("" for standing access): statement when any role that
// gives that access asks for it (or when none is known), second only when
// every one says so.
func (p *Policy) DurabilityFor(user, target, role string) Durability {
	if role != "" {
		if r := p.Roles[role]; r != nil {
			return r.durability()
		}
		return DurableStatement
	}
	t := p.Targets[target]
	if t == nil {
		return DurableStatement
	}
	d := DurableStatement
	for _, r := range p.roles(user) {
		if slices.ContainsFunc(r.Standing, func(a Access) bool { return a.Targets.Matches(t) }) {
			if r.durability() == DurableStatement {
				return DurableStatement
			}
			d = DurableSecond
		}
	}
	return d
}
