package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// dbToken is `token --json`.
type dbToken struct {
	URL      string `json:"url"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	User     string `json:"user"`
	Password string `json:"password"`
	Database string `json:"database"`
	Request  int64  `json:"request"`
}

// grantDB gets user an approved request for a database target (bob
// approves it when a lead must) and a token for it.
func (b *testBastion) grantDB(t *testing.T, user, target string) dbToken {
	t.Helper()
	r := b.mustRequest(user, target, "--for", "1h", "--reason", "testing")
	if r.State != "approved" {
		b.mustRun("bob", "approve", fmt.Sprint(r.ID))
	}
	var tok dbToken
	if err := json.Unmarshal([]byte(b.mustRun(user, "token", fmt.Sprint(r.ID), "--json")), &tok); err != nil {
		t.Fatal(err)
	}
	if tok.Request != r.ID {
		t.Fatalf("token for request %d, want %d", tok.Request, r.ID)
	}
	return tok
}

// pendingCommand waits for user's one pending command request and returns
// its id and the statement its approver sees.
func pendingCommand(t *testing.T, b *testBastion, user string) (int64, string) {
	t.Helper()
	var id int64
	var command string
	waitFor(t, 20*time.Second, func() bool {
		var reqs []struct {
			requestJSON
			Command string `json:"command"`
		}
		if err := json.Unmarshal([]byte(b.mustRun("bob", "requests", "--state", "pending", "--json")), &reqs); err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			if r.Requester == user {
				id, command = r.ID, r.Command
				return true
			}
		}
		return false
	})
	return id, command
}

// testHeldStatement checks require-approval on a database: the DDL
// statement exec runs is held until bob approves alice's pending request,
// then runs once; the approval allows nothing else (a DROP of the table it
// created is still denied).
func testHeldStatement(t *testing.T, b *testBastion, exec func(ctx context.Context, sql string) error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- exec(context.Background(), "CREATE TABLE approved_table (id int)") }()
	var id int64
	waitFor(t, 20*time.Second, func() bool {
		var reqs []requestJSON
		if err := json.Unmarshal([]byte(b.mustRun("bob", "requests", "--state", "pending", "--json")), &reqs); err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			if r.Requester == "alice" {
				id = r.ID
				return true
			}
		}
		return false
	})
	b.mustRun("bob", "approve", fmt.Sprint(id))
	if err := <-done; err != nil {
		t.Fatalf("approved statement: %v", err)
	}
	if err := exec(t.Context(), "DROP TABLE approved_table"); err == nil {
		t.Fatal("DROP TABLE ran")
	}
}
