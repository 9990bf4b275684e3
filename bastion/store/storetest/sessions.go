package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/store"
)

func testSession(id, user, target string, started time.Time) *store.Session {
	return &store.Session{
		ID: id, User: user, Target: target, Login: "root", Protocol: "ssh", Kind: "exec",
		Command: "uname -a", RequestID: 0, Source: "127.0.0.1", Recording: "sessions/" + id + ".cast",
		State: store.SessionLive, StartedAt: started, ExitStatus: -1,
	}
}

func diffSession(want, got *store.Session) diffs {
	var d diffs
	eq(&d, "ID", want.ID, got.ID)
	eq(&d, "User", want.User, got.User)
	eq(&d, "Target", want.Target, got.Target)
	eq(&d, "Login", want.Login, got.Login)
	eq(&d, "Protocol", want.Protocol, got.Protocol)
	eq(&d, "Kind", want.Kind, got.Kind)
	eq(&d, "Command", want.Command, got.Command)
	eq(&d, "RequestID", want.RequestID, got.RequestID)
	eq(&d, "Source", want.Source, got.Source)
	eq(&d, "Recording", want.Recording, got.Recording)
	eq(&d, "State", want.State, got.State)
	timeEq(&d, "StartedAt", want.StartedAt, got.StartedAt)
	timeEq(&d, "EndedAt", want.EndedAt, got.EndedAt)
	eq(&d, "EndReason", want.EndReason, got.EndReason)
	eq(&d, "ExitStatus", want.ExitStatus, got.ExitStatus)
	return d
}

func testSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	id := mustCreate(t, s, approvedRequest("alice", at(0)))
	a := testSession("s1", "alice", "web01", at(time.Minute))
	a.RequestID = id
	b := testSession("s2", "bob", "web02", at(2*time.Minute))
	c := testSession("s3", "alice", "web02", at(3*time.Minute))
	for _, sess := range []*store.Session{a, b, c} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatalf("CreateSession(%s): %v", sess.ID, err)
		}
	}
	if err := s.CreateSession(ctx, testSession("s1", "x", "y", at(0))); !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("duplicate CreateSession: %v, want ErrDuplicate", err)
	}
	got, err := s.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if d := diffSession(a, got); len(d) > 0 {
		t.Fatalf("Session round trip: %v", d)
	}
	if _, err := s.Session(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Session(nope): %v, want ErrNotFound", err)
	}

	if err := s.EndSession(ctx, "s1", store.SessionEnded, at(5*time.Minute), "client disconnected", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.EndSession(ctx, "s1", store.SessionEnded, at(6*time.Minute), "again", 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second EndSession: %v, want ErrConflict", err)
	}
	if err := s.EndSession(ctx, "nope", store.SessionEnded, at(6*time.Minute), "", 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("EndSession(nope): %v, want ErrNotFound", err)
	}
	if err := s.EndSession(ctx, "s2", store.SessionLive, at(6*time.Minute), "", 0); err == nil {
		t.Fatal("EndSession to live accepted")
	}
	a.State, a.EndedAt, a.EndReason, a.ExitStatus = store.SessionEnded, at(5*time.Minute), "client disconnected", 0
	got, err = s.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if d := diffSession(a, got); len(d) > 0 {
		t.Fatalf("ended session: %v", d)
	}

	tests := []struct {
		name string
		f    store.SessionFilter
		want []string
	}{
		{"all, newest first", store.SessionFilter{}, []string{"s3", "s2", "s1"}},
		{"by user", store.SessionFilter{User: "alice"}, []string{"s3", "s1"}},
		{"by target", store.SessionFilter{Target: "web02"}, []string{"s3", "s2"}},
		{"since", store.SessionFilter{Since: at(2 * time.Minute)}, []string{"s3", "s2"}},
		{"live", store.SessionFilter{States: []store.SessionState{store.SessionLive}}, []string{"s3", "s2"}},
		{"limit", store.SessionFilter{Limit: 1}, []string{"s3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list, err := s.Sessions(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, sess := range list {
				ids = append(ids, sess.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Fatalf("Sessions(%+v) = %v, want %v", tc.f, ids, tc.want)
			}
		})
	}
}

func testEndSessionConcurrent(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.CreateSession(ctx, testSession("c1", "alice", "web01", at(0))); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.EndSession(ctx, "c1", store.SessionEnded, at(time.Duration(i)*time.Second), fmt.Sprint(i), i)
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("EndSession: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent EndSession calls succeeded, want exactly 1", ok)
	}
}
