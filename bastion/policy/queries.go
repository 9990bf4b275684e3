package policy

import (
	"fmt"
	"slices"
	"strings"
)

// StatementKind is the broad class of a SQL statement.
type StatementKind string

const (
	StatementRead        StatementKind = "read"        // SELECT, TABLE, VALUES, SHOW-like reads
	StatementWrite       StatementKind = "write"       // INSERT, UPDATE, DELETE, MERGE, REPLACE, COPY FROM, LOAD DATA
	StatementDDL         StatementKind = "ddl"         // CREATE, ALTER, DROP, TRUNCATE, RENAME, …
	StatementDCL         StatementKind = "dcl"         // GRANT, REVOKE, roles and users
	StatementUtility     StatementKind = "utility"     // SET, SHOW, EXPLAIN, DO, CALL, EXECUTE, VACUUM, …
	StatementTransaction StatementKind = "transaction" // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, …
	StatementUnknown     StatementKind = "unknown"     // parsed, but not classified
)

// Valid reports whether k is one of the kinds above.
func (k StatementKind) Valid() bool {
	switch k {
	case StatementRead, StatementWrite, StatementDDL, StatementDCL, StatementUtility, StatementTransaction, StatementUnknown:
		return true
	}
	return false
}

// Statement is the summary of one SQL statement, as a protocol package
// produces it from the database's own grammar (protocols/postgres/pgsql,
// protocols/mysql/mysqlsql). The policy only reads it.
type Statement struct {
	Text    string
	Kind    StatementKind
	Command string // upper case: "SELECT", "DROP TABLE", "SET ROLE", …
	// Actions are further command names the statement answers to: one for
	// each sub-action of an ALTER ("ALTER TABLE DROP COLUMN", "ALTER TABLE
	// RENAME", …). A command pattern matches the statement when it matches
	// Command or any of them.
	Actions []string
	// Tables are the relations referenced, as "schema.name" or "name" when
	// not qualified, with the identifiers resolved as the database resolves
	// them (quotes removed). A reference to a CTE by its name is not one.
	Tables []string
	// TableCase says how the database compares table names, and so how
	// table patterns match Tables.
	TableCase TableCase
	// Functions are the functions called, lower case; a qualified call is
	// listed both qualified and bare.
	Functions []string
	// Unbounded is set for an UPDATE or DELETE without a WHERE clause, or
	// with one that is a constant tautology.
	Unbounded bool
	// WritesInCTE is set when a CTE modifies data.
	WritesInCTE bool
	// ExplainAnalyze is set for EXPLAIN ANALYZE of a statement that is not
	// a read (which runs it).
	ExplainAnalyze bool
	// FileAccess is set when the statement reads or writes files on the
	// database server or runs a program there: COPY … PROGRAM or to/from a
	// server file, pg_read_file(), lo_import(), file_fdw's options,
	// SELECT … INTO OUTFILE/DUMPFILE, LOAD DATA, LOAD_FILE().
	FileAccess bool
	// Program is set when the statement runs a program on the database
	// server: COPY … FROM/TO PROGRAM, file_fdw's program option.
	// FileAccess is set for it too: a program reaches every file.
	Program bool
	// SideEffects is set when the statement calls a built-in function
	// that changes state although the statement reads (nextval,
	// set_config, pg_advisory_lock, pg_terminate_backend, GET_LOCK, …):
	// each dialect's package keeps the table.
	SideEffects bool
	// RoleChange is set when the statement may change the current role or
	// session authorization (SET ROLE, SET SESSION AUTHORIZATION,
	// set_config('role', …), …).
	RoleChange bool
	// Prepares is the name a PREPARE statement defines, and Executes the
	// prepared statements the statement runs (EXECUTE name). The rules
	// decide a PREPARE on the statement it prepares; the front end holds
	// each EXECUTE of one that needs approval.
	Prepares string
	Executes []string
}

