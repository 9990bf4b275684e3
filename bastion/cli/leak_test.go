package cli

import (
	"testing"

	"github.com/bastionhq/bastion/internal/leakcheck"
)

// TestMain fails the package if a goroutine its tests started outlives
// them: a command runs on its caller's goroutine (an SSH channel's, the
// console's), so anything it leaves running is a leak per command line.
func TestMain(m *testing.M) { leakcheck.Main(m) }
