package server

import (
	"testing"

	"github.com/bastionhq/bastion/internal/leakcheck"
)

// TestMain fails the package if goroutines its tests started outlive them.
func TestMain(m *testing.M) { leakcheck.Main(m) }

// checkGoroutines fails t if goroutines started during t are still running
// after its cleanups (the check is the first cleanup registered, so it runs
// last).
func checkGoroutines(t *testing.T) { leakcheck.Check(t) }
