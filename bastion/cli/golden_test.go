package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/recorder/spool"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// cliCase is one command line run against the fixture, its output checked
// against testdata/golden/NAME.txt.
type cliCase struct {
	name     string
	user     string // the actor; "" is alice
	operator bool   // run as the operator at the server's console
	line     string
	code     int // the exit code
	setup    func(f *fixture)
}

// signed puts the recordings behind the spool: signed manifests and upload
// status.
func signed(f *fixture) { f.cfg.Recordings = f.signed }

// refusedCommands adds to the audit log what the server records when
// commands are refused in sessions: two in alice's ssh-4, one in bob's ssh-3
// (named by its connection, "ssh"; the exec's command says which session of
// it), an allowed one in ssh-4 (not counted), and a refused statement in
// alice's database session pg-2.
func refusedCommands(f *fixture) {
	for i, e := range []audit.Event{
		{Type: audit.Command, Outcome: audit.OutcomeRefused, Actor: "alice", Subject: "alice", Target: "web01", Reason: "rule no-rm",
			Details: map[string]string{"session": "ssh-4", "command": "rm -rf /tmp/x"}},
		{Type: audit.Command, Outcome: audit.OutcomeOK, Actor: "alice", Subject: "alice", Target: "web01",
			Details: map[string]string{"session": "ssh-4", "command": "true"}},
		{Type: audit.Command, Outcome: audit.OutcomeRefused, Actor: "alice", Subject: "alice", Target: "web01", Reason: "rule no-rm",
			Details: map[string]string{"session": "ssh-4", "command": "rm -rf /"}},
		{Type: audit.Command, Outcome: audit.OutcomeRefused, Actor: "bob", Subject: "bob", Target: "web01", Reason: "rule no-uptime",
			Details: map[string]string{"session": "ssh", "command": "uptime"}},
		{Type: audit.Query, Outcome: audit.OutcomeRefused, Actor: "alice", Subject: "alice", Target: "orders", Reason: "rule no-secrets",
			Details: map[string]string{"session": "pg-2", "statement": "select * from secrets"}},
	} {
		prev := &f.audit.events[len(f.audit.events)-1]
		e.Seq, e.Time = prev.Seq+1, t0.Add(time.Duration(i-19)*time.Minute)
		e.Seal(prev)
		f.audit.events = append(f.audit.events, e)
	}
}

