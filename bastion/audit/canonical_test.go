package audit_test

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bastionhq/bastion/bastion/audit"
)

// TestCanonical pins the escaping of text that JSON cannot carry, and that
// valid text is left as it is.
func TestCanonical(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	tests := []struct {
		name    string
		in      string
		want    string
		escaped bool
	}{
		{"plain", "ls -l /tmp", "ls -l /tmp", false},
		{"empty", "", "", false},
		{"invalid byte", "bogus\x89cmd", `bogus\x89cmd`, true},
		{"NUL", "a\x00b", `a\x00b`, true},
		{"lone surrogate as UTF-8 bytes", "\xed\xa0\x80", `\xed\xa0\x80`, true},
		{"truncated sequence", "caf\xc3", `caf\xc3`, true},
		{"overlong encoding", "\xc0\xaf", `\xc0\xaf`, true},
		{"beyond U+10FFFF", "\xf4\x90\x80\x80", `\xf4\x90\x80\x80`, true},
		{"line separator", "a\u2028b\u2029c", "a\u2028b\u2029c", false},
		{"replacement character is valid", "\ufffd", "\ufffd", false},
		{"escape sequences in valid text", `\x89 \\ \n \u0000`, `\x89 \\ \n \u0000`, false},
		{"backslash beside an invalid byte", `\x89` + "\x89", `\\x89\x89`, true},
		{"control characters", "\t\n\r\x01\x7f\x1b[31m", "\t\n\r\x01\x7f\x1b[31m", false},
		{"multibyte kept", "ünï ✓ 🔒\xff", `ünï ✓ 🔒\xff`, true},
		{"very long", long, long, false},
		{"very long invalid", long + "\x80", long + `\x80`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := audit.Event{Reason: tt.in}
			c := e.Canonical()
			if c.Reason != tt.want {
				t.Errorf("Canonical().Reason = %.80q, want %.80q", c.Reason, tt.want)
			}
			if got := c.Details[audit.EscapedDetail]; (got == "reason") != tt.escaped || (!tt.escaped && c.Details != nil) {
				t.Errorf("Details = %q, want escaped=reason: %v", c.Details, tt.escaped)
			}
			if tt.escaped && audit.Unescape(c.Reason) != tt.in {
				t.Errorf("Unescape(%.80q) = %.80q, want the original bytes", c.Reason, audit.Unescape(c.Reason))
			}
			if e.Reason != tt.in || e.Details != nil {
				t.Errorf("Canonical modified its receiver")
			}
		})
	}
}

func TestCanonicalFields(t *testing.T) {
	in := audit.Event{
		Type: "command\x00", Actor: "al\xffice", Subject: "bob", Target: "web\x80", Source: "192.0.2.1",
		Outcome: "ok", Reason: "fine",
		Details: map[string]string{"cmd": "rm \xfe", "k\xff": "v", "plain": "p\\q", audit.EscapedDetail: "forged"},
	}
	details := maps.Clone(in.Details)
	got := in.Canonical()
	want := map[string]string{
		"cmd": `rm \xfe`, `k\xff`: "v", "plain": `p\q`,
		audit.EscapedDetail: `type,actor,target,details.cmd,details.k\xff`,
	}
	if got.Type != `command\x00` || got.Actor != `al\xffice` || got.Subject != "bob" || got.Target != `web\x80` || got.Reason != "fine" {
		t.Errorf("Canonical() = %+v", got)
	}
	if !maps.Equal(got.Details, want) {
		t.Errorf("Details = %q, want %q", got.Details, want)
	}
	if !maps.Equal(in.Details, details) {
		t.Errorf("Canonical modified the caller's Details: %q", in.Details)
	}
	if again := got.Canonical(); !maps.Equal(again.Details, got.Details) || again.Actor != got.Actor {
		t.Errorf("Canonical is not idempotent: %+v, then %+v", got, again)
	}
}

