package sqlite

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
)

// FuzzAuditRoundTrip appends events with arbitrary bytes in every field,
// reads each back and checks that it is the sealed event and links to the
// one before; when the fuzzer stops, the whole chain must verify.
func FuzzAuditRoundTrip(f *testing.F) {
	f.Add("alice", "bob", "web-1", "192.0.2.1", "ok", "bogus\x89cmd", "command", "rm \xff", int64(1), int64(0))
	f.Add("a\x00b", "\xed\xa0\x80", "\u2028", `\x89`, "\x80", `\\`+"\x89", "k\xfe", "", int64(0), int64(1))
	f.Add("", "", "", "", "", strings.Repeat("\xc3", 3000), "", "\x00", int64(-1), int64(-1<<62))
	s := openTemp(f)
	f.Cleanup(func() {
		es, err := s.Audit(context.Background(), store.AuditFilter{}) // f.Context is done by now
		if err == nil {
			err = audit.Verify(es)
		}
		if err != nil {
			f.Errorf("the chain of %d events: %v", len(es), err)
		}
		if err := s.Close(); err != nil {
			f.Error(err)
		}
	})
	start := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, actor, subject, target, source, outcome, reason, key, value string, requestID, offset int64) {
		in := audit.Event{
			Time: start.Add(time.Duration(offset % (1 << 50))), Type: "fuzz." + key, Actor: actor, Subject: subject,
			Target: target, RequestID: requestID, Source: source, Outcome: outcome, Reason: reason,
			Details: map[string]string{key: value, "value": value},
		}
		sealed, err := s.AppendAudit(t.Context(), in)
		if err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
		back, err := s.Audit(t.Context(), store.AuditFilter{AfterSeq: max(sealed.Seq-2, 0)})
		if err != nil || len(back) == 0 {
			t.Fatalf("Audit: %d events, %v", len(back), err)
		}
		got := back[len(back)-1]
		if d := fmt.Sprintf("%+v", got); d != fmt.Sprintf("%+v", withTime(sealed, got.Time)) || !got.Time.Equal(sealed.Time) {
			t.Fatalf("read back\n\t%+v\nsealed\n\t%+v", got, sealed)
		}
		want := in.Canonical()
		if got.Reason != want.Reason || got.Actor != want.Actor || !maps.Equal(got.Details, want.Details) {
			t.Fatalf("stored %+v, want the canonical form %+v", got, want)
		}
		if got.Hash != got.ComputeHash() {
			t.Fatalf("event %d does not match its hash", got.Seq)
		}
		if len(back) == 2 && got.PrevHash != back[0].Hash {
			t.Fatalf("event %d does not link to event %d", got.Seq, back[0].Seq)
		}
	})
}

// withTime is e with its time replaced, for comparing the rest.
func withTime(e audit.Event, t time.Time) audit.Event {
	e.Time = t
	return e
}
