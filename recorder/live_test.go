package recorder_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/asciicast"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// readObject returns an object's content.
func readObject(t *testing.T, st recorder.Storage, name string) []byte {
	t.Helper()
	rc, err := st.Open(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTerminalLive records a session in a Dir and reads it while it runs,
// as a live watcher does, then after it ended.
func TestTerminalLive(t *testing.T) {
	d := newDir(t)
	const name = "ssh/2031-03-04/web01-1.cast"
	term, err := recorder.NewTerminal(t.Context(), d, name, asciicast.Header{Width: 80, Height: 24, Title: "root@web01"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := term.Output([]byte("root@web01:~# ")); err != nil {
		t.Fatal(err)
	}
	live := readObject(t, d, name)
	r, err := asciicast.NewReader(bytes.NewReader(live))
	if err != nil {
		t.Fatalf("reading the live recording: %v\n%s", err, live)
	}
	if ev, err := r.Next(); err != nil || ev.Data != "root@web01:~# " {
		t.Errorf("first live event = %+v, %v", ev, err)
	}
	if err := term.Marker("exec: uptime"); err != nil {
		t.Fatal(err)
	}
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	final := readObject(t, d, name)
	if !bytes.HasPrefix(final, live) || !bytes.Contains(final, []byte(`"m", "exec: uptime"`)) {
		t.Errorf("final recording:\n%s", final)
	}
	if _, err := recorder.NewTerminal(t.Context(), d, name, asciicast.Header{Width: 80, Height: 24}, time.Now()); err == nil {
		t.Error("a second NewTerminal of the same name succeeded")
	}
}

func TestQueryLogDir(t *testing.T) {
	d := newDir(t)
	const name = "db/orders-1.jsonl"
	ql, err := recorder.NewQueryLog(t.Context(), d, name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	events := []querylog.Event{
		{Type: querylog.TypeStart, User: "alice", Target: "orders", Protocol: querylog.ProtocolMySQL},
		{Type: querylog.TypeQuery, Statement: "SELECT 1", Decision: querylog.Allow, Rows: 1},
		{Type: querylog.TypeEnd, Reason: "client quit"},
	}
	for _, e := range events {
		if err := ql.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := ql.Close(); err != nil {
		t.Fatal(err)
	}
	r := querylog.NewReader(bytes.NewReader(readObject(t, d, name)))
	var types []string
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, e.Type)
	}
	if got := strings.Join(types, " "); got != "start query end" {
		t.Errorf("types %q", got)
	}
}
