package audit_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
)

var t0 = time.Date(2031, time.March, 4, 5, 6, 7, 891011121, time.UTC)

// chain returns a sealed chain of n events.
func chain(n int) []audit.Event {
	var es []audit.Event
	for i := range n {
		e := audit.Event{
			Time:      t0.Add(time.Duration(i) * time.Second),
			Type:      audit.Command,
			Actor:     "alice",
			Subject:   "alice",
			Target:    "web-1",
			RequestID: 7,
			Source:    "192.0.2.7:51234",
			Outcome:   audit.OutcomeOK,
			Reason:    fmt.Sprint("command ", i),
			Details:   map[string]string{"argv": fmt.Sprint("ls -l /tmp/", i)},
		}
		if i == 0 {
			e.Seal(nil)
		} else {
			e.Seal(&es[i-1])
		}
		es = append(es, e)
	}
	return es
}

func TestSeal(t *testing.T) {
	es := chain(5)
	for i, e := range es {
		wantPrev := audit.GenesisHash
		if i > 0 {
			wantPrev = es[i-1].Hash
		}
		if e.Seq != int64(i+1) || e.PrevHash != wantPrev || e.Hash != e.ComputeHash() || len(e.Hash) != 64 {
			t.Errorf("event %d sealed as Seq %d, PrevHash %.8s, Hash %q; want Seq %d, PrevHash %.8s",
				i, e.Seq, e.PrevHash, e.Hash, i+1, wantPrev)
		}
	}
	if err := audit.Verify(es); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if err := audit.Verify(nil); err != nil {
		t.Errorf("Verify(nil): %v", err)
	}
	// Sealing overwrites whatever link the event carried.
	e := audit.Event{Seq: 42, PrevHash: "x", Hash: "y", Type: audit.Login}
	e.Seal(nil)
	if e.Seq != 1 || e.PrevHash != audit.GenesisHash {
		t.Errorf("Seal(nil) gave Seq %d, PrevHash %q", e.Seq, e.PrevHash)
	}
}

// tamperTests break a 6-event chain; seq is where Verify must report it.
var tamperTests = []struct {
	name   string
	tamper func(es []audit.Event) []audit.Event
	seq    int64
}{
	{"altered reason", func(es []audit.Event) []audit.Event { es[2].Reason = "nothing to see"; return es }, 3},
	{"altered time", func(es []audit.Event) []audit.Event { es[3].Time = es[3].Time.Add(time.Nanosecond); return es }, 4},
	{"altered details", func(es []audit.Event) []audit.Event { es[1].Details = map[string]string{"argv": "true"}; return es }, 2},
	{"added detail", func(es []audit.Event) []audit.Event { es[1].Details["extra"] = ""; return es }, 2},
	{"altered outcome of the first", func(es []audit.Event) []audit.Event { es[0].Outcome = audit.OutcomeRefused; return es }, 1},
	{"altered last", func(es []audit.Event) []audit.Event { es[5].Actor = "mallory"; return es }, 6},
	{"removed event", func(es []audit.Event) []audit.Event { return slices.Delete(es, 2, 3) }, 3},
	{"removed first", func(es []audit.Event) []audit.Event { return es[1:] }, 1},
	{"reordered", func(es []audit.Event) []audit.Event { es[2], es[3] = es[3], es[2]; return es }, 3},
	{"duplicated", func(es []audit.Event) []audit.Event { return slices.Insert(es, 3, es[2]) }, 4},
	{"altered seq", func(es []audit.Event) []audit.Event { es[4].Seq = 50; return es }, 5},
	{"altered prev hash", func(es []audit.Event) []audit.Event { es[3].PrevHash = es[1].Hash; return es }, 4},
	{"genesis prev hash altered", func(es []audit.Event) []audit.Event { es[0].PrevHash = es[5].Hash; return es }, 1},
	{"altered hash", func(es []audit.Event) []audit.Event { es[4].Hash = es[3].Hash; return es }, 5},
	// An altered event with a recomputed hash breaks the next link.
	{"altered and resealed", func(es []audit.Event) []audit.Event {
		es[2].Reason = "nothing to see"
		es[2].Hash = es[2].ComputeHash()
		return es
	}, 4},
	// A forged chain from the genesis hash still breaks where it rejoins.
	{"replaced and resealed", func(es []audit.Event) []audit.Event {
		es[0].Actor = "mallory"
		es[0].Seal(nil)
		es[1].Seal(&es[0])
		return es
	}, 3},
}

func TestVerifyTampering(t *testing.T) {
	for _, tt := range tamperTests {
		t.Run(tt.name, func(t *testing.T) {
			err := audit.Verify(tt.tamper(chain(6)))
			var broken *audit.BrokenLinkError
			if !errors.As(err, &broken) {
				t.Fatalf("Verify = %v, want a *audit.BrokenLinkError", err)
			}
			if broken.Seq != tt.seq || broken.Reason == "" {
				t.Errorf("broken at %d (%q), want at %d", broken.Seq, broken.Reason, tt.seq)
			}
		})
	}
}

