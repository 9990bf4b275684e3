package main

import (
	"database/sql"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestDatabaseGuessingThrottled: wrong database secrets count against the
// same per-source budget as SSH keys do: past it each failure is slowed
// and audited once for the burst, not one by one, whichever front end the
// guesses go to.
func TestDatabaseGuessingThrottled(t *testing.T) {
	t.Parallel()
	b := startBastionWith(t, options{postgres: true, mysql: true, server: "limits: {auth_failures_per_source: 3}"})
	pgURL := "postgres://alice:not-the-secret@" + b.dbAddr("postgres") + "/orders?sslmode=require&connect_timeout=20"
	for i := range 5 {
		conn, err := pgconn.Connect(t.Context(), pgURL)
		if err == nil {
			conn.Close(t.Context())
			t.Fatalf("guess %d: logged in with a wrong secret", i+1)
		}
		if !strings.Contains(err.Error(), "password authentication failed") {
			t.Fatalf("guess %d: %v, want a failed password authentication", i+1, err)
		}
	}
	// The source's budget is spent: MySQL guesses are over it from the first.
	for i := range 2 {
		db, err := sql.Open("mysql", "alice:not-the-secret@tcp("+b.dbAddr("mysql")+")/shop?tls=skip-verify&timeout=20s")
		if err != nil {
			t.Fatal(err)
		}
		err = db.PingContext(t.Context())
		db.Close()
		if err == nil || !strings.Contains(err.Error(), "Access denied for user 'alice'") {
			t.Fatalf("mysql guess %d: %v, want access denied", i+1, err)
		}
	}

	out, _, code := b.local("audit", "--json")
	if code != 0 {
		t.Fatalf("audit: exit %d", code)
	}
	refused := map[string]int{}
	var throttles []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e struct {
			Type, Outcome string
			Details       map[string]string
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		switch {
		case e.Type == "login" && e.Outcome == "refused":
			refused[e.Details["protocol"]]++
		case e.Type == "login.throttle":
			throttles = append(throttles, map[string]any{"details": e.Details})
		}
	}
	if refused["postgres"] != 3 || refused["mysql"] != 0 {
		t.Errorf("refused logins audited one by one: %v, want the 3 within the budget (postgres) and none over it", refused)
	}
	if len(throttles) != 1 {
		t.Errorf("%d login.throttle events, want one for the burst: %v", len(throttles), throttles)
	}
}