// QueryRule matches SQL statements on some targets. A rule matches a
// statement when every criterion it sets matches (criteria left empty or
// false are not checked); a list criterion matches when any of its entries
// does. A rule that sets no criterion matches every statement.
//
// Patterns are globs (see Glob) matched without regard to case. A table
// pattern "schema.name" also matches an unqualified table "name" (the
// schema it resolves to is only known to the server, so the rule errs on
// the side of matching); an unqualified pattern matches the name in any
// schema. A schema-wide pattern ("audit.*") matches qualified names only:
// matching every unqualified name would make it match everything.
//
// How a table pattern compares with case follows the database
// (Statement.TableCase): in PostgreSQL a pattern is read as SQL reads a
// name, an unquoted part folding to lower case and a part in double quotes
// keeping its case, and the match is then exact ("Orders" matches only the
// table created as "Orders"; orders and Orders match the table orders); in
// MySQL with lower_case_table_names = 0 the pattern matches with case, as
// written; otherwise case is ignored.
type QueryRule struct {
	Name    string // unique within its role; shown to users and in the audit log
	Action  CommandAction
	Targets Selector // empty: every target

	Kinds     []StatementKind
	Commands  []string // patterns for Statement.Command ("DROP *", "TRUNCATE")
	Tables    []string // patterns for tables ("public.secrets", "audit.*")
	Functions []string // patterns for functions ("pg_read_file", "lo_*")
	// Unbounded matches UPDATE/DELETE statements that are unbounded.
	Unbounded bool
	// FileAccess matches statements that reach the server's files or
	// programs; Program those that run a program there; RoleChange
	// statements that change role; SideEffects statements that call a
	// function that changes state.
	FileAccess  bool
	Program     bool
	RoleChange  bool
	SideEffects bool

	Reason    string   // shown when the rule denies or holds a statement
	Approvers []string // roles that may allow a statement this rule holds
}

func (r *QueryRule) appliesTo(t *Target) bool {
	if len(r.Targets.Names) == 0 && len(r.Targets.Labels) == 0 {
		return true
	}
	return r.Targets.Matches(t)
}

