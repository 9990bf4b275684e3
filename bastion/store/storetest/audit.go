package storetest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
)

func diffEvent(want, got audit.Event) diffs {
	var d diffs
	eq(&d, "Seq", want.Seq, got.Seq)
	timeEq(&d, "Time", want.Time, got.Time)
	eq(&d, "Type", want.Type, got.Type)
	eq(&d, "Actor", want.Actor, got.Actor)
	eq(&d, "Subject", want.Subject, got.Subject)
	eq(&d, "Target", want.Target, got.Target)
	eq(&d, "RequestID", want.RequestID, got.RequestID)
	eq(&d, "Source", want.Source, got.Source)
	eq(&d, "Outcome", want.Outcome, got.Outcome)
	eq(&d, "Reason", want.Reason, got.Reason)
	if !maps.Equal(want.Details, got.Details) { // nil and empty are equal
		d = append(d, fmt.Sprintf("Details = %q, want %q", got.Details, want.Details))
	}
	eq(&d, "PrevHash", want.PrevHash, got.PrevHash)
	eq(&d, "Hash", want.Hash, got.Hash)
	return d
}

func appendAudit(t *testing.T, s store.Store, e audit.Event) audit.Event {
	t.Helper()
	sealed, err := s.AppendAudit(t.Context(), e)
	if err != nil {
		t.Fatalf("AppendAudit(%s): %v", e.Type, err)
	}
	return sealed
}

func readAudit(t *testing.T, s store.Store, f store.AuditFilter) []audit.Event {
	t.Helper()
	es, err := s.Audit(t.Context(), f)
	if err != nil {
		t.Fatalf("Audit(%+v): %v", f, err)
	}
	return es
}

// checkEvents fails t unless got equals want, event by event.
func checkEvents(t *testing.T, want, got []audit.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if d := diffEvent(want[i], got[i]); len(d) > 0 {
			t.Errorf("event %d differs:\n\t%s", want[i].Seq, strings.Join(d, "\n\t"))
		}
	}
}

func testAuditChain(t *testing.T, s store.Store) {
	cet := time.FixedZone("CET", 3600)
	in := []audit.Event{
		{Time: at(0), Type: audit.RequestCreate, Actor: "alice", Subject: "alice", Target: "db-prod",
			RequestID: 1, Source: "192.0.2.7:51234", Outcome: audit.OutcomeOK, Reason: "INC-42"},
		// Nanoseconds and another zone: a store may round to microseconds,
		// but must seal what it stores.
		{Time: at(time.Minute + 123*time.Nanosecond).In(cet), Type: audit.RequestApprove, Actor: "carol", Subject: "alice",
			RequestID: 1, Outcome: audit.OutcomeOK},
		{Time: at(2 * time.Minute), Type: audit.Login, Actor: "mallory", Outcome: audit.OutcomeRefused,
			Reason: "no grant", Seq: 99, PrevHash: "forged", Hash: "forged"}, // sealing overwrites these
	}
	var sealed []audit.Event
	for i, e := range in {
		got := appendAudit(t, s, e)
		prev := audit.GenesisHash
		if i > 0 {
			prev = sealed[i-1].Hash
		}
		if got.Seq != int64(i+1) || got.PrevHash != prev || got.Hash != got.ComputeHash() {
			t.Errorf("event %d sealed as Seq %d, PrevHash %.8s, Hash %.8s; want Seq %d, PrevHash %.8s and a matching hash",
				i, got.Seq, got.PrevHash, got.Hash, i+1, prev)
		}
		if d := got.Time.Sub(e.Time); d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("event %d sealed with time %v, want %v (to the microsecond)", i, got.Time, e.Time)
		}
		sealed = append(sealed, got)
	}
	stored := readAudit(t, s, store.AuditFilter{})
	checkEvents(t, sealed, stored)
	if err := audit.Verify(stored); err != nil {
		t.Errorf("Verify: %v", err)
	}

	// Paging with AfterSeq streams the same chain.
	var v audit.Verifier
	for page := 0; ; page++ {
		es := readAudit(t, s, store.AuditFilter{AfterSeq: v.Count(), Limit: 2})
		if len(es) == 0 {
			break
		}
		if page > len(sealed) {
			t.Fatalf("paging does not end")
		}
		for _, e := range es {
			if err := v.Next(e); err != nil {
				t.Fatalf("Verifier: %v", err)
			}
		}
	}
	if v.Count() != int64(len(sealed)) || v.Head() != sealed[len(sealed)-1].Hash {
		t.Errorf("paged verification saw %d events ending at %.8s, want %d ending at %.8s",
			v.Count(), v.Head(), len(sealed), sealed[len(sealed)-1].Hash)
	}
}

