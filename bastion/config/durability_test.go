package config_test

import (
	"testing"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
)

// TestParseDurability: a role's durability is read as given; left out it
// is the default of the recording mode (policy.DurabilityFor).
func TestParseDurability(t *testing.T) {
	yaml := recordingBase + `
roles:
  strict:
    standing: [{targets: [web01], logins: [root]}]
  relaxed:
    durability: second
  open:
    recording: fail-open
  openstrict:
    recording: fail-open
    durability: statement
`
	cfg, err := config.Parse("bastion.yaml", []byte(yaml), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	for role, want := range map[string]policy.Durability{
		"strict": policy.DurableStatement, "relaxed": policy.DurableSecond,
		"open": policy.DurableSecond, "openstrict": policy.DurableStatement,
	} {
		eq(t, cfg.Policy.DurabilityFor("alice", "web01", role), want)
	}
}

// TestParseDurabilityError: an unknown durability names the field and the
// two choices.
func TestParseDurabilityError(t *testing.T) {
	checkParseError(t, recordingBase+"roles:\n  dev:\n    durability: fortnight\n",
		`bastion.yaml:9: roles.dev.durability: unknown durability "fortnight" (use statement: a statement reaches the target only once its record is durable; or second: records are made durable every second, and a crash can lose the last second)`)
}
