package pgsql

import (
	"errors"
	"strings"
	"testing"
)

// TestNesting: statements whose parse tree could nest deep enough to
// overflow libpg_query's C stack are refused before they reach it (each of
// the "too deep" cases below killed the test process before the check);
// large but shallow statements still parse.
func TestNesting(t *testing.T) {
	rows := make([]string, 20000)
	for i := range rows {
		rows[i] = "(1, 'x', now())"
	}
	ors := strings.Repeat("id = 1 OR ", 4000)
	for _, tt := range []struct {
		name    string
		sql     string
		tooDeep bool
	}{
		{"operator chain", "SELECT 1" + strings.Repeat("+1", 40000), true},
		{"cast chain", "SELECT 1" + strings.Repeat("::int", 40000), true},
		{"concatenation in parentheses", "SELECT length((" + strings.Repeat("'a'||", 40000) + "'a'))", true},
		{"chains on both sides of a group", "SELECT 1" + strings.Repeat("+1", 12000) + "+(" + strings.Repeat("1+", 12000) + "1)", true},
		{"right-recursive chain", "SELECT " + strings.Repeat("NOT ", 30000) + "true", true},
		{"a chain that parses, in a text long enough to be scanned", "SELECT 1" + strings.Repeat("+1", 4000) + strings.Repeat(" ", 40000), false},
		{"chain in a DO block's EXECUTE", "DO $$ BEGIN EXECUTE 'SELECT 1'" + strings.Repeat("||' '", 40000) + "; END $$", false},
		{"many rows", "INSERT INTO t (a, b, c) VALUES " + strings.Join(rows, ", "), false},
		{"long IN list", "SELECT * FROM t WHERE id IN (" + strings.Repeat("1, ", 50000) + "1)", false},
		{"long OR chain", "SELECT * FROM t WHERE " + ors + "id = 2", false},
		{"many statements", strings.Repeat("SELECT 1+1+1+1; ", 20000), false},
	} {
		stmts, err := Parse(tt.sql)
		switch {
		case tt.tooDeep && !errors.Is(err, ErrTooDeep):
			t.Errorf("%s: err = %v, want ErrTooDeep", tt.name, err)
		case !tt.tooDeep && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case !tt.tooDeep && len(stmts) == 0:
			t.Errorf("%s: no statements", tt.name)
		}
		if tt.name == "chain in a DO block's EXECUTE" && (len(stmts) != 1 || stmts[0].Unchecked == "") {
			t.Errorf("%s: the EXECUTE of a chain too deep to parse is not left unchecked: %+v", tt.name, stmts)
		}
	}
}

// TestTooLarge: text over MaxText is not parsed, nor scanned to redact.
func TestTooLarge(t *testing.T) {
	big := "SELECT 1" + strings.Repeat(", 1", MaxText/3)
	if _, err := Parse(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Parse of %d bytes: err = %v, want ErrTooLarge", len(big), err)
	}
	fits := "SELECT 1" + strings.Repeat(", 1", (MaxText-8)/3)
	fits += strings.Repeat(" ", MaxText-len(fits))
	if _, err := Parse(fits); err != nil {
		t.Errorf("Parse of %d bytes: %v", len(fits), err)
	}
	if got := Redact("ALTER ROLE a PASSWORD 'x'; " + big); got != unscannable {
		t.Errorf("Redact of %d bytes mentioning a password = %.40q…, want it not shown", len(big), got)
	}
}
