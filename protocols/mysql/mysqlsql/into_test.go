package mysqlsql

import (
	"errors"
	"slices"
	"testing"
)

// TestSelectIntoVariables: SELECT … INTO @var, which TiDB's grammar
// lacks, is read as the query it runs (its tables and functions decided as
// any SELECT's); anything around it that is not one lone SELECT stays
// unreadable, refused where rules apply.
func TestSelectIntoVariables(t *testing.T) {
	for _, tc := range []struct {
		sql    string
		tables []string
	}{
		{"SELECT id INTO @x FROM orders WHERE id = 1", []string{"orders"}},
		{"SELECT id FROM orders WHERE id = 1 INTO @x", []string{"orders"}},
		{"select count(*) from shop.secrets into @n", []string{"shop.secrets"}},
		{"SELECT 1, 2 INTO @a , @`b c`", nil},
		{"SELECT a INTO @'q', @\"r\" FROM t LIMIT 1 FOR UPDATE", []string{"t"}},
		{"SELECT (SELECT max(id) FROM o) INTO @m", []string{"o"}},
		{"SELECT 'into @x' INTO @y FROM t", []string{"t"}},
	} {
		got, err := Parse(tc.sql)
		if err != nil || len(got) == 0 || got[0].Command != "SELECT" || got[0].Text != tc.sql {
			t.Errorf("Parse(%q) = %+v, %v; want the SELECT, its text as sent", tc.sql, got, err)
			continue
		}
		if !slices.Equal(got[0].Tables, tc.tables) {
			t.Errorf("Parse(%q) tables %v, want %v", tc.sql, got[0].Tables, tc.tables)
		}
	}
	for _, sql := range []string{
		"SELECT id INTO @x FROM orders; DELETE FROM orders",  // more than one statement
		"DELETE FROM orders; SELECT 1 INTO @x",               // likewise
		"SELECT 1 INTO @a, FROM t",                           // a comma with no variable
		"SELECT 1 INTO @@session.sql_mode",                   // a system variable is not a target
		"INSERT INTO @x VALUES (1)",                          // not a SELECT without it
		"SELECT (SELECT 1 INTO @x) FROM t",                   // not at the top level
		"UPDATE t SET a = 1 INTO @x",                         // not a SELECT
		"SELECT 1 INTO @x INTO @y; SELECT 2 INTO @z FROM t2", // two statements
	} {
		got, err := Parse(sql)
		var se *SyntaxError
		if !errors.As(err, &se) || got != nil {
			t.Errorf("Parse(%q) = %+v, %v; want a *SyntaxError", sql, got, err)
		}
	}
}