func testAuditDetails(t *testing.T, s store.Store) {
	tests := []struct {
		name    string
		details map[string]string
	}{
		{"none", nil},
		{"empty", map[string]string{}},
		{"some", map[string]string{
			"principals": "alice,ubuntu",
			"serial":     "42",
			"empty":      "",
			"unicode ✓":  "ünïcode \"quoted\" 'single' \n newline \x00 nul",
			"sql":        "'; DROP TABLE audit_events; --",
		}},
	}
	var sealed []audit.Event
	for i, tt := range tests {
		sealed = append(sealed, appendAudit(t, s, audit.Event{
			Time: at(time.Duration(i) * time.Second), Type: audit.CertIssue, Actor: tt.name,
			Outcome: audit.OutcomeOK, Details: tt.details,
		}))
	}
	stored := readAudit(t, s, store.AuditFilter{})
	checkEvents(t, sealed, stored)
	if err := audit.Verify(stored); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	sealed := make([]audit.Event, concurrency)
	errs := race(concurrency, func(i int) error {
		var err error
		sealed[i], err = s.AppendAudit(t.Context(), audit.Event{
			Time: at(time.Duration(i) * time.Millisecond), Type: audit.Command, Actor: fmt.Sprint("user", i),
			Outcome: audit.OutcomeOK, Details: map[string]string{"i": fmt.Sprint(i)},
		})
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("appender %d: %v", i, err)
		}
	}
	stored := readAudit(t, s, store.AuditFilter{})
	if err := audit.Verify(stored); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(stored) != concurrency {
		t.Fatalf("%d events stored, want %d", len(stored), concurrency)
	}
	// Each appender got back the event as stored at its Seq.
	for i, e := range sealed {
		if e.Seq < 1 || e.Seq > int64(len(stored)) {
			t.Errorf("appender %d got Seq %d, out of the chain", i, e.Seq)
			continue
		}
		if d := diffEvent(stored[e.Seq-1], e); len(d) > 0 {
			t.Errorf("appender %d got an event unlike the one stored at %d:\n\t%s", i, e.Seq, strings.Join(d, "\n\t"))
		}
	}
}

