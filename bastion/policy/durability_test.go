package policy

import "testing"

// TestDurabilityFor: a role's durability defaults by its recording mode
// (statement under fail-closed, second under fail-open) unless it names
// one; standing access is second only when every role that gives it says
// so; unknown roles and targets get statement.
func TestDurabilityFor(t *testing.T) {
	standing := func(rec RecordingMode, d Durability) *Role {
		return &Role{Recording: rec, Durability: d, Standing: []Access{{Targets: Selector{Names: []string{"db"}}}}}
	}
	p := &Policy{
		Users: map[string]*User{
			"closed": {Roles: []string{"closed"}},
			"open":   {Roles: []string{"open"}},
			"mixed":  {Roles: []string{"open", "closed"}},
			"second": {Roles: []string{"second", "open"}},
		},
		Roles: map[string]*Role{
			"closed": standing("", ""),
			"open":   standing(FailOpen, ""),
			"second": standing(FailClosed, DurableSecond),
			"strict": {Recording: FailOpen, Durability: DurableStatement},
		},
		Targets: map[string]*Target{"db": {Name: "db", Kind: "postgres"}},
	}
	tests := []struct {
		name, user, target, role string
		want                     Durability
	}{
		{"fail-closed role by default", "closed", "db", "closed", DurableStatement},
		{"fail-open role by default", "open", "db", "open", DurableSecond},
		{"fail-closed role choosing second", "second", "db", "second", DurableSecond},
		{"fail-open role choosing statement", "open", "db", "strict", DurableStatement},
		{"unknown role", "closed", "db", "gone", DurableStatement},
		{"standing, fail-closed", "closed", "db", "", DurableStatement},
		{"standing, fail-open", "open", "db", "", DurableSecond},
		{"standing, one role of two wants statement", "mixed", "db", "", DurableStatement},
		{"standing, every role says second", "second", "db", "", DurableSecond},
		{"unknown target", "open", "nowhere", "", DurableStatement},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.DurabilityFor(tt.user, tt.target, tt.role); got != tt.want {
				t.Errorf("DurabilityFor(%q, %q, %q) = %q, want %q", tt.user, tt.target, tt.role, got, tt.want)
			}
		})
	}
}
