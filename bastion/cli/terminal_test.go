package cli

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// hostileText is what a user may put in anything the CLI shows: an OSC
// that sets the window title, a clear screen, a raw and a UTF-8 C1 CSI, a
// bidi override, and a line break that would forge a row.
const hostileText = "echo hi \x1b]0;pwned\a \x1b[2J \x9b31m \u009b31m \u202eexe.txt\r\nFAKE ROW"

// hostile puts text in every field a user controls that a command shows:
// requests' reasons, command, logins, comments and decisions, sessions'
// commands and logins, audit events' actors, targets and reasons, a
// terminal recording's output and markers, and a query log's statement.
func hostile(text string) func(*fixture) {
	return func(f *fixture) {
		q := f.access.requests
		q[1].Reason, q[1].Logins = "reason "+text, []string{"root" + text}
		q[1].Approvals = append(q[1].Approvals[:0:0], q[1].Approvals...)
		q[1].Approvals[0].Comment = "comment " + text
		q[4].DecisionReason = "denial " + text
		q[5].CloseReason = "close " + text
		q[6].Command = "command " + text
		s := f.sessions.sessions
		s["ssh-4"].Command, s["ssh-4"].Login = "command "+text, "login"+text
		for _, e := range []audit.Event{
			{Type: audit.Login, Actor: "user" + text, Subject: "user" + text, Outcome: audit.OutcomeRefused, Reason: "unknown user " + text},
			{Type: audit.Command, Actor: "alice", Subject: "alice", Target: "web01" + text, Outcome: audit.OutcomeRefused,
				Reason: "rule " + text, Details: map[string]string{"session": "ssh-4", "command": "command " + text}},
		} {
			prev := &f.audit.events[len(f.audit.events)-1]
			e.Seq, e.Time = prev.Seq+1, prev.Time.Add(time.Minute)
			e.Seal(prev)
			f.audit.events = append(f.audit.events, e)
		}
		cast, err := json.Marshal([]any{[]any{0, "o", "output " + text + "\r\n"}, []any{0.001, "m", "exec: command " + text},
			[]any{0.002, "m", "denied: rule " + text}})
		if err != nil {
			panic(err)
		}
		events := strings.TrimSuffix(strings.TrimPrefix(string(cast), "["), "]")
		f.storage.objects["2026/12/01/ssh-4.cast"] = []byte(`{"version":2,"width":80,"height":24,"timestamp":1764579300}` + "\n" +
			strings.ReplaceAll(events, "],[", "]\n[") + "\n")
		var jsonl bytes.Buffer
		qw := querylog.NewWriter(&jsonl)
		for _, e := range []querylog.Event{
			{Time: t0, Type: querylog.TypeStart, User: "alice", Target: "orders", Protocol: querylog.ProtocolPostgres},
			{Time: t0, Type: querylog.TypeQuery, Statement: "SELECT '" + text + "'", Decision: querylog.Deny, Rule: "rule " + text,
				Error: "denied " + text},
			{Time: t0, Type: querylog.TypeEnd, Reason: "end " + text},
		} {
			if err := qw.Write(e); err != nil {
				panic(err)
			}
		}
		f.storage.objects["2026/12/01/pg-2.jsonl"] = jsonl.Bytes()
	}
}

// refusedWith makes every access call fail with a refusal that quotes text
// raw, as an error message echoing input would.
func refusedWith(text string) func(*fixture) {
	return func(f *fixture) { f.access.fail = &policy.Refusal{Reason: "target " + text + " is down"} }
}

// hostileCases show hostile text in every output that shows user text;
// their goldens hold it escaped, except the recorded output replay plays.
var hostileCases = []cliCase{
	{name: "hostile-show", line: "show 1", setup: hostile(hostileText)},
	{name: "hostile-show-json", line: "show 1 --json", setup: hostile(hostileText)},
	{name: "hostile-show-denied", line: "show 4", setup: hostile(hostileText)},
	{name: "hostile-show-revoked", line: "show 5", setup: hostile(hostileText)},
	{name: "hostile-show-command", line: "show 6", setup: hostile(hostileText)},
	{name: "hostile-requests", line: "requests", setup: hostile(hostileText)},
	{name: "hostile-whoami", line: "whoami", setup: hostile(hostileText)},
	{name: "hostile-sessions", user: "carol", line: "sessions", setup: hostile(hostileText)},
	{name: "hostile-sessions-json", user: "carol", line: "sessions --json", setup: hostile(hostileText)},
	{name: "hostile-audit", user: "carol", line: "audit --since 2026-12-01T08:03:00Z", setup: hostile(hostileText)},
	{name: "hostile-audit-json", user: "carol", line: "audit --since 2026-12-01T08:04:00Z --json", setup: hostile(hostileText)},
	{name: "hostile-replay-exec", line: "replay ssh-4 --speed 1000", setup: hostile(hostileText)},
	{name: "hostile-replay-database", line: "replay pg-2 --speed 1000", setup: hostile(hostileText)},
	// Over ssh a line holds no C0 control (SplitWords refuses them), but C1
	// controls and bidi overrides pass.
	{name: "hostile-request", line: "request web01 --for 30m --reason INC-9 \u009b2J \u202eexe.txt"},
	{name: "hostile-refusal", line: "whoami", code: ExitRefused, setup: refusedWith(hostileText)},
	{name: "hostile-refusal-json", line: "whoami --json", code: ExitRefused, setup: refusedWith(hostileText)},
}

