package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bastionhq/bastion/internal/harness"
	"github.com/jackc/pgx/v5"
)

// testReuse: a session that ends with the target idle leaves its target
// connection, reset with DISCARD ALL, to the next session with the same
// startup parameters; one that ends inside a transaction does not, and a
// kept connection the target ended is not handed out.
func testReuse(t *testing.T, p *pgBastion, tok dbToken) {
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, p.pg.DSN(tok.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())

	const app = "application_name=bastion-reuse-test"
	backend := func(conn *pgx.Conn) int {
		t.Helper()
		var pid int
		if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return pid
	}
	// kept waits until the target connection of backend pid is idle after
	// DISCARD ALL: back in the pool.
	kept := func(pid int) {
		t.Helper()
		err := harness.WaitFor(ctx, 10*time.Second, func(ctx context.Context) error {
			var state, query string
			err := admin.QueryRow(ctx, "SELECT state, query FROM pg_stat_activity WHERE pid = $1", pid).Scan(&state, &query)
			if err == nil && (state != "idle" || query != "DISCARD ALL") {
				err = fmt.Errorf("backend %d: %s after %q", pid, state, query)
			}
			return err
		})
		if err != nil {
			t.Fatalf("the target connection was not kept: %v", err)
		}
	}
	// gone waits until backend pid has exited.
	gone := func(pid int) {
		t.Helper()
		err := harness.WaitFor(ctx, 10*time.Second, func(ctx context.Context) error {
			var n int
			if err := admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				return fmt.Errorf("backend %d is still there", pid)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("the target connection was not closed: %v", err)
		}
	}

	conn := p.connect(t, tok, app)
	pid := backend(conn)
	for _, sql := range []string{
		"SET ROLE pg_read_all_data", "SET search_path = nowhere", "CREATE TEMP TABLE leftover (x int)",
		"PREPARE leftover AS SELECT 1", "LISTEN leftover", "SELECT pg_advisory_lock(42)",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	conn.Close(ctx)
	kept(pid)

	t.Run("reset for the next session", func(t *testing.T) {
		conn := p.connect(t, tok, app)
		if got := backend(conn); got != pid {
			t.Fatalf("the next session is on backend %d, want the kept %d", got, pid)
		}
		var user, path string
		var temp, prepared, listening, locks int
		err := conn.QueryRow(ctx, `SELECT current_user, current_setting('search_path'),
			(SELECT count(*) FROM pg_class WHERE relname = 'leftover' AND relpersistence = 't'),
			(SELECT count(*) FROM pg_prepared_statements WHERE name = 'leftover'),
			(SELECT count(*) FROM pg_listening_channels()),
			(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid())`).
			Scan(&user, &path, &temp, &prepared, &listening, &locks)
		if err != nil {
			t.Fatal(err)
		}
		if user != "postgres" || path != `"$user", public` || temp+prepared+listening+locks != 0 {
			t.Fatalf("the previous session's state is still there: user %s, search_path %s, %d temp tables, %d prepared statements, %d channels, %d advisory locks",
				user, path, temp, prepared, listening, locks)
		}
		conn.Close(ctx)
		kept(pid)
	})

	t.Run("other parameters get another connection", func(t *testing.T) {
		conn := p.connect(t, tok, "application_name=bastion-reuse-other")
		if got := backend(conn); got == pid {
			t.Fatalf("a session with another application_name got the kept backend %d", pid)
		}
		var name string
		if err := conn.QueryRow(ctx, "SELECT current_setting('application_name')").Scan(&name); err != nil || name != "bastion-reuse-other" {
			t.Fatalf("application_name = %q, %v", name, err)
		}
	})

	// closes runs sql in a session on the kept backend and checks that the
	// backend is closed when the session ends, not handed on.
	closes := func(t *testing.T, sql string) {
		conn := p.connect(t, tok, app)
		if got := backend(conn); got != pid {
			t.Fatalf("session on backend %d, want the kept %d", got, pid)
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		gone(pid)
		conn = p.connect(t, tok, app)
		if pid = backend(conn); pid == 0 {
			t.Fatal("no backend")
		}
		conn.Close(ctx)
		kept(pid)
	}
	t.Run("a session ended in a transaction closes its connection", func(t *testing.T) { closes(t, "BEGIN") })
	// DISCARD ALL does not unload a library: the next session would run
	// with auto_explain (or worse) loaded.
	t.Run("a session that loaded a library closes its connection", func(t *testing.T) { closes(t, "LOAD 'auto_explain'") })

	t.Run("a kept connection the target ended is not used", func(t *testing.T) {
		conn := p.connect(t, tok, app)
		pid := backend(conn)
		conn.Close(ctx)
		kept(pid)
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
		gone(pid)
		conn = p.connect(t, tok, app)
		if got := backend(conn); got == pid {
			t.Fatalf("the terminated backend %d is reported again", pid)
		}
	})
}
