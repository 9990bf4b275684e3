package server

import (
	"fmt"
	"os"
	"syscall"

	"github.com/bastionhq/bastion/bastion/cli"
)

// maxOpenFilesShare is the share of the soft open-file limit above which
// /readyz reports Bastion unready: a load balancer then sends new clients
// elsewhere before accept starts failing with EMFILE.
const maxOpenFilesShare = 0.9

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
	case p.SoftLimit > 0 && float64(p.OpenFiles) > maxOpenFilesShare*float64(p.SoftLimit):
		return fmt.Sprintf("near the open-file limit (%d of %d)", p.OpenFiles, p.SoftLimit)
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
