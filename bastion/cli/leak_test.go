package cli

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// leakWait bounds how long a goroutine a test started may take to end
// after it.
const leakWait = 5 * time.Second

// TestMain fails the package if a goroutine its tests started outlives
// them: a command runs on its caller's goroutine (an SSH channel's, the
// console's), so anything it leaves running is a leak per command line.
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

// waitGoroutines waits up to leakWait until every goroutine not in before
// has ended, and returns the stacks of those that have not.
func waitGoroutines(before map[string]bool) []string {
	deadline := time.Now().Add(leakWait)
	for {
		var left []string
		for id, stack := range stacks() {
			if !before[id] && !strings.Contains(stack, "testing.(*M).startAlarm") {
				left = append(left, stack)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond) // polling the condition, not waiting in its place
	}
}

func goroutines() map[string]bool {
	ids := map[string]bool{}
	for id := range stacks() {
		ids[id] = true
	}
	return ids
}

// stacks returns the stack of every goroutine but the caller's, by its
// "goroutine N" header.
func stacks() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 {
			continue // this goroutine
		}
		id, _, _ := bytes.Cut(g, []byte(" ["))
		out[string(id)] = string(g)
	}
	return out
}
