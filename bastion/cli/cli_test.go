package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/recorder/manifest"
)

// TestCommandTable checks the one list of commands: in help order (by
// name), each name once, each with a summary and a function.
func TestCommandTable(t *testing.T) {
	table := commandTable()
	names := make([]string, 0, len(table))
	for _, cmd := range table {
		if cmd.summary == "" || cmd.run == nil {
			t.Errorf("command %q has no summary or no function", cmd.name)
		}
		names = append(names, cmd.name)
	}
	if !slices.IsSorted(names) {
		t.Errorf("the table is not in help order: %q", names)
	}
	if c := slices.Compact(slices.Clone(names)); len(c) != len(names) {
		t.Errorf("a command is listed twice: %q", names)
	}
}

// TestEveryCommandCovered makes the golden cases keep up with the table:
// each command has a case that succeeds and one with a usage error, and
// each command that can refuse has a refusal.
func TestEveryCommandCovered(t *testing.T) {
	cannotRefuse := map[string]bool{"help": true, "ca": true, "targets": true}
	for _, cmd := range commandTable() {
		codes := map[int]bool{}
		for _, tc := range cliCases {
			if w, _ := SplitWords(tc.line); len(w) > 0 && w[0] == cmd.name {
				codes[tc.code] = true
			}
		}
		if !codes[ExitOK] || !codes[ExitUsage] || (!codes[ExitRefused] && !cannotRefuse[cmd.name]) {
			t.Errorf("command %s: cases with exit codes %v; want 0, 1 and 2", cmd.name, codes)
		}
	}
}

// TestPanicEndsOnlyTheCommand: a command that panics does not take the
// process (and every session in it) down. The user sees the fixed
// internal-error message and exit 1, the log has the panic and its stack,
// and the next command on the same CLI works.
func TestPanicEndsOnlyTheCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		json bool
	}{{name: "text"}, {name: "json", json: true}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.access.panicky = true
			var log bytes.Buffer
			f.cfg.Logger = slog.New(slog.NewJSONHandler(&log, nil))
			c := New(f.cfg)
			line := "whoami"
			if tc.json {
				line += " --json"
			}
			var stdout, stderr bytes.Buffer
			code := c.RunLine(t.Context(), f.actor("alice"), IO{Stdout: &stdout, Stderr: &stderr}, line)
			if code != ExitRefused {
				t.Errorf("exit code %d, want %d", code, ExitRefused)
			}
			if got, want := stderr.String(), "bastion: "+internalError+"\n"; got != want {
				t.Errorf("stderr %q, want %q", got, want)
			}
			if strings.Contains(stderr.String()+stdout.String(), "List is broken") {
				t.Errorf("the panic reached the user: %q %q", stdout.String(), stderr.String())
			}
			if tc.json {
				var out map[string]string
				if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || out["kind"] != "error" || out["error"] != internalError {
					t.Errorf("stdout %q (%v), want the internal error as JSON", stdout.String(), err)
				}
			}
			var entry struct {
				Msg, Command, User, Panic, Stack string
			}
			if err := json.Unmarshal(log.Bytes(), &entry); err != nil {
				t.Fatalf("log %q: %v (want one entry)", log.String(), err)
			}
			if entry.Msg != "command panicked" || entry.Command != "whoami" || entry.User != "alice" ||
				!strings.Contains(entry.Panic, "List is broken") || !strings.Contains(entry.Stack, "(*fakeAccess).List") {
				t.Errorf("log entry %+v: want the panic, the command, the user and the stack", entry)
			}

			f.access.panicky = false
			stdout.Reset()
			if code := c.RunLine(t.Context(), f.actor("alice"), IO{Stdout: &stdout, Stderr: &stderr}, "whoami"); code != ExitOK ||
				!strings.HasPrefix(stdout.String(), "user:   alice\n") {
				t.Errorf("the next command: exit %d, output %q", code, stdout.String())
			}
		})
	}
}

// TestInternalErrorLogged: an error that is neither a refusal nor a usage
// error is logged with its cause, which the user never sees.
func TestInternalErrorLogged(t *testing.T) {
	f := newFixture(t)
	f.audit.fail = errors.New("sqlite: disk I/O error")
	var log bytes.Buffer
	f.cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	var stdout, stderr bytes.Buffer
	code := New(f.cfg).RunLine(t.Context(), f.actor("carol"), IO{Stdout: &stdout, Stderr: &stderr}, "audit verify")
	if code != ExitRefused || strings.Contains(stderr.String(), "disk I/O") {
		t.Errorf("exit %d, stderr %q: want 1 and no cause", code, stderr.String())
	}
	if !strings.Contains(log.String(), "disk I/O error") {
		t.Errorf("log %q lacks the cause", log.String())
	}
}

