package server

import (
	"fmt"
	"os"
	"syscall"

	"github.com/bastionhq/bastion/bastion/cli"
	"github.com/bastionhq/bastion/internal/frontend"
)

// maxShare is the share of a limit above which /readyz reports Bastion
// unready: of the soft open-file limit (a load balancer then sends new
// clients elsewhere before accept starts failing with EMFILE), and of the
// cap on unauthenticated connections (before new ones are refused).
const maxShare = 0.9

// raiseOpenFileLimit raises the soft RLIMIT_NOFILE to the hard limit, and
// returns both as they are after. Go's os package already does this when
// the process starts (since Go 1.19); doing it again here makes it explicit
// where Bastion starts serving, and is what the start-up log reports.
func raiseOpenFileLimit() (soft, hard uint64, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, fmt.Errorf("getrlimit: %w", err)
	}
	if rl.Cur < rl.Max {
		raised := syscall.Rlimit{Cur: rl.Max, Max: rl.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return rl.Cur, rl.Max, fmt.Errorf("setrlimit: %w", err)
		}
		rl = raised
	}
	return rl.Cur, rl.Max, nil
}

// processStatus is this process's open files against its RLIMIT_NOFILE;
// OpenFiles is -1 when they cannot be counted (no /proc, or no descriptor
// left to read it with).
func processStatus() cli.ProcessStatus {
	p := cli.ProcessStatus{OpenFiles: -1}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		p.SoftLimit, p.HardLimit = clampInt(rl.Cur), clampInt(rl.Max)
	}
	if n, err := openFiles(); err == nil {
		p.OpenFiles = n
	}
	return p
}

// openFiles counts this process's open file descriptors (Linux).
func openFiles() (int, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return 0, err
	}
	return len(names) - 1, nil // less the descriptor that read the directory
}

// nearFileLimit says why p is too close to its open-file limit to take
// more clients, or "" when it is not.
func nearFileLimit(p cli.ProcessStatus) string {
	switch {
	case p.OpenFiles < 0:
		return "open files cannot be counted"
	case p.SoftLimit > 0 && float64(p.OpenFiles) > maxShare*float64(p.SoftLimit):
		return fmt.Sprintf("near the open-file limit (%d of %d)", p.OpenFiles, p.SoftLimit)
	}
	return ""
}

// nearConnectionCap says why the connections not yet authenticated are too
// close to their cap to take more clients, or "" when they are not.
func nearConnectionCap(s frontend.GateStats) string {
	if float64(s.Unauthenticated) > maxShare*float64(s.Limits.Unauthenticated) {
		return fmt.Sprintf("near the cap on unauthenticated connections (%d of %d)", s.Unauthenticated, s.Limits.Unauthenticated)
	}
	return ""
}

// spoolUnwritable says why new clients should go elsewhere while the
// recording spool's disk fails writes (fail-closed sessions are refused and
// recordings end), or "" when it takes them. Recordings in a directory
// have no spool.
func spoolUnwritable(r *recordings) string {
	if r == nil || r.spool == nil {
		return ""
	}
	if err := r.spool.DiskError(); err != nil {
		return "recording spool's disk cannot be written"
	}
	return ""
}

// clampInt converts a limit to an int; RLIM_INFINITY becomes the largest.
func clampInt(v uint64) int {
	const maxInt = int(^uint(0) >> 1)
	if v > uint64(maxInt) {
		return maxInt
	}
	return int(v)
}
