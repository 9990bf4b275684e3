package mysql

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// connID opens one connection of db and returns it with its target
// connection ID.
func connID(t *testing.T, db *sql.DB) (*sql.Conn, int64) {
	t.Helper()
	c, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var id int64
	if err := c.QueryRowContext(t.Context(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return c, id
}

// TestKillOtherSessionRefused: where rules apply, a session may KILL only
// its own target connection; the other session stays up.
func TestKillOtherSessionRefused(t *testing.T) {
	f := startFrontEnd(t, "")
	a, aID := connID(t, f.open(t, secret, false))
	b, bID := connID(t, f.open(t, secret, false))
	for _, q := range []string{
		fmt.Sprintf("KILL %d", bID),
		fmt.Sprintf("KILL QUERY %d", bID),
		fmt.Sprintf("KILL CONNECTION %d", bID),
		fmt.Sprintf("SELECT 1; KILL %d", bID),
		fmt.Sprintf("PREPARE k FROM 'KILL %d'", bID),
		"KILL ABS(-1)",
	} {
		_, err := a.ExecContext(t.Context(), q)
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number != erTableAccessDenied || !strings.Contains(me.Message, "KILL") {
			t.Errorf("%s: %v, want Bastion's refusal", q, err)
		}
	}
	var one int
	if err := b.QueryRowContext(t.Context(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the other session after the KILLs: %v", err)
	}
	// Text that only mentions kill, in a form the grammar lacks.
	if _, err := a.ExecContext(t.Context(), "SELECT 'overkill' INTO @skill"); err != nil {
		t.Fatalf("SELECT … INTO @skill: %v", err)
	}
	// Its own query: allowed, and the connection goes on.
	if _, err := a.ExecContext(t.Context(), fmt.Sprintf("KILL QUERY %d", aID)); err != nil {
		var me *mysql.MySQLError
		if !errors.As(err, &me) || me.Number == erTableAccessDenied {
			t.Fatalf("KILL QUERY of its own connection: %v", err)
		}
	}
	if err := b.QueryRowContext(t.Context(), "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the other session: %v", err)
	}
}
