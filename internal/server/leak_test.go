package server

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// leakWait bounds how long goroutines a test started may take to end after
// it: they are told to stop before the check, but ending is asynchronous.
const leakWait = 10 * time.Second

// TestMain fails the package if goroutines its tests started outlive them.
func TestMain(m *testing.M) {
	before := goroutines()
	code := m.Run()
	if code == 0 {
		if left := waitGoroutines(before); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "goroutines left after the tests:\n%s\n", strings.Join(left, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// checkGoroutines fails t if goroutines started during t are still running
// after its cleanups (the check is the first cleanup registered, so it runs
// last).
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := goroutines()
	t.Cleanup(func() {
		if left := waitGoroutines(before); len(left) > 0 {
			t.Errorf("%d goroutines left:\n%s", len(left), strings.Join(left, "\n\n"))
		}
	})
}

// waitGoroutines waits up to leakWait until every goroutine not in before
// has ended, and returns the stacks of those that have not.
func waitGoroutines(before map[string]string) []string {
	deadline := time.Now().Add(leakWait)
	for {
		var left []string
		for id, stack := range goroutines() {
			if _, ok := before[id]; !ok && !ignoredGoroutine(stack) {
				left = append(left, stack)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond) // polling the condition, not waiting in its place
	}
}

// ignoredGoroutine says whether a goroutine belongs to the test framework
// or the runtime rather than to the code under test.
func ignoredGoroutine(stack string) bool {
	for _, s := range []string{
		"testing.(*T).Run(",       // a parent test waiting for its subtests
		"testing.(*M).startAlarm", // -timeout
		"os/signal.signal_recv",   // signal.Notify's loop, started once for the process
	} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}

// goroutines returns the stack of every goroutine, by its ID.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	m := map[string]string{}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		header, _, _ := strings.Cut(string(g), "\n")
		id, _, ok := strings.Cut(strings.TrimPrefix(header, "goroutine "), " ")
		if ok {
			m[id] = string(g)
		}
	}
	return m
}
