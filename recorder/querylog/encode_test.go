package querylog

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// jsonLine is what encoding/json writes for e, which appendEvent must match:
// the encoding the Writer used before appendEvent.
func jsonLine(t testing.TB, e Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		t.Fatalf("encoding/json: %v\n%+v", err, e)
	}
	return buf.Bytes()
}

// checkAppendEvent compares appendEvent with encoding/json for e, after a
// prefix that appendEvent must keep.
func checkAppendEvent(t testing.TB, e Event) {
	t.Helper()
	const prefix = "previous line\n"
	got := appendEvent([]byte(prefix), e)
	want := jsonLine(t, e)
	if !bytes.HasPrefix(got, []byte(prefix)) {
		t.Fatalf("appendEvent overwrote dst: %q", got)
	}
	if got := got[len(prefix):]; !bytes.Equal(got, want) {
		t.Fatalf("appendEvent differs from encoding/json for %#v\n got %q\nwant %q", e, got, want)
	}
}

func TestAppendEvent(t *testing.T) {
	// when has nanoseconds, in a zone other than UTC.
	when := time.Date(2031, time.March, 4, 7, 6, 7, 891011000, time.FixedZone("CEST", 2*3600)).UTC()
	query := Event{Time: when, Type: TypeQuery, Decision: Allow}
	withQuery := func(edit func(e *Event)) Event {
		e := query
		edit(&e)
		return e
	}
	var controls strings.Builder
	for b := range 0x20 {
		controls.WriteByte(byte(b))
	}
	controls.WriteString("\x7f")

	tests := []struct {
		name string
		e    Event
	}{
		{"every field", Event{Time: when, Type: TypeQuery, User: "alice", Target: "orders", Database: "orders",
			RequestID: "42", ClientAddr: "[2001:db8::1]:5432", Protocol: ProtocolPostgres,
			Statement: "SELECT * FROM t WHERE a = $1 AND b > $2", Params: []string{"1", "<redacted>", ""},
			Decision: Deny, Rule: "no-writes", DurationMS: 1.25, Tag: "SELECT 1", Rows: 1,
			Error: "ERROR: permission denied", Reason: "client closed the connection"}},
		{"no optional field", Event{Time: when, Type: TypeEnd}},
		{"start", Event{Time: when, Type: TypeStart, User: "bob", Target: "shop", Protocol: ProtocolMySQL}},
		{"end", Event{Time: when, Type: TypeEnd, Reason: "grant expired"}},
		{"query", query},
		{"empty params", withQuery(func(e *Event) { e.Params = []string{} })},
		{"one empty param", withQuery(func(e *Event) { e.Params = []string{""} })},
		{"control characters", withQuery(func(e *Event) { e.Statement = controls.String() })},
		{"control characters in params", withQuery(func(e *Event) { e.Params = []string{"\x00", "a\tb\nc", "\x1b[31m"} })},
		{"quotes and backslashes", withQuery(func(e *Event) { e.Statement = `SELECT "a\b", 'c\'d' FROM "t""" -- \` })},
		{"html", withQuery(func(e *Event) { e.Statement = "SELECT '<script>' WHERE a < 1 & b > 2" })},
		{"invalid utf-8", withQuery(func(e *Event) { e.Statement = "a\xffb\xc3(\xe2\x82\xf0\x9f\x98\xed\xa0\x80z\xc0\xaf" })},
		{"truncated rune at the end", withQuery(func(e *Event) { e.Error = "abc\xe2\x82" })},
		{"replacement character", withQuery(func(e *Event) { e.Statement = "\ufffd\xef\xbf\xbd" })},
		{"line and paragraph separators", withQuery(func(e *Event) { e.Statement = "a\u2028b\u2029c\u202a\u2027" })},
		{"non-ascii", withQuery(func(e *Event) { e.Statement = "é€😀 ﷽ \u00a0\u0085\u200b" })},
		{"duration 0.001", withQuery(func(e *Event) { e.DurationMS = 0.001 })},
		{"duration 1e-6", withQuery(func(e *Event) { e.DurationMS = 1e-6 })},
		{"duration just below 1e-6", withQuery(func(e *Event) { e.DurationMS = math.Nextafter(1e-6, 0) })},
		{"duration 1e-7", withQuery(func(e *Event) { e.DurationMS = 1e-7 })},
		{"duration 1.5e-10", withQuery(func(e *Event) { e.DurationMS = 1.5e-10 })},
		{"duration 1e-100", withQuery(func(e *Event) { e.DurationMS = 1e-100 })},
		{"smallest duration", withQuery(func(e *Event) { e.DurationMS = math.SmallestNonzeroFloat64 })},
		{"duration 1e20", withQuery(func(e *Event) { e.DurationMS = 1e20 })},
		{"duration just below 1e21", withQuery(func(e *Event) { e.DurationMS = math.Nextafter(1e21, 0) })},
		{"duration 1e21", withQuery(func(e *Event) { e.DurationMS = 1e21 })},
		{"duration 1.5e300", withQuery(func(e *Event) { e.DurationMS = 1.5e300 })},
		{"largest duration", withQuery(func(e *Event) { e.DurationMS = math.MaxFloat64 })},
		{"integral duration", withQuery(func(e *Event) { e.DurationMS = 3 })},
		{"duration 123456789.125", withQuery(func(e *Event) { e.DurationMS = 123456789.125 })},
		{"duration 0.1", withQuery(func(e *Event) { e.DurationMS = 0.1 })},
		{"duration 1/3", withQuery(func(e *Event) { e.DurationMS = 1.0 / 3 })},
		{"negative zero duration", withQuery(func(e *Event) { e.DurationMS = math.Copysign(0, -1) })},
		{"rows 0", withQuery(func(e *Event) { e.Rows = 0; e.Tag = "SELECT 0" })},
		{"rows 1", withQuery(func(e *Event) { e.Rows = 1 })},
		{"most rows", withQuery(func(e *Event) { e.Rows = math.MaxInt64 })},
		{"whole second", withQuery(func(e *Event) { e.Time = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC) })},
		{"milliseconds", withQuery(func(e *Event) { e.Time = time.Date(2031, 3, 4, 5, 6, 7, 100_000_000, time.UTC) })},
		{"one nanosecond", withQuery(func(e *Event) { e.Time = time.Date(2031, 3, 4, 5, 6, 7, 1, time.UTC) })},
		{"every nanosecond digit", withQuery(func(e *Event) { e.Time = time.Date(2031, 3, 4, 5, 6, 7, 123456789, time.UTC) })},
		{"from a zone behind UTC", withQuery(func(e *Event) {
			e.Time = time.Date(2031, 12, 31, 23, 30, 0, 5, time.FixedZone("", -5*3600-30*60)).UTC()
		})},
		{"from the local zone", withQuery(func(e *Event) { e.Time = time.Unix(1_900_000_000, 42).UTC() })},
		{"now", withQuery(func(e *Event) { e.Time = time.Now().UTC() })},
		{"year 1", withQuery(func(e *Event) { e.Time = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) })},
		{"year 9999", withQuery(func(e *Event) { e.Time = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) })},
		{"huge statement", withQuery(func(e *Event) { e.Statement = strings.Repeat("SELECT \"x\"\n", 10000) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.e.Validate(); err != nil {
				t.Fatalf("invalid test event: %v", err)
			}
			checkAppendEvent(t, tt.e)
		})
	}
}

// TestAppendEventAllocs checks that appendEvent allocates nothing when dst
// has room.
func TestAppendEventAllocs(t *testing.T) {
	e := benchEvent
	e.Statement += "\x00\xff\u2028é"
	dst := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { dst = appendEvent(dst[:0], e) }); n != 0 {
		t.Errorf("appendEvent allocates %v times per event, want 0", n)
	}
}

// TestWriterBuffer checks that the Writer drops a buffer grown beyond
// maxBuffer and rejects lines longer than MaxLineSize without writing them.
func TestWriterBuffer(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	e := Event{Time: time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC), Type: TypeEnd, Reason: strings.Repeat("x", maxBuffer)}
	if err := w.Write(e); err != nil {
		t.Fatal(err)
	}
	if cap(w.buf) > maxBuffer {
		t.Errorf("kept a buffer of %d bytes, more than %d", cap(w.buf), maxBuffer)
	}
	if got, want := buf.Bytes(), jsonLine(t, e); !bytes.Equal(got, want) {
		t.Errorf("wrote %.80q..., want %.80q...", got, want)
	}

	if testing.Short() {
		return // the rest allocates hundreds of megabytes
	}
	buf.Reset()
	e.Reason = strings.Repeat("x", MaxLineSize)
	err := w.Write(e)
	if err == nil || !strings.Contains(err.Error(), "the limit is") {
		t.Errorf("Write of a line over the limit: %v, want an error", err)
	}
	if buf.Len() != 0 || cap(w.buf) > maxBuffer {
		t.Errorf("wrote %d bytes and kept a buffer of %d, want neither", buf.Len(), cap(w.buf))
	}
	e.Reason = "short"
	if err := w.Write(e); err != nil {
		t.Errorf("Write after a line over the limit: %v", err)
	}
}

// FuzzAppendEvent compares appendEvent with encoding/json for events made of
// fuzzed strings and numbers. mask says which fields are set: bits 0 to 9
// the string fields other than Type, Protocol and Decision (each to one of
// a, b and c), bit 10 Protocol to a, bit 11 Params to b split at commas, bit
// 12 Params to an empty slice. kind says the type, protocol and decision.
func FuzzAppendEvent(f *testing.F) {
	f.Add(int64(1_930_000_000), uint32(891011000), uint8(1), uint16(0x1fff), "alice", "42,<redacted>", "SELECT 1", 1.25, int64(1))
	f.Add(int64(0), uint32(0), uint8(0), uint16(0x3f), "bob", "shop", "[::1]:3306", 0.0, int64(0))
	f.Add(int64(-62135596800), uint32(1), uint8(2), uint16(0x400), "", "", "client closed the connection", 0.0, int64(0))
	f.Add(int64(253402300799), uint32(999999999), uint8(1), uint16(0x8c0), "\x00\"\\\u2028\xff", "\xe2\x82,\t", "é€\u2029", 1e-7, int64(math.MaxInt64))
	f.Add(int64(42), uint32(100), uint8(9), uint16(0x1040), "x", "", "y", 1e21, int64(7))
	f.Add(int64(42), uint32(100), uint8(5), uint16(0x1040), "x", "", "y", 123456789.125, int64(7))
	f.Fuzz(func(t *testing.T, sec int64, nsec uint32, kind uint8, mask uint16, a, b, c string, duration float64, rows int64) {
		// Spread sec over years 1 to 9999, so that few events are invalid.
		const (
			first = -62135596800 // 0001-01-01T00:00:00Z
			last  = 253402300799 // 9999-12-31T23:59:59Z
		)
		sec = first + int64(uint64(sec)%(last-first+1))
		e := Event{
			Time:       time.Unix(sec, int64(nsec%1e9)).UTC(),
			Type:       []string{TypeStart, TypeQuery, TypeEnd}[kind%3],
			Protocol:   []string{ProtocolPostgres, ProtocolMySQL}[kind>>2&1],
			Decision:   []string{Allow, Deny}[kind>>3&1],
			DurationMS: duration,
			Rows:       rows,
		}
		strs := []string{a, b, c}
		for i, s := range []*string{&e.User, &e.Target, &e.Database, &e.RequestID, &e.ClientAddr,
			&e.Statement, &e.Rule, &e.Tag, &e.Error, &e.Reason} {
			if mask&(1<<i) != 0 {
				*s = strs[i%3]
			}
		}
		if mask&(1<<10) != 0 {
			e.Protocol = a // usually an invalid protocol: only for start events
		}
		if mask&(1<<11) != 0 {
			e.Params = strings.Split(b, ",")
		} else if mask&(1<<12) != 0 {
			e.Params = []string{}
		}
		if e.Validate() != nil {
			t.Skip()
		}
		checkAppendEvent(t, e)
	})
}

// benchEvent is a typical query event of a database proxy.
var benchEvent = Event{
	Time:       time.Date(2031, time.March, 4, 5, 6, 7, 891011000, time.UTC),
	Type:       TypeQuery,
	Statement:  "SELECT id, customer_id, total, created_at FROM orders WHERE customer_id = $1 AND created_at > $2 ORDER BY created_at DESC LIMIT 50",
	Params:     []string{"42", "<redacted>"},
	Decision:   Allow,
	Rule:       "read-all",
	DurationMS: 1.25,
	Tag:        "SELECT 50",
	Rows:       50,
}

// BenchmarkWrite writes a typical query event of a database proxy.
func BenchmarkWrite(b *testing.B) {
	w := NewWriter(io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}