// TestSealEscapes checks that a sealed event survives a JSON round trip (what
// a store that keeps JSON does) with its hash intact, whatever its bytes.
func TestSealEscapes(t *testing.T) {
	e := audit.Event{Time: t0, Type: audit.Command, Actor: "alice", Outcome: audit.OutcomeOK,
		Reason: "bogus\x89cmd", Details: map[string]string{"command": "bogus\x89cmd", "nul": "a\x00b"}}
	e.Seal(nil)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var back audit.Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if err := audit.Verify([]audit.Event{back}); err != nil {
		t.Errorf("Verify after a JSON round trip: %v", err)
	}
	if back.Reason != `bogus\x89cmd` || back.Details[audit.EscapedDetail] != "reason,details.command,details.nul" {
		t.Errorf("read back %+v", back)
	}
	// The hash covers the original bytes: another invalid byte is another hash.
	other := audit.Event{Time: t0, Type: audit.Command, Actor: "alice", Outcome: audit.OutcomeOK,
		Reason: "bogus\x8acmd", Details: map[string]string{"command": "bogus\x89cmd", "nul": "a\x00b"}}
	other.Seal(nil)
	if other.Hash == e.Hash {
		t.Errorf("two different invalid bytes hash alike")
	}
}

// TestEarlierChainsVerify pins hashes sealed by the code before the canonical
// form (computed with bastion/audit at 1ccc8ec): valid text hashes as it did,
// so chains in existing data directories verify unchanged.
func TestEarlierChainsVerify(t *testing.T) {
	es := []audit.Event{
		{Time: t0, Type: "request.create", Actor: "alice", Subject: "alice", Target: "db-prod,web-1", RequestID: 7,
			Source: "192.0.2.7", Outcome: "ok", Reason: "INC-42 <a&b> \"q\" \\x89 literal",
			Details: map[string]string{"logins": "ubuntu", "duration": "1h0m0s", "role": "dev"}},
		{Time: t0.Add(time.Second), Type: "command", Actor: "bob", Outcome: "refused",
			Reason: "line\u2028sep \ufffd replacement ünï ✓ \t\n", Details: map[string]string{"ü": "\x01\x7f", "cmd": "grep '\\d' /etc"}},
		{Time: t0.Add(2 * time.Second), Type: "login", Actor: "carol", Outcome: "ok"},
	}
	hashes := []string{
		"d08a22244f8e1df36b452abbd7af82b54580dc4478458479a37df41b713c1458",
		"58985df995b8f1949234217a08028fec172acfa572e3b771a0f8f6f95b12a225",
		"a452e101b6a3aabac22d6a8b9c333ecdaa8fb1158e6dbc628815818398e04354",
	}
	prev := audit.GenesisHash
	for i := range es {
		es[i].Seq, es[i].PrevHash, es[i].Hash = int64(i+1), prev, hashes[i]
		prev = hashes[i]
	}
	if err := audit.Verify(es); err != nil {
		t.Fatalf("an earlier chain: %v", err)
	}
	// Sealing the same events now gives the same hashes.
	for i := range es {
		e := es[i]
		if i == 0 {
			e.Seal(nil)
		} else {
			e.Seal(&es[i-1])
		}
		if e.Hash != hashes[i] {
			t.Errorf("event %d seals as %.16s now, %.16s before", i+1, e.Hash, hashes[i])
		}
	}
}

// TestEarlierRawFieldsVerify: before the canonical form, a field that was
// not UTF-8 (or held NUL) was stored as it was, and verified, since the
// hash is computed the same way from it. It still does.
func TestEarlierRawFieldsVerify(t *testing.T) {
	// As the SQLite store kept it at 1ccc8ec.
	stored := audit.Event{Seq: 1, Time: t0, Type: "command", Actor: "alice", Subject: "a\x00b", Outcome: "refused",
		Reason: "unknown command \"bogus\x89cmd\"", PrevHash: audit.GenesisHash,
		Hash: "b6e92201de7d2c91239851e1fc4c4b40083c38129477228a18e094a3e38928ed"}
	if err := audit.Verify([]audit.Event{stored}); err != nil {
		t.Fatalf("the earlier event: %v", err)
	}
}