// matches reports whether s is one of the statements r is about.
func (r *QueryRule) matches(s *Statement) (bool, error) {
	if len(r.Kinds) > 0 && !slices.Contains(r.Kinds, s.Kind) {
		return false, nil
	}
	if r.Unbounded && !s.Unbounded {
		return false, nil
	}
	if r.FileAccess && !s.FileAccess {
		return false, nil
	}
	if r.RoleChange && !s.RoleChange {
		return false, nil
	}
	if r.Program && !s.Program {
		return false, nil
	}
	if r.SideEffects && !s.SideEffects {
		return false, nil
	}
	if len(r.Commands) > 0 {
		ok, err := anyGlob(r.Commands, append([]string{s.Command}, s.Actions...), strings.ToUpper, false)
		if err != nil || !ok {
			return false, err
		}
	}
	if len(r.Tables) > 0 {
		pats, norm := tablePatterns(r.Tables, s.TableCase)
		ok, err := anyGlob(pats, s.Tables, norm, true)
		if err != nil || !ok {
			return false, err
		}
	}
	if len(r.Functions) > 0 {
		ok, err := anyGlob(r.Functions, s.Functions, strings.ToLower, false)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// anyGlob reports whether any of patterns matches any of names, both
// normalised by norm. With qualified, a "schema.name" pattern also matches
// an unqualified name by its name part.
func anyGlob(patterns, names []string, norm func(string) string, qualified bool) (bool, error) {
	for _, p := range patterns {
		p = norm(p)
		for _, n := range names {
			n = norm(n)
			ok, err := Glob(p, n)
			if err != nil {
				return false, err
			}
			if !ok && qualified && !strings.Contains(n, ".") {
				if _, bare, cut := strings.Cut(p, "."); cut && !strings.ContainsAny(bare, `*?[\`) {
					ok, err = Glob(bare, n)
					if err != nil {
						return false, err
					}
				}
			}
			if !ok && qualified && !strings.Contains(p, ".") {
				if _, bare, cut := strings.Cut(n, "."); cut {
					ok, _ = Glob(p, bare)
				}
			}
			if ok {
				return true, nil
			}
		}
	}
	return false, nil
}

// readOnlyUtility are the utility statements read-only mode allows: they
// neither change data nor run code that could.
var readOnlyUtility = map[string]bool{
	"SET": true, "RESET": true, "SHOW": true, "EXPLAIN": true, "LISTEN": true, "UNLISTEN": true,
	"DEALLOCATE": true, "DISCARD": true, "USE": true, "DESCRIBE": true, "PREPARE": true,
	"SET TRANSACTION": true, "CLOSE": true, "FETCH": true, "DECLARE CURSOR": true, "MOVE": true,
}

// readOnlyAllows reports whether read-only mode lets s run.
func readOnlyAllows(s *Statement) bool {
	if s.FileAccess || s.Program || s.SideEffects || s.RoleChange || s.WritesInCTE || s.ExplainAnalyze {
		return false
	}
	switch s.Kind {
	case StatementRead, StatementTransaction:
		return true
	case StatementUtility:
		return readOnlyUtility[s.Command]
	}
	return false
}

// QueryDecision is the policy's answer for the statements of one query.
type QueryDecision struct {
	Action CommandAction
	// Rule names the rule that decided; empty for a role's default or
	// read-only mode.
	Rule string
	// Reason is safe to show to the user; empty when allowed.
	Reason string
	// Index is the statement that decided (into the slice given).
	Index     int
	Approvers []string
}

// DecideQueries decides whether user may run stmts (all the statements of
// one query string, or one prepared statement) on target. It mirrors
// DecideCommands:
//
//   - Each statement is decided separately. Within one role, read-only mode
//     denies first; then the first rule (in file order) that applies to the
//     target and matches decides; if none does, the role's QueryDefault
//     decides ("" is allow).
//   - Across the user's roles the most restrictive answer wins:
//     deny > require-approval > allow.
//   - The query gets the most restrictive answer of its statements: a
//     query string with one denied statement is denied as a whole.
//   - An empty list is allowed; an unknown user or target is denied.
//
// Callers deny statements that cannot be parsed when QueriesRestricted.
func (p *Policy) DecideQueries(user, target string, stmts []Statement) QueryDecision {
	if len(stmts) == 0 {
		return QueryDecision{Action: CommandAllow}
	}
	t := p.Targets[target]
	if t == nil {
		return QueryDecision{Action: CommandDeny, Reason: fmt.Sprintf("unknown target %q", target)}
	}
	if p.Users[user] == nil {
		return QueryDecision{Action: CommandDeny, Reason: fmt.Sprintf("unknown user %q", user)}
	}
	roles := p.roles(user)
	var best QueryDecision
	for i := range stmts {
		d := decideQuery(roles, t, &stmts[i])
		d.Index = i
		if i == 0 || d.Action.severity() > best.Action.severity() {
			best = d
		}
	}
	return best
}

// QueriesRestricted reports whether any query rule, read-only mode or
// restrictive default of user's roles applies to target: then a statement
// that cannot be parsed is refused (fail closed). An unknown user or target
// is restricted.
func (p *Policy) QueriesRestricted(user, target string) bool {
	t := p.Targets[target]
	if t == nil || p.Users[user] == nil {
		return true
	}
	for _, r := range p.roles(user) {
		if r.ReadOnly || r.QueryDefault.effective() != CommandAllow {
			return true
		}
		for i := range r.Queries {
			if r.Queries[i].appliesTo(t) {
				return true
			}
		}
	}
	return false
}

func decideQuery(roles []*Role, t *Target, s *Statement) QueryDecision {
	best := QueryDecision{Action: CommandAllow}
	for _, r := range roles {
		d := r.decideQuery(t, s)
		if sev, bsev := d.Action.severity(), best.Action.severity(); sev > bsev || (sev == bsev && best.Rule == "" && d.Rule != "") {
			best = d
		}
	}
	return best
}

func (r *Role) decideQuery(t *Target, s *Statement) QueryDecision {
	if r.ReadOnly && !readOnlyAllows(s) {
		return QueryDecision{Action: CommandDeny, Reason: fmt.Sprintf("%s is not allowed: role %s is read-only", describeStatement(s), r.Name)}
	}
	for i := range r.Queries {
		rule := &r.Queries[i]
		if !rule.appliesTo(t) {
			continue
		}
		ok, err := rule.matches(s)
		if err != nil {
			return QueryDecision{Action: CommandDeny, Rule: rule.Name, Reason: fmt.Sprintf("rule %s of role %s has an invalid pattern", rule.Name, r.Name)}
		}
		if !ok {
			continue
		}
		d := QueryDecision{Action: rule.Action.effective(), Rule: rule.Name, Reason: rule.Reason, Approvers: rule.Approvers}
		if d.Action == CommandAllow {
			d.Reason = ""
		} else if d.Reason == "" {
			d.Reason = fmt.Sprintf("%s: rule %s says %s", describeStatement(s), rule.Name, d.Action)
		}
		return d
	}
	d := QueryDecision{Action: r.QueryDefault.effective()}
	switch d.Action {
	case CommandDeny:
		d.Reason = fmt.Sprintf("%s is not allowed: no rule of role %s allows it", describeStatement(s), r.Name)
	case CommandRequireApproval:
		d.Reason = fmt.Sprintf("%s needs approval: no rule of role %s allows it", describeStatement(s), r.Name)
	}
	return d
}

func describeStatement(s *Statement) string {
	switch {
	case s.Command == "":
		return "this statement"
	case len(s.Actions) > 0:
		return strings.Join(s.Actions, ", ")
	}
	return s.Command
}
