package mysqlsql

import "maps"

// sideEffects are MySQL's and MariaDB's built-in functions that change
// state when a statement that only reads calls them: read-only mode
// refuses a statement that calls one, and a rule with side_effects: true
// matches it. Each says what it changes. LOAD_FILE is file access
// (file_access), not listed here; SLEEP, BENCHMARK and LASTVAL (MariaDB's
// PREVIOUS VALUE FOR) change nothing.
var sideEffects = map[string]string{
	"get_lock":          "takes a named lock",
	"release_lock":      "releases a named lock",
	"release_all_locks": "releases the session's named locks",
	"nextval":           "advances a sequence (MariaDB's NEXT VALUE FOR, NEXTVAL)",
	"setval":            "sets a sequence (MariaDB)",
}

// SideEffects returns the table of built-in functions that change state,
// by lower-case name, each with what it changes.
func SideEffects() map[string]string { return maps.Clone(sideEffects) }
