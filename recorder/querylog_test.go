package recorder

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder/querylog"
)

func TestQueryLog(t *testing.T) {
	fc := &fakeClock{now: start}
	st := &fakeStorage{}
	ql, err := newQueryLog(t.Context(), st, "s.jsonl", start, clock{now: fc.Now, syncInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	explicit := start.Add(42 * time.Second)
	steps := []struct {
		at      time.Duration
		e       querylog.Event
		wantErr string
	}{
		{0, querylog.Event{Type: querylog.TypeStart, User: "alice", Target: "orders", Protocol: querylog.ProtocolPostgres}, ""},
		{1500 * time.Millisecond, querylog.Event{Type: querylog.TypeQuery, Statement: "SELECT 1", Decision: querylog.Allow}, ""},
		{2 * time.Second, querylog.Event{Type: querylog.TypeQuery, Statement: "x", Decision: "perhaps"}, `decision "perhaps"`},
		{-time.Hour, querylog.Event{Type: querylog.TypeQuery, Statement: "clock stepped back", Decision: querylog.Deny}, ""},
		{3 * time.Second, querylog.Event{Time: explicit, Type: querylog.TypeEnd, Reason: "bye"}, ""},
	}
	for _, s := range steps {
		fc.Set(start.Add(s.at))
		err := ql.Write(s.e)
		if s.wantErr == "" && err != nil || s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
			t.Fatalf("Write(%+v) = %v, want error %q", s.e, err, s.wantErr)
		}
	}
	if err := ql.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, data := st.object(t).state()
	r := querylog.NewReader(bytes.NewReader(data))
	var times []time.Time
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, e.Time)
	}
	// The clock read 2s at the rejected event: the event after it, when the
	// clock has gone back, is kept at 2s.
	want := []time.Time{start, start.Add(1500 * time.Millisecond), start.Add(2 * time.Second), explicit}
	if len(times) != len(want) {
		t.Fatalf("times %v, want %v", times, want)
	}
	for i := range want {
		if !times[i].Equal(want[i]) {
			t.Errorf("event %d at %v, want %v", i, times[i], want[i])
		}
	}
}
