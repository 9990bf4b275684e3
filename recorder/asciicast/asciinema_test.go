package asciicast_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder/asciicast"
)

// asciinemaTimeout bounds one run of asciinema; it takes about 150 ms here.
const asciinemaTimeout = 30 * time.Second

// TestAsciinema checks that the real asciinema accepts what the Writer
// writes: `asciinema cat` and `asciinema play` both print the recorded
// output and nothing of the input. asciinema opens /dev/tty, so it runs under
// script(1), which gives it a pseudo-terminal.
func TestAsciinema(t *testing.T) {
	for _, prog := range []string{"asciinema", "script"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Fatalf("%s not found (%v): run scripts/install-deps.sh as root", prog, err)
		}
	}
	path := filepath.Join(t.TempDir(), "session.cast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := asciicast.NewWriter(f, asciicast.Header{
		Width: 80, Height: 24, Timestamp: time.Now().Unix(), Title: "bastion test",
		Env: map[string]string{"TERM": "xterm-256color", "SHELL": "/bin/bash"},
	})
	if err != nil {
		t.Fatal(err)
	}
	euro := []byte("€")
	err = all(
		w.Output(ms(10), []byte("hello from bastion\r\n")),
		w.Input(ms(20), []byte("SECRET-INPUT\r")),
		w.Output(ms(30), append([]byte("café costs 5"), euro[:2]...)),
		w.Output(ms(40), append(euro[2:], []byte("\r\n\x1b[1mbold\x1b[0m \xff done\r\n")...)),
		w.Resize(ms(50), 120, 40),
		w.Marker(ms(60), "MARKER-LABEL"),
		w.Output(ms(1500), []byte("after a pause\r\n")),
		w.Close(),
		f.Close(),
	)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		cmd  string
	}{
		{"cat", "asciinema cat " + shellQuote(path)},
		{"play", "asciinema play --idle-time-limit 0.1 --speed 2 " + shellQuote(path)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), asciinemaTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, "script", "-qec", tt.cmd, "/dev/null")
			cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TERM=xterm")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", tt.cmd, err, out)
			}
			got := string(out)
			for _, want := range []string{"hello from bastion", "café costs 5€", "\x1b[1mbold\x1b[0m \ufffd done", "after a pause"} {
				if !strings.Contains(got, want) {
					t.Errorf("%s: output lacks %q:\n%q", tt.cmd, want, got)
				}
			}
			for _, unwanted := range []string{"SECRET-INPUT", "MARKER-LABEL", "120x40", "Traceback"} {
				if strings.Contains(got, unwanted) {
					t.Errorf("%s: output shows %q:\n%q", tt.cmd, unwanted, got)
				}
			}
		})
	}
}

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