// TestOutputOnlyThroughRenderer keeps every write to a command's output in
// render.go, where human output is escaped: a file that wrote to r.io
// itself could show user text raw.
func TestOutputOnlyThroughRenderer(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if name == "render.go" || strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if inner, ok := sel.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "io" && (sel.Sel.Name == "Stdout" || sel.Sel.Name == "Stderr") {
				t.Errorf("%s: %s.io.%s: write through printf, eprintf, printJSON or rawOut (render.go)", fset.Position(sel.Pos()), exprName(inner.X), sel.Sel.Name)
			}
			if id, ok := sel.X.(*ast.Ident); ok && id.Name == "os" && (sel.Sel.Name == "Stdout" || sel.Sel.Name == "Stderr") {
				t.Errorf("%s: os.%s: write through the command's IO (render.go)", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}

func exprName(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return "…"
}

// humanLines are the commands whose text output shows hostile's fields,
// with the user who sees them all.
var humanLines = []struct{ user, line string }{
	{"alice", "show 1"}, {"alice", "show 4"}, {"alice", "show 5"}, {"alice", "show 6"},
	{"alice", "requests"}, {"alice", "whoami"}, {"carol", "sessions"}, {"carol", "audit"},
}

// checkShown fails if out holds a byte a terminal acts on other than the
// newlines the renderer writes, or a C1 control or bidi override.
func checkShown(t *testing.T, what, out string) {
	t.Helper()
	for i := 0; i < len(out); i++ {
		if c := out[i]; (c < 0x20 && c != '\n') || c == 0x7f {
			t.Fatalf("%s: byte %#x at %d in output:\n%q", what, c, i, out)
		}
	}
	for _, r := range out {
		if (r >= 0x80 && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
			t.Fatalf("%s: %U in output:\n%q", what, r, out)
		}
	}
}

// FuzzHumanOutput puts arbitrary text in every field a user controls and
// runs the commands that show them: their text output, the markers of a
// terminal replay and the error on stderr hold no control character but the
// renderer's own newlines; --json gives the text back exactly.
func FuzzHumanOutput(f *testing.F) {
	for _, s := range []string{hostileText, "", "Grüße", "\x00\x7f\t", "\u2066\u2069\u00a0\u2028", "\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		fx := newFixture(t)
		hostile(text)(fx)
		for _, h := range humanLines {
			out, errOut, _ := fx.runLine(t, h.user, h.line)
			checkShown(t, h.line, out+errOut)
		}
		// A transcript keeps a statement's tabs and lines (the further
		// ones indented): SQL as it was written, which moves no cursor.
		out, _, _ := fx.runLine(t, "alice", "replay pg-2 --speed 1000")
		checkShown(t, "transcript", strings.ReplaceAll(out, "\t", " "))
		out, _, _ = fx.runLine(t, "alice", "replay ssh-4 --speed 1000")
		markers := out[strings.Index(out, "[bastion] "):] // after the raw output, which is the recording's
		checkShown(t, "replay markers", strings.ReplaceAll(markers, "\r\n", "\n"))
		out, _, _ = fx.runLine(t, "alice", "show 6 --json")
		checkShown(t, "--json", out)
		var v requestView
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(text) && v.Command != "command "+text {
			t.Fatalf("--json command %q, want %q", v.Command, "command "+text)
		}
		fx.access.fail = &policy.Refusal{Reason: "target " + text + " is down"}
		_, errOut, _ := fx.runLine(t, "alice", "whoami")
		checkShown(t, "refusal", errOut)
	})
}

// runLine runs line as user through Run (the words as given, so any text
// reaches the command) and returns its stdout, stderr and exit code.
func (f *fixture) runLine(t *testing.T, user, line string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := New(f.cfg).Run(t.Context(), f.actor(user), IO{Stdout: &stdout, Stderr: &stderr}, strings.Fields(line))
	return stdout.String(), stderr.String(), code
}

// TestJSONShown: unprintable characters in --json output are \u escapes
// (a surrogate pair above U+FFFF) that decode to the text given.
func TestJSONShown(t *testing.T) {
	for _, s := range []string{"plain Grüße 🚀", "\x7f\u0085\u009b2J", "\u202e\u2066\u00a0\u2028", "\U000e0001 tag", "\x1b[2J\a"} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		out := jsonShown(b)
		checkShown(t, s, string(out))
		var got string
		if err := json.Unmarshal(out, &got); err != nil || got != s {
			t.Errorf("jsonShown(%s) = %s, decodes to %q, %v; want %q", b, out, got, err, s)
		}
	}
}