// cliCases covers every command: its text and --json output, a refusal
// (exit 1) and a usage error (exit 2).
var cliCases = []cliCase{
	// help
	{name: "help", line: "help"},
	{name: "help-json", line: "help --json"},
	{name: "help-empty-line", line: ""},
	{name: "help-command", line: "help request"},
	{name: "help-command-json", line: "help request --json"},
	{name: "help-flag", line: "deny --help"},
	{name: "help-unknown", line: "help nope", code: ExitUsage},
	{name: "unknown-command", line: "rm -rf / --json", code: ExitUsage},
	{name: "unknown-flag", line: "whoami --verbose", code: ExitUsage},
	{name: "flag-needs-value", line: "request web01 --for", code: ExitUsage},
	{name: "bool-flag-value", line: "ca --tls=yes", code: ExitUsage},
	{name: "unsplittable-line", line: `request web01 --login "root --for 30m --reason x --json`, code: ExitUsage},
	{name: "unsplittable-line-apostrophe", line: `request web01 --login o'brien --for 30m --reason x`, code: ExitUsage},

	// whoami
	{name: "whoami", line: "whoami"},
	{name: "whoami-json", line: "whoami --json"},
	{name: "whoami-no-grants", user: "bob", line: "whoami"},
	{name: "whoami-usage", line: "whoami extra", code: ExitUsage},
	{name: "whoami-store-error", line: "whoami", code: ExitRefused,
		setup: func(f *fixture) {
			f.access.fail = errors.New("sqlite: database is locked (/var/lib/bastion/bastion.db)")
		}},
	{name: "whoami-store-error-json", line: "whoami --json", code: ExitRefused,
		setup: func(f *fixture) {
			f.access.fail = errors.New("sqlite: database is locked (/var/lib/bastion/bastion.db)")
		}},

	// targets
	{name: "targets", line: "targets"},
	{name: "targets-json", line: "targets --json"},
	{name: "targets-none", user: "dave", line: "targets"},
	{name: "targets-none-json", user: "dave", line: "targets --json"},
	{name: "targets-usage", line: "targets web01", code: ExitUsage},

	// request
	{name: "request", line: "request web01 --login root --for 30m --reason INC-2 disk full again"},
	// ssh drops the user's quotes: `--reason "can't log in"` arrives bare.
	{name: "request-reason-apostrophe", line: "request web01 --login root --for 30m --reason can't log in"},
	{name: "request-reason-apostrophe-then-flag", line: "request web01 --reason it's down,  again --for 30m --json"},
	{name: "request-reason-dashes", line: "request web01 --for 30m --reason retry of --force push -- INC-3"},
	{name: "request-json", line: "request orders shop --for 1h --reason=refunds --json"},
	{name: "request-refused", line: "request db-prod --for 1h --reason x", code: ExitRefused},
	{name: "request-no-target", line: "request --for 1h", code: ExitUsage},
	{name: "request-no-duration", line: "request web01 --reason x", code: ExitUsage},
	{name: "request-bad-duration", line: "request web01 --for soon --json", code: ExitUsage},
	{name: "request-reason-too-long", line: "request web01 --for 1h --reason " + strings.Repeat("x", maxReason+1), code: ExitUsage},

	// requests
	{name: "requests", line: "requests"},
	{name: "requests-json", line: "requests --state approved,denied --json"},
	{name: "requests-limit", line: "requests --state pending --limit 1"},
	{name: "requests-none", user: "bob", line: "requests --user bob"},
	{name: "requests-refused", line: "requests --user bob", code: ExitRefused},
	{name: "requests-bad-state", line: "requests --state open", code: ExitUsage},
	{name: "requests-bad-limit", line: "requests --limit 0", code: ExitUsage},

	// show
	{name: "show-approved", line: "show 1"},
	{name: "show-pending", line: "show #3"},
	{name: "show-denied", line: "show 4"},
	{name: "show-revoked", line: "show 5"},
	{name: "show-command", line: "show 6"},
	{name: "show-json", line: "show 3 --json"},
	{name: "show-not-found", line: "show 99", code: ExitRefused},
	{name: "show-usage", line: "show abc", code: ExitUsage},
	{name: "show-usage-two-ids", line: "show 1 2", code: ExitUsage},

	// approve, deny, revoke
	{name: "approve", user: "bob", line: "approve 3 --comment looks fine"},
	{name: "approve-comment-apostrophe", user: "bob", line: "approve 3 --comment don't forget the ticket"},
	{name: "approve-json", user: "bob", line: "approve 3 --json"},
	{name: "approve-refused", line: "approve 3", code: ExitRefused},
	{name: "approve-usage", user: "bob", line: "approve -3", code: ExitUsage},
	{name: "deny", user: "bob", line: "deny 3 --reason use staging"},
	{name: "deny-json", user: "bob", line: "deny 3 --reason no --json"},
	{name: "deny-refused", user: "bob", line: "deny 1 --reason late", code: ExitRefused},
	{name: "deny-no-reason", user: "bob", line: "deny 3", code: ExitUsage},
	{name: "revoke", line: "revoke 1 --reason done"},
	{name: "revoke-json", line: "revoke 3 --json"},
	{name: "revoke-refused", line: "revoke 4", code: ExitRefused},
	{name: "revoke-usage", line: "revoke", code: ExitUsage},

	// wait
	{name: "wait-own-ssh-cert", line: "wait 1"},
	{name: "wait-own-ssh-cert-json", line: "wait 1 --json"},
	{name: "wait-database", line: "wait 2"},
	{name: "wait-other-user", user: "bob", line: "wait 1"},
	{name: "wait-denied", line: "wait 4", code: ExitRefused},
	{name: "wait-denied-json", line: "wait 4 --json", code: ExitRefused},
	{name: "wait-usage", line: "wait", code: ExitUsage},

	// cert
	{name: "cert", line: "cert 1"},
	{name: "cert-json", line: "cert 1 --json"},
	{name: "cert-pending", line: "cert 3", code: ExitRefused},
	{name: "cert-pending-json", line: "cert 3 --json", code: ExitRefused},
	{name: "cert-refused", line: "cert 4", code: ExitRefused},
	{name: "cert-usage", line: "cert one", code: ExitUsage},

	// token
	{name: "token", line: "token 2"},
	{name: "token-target", line: "token 2 --target shop"},
	{name: "token-json", line: "token 2 --target orders --json"},
	{name: "token-several-json", line: "token 2 --json", code: ExitUsage},
	{name: "token-wrong-target", line: "token 2 --target web01", code: ExitRefused},
	{name: "token-no-database", line: "token 1", code: ExitRefused},
	{name: "token-pending", line: "token 3", code: ExitRefused},
	{name: "token-not-configured", line: "token 2", code: ExitRefused,
		setup: func(f *fixture) { f.cfg.Databases = nil }},
	{name: "token-usage", line: "token", code: ExitUsage},

	// audit
	{name: "audit-own", line: "audit"},
	{name: "audit-all", user: "carol", line: "audit --since 2026-12-01T08:01:00Z"},
	{name: "audit-json", user: "carol", line: "audit --type login --json"},
	{name: "audit-request", user: "carol", line: "audit --request 1"},
	{name: "audit-limit", user: "carol", line: "audit --request 1 --limit 2"},
	{name: "audit-operator", user: "operator", operator: true, line: "audit --user bob"},
	{name: "audit-refused", line: "audit --user bob", code: ExitRefused},
	{name: "audit-verify-refused", line: "audit verify", code: ExitRefused},
	{name: "audit-bad-subcommand", user: "carol", line: "audit verfy", code: ExitUsage},
	{name: "audit-bad-since", user: "carol", line: "audit --since yesterday", code: ExitUsage},
	{name: "audit-bad-request", user: "carol", line: "audit --request x", code: ExitUsage},
	{name: "audit-bad-limit", user: "carol", line: "audit --limit -1", code: ExitUsage},
	{name: "audit-verify", user: "carol", line: "audit verify"},
	{name: "audit-verify-json", user: "operator", operator: true, line: "audit verify --json"},

	// ca
	{name: "ca", line: "ca"},
	{name: "ca-json", line: "ca --json"},
	{name: "ca-tls", line: "ca --tls"},
	{name: "ca-tls-json", line: "ca --tls --json"},
	{name: "ca-usage", line: "ca web01", code: ExitUsage},

	// sessions
	{name: "sessions", line: "sessions"},
	{name: "sessions-json", line: "sessions --json"},
	{name: "sessions-all", user: "carol", line: "sessions --target web01 --limit 2"},
	{name: "sessions-refusals", line: "sessions", setup: refusedCommands},
	{name: "sessions-refusals-json", user: "carol", line: "sessions --json", setup: refusedCommands},
	{name: "sessions-live", user: "carol", line: "sessions --live --json"},
	{name: "sessions-none", user: "dave", line: "sessions"},
	{name: "sessions-refused", line: "sessions --user bob", code: ExitRefused},
	{name: "sessions-not-recorded", line: "sessions", code: ExitRefused,
		setup: func(f *fixture) { f.cfg.Sessions = nil }},
	{name: "sessions-bad-since", line: "sessions --since later", code: ExitUsage},
	{name: "sessions-bad-limit", line: "sessions --limit many", code: ExitUsage},

	// replay, export, watch
	{name: "replay-ssh", line: "replay ssh-1 --speed 1000"},
	{name: "replay-refused-exec", line: "replay ssh-4 --speed 1000", setup: func(f *fixture) {
		f.sessions.sessions["ssh-4"].Command = "rm -rf /tmp/x"
		f.storage.objects["2026/12/01/ssh-4.cast"] = []byte(`{"version":2,"width":80,"height":24,"timestamp":1764579300}
[0.000000,"m","exec: rm -rf /tmp/x"]
[0.001000,"m","denied: rule no-rm: rm is not allowed on web01"]
[0.002000,"m","exit status 1"]
`)
	}},
	{name: "replay-database", line: "replay pg-2 --idle-limit 1ms"},
	{name: "replay-other-user", line: "replay ssh-3", code: ExitRefused},
	{name: "replay-missing", user: "carol", line: "replay ssh-4", code: ExitRefused},
	{name: "replay-bad-speed", line: "replay ssh-1 --speed 0", code: ExitUsage},
	{name: "replay-bad-idle-limit", line: "replay ssh-1 --idle-limit forever", code: ExitUsage},
	{name: "export", line: "export pg-2"},
	{name: "export-auditor", user: "carol", line: "export ssh-3"},
	{name: "export-no-storage", line: "export ssh-1", code: ExitRefused,
		setup: func(f *fixture) { f.cfg.Recordings = nil }},
	{name: "export-usage", line: "export", code: ExitUsage},
	{name: "watch-ended", line: "watch ssh-1"},
	{name: "watch-database", line: "watch pg-2", code: ExitRefused},
	{name: "watch-usage", line: "watch a b", code: ExitUsage},

	// hold
	{name: "hold", user: "carol", line: "hold ssh-1 --reason case 7: keep"},
	{name: "hold-release-json", user: "carol", line: "hold ssh-1 --release --json"},
	{name: "hold-refused", line: "hold ssh-1 --reason mine", code: ExitRefused},
	{name: "hold-no-session", user: "carol", line: "hold ssh-9 --reason x", code: ExitRefused},
	{name: "hold-no-reason", user: "carol", line: "hold ssh-1", code: ExitUsage},

	// verify
	{name: "verify", line: "verify ssh-1", setup: signed},
	{name: "verify-json", line: "verify ssh-1 --json", setup: signed},
	{name: "verify-altered", line: "verify ssh-1", code: ExitRefused, setup: func(f *fixture) {
		signed(f)
		f.signed.chunks["2026/12/01/ssh-1.cast"] = []byte("not what was recorded")
	}},
	{name: "verify-no-manifest", user: "carol", line: "verify ssh-3", code: ExitRefused,
		setup: func(f *fixture) { signed(f); f.sessions.sessions["ssh-3"].State = "ended" }},
	{name: "verify-live", user: "carol", line: "verify ssh-3", code: ExitRefused, setup: signed},
	{name: "verify-directory", line: "verify ssh-1", code: ExitRefused},
	{name: "verify-usage", line: "verify", code: ExitUsage},

	// status
	{name: "status-directory", user: "carol", line: "status"},
	{name: "status-directory-json", user: "carol", line: "status --json"},
	{name: "status-process", user: "carol", line: "status", setup: nearFDLimit},
	{name: "status-process-json", user: "carol", line: "status --json", setup: nearFDLimit},
	{name: "status-spool", user: "carol", line: "status", setup: func(f *fixture) { signed(f); nearFDLimit(f) }},
	{name: "status-spool-down", user: "operator", operator: true, line: "status", setup: storageDown},
	{name: "status-spool-down-json", user: "carol", line: "status --json", setup: storageDown},
	{name: "status-refused", line: "status", code: ExitRefused},
	{name: "status-usage", user: "carol", line: "status now", code: ExitUsage},
}

