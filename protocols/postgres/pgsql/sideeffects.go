package pgsql

import "maps"

// sideEffects are PostgreSQL's built-in functions (and those of the
// extensions shipped with it) that change state when a statement that
// only reads calls them: read-only mode refuses a statement that calls
// one, and a rule with side_effects: true matches it. Each says what it
// changes. Functions that read or write the server's files are
// fileFunctions (file_access); those that change the role are found by
// their setting (role_change).
var sideEffects = map[string]string{
	// Sequences.
	"nextval": "advances a sequence",
	"setval":  "sets a sequence",
	// Settings.
	"set_config": "changes a setting",
	// Large objects.
	"lo_create":     "creates a large object",
	"lo_creat":      "creates a large object",
	"lo_from_bytea": "creates a large object",
	"lo_import":     "creates a large object from a server file",
	"lo_export":     "writes a large object to a server file",
	"lo_unlink":     "deletes a large object",
	"lo_put":        "writes a large object",
	"lo_truncate":   "truncates a large object",
	"lo_truncate64": "truncates a large object",
	"lowrite":       "writes a large object",
	// Other sessions and the server.
	"pg_terminate_backend":           "ends another session",
	"pg_cancel_backend":              "cancels another session's query",
	"pg_reload_conf":                 "reloads the server's configuration",
	"pg_rotate_logfile":              "rotates the server's log",
	"pg_promote":                     "promotes a standby",
	"pg_log_backend_memory_contexts": "writes to the server's log",
	"pg_switch_wal":                  "switches the write-ahead log",
	"pg_create_restore_point":        "writes a restore point",
	"pg_backup_start":                "starts a backup",
	"pg_backup_stop":                 "stops a backup",
	"pg_start_backup":                "starts a backup",
	"pg_stop_backup":                 "stops a backup",
	"pg_wal_replay_pause":            "pauses recovery",
	"pg_wal_replay_resume":           "resumes recovery",
	// Replication slots and origins.
	"pg_create_physical_replication_slot":    "creates a replication slot",
	"pg_create_logical_replication_slot":     "creates a replication slot",
	"pg_copy_physical_replication_slot":      "creates a replication slot",
	"pg_copy_logical_replication_slot":       "creates a replication slot",
	"pg_drop_replication_slot":               "drops a replication slot",
	"pg_replication_slot_advance":            "advances a replication slot",
	"pg_logical_slot_get_changes":            "consumes a replication slot's changes",
	"pg_logical_slot_get_binary_changes":     "consumes a replication slot's changes",
	"pg_logical_emit_message":                "writes to the write-ahead log",
	"pg_replication_origin_create":           "creates a replication origin",
	"pg_replication_origin_drop":             "drops a replication origin",
	"pg_replication_origin_advance":          "advances a replication origin",
	"pg_replication_origin_session_setup":    "binds the session to a replication origin",
	"pg_replication_origin_session_reset":    "unbinds the session from a replication origin",
	"pg_replication_origin_xact_setup":       "sets the transaction's replication origin",
	"pg_replication_origin_xact_reset":       "resets the transaction's replication origin",
	"pg_replication_origin_session_progress": "may flush a replication origin",
	"pg_import_system_collations":            "creates collations",
	"pg_stat_reset":                          "resets statistics",
	"pg_stat_reset_shared":                   "resets statistics",
	"pg_stat_reset_single_table_counters":    "resets statistics",
	"pg_stat_reset_single_function_counters": "resets statistics",
	"pg_stat_reset_slru":                     "resets statistics",
	"pg_stat_reset_replication_slot":         "resets statistics",
	"pg_stat_reset_subscription_stats":       "resets statistics",
	"pg_stat_statements_reset":               "resets statistics",
	"brin_summarize_new_values":              "changes an index",
	"brin_summarize_range":                   "changes an index",
	"brin_desummarize_range":                 "changes an index",
	"gin_clean_pending_list":                 "changes an index",
	"pg_notify":                              "sends a notification",
	"txid_current":                           "assigns a transaction ID",
	"pg_current_xact_id":                     "assigns a transaction ID",
	"pg_export_snapshot":                     "exports a snapshot",
	"dblink_exec":                            "runs a command on a database",
	// Advisory locks.
	"pg_advisory_lock":                 "takes an advisory lock",
	"pg_advisory_lock_shared":          "takes an advisory lock",
	"pg_advisory_xact_lock":            "takes an advisory lock",
	"pg_advisory_xact_lock_shared":     "takes an advisory lock",
	"pg_try_advisory_lock":             "takes an advisory lock",
	"pg_try_advisory_lock_shared":      "takes an advisory lock",
	"pg_try_advisory_xact_lock":        "takes an advisory lock",
	"pg_try_advisory_xact_lock_shared": "takes an advisory lock",
	"pg_advisory_unlock":               "releases an advisory lock",
	"pg_advisory_unlock_shared":        "releases an advisory lock",
	"pg_advisory_unlock_all":           "releases the session's advisory locks",
}

// SideEffects returns the table of built-in functions that change state,
// by name, each with what it changes (for documentation and tests).
func SideEffects() map[string]string { return maps.Clone(sideEffects) }
