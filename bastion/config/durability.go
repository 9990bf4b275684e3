package config

import "github.com/bastionhq/bastion/bastion/policy"

// durability checks a role's `durability:` ("" takes the default of its
// recording mode: statement under fail-closed, second under fail-open).
func (v *validator) durability(field, s string) policy.Durability {
	switch d := policy.Durability(s); d {
	case "", policy.DurableStatement, policy.DurableSecond:
		return d
	default:
		v.errorf(field, "unknown durability %q (use statement: a statement reaches the target only once its record is durable; or second: records are made durable every second, and a crash can lose the last second)", s)
		return policy.DurableStatement
	}
}