// TestVerifier checks that streaming a chain through a Verifier gives what
// Verify gives, and counts what it verified.
func TestVerifier(t *testing.T) {
	tests := append([]struct {
		name   string
		tamper func(es []audit.Event) []audit.Event
		seq    int64
	}{{"intact", func(es []audit.Event) []audit.Event { return es }, 0}}, tamperTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := tt.tamper(chain(6))
			want := audit.Verify(es)

			var v audit.Verifier
			if v.Count() != 0 || v.Head() != audit.GenesisHash {
				t.Fatalf("zero Verifier: Count %d, Head %q", v.Count(), v.Head())
			}
			var got error
			var last audit.Event
			for _, e := range es {
				if got = v.Next(e); got != nil {
					break
				}
				last = e
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Verifier: %v, Verify: %v", got, want)
			}
			wantCount := int64(len(es))
			if tt.seq != 0 {
				wantCount = tt.seq - 1 // the events before the broken one
			}
			if v.Count() != wantCount {
				t.Errorf("Count = %d, want %d", v.Count(), wantCount)
			}
			if wantCount > 0 && v.Head() != last.Hash {
				t.Errorf("Head = %.8s, want the last verified event's hash %.8s", v.Head(), last.Hash)
			}
		})
	}
}

func TestComputeHashDeterministic(t *testing.T) {
	base := audit.Event{
		Seq: 3, Time: t0, Type: audit.CertIssue, Actor: "bastion", Subject: "alice", Target: "web-1",
		RequestID: 7, Source: "192.0.2.7:51234", Outcome: audit.OutcomeOK, Reason: "granted",
		PrevHash: audit.GenesisHash,
	}
	keys := []string{"serial", "principals", "key", "valid_before", "a", "z", "ü"}
	detailsIn := func(order []string) map[string]string {
		m := make(map[string]string, len(order))
		for _, k := range order {
			m[k] = "value of " + k
		}
		return m
	}
	with := func(f func(e *audit.Event)) audit.Event {
		e := base
		e.Details = detailsIn(keys)
		f(&e)
		return e
	}
	hash := func(e audit.Event) string { return e.ComputeHash() }
	want := hash(with(func(*audit.Event) {}))

	same := []struct {
		name  string
		event audit.Event
	}{
		{"details inserted in reverse", with(func(e *audit.Event) {
			reversed := slices.Clone(keys)
			slices.Reverse(reversed)
			e.Details = detailsIn(reversed)
		})},
		{"details inserted sorted", with(func(e *audit.Event) { e.Details = detailsIn(slices.Sorted(slices.Values(keys))) })},
		{"time in a zone east", with(func(e *audit.Event) { e.Time = t0.In(time.FixedZone("CET", 3600)) })},
		{"time in a zone west", with(func(e *audit.Event) { e.Time = t0.In(time.FixedZone("", -7*3600-1800)) })},
		{"time in Local", with(func(e *audit.Event) { e.Time = t0.Local() })},
		{"time with a monotonic reading", with(func(e *audit.Event) {
			now := time.Now()
			e.Time = now.Add(t0.Sub(now))
		})},
		{"hash field ignored", with(func(e *audit.Event) { e.Hash = "anything" })},
	}
	for _, tt := range same {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.event.ComputeHash(); got != want {
				t.Errorf("hash %.16s, want %.16s", got, want)
			}
		})
	}
	// Run the map case many times: map iteration order is random.
	for range 50 {
		if got := hash(with(func(e *audit.Event) { e.Details = detailsIn(keys) })); got != want {
			t.Fatalf("hash changed between runs: %.16s, want %.16s", got, want)
		}
	}

	t.Run("nil and empty details", func(t *testing.T) {
		a, b := base, base
		a.Details, b.Details = nil, map[string]string{}
		if a.ComputeHash() != b.ComputeHash() {
			t.Errorf("nil and empty Details hash differently")
		}
	})

	differ := []struct {
		name  string
		event audit.Event
	}{
		{"a nanosecond later", with(func(e *audit.Event) { e.Time = e.Time.Add(time.Nanosecond) })},
		{"other seq", with(func(e *audit.Event) { e.Seq++ })},
		{"other prev hash", with(func(e *audit.Event) { e.PrevHash = "00" })},
		{"detail value", with(func(e *audit.Event) { e.Details["a"] = "other" })},
		{"detail key", with(func(e *audit.Event) { e.Details["b"] = e.Details["a"]; delete(e.Details, "a") })},
		{"no details", with(func(e *audit.Event) { e.Details = nil })},
		// Moving text between fields must change the hash.
		{"actor into subject", with(func(e *audit.Event) { e.Actor, e.Subject = "", e.Actor+e.Subject })},
	}
	for _, tt := range differ {
		t.Run(tt.name, func(t *testing.T) {
			if tt.event.ComputeHash() == want {
				t.Errorf("hash unchanged")
			}
		})
	}
}