// nearFDLimit reports a process near its limit of open files.
func nearFDLimit(f *fixture) {
	f.cfg.Process = func() ProcessStatus { return ProcessStatus{OpenFiles: 1000, SoftLimit: 1024, HardLimit: 524288} }
}

// storageDown is the spool while the bucket is unreachable.
func storageDown(f *fixture) {
	signed(f)
	f.signed.status.StorageOK = false
	f.signed.status.StorageError = "dial tcp 192.0.2.50:9000: connect: connection refused"
	f.signed.status.DownSince = t0.Add(-5 * time.Minute)
	f.signed.status.Failing = []spool.Failing{{Name: "2026/12/01/ssh-4.cast", Error: "put chunk 3: connection refused"}}
	f.signed.status.SpoolError = "write spool: no space left on device"
	f.signed.status.SpoolErrorAt = t0.Add(-time.Minute)
	f.cfg.Process = func() ProcessStatus { return ProcessStatus{OpenFiles: -1, SoftLimit: 1024, HardLimit: 1024} }
}

func TestCommands(t *testing.T) {
	names := map[string]bool{}
	for _, tc := range slices.Concat(cliCases, hostileCases) {
		if names[tc.name] {
			t.Fatalf("two cases named %q", tc.name)
		}
		names[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			got, code := f.run(t, tc)
			if code != tc.code {
				t.Errorf("exit code %d, want %d", code, tc.code)
			}
			checkGolden(t, filepath.Join("testdata", "golden", tc.name+".txt"), got)
		})
	}
}

