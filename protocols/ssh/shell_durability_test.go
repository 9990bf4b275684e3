package ssh

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/recorder"
)

// committingStorage is recording storage whose objects count their group
// commits, note what the target had run at each, and fail them once
// broken is set.
type committingStorage struct {
	recorder.Storage
	ran    func() []string // what the target has run
	broken atomic.Bool

	mu      sync.Mutex
	commits [][]string // for each commit: what the target had run by then
}

func (s *committingStorage) Create(ctx context.Context, name string) (recorder.Object, error) {
	o, err := s.Storage.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return committingObject{o, s}, nil
}

func (s *committingStorage) snapshot() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commits)
}

type committingObject struct {
	recorder.Object
	s *committingStorage
}

var _ recorder.Committer = committingObject{}

func (o committingObject) Commit(ctx context.Context) error {
	if o.s.broken.Load() {
		return errDiskFailed
	}
	o.s.mu.Lock()
	o.s.commits = append(o.s.commits, o.s.ran())
	o.s.mu.Unlock()
	return recorder.Commit(ctx, o.Object)
}

// allowAll is command rules that restrict nobody: shells are not filtered.
type allowAll struct{}

func (allowAll) CheckExec(context.Context, string, string, string) ExecDecision {
	return ExecDecision{}
}

// TestShellLineDurableBeforeItRuns checks that under recording:
// fail-closed each typed line's marker is committed before its Enter
// reaches the target (with command rules, and without: then the filter
// only records), that a failed commit keeps the line from the target and
// ends the session, and that a fail-open session waits for no commit.
func TestShellLineDurableBeforeItRuns(t *testing.T) {
	tests := []struct {
		name     string
		rules    ExecRules
		failOpen bool
	}{
		{"command rules, fail closed", fakeRules{}, false},
		{"no command rules, fail closed", allowAll{}, false},
		{"no command rules, fail open", allowAll{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &committingStorage{}
			e := newEnv(t, func(e *env, cfg *Config) {
				st.Storage, st.ran = e.recordings, e.target.commands
				cfg.Recordings = st
				cfg.ExecRules = tt.rules
				cfg.FailOpen = func(*access.Grant) bool { return tt.failOpen }
			})
			c := e.mustDial("root@web01", "alice")
			s, in, out := ptyShell(t, c)
			waitOutput(t, out, "$ ")
			for _, line := range []string{"echo one", "echo two"} {
				if _, err := io.WriteString(in, line+"\r"); err != nil {
					t.Fatal(err)
				}
				waitOutput(t, out, strings.TrimPrefix(line, "echo ")+"\r\n$ ")
			}
			commits := st.snapshot()
			if tt.failOpen {
				if len(commits) != 0 {
					t.Errorf("commits %q; want none in a fail-open session", commits)
				}
			} else if !slices.EqualFunc(commits, [][]string{nil, {"echo one"}}, slices.Equal) {
				t.Errorf("the target had run %q at each commit; want one commit before each line ran", commits)
			}
			st.broken.Store(true)
			if _, err := io.WriteString(in, "echo three\r"); err != nil {
				t.Fatal(err)
			}
			if tt.failOpen {
				waitOutput(t, out, "three\r\n$ ")
				return
			}
			// The session ends (how the target's shell exits races with
			// the channel's close: the reason below says why it ended).
			_ = waitSession(t, s)
			if got := e.target.commands(); slices.Contains(got, "echo three") {
				t.Errorf("the target ran %q; want the line whose commit failed never to run", got)
			}
			c.Close()
			waitFor(t, "the session's end", func() bool { _, ended := e.sessions.snapshot(); return len(ended) == 1 })
			created, ended := e.sessions.snapshot()
			if !strings.Contains(ended[0].reason, "recording failed") || !strings.Contains(ended[0].reason, errDiskFailed.Error()) {
				t.Errorf("session end %+v; want the failed commit as its reason", ended[0])
			}
			cast := readRecording(t, e, created[0].Recording)
			for _, want := range []string{`"m", "line: echo one"`, `"m", "line: echo two"`} {
				if !strings.Contains(cast, want) {
					t.Errorf("recording lacks %s:\n%s", want, cast)
				}
			}
		})
	}
}

// TestShellPasteDurableBeforeItRuns checks that under fail-closed a
// paste's lines are committed before any of the paste reaches the target
// (a shell without a line editor runs them as they arrive).
func TestShellPasteDurableBeforeItRuns(t *testing.T) {
	st := &committingStorage{}
	e := newEnv(t, func(e *env, cfg *Config) {
		st.Storage, st.ran = e.recordings, e.target.commands
		cfg.Recordings = st
	})
	c := e.mustDial("root@web01", "alice")
	_, in, out := ptyShell(t, c)
	waitOutput(t, out, "$ ")
	if _, err := io.WriteString(in, "\x1b[200~echo p1\recho p2\r\x1b[201~"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the paste's lines to run", func() bool { return len(e.target.commands()) == 2 })
	if commits := st.snapshot(); len(commits) != 1 || len(commits[0]) != 0 {
		t.Errorf("the target had run %q at each commit; want one commit before any of the paste ran", commits)
	}
	c.Close()
	waitFor(t, "the session's end", func() bool { _, ended := e.sessions.snapshot(); return len(ended) == 1 })
	created, _ := e.sessions.snapshot()
	if cast := readRecording(t, e, created[0].Recording); !strings.Contains(cast, `"m", "line: echo p1\necho p2"`) {
		t.Errorf("recording lacks the paste's line marker:\n%s", cast)
	}
}