// TestAuditVerifyPages: VerifyAudit reads the chain a page at a time and
// checks it across page boundaries.
func TestAuditVerifyPages(t *testing.T) {
	log := &fakeAudit{}
	for i := range 2*auditPage + 500 {
		e := audit.Event{Type: audit.Login, Actor: "alice", Outcome: audit.OutcomeOK, Time: t0.Add(time.Duration(i) * time.Second)}
		var prev *audit.Event
		if i > 0 {
			prev = &log.events[i-1]
		}
		e.Seal(prev)
		log.events = append(log.events, e)
	}
	n, head, err := VerifyAudit(t.Context(), log)
	if err != nil || n != int64(len(log.events)) || head != log.events[len(log.events)-1].Hash {
		t.Fatalf("VerifyAudit = %d, %s, %v; want %d, the last hash, nil", n, head, err, len(log.events))
	}
	var after []int64
	for _, f := range log.filters {
		after = append(after, f.AfterSeq)
	}
	if want := []int64{0, auditPage, 2 * auditPage}; !slices.Equal(after, want) {
		t.Errorf("pages read after seq %v, want %v", after, want)
	}

	// One event altered in the second page.
	log.events[auditPage+10].Reason = "rewritten"
	if _, _, err := VerifyAudit(t.Context(), log); err == nil {
		t.Error("an altered event in the second page verified")
	}
}

// TestAuditVerifyAltered: `audit verify` of an altered chain is a refusal.
func TestAuditVerifyAltered(t *testing.T) {
	f := newFixture(t)
	f.audit.events[2].Reason = "known key"
	var stdout, stderr bytes.Buffer
	code := New(f.cfg).RunLine(t.Context(), f.actor("carol"), IO{Stdout: &stdout, Stderr: &stderr}, "audit verify")
	if code != ExitRefused || stdout.Len() > 0 || !strings.HasPrefix(stderr.String(), "bastion: ") {
		t.Errorf("exit %d, stdout %q, stderr %q: want a refusal", code, stdout.String(), stderr.String())
	}
}

// TestSince: --since takes a duration back from now, an RFC 3339 time or a
// date, and the filter the store gets is that time.
func TestSince(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, in string
		want     time.Time
	}{
		{name: "duration", in: "24h", want: now.Add(-24 * time.Hour)},
		{name: "time", in: "2026-11-28T09:00:00Z", want: time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)},
		{name: "date", in: "2026-11-28", want: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSince(tc.in, now)
			if err != nil || !got.Equal(tc.want) {
				t.Errorf("parseSince(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
	for _, bad := range []string{"-1h", "0s", "yesterday", ""} {
		if got, err := parseSince(bad, now); err == nil {
			t.Errorf("parseSince(%q) = %v, want an error", bad, got)
		}
	}

	f := newFixture(t)
	var out bytes.Buffer
	before := time.Now()
	if code := New(f.cfg).RunLine(t.Context(), f.actor("alice"), IO{Stdout: &out, Stderr: &out}, "sessions --since 2h"); code != ExitOK {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if since := f.sessions.filters[0].Since; since.Before(before.Add(-2*time.Hour)) || since.After(time.Now().Add(-2*time.Hour)) {
		t.Errorf("sessions --since 2h asked for sessions since %v", since)
	}
}

// TestWatchFollowsLiveSession: watch prints what a live session writes as
// it grows and returns when it ends. It polls on a timer; synctest makes
// the polls instant and the test deterministic.
func TestWatchFollowsLiveSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t)
		name := f.sessions.sessions["ssh-3"].Recording
		header := `{"version":2,"width":80,"height":24}` + "\n"
		parts := []string{
			`[0.1,"o","one\r\n"]` + "\n",
			`[0.2,"o","two\r\n"]` + "\n",
			`[0.3,"o","three\r\n"]` + "\n",
		}
		f.storage.objects[name] = []byte(header + parts[0])
		// Each look at the session's state is one poll: the recording grows
		// by a part, and after the last part the session ends.
		var polls atomic.Int32
		sessions := &pollingSessions{fakeSessions: f.sessions, id: "ssh-3", onPoll: func(s *store.Session) {
			n := int(polls.Add(1))
			if n < len(parts) {
				f.storage.objects[name] = append(f.storage.objects[name], parts[n]...)
			} else {
				s.State = store.SessionEnded
			}
		}}
		f.cfg.Sessions = sessions
		var stdout, stderr bytes.Buffer
		start := time.Now()
		code := New(f.cfg).RunLine(t.Context(), f.actor("carol"), IO{Stdout: &stdout, Stderr: &stderr}, "watch ssh-3")
		if code != ExitOK {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		if got, want := stdout.String(), "one\r\ntwo\r\nthree\r\n"; got != want {
			t.Errorf("watch printed %q, want %q", got, want)
		}
		if !strings.Contains(stderr.String(), "session ssh-3 ended") {
			t.Errorf("stderr %q", stderr.String())
		}
		// Two polls waited for more (after "one" and "two"); the third found
		// the session ended.
		if waited := time.Since(start); waited != 2*followPoll {
			t.Errorf("watch waited %v, want %v", waited, 2*followPoll)
		}
	})
}