// run runs tc's line, through RunLine as the SSH front end does, or as the
// operator, and returns the transcript: the line, the exit code, stdout,
// stderr, the audit events recorded and the legal holds set.
func (f *fixture) run(t *testing.T, tc cliCase) (string, int) {
	t.Helper()
	user := tc.user
	if user == "" {
		user = "alice"
	}
	var log bytes.Buffer
	cfg := f.cfg
	cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	c := New(cfg)
	var stdout, stderr bytes.Buffer
	stdio := IO{Stdout: &stdout, Stderr: &stderr}
	var code int
	if tc.operator {
		words, err := SplitWords(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		code = c.RunAsOperator(t.Context(), f.actor(user), stdio, words)
	} else {
		code = c.RunLine(t.Context(), f.actor(user), stdio, tc.line)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "$ %s: %s\nexit %d\n-- stdout --\n%s-- stderr --\n%s", user, truncate(tc.line, 100), code, stdout.String(), stderr.String())
	if len(f.access.events) > 0 {
		b.WriteString("-- audit --\n")
		for _, e := range f.access.events {
			// The fields the CLI sets; the store sets the rest.
			j, err := json.Marshal(struct {
				Type      string            `json:"type"`
				Actor     string            `json:"actor"`
				Subject   string            `json:"subject,omitempty"`
				Target    string            `json:"target,omitempty"`
				RequestID int64             `json:"request_id,omitempty"`
				Outcome   string            `json:"outcome,omitempty"`
				Reason    string            `json:"reason,omitempty"`
				Details   map[string]string `json:"details,omitempty"`
			}{e.Type, e.Actor, e.Subject, e.Target, e.RequestID, e.Outcome, e.Reason, e.Details})
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s\n", j)
		}
	}
	if len(f.sessions.holds) > 0 {
		b.WriteString("-- legal holds --\n")
		for _, id := range slices.Sorted(maps.Keys(f.sessions.holds)) {
			fmt.Fprintf(&b, "%s %t\n", id, f.sessions.holds[id])
		}
	}
	if log.Len() > 0 {
		t.Logf("log:\n%s", log.String())
	}
	return f.scrub(b.String()), code
}

// scrub replaces the audit chain's hashes, which depend on how the audit
// package encodes events, with their sequence numbers: what the CLI shows is
// checked, not the hash function.
func (f *fixture) scrub(s string) string {
	for _, e := range f.audit.events {
		s = strings.ReplaceAll(s, e.Hash, fmt.Sprintf("<hash %d>", e.Seq))
	}
	return s
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// TestGoldenFilesUsed fails on a golden file no case writes, so that a
// renamed case does not leave a stale file behind.
func TestGoldenFilesUsed(t *testing.T) {
	names := map[string]bool{}
	for _, tc := range slices.Concat(cliCases, hostileCases) {
		names[tc.name+".txt"] = true
	}
	files, err := os.ReadDir(filepath.Join("testdata", "golden"))
	if err != nil {
		t.Fatal(err)
	}
	for _, fi := range files {
		if !names[fi.Name()] {
			t.Errorf("testdata/golden/%s belongs to no case", fi.Name())
		}
	}
}
