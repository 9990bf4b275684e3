package ssh

import (
	"testing"

	"github.com/bastionhq/bastion/internal/leakcheck"
)

// TestMain fails the package if a goroutine its tests started outlives them
// (the tests that start a Server also check it one by one, with
// leakcheck.Check in newEnv).
func TestMain(m *testing.M) { leakcheck.Main(m) }
