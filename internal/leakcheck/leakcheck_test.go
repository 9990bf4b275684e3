package leakcheck

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The package's own tests are checked by it.
func TestMain(m *testing.M) { Main(m) }

// plantedLeak blocks until release is closed.
func plantedLeak(release chan struct{}, started *sync.WaitGroup) {
	started.Done()
	<-release
}

// plant starts a goroutine in plantedLeak and returns the function that
// ends it.
func plant() (release func()) {
	ch := make(chan struct{})
	var started sync.WaitGroup
	started.Add(1)
	go plantedLeak(ch, &started)
	started.Wait()
	return func() { close(ch) }
}

func TestFindCatchesALeak(t *testing.T) {
	before := ids()
	release := plant()
	left := find(before, 0)
	if len(left) != 1 || !strings.Contains(left[0].stack, "leakcheck.plantedLeak(") {
		t.Fatalf("find = %v, want the planted goroutine", left)
	}
	if r := report("the test", left); !strings.HasPrefix(r, "1 goroutines outlived the test by 5s:\n\ngoroutine ") || !strings.Contains(r, "plantedLeak") {
		t.Errorf("report:\n%s", r)
	}
	release()
	// find polls until the goroutine, told to stop, has ended.
	if left := find(before, Wait); len(left) != 0 {
		t.Fatalf("after its release: %v", left)
	}
}

func TestSnapshot(t *testing.T) {
	before := Take()
	release := plant()
	if err := before.Leaked(); err == nil || !strings.HasPrefix(err.Error(), "leakcheck: 1 goroutines outlived the tests by 5s:") || !strings.Contains(err.Error(), "plantedLeak") {
		t.Fatalf("Leaked with a planted goroutine: %v", err)
	}
	release()
	if err := before.Leaked(); err != nil {
		t.Fatalf("Leaked after its release: %v", err)
	}
}

func TestFindIgnoresEarlierGoroutines(t *testing.T) {
	release := plant()
	defer release()
	if left := find(ids(), 0); len(left) != 0 {
		t.Fatalf("a goroutine started before the check was reported: %v", left)
	}
}

func TestIgnored(t *testing.T) {
	tests := []struct {
		name  string
		stack string
		want  bool
	}{
		{"parent test", "goroutine 7 [chan receive]:\ntesting.(*T).Run(0xc000003a40, {0x5b1b9e, 0x4}, 0x5c6f48)\n\t/usr/lib/go/src/testing/testing.go:2005 +0x485", true},
		{"parallel test waiting", "goroutine 9 [chan receive]:\ntesting.(*T).Parallel(0xc000003c00)\n\t/x/testing.go:1577 +0x225", true},
		{"signal loop", "goroutine 5 [syscall]:\nos/signal.signal_recv()\n\t/x/sigqueue.go:152 +0x29\nos/signal.loop()", true},
		{"a test's own goroutine", "goroutine 12 [chan receive]:\nexample.com/p.worker(0xc000010000)\n\t/x/p.go:10 +0x25\ncreated by testing.(*T).Run in goroutine 7", false},
		{"code named like the framework", "goroutine 13 [select]:\nexample.com/testing.(*T).Runner()\n\t/x/t.go:3 +0x1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ignored(tt.stack); got != tt.want {
				t.Errorf("ignored = %v, want %v", got, tt.want)
			}
		})
	}
	// The real thing: signal.Notify's goroutine lives as long as the
	// process, and is not the test's leak.
	before := ids()
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGWINCH)
	defer signal.Stop(c)
	if left := find(before, 0); len(left) != 0 {
		t.Fatalf("signal.Notify's goroutine was reported: %v", left)
	}
}

// fakeTB is the part of a testing.TB that Check uses, recording what it
// reports.
type fakeTB struct {
	testing.TB
	failed   bool
	errors   []string
	cleanups []func()
}

func (f *fakeTB) Helper()                   {}
func (f *fakeTB) Failed() bool              { return f.failed }
func (f *fakeTB) Cleanup(fn func())         { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Errorf(s string, a ...any) { f.errors = append(f.errors, fmt.Sprintf(s, a...)) }

// end runs the cleanups as testing does: the last registered first.
func (f *fakeTB) end() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

func TestCheck(t *testing.T) {
	t.Run("a leak fails the test", func(t *testing.T) {
		f := &fakeTB{}
		Check(f)
		release := plant()
		defer release()
		f.end()
		if len(f.errors) != 1 || !strings.HasPrefix(f.errors[0], "leakcheck: 1 goroutines outlived the test") || !strings.Contains(f.errors[0], "plantedLeak") {
			t.Fatalf("errors: %q", f.errors)
		}
	})
	t.Run("goroutines stopped by later cleanups are no leak", func(t *testing.T) {
		f := &fakeTB{}
		Check(f)
		release := plant()
		f.Cleanup(release)
		f.end()
		if len(f.errors) != 0 {
			t.Fatalf("errors: %q", f.errors)
		}
	})
	t.Run("a failed test is not checked", func(t *testing.T) {
		f := &fakeTB{failed: true}
		Check(f)
		release := plant()
		defer release()
		f.end()
		if len(f.errors) != 0 {
			t.Fatalf("errors: %q", f.errors)
		}
	})
}

// TestMainFailsTheBinary runs this test binary again with a test that
// leaks: Main must make it exit 1 and list the leaked stack.
func TestMainFailsTheBinary(t *testing.T) {
	if os.Getenv("LEAKCHECK_PLANT") == "1" {
		t.Skip("run by TestMainFailsTheBinary")
	}
	for _, tt := range []struct {
		name  string
		plant string
		code  int
	}{
		{"a test that leaks", "1", 1},
		{"a test that does not", "0", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestPlanted$", "-test.count=1")
			cmd.Env = append(os.Environ(), "LEAKCHECK_PLANT="+tt.plant)
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			leaked := strings.Contains(string(out), "leakcheck: 1 goroutines outlived the tests by") && strings.Contains(string(out), "leakcheck.plantedLeak(")
			if code != tt.code || leaked != (tt.code == 1) {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.code, out)
			}
		})
	}
}

// TestPlanted leaks a goroutine when run by TestMainFailsTheBinary with
// LEAKCHECK_PLANT=1.
func TestPlanted(t *testing.T) {
	switch os.Getenv("LEAKCHECK_PLANT") {
	case "1":
		plant() // never released
	case "0":
		plant()()
	default:
		t.Skip("run by TestMainFailsTheBinary")
	}
}