func testAuditFilter(t *testing.T, s store.Store) {
	events := []audit.Event{
		{Time: at(0), Type: audit.RequestCreate, Actor: "alice", Subject: "alice", RequestID: 1},                // 1
		{Time: at(1 * time.Minute), Type: audit.RequestApprove, Actor: "carol", Subject: "alice", RequestID: 1}, // 2
		{Time: at(1 * time.Minute), Type: audit.RequestGrant, Actor: "carol", Subject: "alice", RequestID: 1},   // 3
		{Time: at(2 * time.Minute), Type: audit.CertIssue, Actor: "bastion", Subject: "alice", RequestID: 1},    // 4
		{Time: at(3 * time.Minute), Type: audit.Login, Actor: "bob"},                                            // 5
		{Time: at(4 * time.Minute), Type: audit.RequestCreate, Actor: "bob", Subject: "bob", RequestID: 2},      // 6
		{Time: at(5 * time.Minute), Type: "Request.deny", Actor: "dave"},                                        // 7: case differs
		{Time: at(6 * time.Minute), Type: "x_y.z", Actor: "dave"},                                               // 8
		{Time: at(7 * time.Minute), Type: "xay.z", Actor: "dave"},                                               // 9: _ is no wildcard
		{Time: at(8 * time.Minute), Type: "request", Actor: "dave"},                                             // 10
	}
	for _, e := range events {
		e.Outcome = audit.OutcomeOK
		appendAudit(t, s, e)
	}
	tests := []struct {
		name   string
		filter store.AuditFilter
		want   []int64
	}{
		{"all", store.AuditFilter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"user as subject and actor", store.AuditFilter{User: "alice"}, []int64{1, 2, 3, 4}},
		{"user as actor", store.AuditFilter{User: "carol"}, []int64{2, 3}},
		{"user bob", store.AuditFilter{User: "bob"}, []int64{5, 6}},
		{"unknown user", store.AuditFilter{User: "mallory"}, nil},
		{"exact type", store.AuditFilter{Type: audit.RequestCreate}, []int64{1, 6}},
		{"exact type without dot", store.AuditFilter{Type: "request"}, []int64{10}},
		{"type prefix", store.AuditFilter{Type: "request."}, []int64{1, 2, 3, 6}},
		{"type prefix with underscore", store.AuditFilter{Type: "x_y."}, []int64{8}},
		{"partial type is no prefix", store.AuditFilter{Type: "request.cr"}, nil},
		{"request", store.AuditFilter{RequestID: 1}, []int64{1, 2, 3, 4}},
		{"since is inclusive", store.AuditFilter{Since: at(time.Minute)}, []int64{2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"after seq", store.AuditFilter{AfterSeq: 7}, []int64{8, 9, 10}},
		{"limit", store.AuditFilter{Limit: 2}, []int64{1, 2}},
		{"page", store.AuditFilter{AfterSeq: 2, Limit: 2}, []int64{3, 4}},
		{"combined", store.AuditFilter{User: "alice", Type: "request.", Since: at(time.Minute), RequestID: 1}, []int64{2, 3}},
	}
	all := readAudit(t, s, store.AuditFilter{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAudit(t, s, tt.filter)
			var seqs []int64
			for _, e := range got {
				seqs = append(seqs, e.Seq)
			}
			if !slices.Equal(seqs, tt.want) {
				t.Fatalf("Audit(%+v) = events %v, want %v", tt.filter, seqs, tt.want)
			}
			for _, e := range got {
				if d := diffEvent(all[e.Seq-1], e); len(d) > 0 {
					t.Errorf("filtered event %d differs:\n\t%s", e.Seq, strings.Join(d, "\n\t"))
				}
			}
		})
	}
}

// testAuditArbitraryBytes: text from users may hold any bytes. What a store
// returns from AppendAudit is what it reads back, field for field, it is the
// event's canonical form (audit.Event.Canonical), and the chain verifies.
func testAuditArbitraryBytes(t *testing.T, s store.Store) {
	long := strings.Repeat("é", 1<<12)
	texts := []struct {
		name string
		text string
	}{
		{"invalid UTF-8", "bogus\x89cmd"},
		{"NUL", "a\x00b"},
		{"lone surrogate as UTF-8 bytes", "\xed\xa0\x80"},
		{"line separator", "a\u2028b"},
		{"replacement character", "\ufffd"},
		{"escape sequences", `\x89 \\ \u0000 \n`},
		{"escape sequence beside an invalid byte", `\x89` + "\x89"},
		{"very long", long + "\xff"},
		{"terminal escapes", "\x1b[2J\x1b]0;title\x07"},
	}
	var sealed []audit.Event
	for i, tt := range texts {
		in := audit.Event{
			Time: at(time.Duration(i) * time.Second), Type: audit.Command + tt.text, Actor: tt.text, Subject: tt.text,
			Target: tt.text, RequestID: int64(i), Source: tt.text, Outcome: tt.text, Reason: tt.text,
			Details: map[string]string{"value": tt.text, tt.text: "key"},
		}
		got := appendAudit(t, s, in)
		want := in.Canonical()
		want.Time, want.Seq, want.PrevHash, want.Hash = got.Time, got.Seq, got.PrevHash, got.Hash
		if d := diffEvent(want, got); len(d) > 0 {
			t.Errorf("%s: AppendAudit did not return the canonical event:\n\t%s", tt.name, strings.Join(d, "\n\t"))
		}
		sealed = append(sealed, got)
	}
	stored := readAudit(t, s, store.AuditFilter{})
	checkEvents(t, sealed, stored)
	if err := audit.Verify(stored); err != nil {
		t.Errorf("Verify: %v", err)
	}
}
