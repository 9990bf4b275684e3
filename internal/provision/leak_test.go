package provision

import (
	"testing"

	"github.com/bastionhq/bastion/internal/leakcheck"
)

// TestMain fails the package if a goroutine its tests started outlives them.
func TestMain(m *testing.M) { leakcheck.Main(m) }
