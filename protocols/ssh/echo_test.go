package ssh

import (
	"strings"
	"testing"
	"time"
)

func TestEchoTracker(t *testing.T) {
	tests := []struct {
		name  string
		steps []string // "i:…" typed, "o:…" output, "w" wait past the window, "f" flush
		want  string
	}{
		{"echoed command", []string{"i:ls -l", "o:ls -l", "i:\r", "o:\r\n"}, "ls -l\r"},
		{"password at a no-echo prompt", []string{"o:Password: ", "i:hunter2", "w", "i:\r", "o:\r\n"}, "*******\r"},
		{"echo arrives in pieces", []string{"i:abc", "o:a", "o:bc"}, "abc"},
		{"asterisk echo is redacted", []string{"i:pw", "o:**", "w", "f"}, "**"},
		{"undecided input is redacted at the end", []string{"i:secret", "f"}, "******"},
		{"control keys recorded as typed", []string{"i:\x1b[A\x7f"}, "\x1b[A\x7f"},
		{"order is kept", []string{"i:ab", "o:b", "w", "i:c", "o:c"}, "**c"},
		{"a later occurrence is not an echo", []string{"i:hunter2", "o:\r\nlength-7\r\n", "w", "f"}, "*******"},
		{"echo after escape sequences", []string{"i:ls", "o:\x1b[?2004lls"}, "ls"},
		{"typed ahead behind a password", []string{"i:pw", "w", "i:\rls", "o:ls"}, "**\rls"},
		{"echo after a prompt redraw", []string{"i:echo hi", "o:\r\x1b[K\rready> echo hi\r\n"}, "echo hi"},
		{"three letters inside output are not an echo", []string{"i:len", "o:\r\nthe length", "w", "f"}, "***"},
		{"a password typed just before the next command", []string{"o:Password: ", "i:hunter2\r", "o:\r\nok\r\n$ ", "i:echo visible\r", "o:echo visible\r\n"}, "*******\recho visible\r"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got strings.Builder
			now := time.Unix(1000, 0)
			e := newEchoTracker(func(p []byte) { got.Write(p) })
			e.now = func() time.Time { return now }
			for _, s := range tc.steps {
				switch {
				case strings.HasPrefix(s, "i:"):
					e.Input([]byte(s[2:]))
				case strings.HasPrefix(s, "o:"):
					e.Output([]byte(s[2:]))
				case s == "w":
					now = now.Add(echoWindow)
				case s == "f":
					e.Flush()
				}
			}
			if got.String() != tc.want {
				t.Fatalf("recorded %q, want %q", got.String(), tc.want)
			}
		})
	}
}

// FuzzEchoTracker: whatever arrives, every typed byte is recorded exactly
// once, as itself or as '*', in order.
func FuzzEchoTracker(f *testing.F) {
	f.Add([]byte("ls\r"), []byte("ls\r\n"), []byte("\x1b[A"))
	f.Add([]byte("hunter2\r"), []byte("\r\nlength"), []byte("echo hi\r"))
	f.Fuzz(func(t *testing.T, in1, out, in2 []byte) {
		var got []byte
		now := time.Unix(0, 0)
		e := newEchoTracker(func(p []byte) { got = append(got, p...) })
		e.now = func() time.Time { return now }
		e.Input(in1)
		e.Output(out)
		now = now.Add(echoWindow / 2)
		e.Input(in2)
		e.Output(out)
		e.Flush()
		typed := append(append([]byte{}, in1...), in2...)
		if len(got) != len(typed) {
			t.Fatalf("recorded %d bytes for %d typed", len(got), len(typed))
		}
		for i := range got {
			if got[i] != typed[i] && got[i] != '*' {
				t.Fatalf("byte %d: recorded %q for typed %q", i, got[i], typed[i])
			}
		}
	})
}

// TestTypedHiddenNeedsAPrompt: input the target does not echo counts as a
// secret only at a prompt for one; typed ahead while the target is busy,
// or after a prompt that is not for a secret, it is a command to check.
func TestTypedHiddenNeedsAPrompt(t *testing.T) {
	tests := []struct {
		name   string
		output string
		want   bool
	}{
		{"password prompt", "Password: ", true},
		{"sudo prompt", "\x1b[0m[sudo] password for root: ", true},
		{"ssh key passphrase", "Enter passphrase for key '/root/.ssh/id_ed25519': ", true},
		{"psql", "Password for user postgres: ", true},
		{"one-time code", "Verification code: ", true},
		{"coloured prompt", "\x1b]0;title\x07\x1b[1mPIN:\x1b[0m ", true},
		{"shell prompt", "root@web01:~# ", false},
		{"busy command output", "one-1\r\n", false},
		{"the word on an earlier line", "Password:\r\n", false},
		{"the word in output, then a prompt", "password changed\r\nready> ", false},
		{"no output at all", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1000, 0)
			e := newEchoTracker(func([]byte) {})
			e.now = func() time.Time { return now }
			e.Output([]byte(tc.output))
			e.Input([]byte("rm -rf /x"))
			now = now.Add(echoWindow)
			if got := e.lastTypedHidden(len("rm -rf /x")); got != tc.want {
				t.Errorf("after output %q: hidden = %v, want %v", tc.output, got, tc.want)
			}
		})
	}
}
