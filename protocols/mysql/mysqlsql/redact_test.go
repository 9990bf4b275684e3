package mysqlsql

import (
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tt := range []struct {
		in      string
		secret  string // must not be in the output; "" when the text is kept
		showing string // must be in the output
	}{
		{"CREATE USER 'app'@'%' IDENTIFIED BY 'hunter2'", "hunter2", "create user"},
		{"alter user app identified by 'hunter2' ; SELECT 1", "hunter2", "SELECT 1"},
		{"SET PASSWORD FOR 'app'@'%' = 'hunter2'", "hunter2", "PASSWORD"},
		{"GRANT SELECT ON shop.* TO app IDENTIFIED BY 'hunter2'", "hunter2", "GRANT"},
		{"CREATE USER app IDENTIFIED VIA ed25519 USING PASSWORD('hunter2')", "hunter2", "not shown"},
		{"SELECT * FROM users WHERE password_hash = ?", "", "SELECT * FROM users WHERE password_hash = ?"},
		{"SELECT 1", "", "SELECT 1"},
	} {
		got := Redact(tt.in)
		if tt.secret == "" && got != tt.in {
			t.Errorf("Redact(%q) = %q, want it unchanged", tt.in, got)
		}
		if tt.secret != "" && strings.Contains(got, tt.secret) || !strings.Contains(strings.ToLower(got), strings.ToLower(tt.showing)) {
			t.Errorf("Redact(%q) = %q: want %q gone and %q shown", tt.in, got, tt.secret, tt.showing)
		}
	}
}

// TestTooLarge: text over MaxText is not parsed, nor parsed to redact.
func TestTooLarge(t *testing.T) {
	big := "SELECT 1" + strings.Repeat(", 1", MaxText/3)
	if _, err := Parse(big); err != ErrTooLarge {
		t.Errorf("Parse of %d bytes: err = %v, want ErrTooLarge", len(big), err)
	}
	if got := Redact("SET PASSWORD = 'x'; " + big); got != unreadable {
		t.Errorf("Redact of %d bytes mentioning a password = %.40q…, want it not shown", len(big), got)
	}
}

// TestParserPanic: input on which TiDB's parser panics is a syntax error,
// for Parse and for Redact, and the parsers in the pool still work after.
func TestParserPanic(t *testing.T) {
	digits := "SELECT 0000000000000000000000000000000000000000000000000000000000000020000000000000000000"
	for range 3 {
		if _, err := Parse(digits); err == nil || !strings.Contains(err.Error(), "the parser failed on it") {
			t.Fatalf("Parse(%q): err = %v", digits, err)
		}
		if got := Redact(digits + " -- password"); got != unreadable {
			t.Fatalf("Redact = %q", got)
		}
		if _, err := Parse("SELECT 1"); err != nil {
			t.Fatalf("Parse after a panic: %v", err)
		}
	}
}
