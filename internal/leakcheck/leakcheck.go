// Package leakcheck fails tests whose goroutines outlive them, in the
// pattern of tailscale's tstest.ResourceCheck and go.uber.org/goleak,
// written small.
//
// A goroutine is a leak when it was started after the check began (its ID
// is not among those running then: the runtime never reuses an ID) and is
// still running a few seconds after the test, or the package's tests, ended.
// Goroutines of the runtime and of the test framework are not counted. Check
// is for one test, Main for a whole package (from TestMain).
//
// Check sees every goroutine of the process, so a test that runs in
// parallel with others (t.Parallel) would be blamed for theirs: use Main in
// such packages, or call Check only from tests that do not run in parallel.
package leakcheck

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Wait bounds how long goroutines started by a test may take to end after
// it: they are usually told to stop by its cleanups, but ending is
// asynchronous.
const Wait = 5 * time.Second

// pollInterval is how often the goroutines are listed while waiting.
const pollInterval = 10 * time.Millisecond

// Check fails t if goroutines started from now on are still running after
// t and its cleanups have ended (waiting up to Wait), listing their stacks.
// Call it first in the test: its cleanup, registered first, runs last.
// A test that already failed is not checked: its goroutines may be stuck
// on the failure, which is reported already.
func Check(t testing.TB) {
	t.Helper()
	before := ids()
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		if left := find(before, Wait); len(left) > 0 {
			t.Errorf("leakcheck: %s", report("the test", left))
		}
	})
}

// Main runs the package's tests and exits; it fails the test binary if
// goroutines the tests started are still running after them (waiting up to
// Wait), listing their stacks on standard error. Use it as TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
func Main(m *testing.M) {
	before := Take()
	code := m.Run()
	if code == 0 {
		if err := before.Leaked(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// Snapshot is the goroutines running at one moment, for a TestMain that
// has its own setup and teardown, where Main does not fit:
//
//	before := leakcheck.Take()
//	code := m.Run()
//	teardown()
//	if err := before.Leaked(); err != nil && code == 0 {
//		fmt.Fprintln(os.Stderr, err)
//		code = 1
//	}
type Snapshot struct{ ids map[int64]bool }

// Take records the goroutines running now.
func Take() Snapshot { return Snapshot{ids()} }

// Leaked waits up to Wait until every goroutine started since s has ended,
// and returns an error listing the stacks of those still running, or nil.
func (s Snapshot) Leaked() error {
	if left := find(s.ids, Wait); len(left) > 0 {
		return fmt.Errorf("leakcheck: %s", report("the tests", left))
	}
	return nil
}

// goroutine is one goroutine of a stack dump.
type goroutine struct {
	id    int64
	stack string // as runtime.Stack prints it, header included
}

// find waits up to wait until every goroutine not in before has ended,
// polling, and returns those still running then, ignoring the caller's and
// those of the runtime and the test framework.
func find(before map[int64]bool, wait time.Duration) []goroutine {
	deadline := time.Now().Add(wait)
	for {
		var left []goroutine
		for _, g := range all() {
			if !before[g.id] && !ignored(g.stack) {
				left = append(left, g)
			}
		}
		if len(left) == 0 || !time.Now().Before(deadline) {
			return left
		}
		time.Sleep(pollInterval) // polling the condition, not waiting in its place
	}
}

// ignoredFrames mark goroutines that belong to the runtime or the test
// framework rather than to the code under test.
var ignoredFrames = []string{
	"\ntesting.(*T).Run(",        // a parent test waiting for its subtests
	"\ntesting.(*T).Parallel(",   // a parallel test waiting for its turn
	"\ntesting.(*M).startAlarm(", // -test.timeout's alarm
	"\nos/signal.signal_recv(",   // signal.Notify's loop, started once per process
	"\nos/signal.loop(",
}

func ignored(stack string) bool {
	for _, f := range ignoredFrames {
		if strings.Contains(stack, f) {
			return true
		}
	}
	return false
}

// ids returns the IDs of the goroutines running now, the caller's included.
func ids() map[int64]bool {
	m := map[int64]bool{}
	for _, g := range dump() {
		m[g.id] = true
	}
	return m
}

// all returns every goroutine but the caller's.
func all() []goroutine {
	gs := dump()
	if len(gs) > 0 {
		gs = gs[1:] // runtime.Stack lists the caller's first
	}
	return gs
}

// dump returns every goroutine runtime.Stack lists, the caller's first.
func dump() []goroutine {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var gs []goroutine
	for _, block := range bytes.Split(buf, []byte("\n\n")) {
		header, _, _ := bytes.Cut(block, []byte("\n"))
		rest, ok := bytes.CutPrefix(header, []byte("goroutine "))
		if !ok {
			continue
		}
		num, _, _ := bytes.Cut(rest, []byte(" "))
		id, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			continue
		}
		gs = append(gs, goroutine{id: id, stack: string(block)})
	}
	return gs
}

// report says how many goroutines outlived what and lists their stacks.
func report(what string, left []goroutine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d goroutines outlived %s by %s:", len(left), what, Wait)
	for _, g := range left {
		b.WriteString("\n\n")
		b.WriteString(g.stack)
	}
	return b.String()
}