// pollingSessions calls onPoll on every look at one session after the
// first (the first is watch's own check that the session exists).
type pollingSessions struct {
	*fakeSessions
	id     string
	looks  int
	onPoll func(*store.Session)
}

func (p *pollingSessions) Session(ctx context.Context, id string) (*store.Session, error) {
	if id == p.id {
		p.looks++
		if p.looks > 1 {
			p.onPoll(p.sessions[id])
		}
	}
	return p.fakeSessions.Session(ctx, id)
}

// TestVerifyOffline: `bastion verify --dir DIR --pubkey FILE` checks a
// downloaded recording without a server.
func TestVerifyOffline(t *testing.T) {
	f := newFixture(t)
	name := "2026/12/01/ssh-1.cast"
	dir := t.TempDir()
	write := func(file string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("manifest", f.signed.manifests[name])
	write(manifest.ChunkPartName(1), f.signed.chunks[name])
	pub := filepath.Join(t.TempDir(), "recording_ed25519_key.pub")
	if err := os.WriteFile(pub, []byte(manifest.AuthorizedKey(f.signed.PublicKey())), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, int, bool) {
		var stdout, stderr bytes.Buffer
		code, ok := VerifyOffline(t.Context(), args, &stdout, &stderr)
		return stdout.String(), stderr.String(), code, ok
	}

	if _, _, _, ok := run("ssh-1"); ok {
		t.Error("verify ID was taken for an offline verification")
	}
	out, errOut, code, ok := run("--dir", dir, "--pubkey", pub)
	if !ok || code != ExitOK || !strings.HasPrefix(out, "ok: recording "+name+" is complete and unaltered") {
		t.Errorf("verify: exit %d, %q %q", code, out, errOut)
	}
	out, _, code, _ = run("--dir", dir, "--pubkey", pub, "--json")
	var v verifyView
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != ExitOK || !v.OK || v.Chunks != 1 || v.Recording != name {
		t.Errorf("verify --json: exit %d, %q (%v)", code, out, err)
	}
	if _, errOut, code, _ := run("--dir", dir); code != ExitUsage || !strings.Contains(errOut, "usage") {
		t.Errorf("no --pubkey: exit %d, %q", code, errOut)
	}
	if _, errOut, code, _ := run("--dir", dir, "--pubkey", filepath.Join(dir, "nope")); code != ExitUsage {
		t.Errorf("missing key file: exit %d, %q", code, errOut)
	}
	write(manifest.ChunkPartName(1), []byte("altered"))
	if _, errOut, code, _ := run("--dir", dir, "--pubkey", pub); code != ExitRefused || !strings.Contains(errOut, "FAILED") {
		t.Errorf("altered chunk: exit %d, %q", code, errOut)
	}
}

// TestAuditNewestPages: `audit --limit N` shows the newest N events, oldest
// first, also when the matching events span several of the store's pages.
func TestAuditNewestPages(t *testing.T) {
	log := &fakeAudit{}
	for i := range 2*auditPage + 500 {
		e := audit.Event{Type: audit.Login, Actor: "alice", Outcome: audit.OutcomeOK, Time: t0.Add(time.Duration(i) * time.Second)}
		var prev *audit.Event
		if i > 0 {
			prev = &log.events[i-1]
		}
		e.Seal(prev)
		log.events = append(log.events, e)
	}
	for _, limit := range []int{1, 3, auditPage, auditPage + 1, 3 * auditPage} {
		got, err := newestAudit(t.Context(), log, store.AuditFilter{User: "alice", Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		want := log.events[max(0, len(log.events)-limit):]
		if len(got) != len(want) || got[0].Seq != want[0].Seq || got[len(got)-1].Seq != want[len(want)-1].Seq {
			t.Errorf("limit %d: %d events, seq %d..%d; want %d, seq %d..%d", limit, len(got), got[0].Seq, got[len(got)-1].Seq,
				len(want), want[0].Seq, want[len(want)-1].Seq)
		}
	}
}