// TestEarlierBrokenDetailsVerify: before the canonical form, an event whose
// details held bytes that were not UTF-8 was stored with U+FFFD for them and
// never verified again. It verifies now, and an alteration still shows.
func TestEarlierBrokenDetailsVerify(t *testing.T) {
	// As read back from a store: sealed over "bogus\x89cmd \xff\xfe".
	stored := audit.Event{Seq: 1, Time: t0, Type: "command", Actor: "alice", Outcome: "ok",
		Details:  map[string]string{"command": "bogus\ufffdcmd \ufffd\ufffd", "other": "fine"},
		PrevHash: audit.GenesisHash, Hash: "5359e70f0ed8fc556631156b51b7a93b9f1e7b063cd514240f80e0406ff98e8b"}
	if err := audit.Verify([]audit.Event{stored}); err != nil {
		t.Fatalf("the earlier event: %v", err)
	}
	for name, alter := range map[string]func(e *audit.Event){
		"other detail": func(e *audit.Event) { e.Details["other"] = "changed" },
		"text":         func(e *audit.Event) { e.Details["command"] = "bogus\ufffdcmd \ufffd" },
		"actor":        func(e *audit.Event) { e.Actor = "mallory" },
	} {
		e := stored
		e.Details = maps.Clone(stored.Details)
		alter(&e)
		var broken *audit.BrokenLinkError
		if err := audit.Verify([]audit.Event{e}); !errors.As(err, &broken) {
			t.Errorf("%s altered: Verify = %v, want a broken link", name, err)
		}
	}
}

// FuzzCanonical: any bytes in any field give a canonical event whose strings
// are valid UTF-8 without NUL, that Unescape turns back into the original,
// that is stable under Canonical, and whose seal survives a JSON round trip.
func FuzzCanonical(f *testing.F) {
	f.Add("alice", "bogus\x89cmd", "command", "a\x00b")
	f.Add("", `\x89`, "k\xff", "\xed\xa0\x80")
	f.Add("ü", "\u2028", "", `\\`)
	f.Fuzz(func(t *testing.T, actor, reason, key, value string) {
		e := audit.Event{Time: t0, Type: audit.Command, Actor: actor, Reason: reason, Outcome: audit.OutcomeOK,
			Details: map[string]string{key: value}}
		c := e.Canonical()
		for _, s := range []string{c.Actor, c.Reason} {
			if !utf8.ValidString(s) || strings.Contains(s, "\x00") {
				t.Fatalf("canonical text %q is not UTF-8 without NUL", s)
			}
		}
		for k, v := range c.Details {
			if !utf8.ValidString(k) || !utf8.ValidString(v) || strings.ContainsRune(k+v, 0) {
				t.Fatalf("canonical detail %q=%q is not UTF-8 without NUL", k, v)
			}
		}
		escaped := "," + c.Details[audit.EscapedDetail] + ","
		if got := c.Actor; strings.Contains(escaped, ",actor,") && audit.Unescape(got) != actor || !strings.Contains(escaped, ",actor,") && got != actor {
			t.Fatalf("actor %q became %q (escaped: %s)", actor, got, escaped)
		}
		if got := c.Reason; strings.Contains(escaped, ",reason,") && audit.Unescape(got) != reason || !strings.Contains(escaped, ",reason,") && got != reason {
			t.Fatalf("reason %q became %q (escaped: %s)", reason, got, escaped)
		}
		again := c.Canonical()
		if again.Actor != c.Actor || again.Reason != c.Reason || !maps.Equal(again.Details, c.Details) {
			t.Fatalf("Canonical is not idempotent")
		}
		e.Seal(nil)
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back audit.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := audit.Verify([]audit.Event{back}); err != nil {
			t.Fatalf("after a JSON round trip: %v", err)
		}
	})
}
