package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

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
