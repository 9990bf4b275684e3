package transfer

import (
	"slices"
	"strings"
	"testing"
)

func TestNewSCP(t *testing.T) {
	tests := []struct {
		name      string
		command   string
		ok        bool
		upload    bool
		recursive bool
		dir       bool
		operands  []string
	}{
		{name: "upload", command: "scp -t /tmp", ok: true, upload: true, operands: []string{"/tmp"}},
		{name: "as OpenSSH sends it", command: "scp -v -r -p -d -t /srv/x", ok: true, upload: true, recursive: true, dir: true, operands: []string{"/srv/x"}},
		{name: "download several", command: "scp -f a b/*.txt", ok: true, operands: []string{"a", "b/*.txt"}},
		{name: "program path", command: "/usr/bin/scp -f x", ok: true, operands: []string{"x"}},
		{name: "dash path after --", command: "scp -t -- -odd", ok: true, upload: true, operands: []string{"-odd"}},
		{name: "quoted", command: `scp -f 'a b' "c \"d\" \$e" f\ g`, ok: true, operands: []string{"a b", `c "d" $e`, "f g"}},
		{name: "kept as written", command: "scp -f ~/x $HOME/y", ok: true, operands: []string{"~/x", "$HOME/y"}},
		{name: "grouped flags", command: "scp -rt dir", ok: true, upload: true, recursive: true, operands: []string{"dir"}},
		{name: "option arguments", command: "scp -l 100 -P22 -o X=y -t dir", ok: true, upload: true, operands: []string{"dir"}},
		{name: "options after operands", command: "scp dir -t", ok: true, upload: true, operands: []string{"dir"}},
		{name: "-f wins over -t", command: "scp -t -f x", ok: true, operands: []string{"x"}},
		{name: "comment", command: "scp -t dir # note", ok: true, upload: true, operands: []string{"dir"}},
		{name: "line continuation", command: "scp -t \\\ndir", ok: true, upload: true, operands: []string{"dir"}},
		{name: "no mode", command: "scp a b", ok: false},
		{name: "-t after --", command: "scp -- -t a", ok: false},
		{name: "no target", command: "scp -t", ok: false},
		{name: "ambiguous target", command: "scp -t a b", ok: false},
		{name: "no source", command: "scp -f", ok: false},
		{name: "unknown option", command: "scp -x -t a", ok: false},
		{name: "other program", command: "rsync --server -t .", ok: false},
		{name: "list", command: "scp -t a; rm -rf /", ok: false},
		{name: "pipeline", command: "scp -f a | tee x", ok: false},
		{name: "redirection", command: "scp -t a >/dev/null", ok: false},
		{name: "substitution", command: "scp -t $(pwd)", ok: false},
		{name: "quoted substitution", command: `scp -t "$(pwd)"`, ok: false},
		{name: "backquote", command: "scp -t `pwd`", ok: false},
		{name: "unterminated quote", command: "scp -t 'a", ok: false},
		{name: "trailing backslash", command: `scp -t a\`, ok: false},
		{name: "empty", command: "", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := NewSCP(tt.command, nil)
			if ok != tt.ok {
				t.Fatalf("NewSCP(%q) ok = %v, want %v", tt.command, ok, tt.ok)
			}
			if !ok {
				if d != nil {
					t.Fatal("decoder returned with false")
				}
				return
			}
			got := d.cmd
			if got.upload != tt.upload || got.recursive != tt.recursive || got.dir != tt.dir || !slices.Equal(got.operands, tt.operands) {
				t.Errorf("NewSCP(%q) = %+v", tt.command, got)
			}
		})
	}
}

// TestSCPPaths checks where the decoder says an upload's files land.
func TestSCPPaths(t *testing.T) {
	tests := []struct {
		command string
		want    string
	}{
		{"scp -t /srv/dir/", "/srv/dir/f.txt"},
		{"scp -t /", "/f.txt"},
		{"scp -t .", "./f.txt"},
		{"scp -t ~", "~/f.txt"},
		{"scp -t ~bob", "~bob/f.txt"},
		{"scp -t /srv/..", "/srv/../f.txt"},
		{"scp -d -t /srv/dir", "/srv/dir/f.txt"},
		{"scp -r -t /srv/dir", "/srv/dir/f.txt"},
		{"scp -t /srv/maybe-a-dir", "/srv/maybe-a-dir"}, // Name says f.txt
		{"scp -t name", "name"},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			got := runSCP(t, tt.command, 0, sv("\x00"), cl("C0644 1 f.txt\n"), sv("\x00"), cl("x\x00"), sv("\x00"))
			want := []Event{{Op: OpSCPSend, Path: tt.want, Name: "f.txt", Direction: Upload, Bytes: 1}}
			checkEvents(t, got, want)
		})
	}
}

// cl and sv are bytes from the client and the server.
func cl(p string) step { return step{client: true, data: []byte(p)} }
func sv(p string) step { return step{data: []byte(p)} }

// runSCP feeds steps to an SCP decoder for command, cut into pieces of at
// most chunk bytes (0: whole), and ends it.
func runSCP(t *testing.T, command string, chunk int, steps ...step) []Event {
	t.Helper()
	var events []Event
	d, ok := NewSCP(command, func(e Event) { events = append(events, e) })
	if !ok {
		t.Fatalf("NewSCP(%q) = false", command)
	}
	var recs []record
	for _, st := range steps {
		dir := byte('<')
		if st.client {
			dir = '>'
		}
		recs = append(recs, record{dir: dir, data: st.data})
	}
	replay(d, recs, chunk)
	return events
}

var longMsg = strings.Repeat("m", 3000)

// scpCases are sessions and what they report.
var scpCases = []struct {
	name    string
	command string
	steps   []step
	want    []Event
}{
	{
		name:    "the end interrupts a file",
		command: "scp -t /d/",
		steps:   []step{sv("\x00"), cl("C0644 100 f\n"), sv("\x00"), cl(strings.Repeat("x", 10))},
		want:    []Event{{Op: OpSCPSend, Path: "/d/f", Name: "f", Direction: Upload, Bytes: 10, Error: "channel closed during the transfer"}},
	},
	{
		name:    "the end before the answer to a header",
		command: "scp -t /d/",
		steps:   []step{sv("\x00"), cl("C0644 100 f\n")},
		want:    []Event{{Op: OpSCPSend, Path: "/d/f", Name: "f", Direction: Upload, Error: "channel closed during the transfer"}},
	},
	{
		name:    "the sender reports a read error after the contents",
		command: "scp -f /d/f",
		steps:   []step{cl("\x00"), sv("C0644 5 f\n"), cl("\x00"), sv("abcde\x01scp: /d/f: Input/output error\n"), cl("\x00")},
		want:    []Event{{Op: OpSCPReceive, Path: "/d/f", Name: "f", Direction: Download, Bytes: 5, Error: "scp: /d/f: Input/output error"}},
	},
	{
		name:    "the receiver refuses the contents",
		command: "scp -t /d/",
		steps:   []step{sv("\x00"), cl("C0644 5 f\n"), sv("\x00"), cl("abcde\x00"), sv("\x01scp: /d/f: No space left on device\n")},
		want:    []Event{{Op: OpSCPSend, Path: "/d/f", Name: "f", Direction: Upload, Bytes: 5, Error: "scp: /d/f: No space left on device"}},
	},
	{
		name:    "a refused header: no contents follow",
		command: "scp -t /d/",
		steps: []step{sv("\x00"), cl("C0644 5 f\n"), sv("\x01scp: /d/f: Permission denied\n"),
			cl("C0644 2 g\n"), sv("\x00"), cl("ab\x00"), sv("\x00")},
		want: []Event{
			{Op: OpSCPSend, Path: "/d/f", Name: "f", Direction: Upload, Error: "scp: /d/f: Permission denied"},
			{Op: OpSCPSend, Path: "/d/g", Name: "g", Direction: Upload, Bytes: 2},
		},
	},
	{
		name:    "a refused directory is skipped",
		command: "scp -r -t /d",
		steps: []step{sv("\x00"), cl("D0755 0 sub\n"), sv("\x01scp: /d/sub: Permission denied\n"),
			cl("C0644 1 f\n"), sv("\x00"), cl("x\x00"), sv("\x00"),
			cl("D0755 0 ok\n"), sv("\x00"), cl("T1 0 2 0\n"), sv("\x00"), cl("C0600 0 e\n"), sv("\x00"), cl("\x00"), sv("\x00"), cl("E\n"), sv("\x00"),
			cl("C0644 1 g\n"), sv("\x00"), cl("y\x00"), sv("\x00"), cl("E\n")},
		want: []Event{
			{Op: OpSCPSend, Path: "/d/sub", Name: "sub", Direction: Upload, Error: "scp: /d/sub: Permission denied"},
			{Op: OpSCPSend, Path: "/d/f", Name: "f", Direction: Upload, Bytes: 1},
			{Op: OpSCPSend, Path: "/d/ok/e", Name: "e", Direction: Upload},
			{Op: OpSCPSend, Path: "/d/g", Name: "g", Direction: Upload, Bytes: 1},
		},
	},
	{
		name:    "errors at a record: \\x01 goes on, \\x02 ends",
		command: "scp -f a b",
		steps:   []step{cl("\x00"), sv("\x01scp: a: No such file or directory\n"), sv("\x02scp: fatal\n"), sv("C0644 1 b\n")},
		want: []Event{
			{Op: OpSCPReceive, Direction: Download, Error: "scp: a: No such file or directory"},
			{Op: OpSCPReceive, Direction: Download, Error: "scp: fatal"},
		},
	},
	{
		name:    "a fatal answer ends the session",
		command: "scp -f /x",
		steps:   []step{cl("\x00"), sv("C0644 1 x\n"), cl("No way\n"), sv("y\x00")},
		want:    []Event{{Op: OpSCPReceive, Path: "/x", Name: "x", Direction: Download, Error: "No way"}},
	},
	{
		name:    "the receiver answers ahead",
		command: "scp -f /d/x /e/y",
		steps:   []step{cl("\x00\x00\x00\x00\x00"), sv("C0644 1 x\n1\x00C0644 2 y\n22\x00")},
		want: []Event{
			{Op: OpSCPReceive, Path: "/d/x", Name: "x", Direction: Download, Bytes: 1},
			{Op: OpSCPReceive, Path: "/e/y", Name: "y", Direction: Download, Bytes: 2},
		},
	},
	{
		name:    "a sender that does not wait, within the stash",
		command: "scp -t /d/",
		steps:   []step{sv("\x00"), cl("C0644 3 f\nabc\x00C0644 1 g\nz\x00"), sv("\x00\x00\x00\x00")},
		want: []Event{
			{Op: OpSCPSend, Path: "/d/f", Name: "f", Direction: Upload, Bytes: 3},
			{Op: OpSCPSend, Path: "/d/g", Name: "g", Direction: Upload, Bytes: 1},
		},
	},
	{
		name:    "a long answer is cut where scp cuts it",
		command: "scp -t /d/",
		steps:   []step{sv("\x00"), cl("C0644 1 f\n"), sv("\x01" + longMsg + "\n"), cl("C0644 1 g\n")},
		want: []Event{
			{Op: OpSCPSend, Path: "/d/f", Name: "f", Direction: Upload, Error: longMsg[:maxMessage]},
			// scp read 2047 bytes of the message; the rest is the
			// next answer, fatal as it does not start with \x01.
			{Op: OpSCPSend, Path: "/d/g", Name: "g", Direction: Upload, Error: longMsg[:maxMessage]},
		},
	},
	{
		name:    "the top-level E ends the sink",
		command: "scp -r -t /d",
		steps:   []step{sv("\x00"), cl("E\n"), sv("\x00"), cl("C0644 1 f\n")},
	},
	{
		name:    "a start refused",
		command: "scp -d -t /nodir",
		steps:   []step{sv("\x01scp: /nodir: No such file or directory\n")},
		want:    []Event{{Op: OpSCPSend, Direction: Upload, Error: "scp: /nodir: No such file or directory"}},
	},
	{
		name:    "a NUL ends a header's name",
		command: "scp -t /d/",
		steps:   []step{sv("\x00"), cl("C0644 1 f\x00junk\n"), sv("\x00"), cl("x\x00"), sv("\x00")},
		want:    []Event{{Op: OpSCPSend, Path: "/d/f", Name: "f", Direction: Upload, Bytes: 1}},
	},
}

func TestSCP(t *testing.T) {
	for _, tt := range scpCases {
		t.Run(tt.name, func(t *testing.T) {
			checkEvents(t, runSCP(t, tt.command, 0, tt.steps...), tt.want)
			checkEvents(t, runSCP(t, tt.command, 1, tt.steps...), tt.want)
		})
	}
}

func TestSCPMalformed(t *testing.T) {
	tests := []struct {
		name    string
		command string
		steps   []step
		want    string
	}{
		{name: "newline", command: "scp -t /d", steps: []step{sv("\x00"), cl("\n")}, want: "scp: unexpected newline"},
		{name: "not a record", command: "scp -t /d", steps: []step{sv("\x00"), cl("hello\n")}, want: "scp: expected control record"},
		{name: "bad mode", command: "scp -t /d", steps: []step{sv("\x00"), cl("C0948 1 f\n")}, want: "scp: bad mode"},
		{name: "short", command: "scp -t /d", steps: []step{sv("\x00"), cl("C06\n")}, want: "scp: bad mode"},
		{name: "mode not delimited", command: "scp -t /d", steps: []step{sv("\x00"), cl("C06440 1 f\n")}, want: "scp: mode not delimited"},
		{name: "no size", command: "scp -t /d", steps: []step{sv("\x00"), cl("C0644 x f\n")}, want: "scp: size not present"},
		{name: "size not delimited", command: "scp -t /d", steps: []step{sv("\x00"), cl("C0644 12\n")}, want: "scp: size not delimited"},
		{name: "huge size", command: "scp -t /d", steps: []step{sv("\x00"), cl("C0644 99999999999999999999 f\n")}, want: "scp: size out of range"},
		{name: "dot dot", command: "scp -t /d", steps: []step{sv("\x00"), cl("C0644 1 ..\n")}, want: `scp: unexpected filename ".."`},
		{name: "slash", command: "scp -f /d", steps: []step{cl("\x00"), sv("C0644 1 ../x\n")}, want: `scp: unexpected filename "../x"`},
		{name: "directory without -r", command: "scp -t /d", steps: []step{sv("\x00"), cl("D0755 0 x\n")}, want: "scp: received directory without -r"},
		{name: "pipelined data past the stash", command: "scp -t /d", steps: []step{sv("\x00"), cl("C0644 10000 f\n" + strings.Repeat("x", 10000))},
			want: "scp: the sending side did not wait for an answer to its header"},
		{name: "records without answers", command: "scp -t /d", steps: []step{sv("\x00"), cl(strings.Repeat("T1 0 1 0\n", maxOwed+1))},
			want: "scp: the sending side did not wait for answers"},
		{name: "answers without records", command: "scp -t /d", steps: []step{sv(strings.Repeat("\x00", maxEarly+2))},
			want: "scp: the receiving side answered records not sent"},
		{name: "too deep", command: "scp -r -t /d", steps: func() []step {
			st := []step{sv("\x00")}
			for range MaxPath/100 + 1 {
				st = append(st, cl("D0755 0 "+strings.Repeat("d", 99)+"\n"), sv("\x00"))
			}
			return st
		}(), want: "scp: directories nested deeper than MaxPath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{0, 1} {
				steps := append(slices.Clone(tt.steps), cl("C0644 1 after\n"), sv("\x00"), cl("x\x00"), sv("\x00"))
				var errs []Event
				for _, e := range runSCP(t, tt.command, chunk, steps...) {
					if e.Op == OpDecodeError {
						errs = append(errs, e)
					} else if e.Name == "after" {
						t.Errorf("chunk %d: decoded after the error: %+v", chunk, e)
					}
				}
				if len(errs) != 1 || errs[0].Error != tt.want {
					t.Fatalf("chunk %d: decode errors %+v, want one %q", chunk, errs, tt.want)
				}
			}
		})
	}
}
