package pgsql

import (
	"strings"
	"unicode"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// summarise describes one parsed statement (all but Text and Fingerprint).
func summarise(n *pg_query.Node) Statement {
	f := collect(n)
	s := Statement{
		Tables:      f.sortedTables(),
		Functions:   f.sortedFunctions(),
		Unbounded:   f.unbounded,
		WritesInCTE: f.writesInCTE,
		Roles:       f.roles,
		Executes:    sortedKeys(f.executes),
		Unchecked:   f.unchecked,
		ServerFiles: f.serverFiles,
		Program:     f.program,
		SideEffects: f.sideEffects,
		Misreads:    f.misreads,
		sqlArgs:     f.sqlArgs,
	}
	if p, ok := inner(n).(*pg_query.PrepareStmt); ok {
		s.Prepares = p.GetName()
	}
	s.Kind, s.Command = classify(n, f, &s)
	s.Program = s.Program || s.CopyProgram
	s.Actions = actions(n, s.Command)
	return s
}

// inner returns the statement message a Node wraps, nil for an empty Node.
func inner(n *pg_query.Node) proto.Message {
	m := n.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("node")
	if od == nil {
		return nil
	}
	fd := m.WhichOneof(od)
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message().Interface()
}

// query is the kind of a query that may hide writes: read, unless the tree
// modifies or locks rows or creates a table.
func query(f *facts) Kind {
	if f.writes() {
		return KindWrite
	}
	return KindRead
}

// classify returns the kind and command of n. f are the facts of the whole
// statement n belongs to; s receives the COPY and EXPLAIN fields.
func classify(n *pg_query.Node, f *facts, s *Statement) (Kind, string) {
	switch x := inner(n).(type) {
	case nil:
		return KindUnknown, ""
	case *pg_query.SelectStmt:
		if x.GetIntoClause() != nil {
			return KindWrite, "SELECT INTO"
		}
		return query(f), "SELECT"
	case *pg_query.InsertStmt:
		return KindWrite, "INSERT"
	case *pg_query.UpdateStmt:
		return KindWrite, "UPDATE"
	case *pg_query.DeleteStmt:
		return KindWrite, "DELETE"
	case *pg_query.MergeStmt:
		return KindWrite, "MERGE"
	case *pg_query.CopyStmt:
		s.CopyProgram = x.GetIsProgram()
		s.CopyFile = !x.GetIsProgram() && x.GetFilename() != ""
		if x.GetIsFrom() {
			s.CopyDirection = CopyFrom
			return KindWrite, "COPY"
		}
		s.CopyDirection = CopyTo
		return query(f), "COPY"
	case *pg_query.ExplainStmt:
		k, _ := classify(x.GetQuery(), f, &Statement{})
		if !explainAnalyze(x.GetOptions()) {
			// Plans, runs nothing: no row changes, no function is called.
			s.Unbounded, s.WritesInCTE, s.SideEffects = false, false, false
			return KindUtility, "EXPLAIN"
		}
		s.ExplainAnalyze = k != KindRead
		return k, "EXPLAIN"
	case *pg_query.PrepareStmt:
		k, _ := classify(x.GetQuery(), f, &Statement{})
		return k, "PREPARE"
	case *pg_query.DeclareCursorStmt:
		k, _ := classify(x.GetQuery(), f, &Statement{})
		return k, "DECLARE CURSOR"
	case *pg_query.ExecuteStmt:
		return KindUtility, "EXECUTE"
	case *pg_query.DeallocateStmt:
		return KindUtility, "DEALLOCATE"
	case *pg_query.DoStmt:
		return KindUtility, "DO"
	case *pg_query.CallStmt:
		return KindUtility, "CALL"
	case *pg_query.VariableSetStmt:
		return KindUtility, setCommand(x)
	case *pg_query.VariableShowStmt:
		return KindUtility, "SHOW"
	case *pg_query.DiscardStmt:
		return KindUtility, "DISCARD"
	case *pg_query.ListenStmt:
		return KindUtility, "LISTEN"
	case *pg_query.UnlistenStmt:
		return KindUtility, "UNLISTEN"
	case *pg_query.NotifyStmt:
		return KindUtility, "NOTIFY"
	case *pg_query.VacuumStmt:
		if x.GetIsVacuumcmd() {
			return KindUtility, "VACUUM"
		}
		return KindUtility, "ANALYZE"
	case *pg_query.ClusterStmt:
		return KindUtility, "CLUSTER"
	case *pg_query.ReindexStmt:
		return KindUtility, "REINDEX"
	case *pg_query.CheckPointStmt:
		return KindUtility, "CHECKPOINT"
	case *pg_query.LoadStmt:
		return KindUtility, "LOAD"
	case *pg_query.LockStmt:
		return KindUtility, "LOCK TABLE"
	case *pg_query.FetchStmt:
		if x.GetIsmove() {
			return KindUtility, "MOVE"
		}
		return KindUtility, "FETCH"
	case *pg_query.ClosePortalStmt:
		return KindUtility, "CLOSE"
	case *pg_query.ConstraintsSetStmt:
		return KindUtility, "SET CONSTRAINTS"
	case *pg_query.TransactionStmt:
		return KindTransaction, transactionCommand(x.GetKind())
	case *pg_query.GrantStmt:
		if x.GetIsGrant() {
			return KindDCL, "GRANT"
		}
		return KindDCL, "REVOKE"
	case *pg_query.GrantRoleStmt:
		if x.GetIsGrant() {
			return KindDCL, "GRANT"
		}
		return KindDCL, "REVOKE"
	case *pg_query.CreateRoleStmt:
		return KindDCL, "CREATE " + strings.TrimPrefix(x.GetStmtType().String(), "ROLESTMT_")
	case *pg_query.AlterRoleStmt, *pg_query.AlterRoleSetStmt:
		return KindDCL, "ALTER ROLE"
	case *pg_query.DropRoleStmt:
		return KindDCL, "DROP ROLE"
	case *pg_query.AlterDefaultPrivilegesStmt:
		return KindDCL, "ALTER DEFAULT PRIVILEGES"
	case *pg_query.ReassignOwnedStmt:
		return KindDCL, "REASSIGN OWNED"
	case *pg_query.DropOwnedStmt:
		return KindDCL, "DROP OWNED"
	case *pg_query.CreateUserMappingStmt:
		return KindDCL, "CREATE USER MAPPING"
	case *pg_query.AlterUserMappingStmt:
		return KindDCL, "ALTER USER MAPPING"
	case *pg_query.DropUserMappingStmt:
		return KindDCL, "DROP USER MAPPING"
	case *pg_query.TruncateStmt:
		return KindDDL, "TRUNCATE"
	case *pg_query.DropStmt:
		return KindDDL, "DROP " + objectName(x.GetRemoveType())
	case *pg_query.CommentStmt:
		return KindDDL, "COMMENT"
	case *pg_query.SecLabelStmt:
		return KindDDL, "SECURITY LABEL"
	case *pg_query.CreateStmt:
		return KindDDL, "CREATE TABLE"
	case *pg_query.CreateTableAsStmt:
		if x.GetObjtype() == pg_query.ObjectType_OBJECT_TABLE {
			return KindDDL, "CREATE TABLE AS"
		}
		return KindDDL, "CREATE " + objectName(x.GetObjtype())
	case *pg_query.RefreshMatViewStmt:
		return KindDDL, "REFRESH MATERIALIZED VIEW"
	case *pg_query.ViewStmt:
		return KindDDL, "CREATE VIEW"
	case *pg_query.IndexStmt:
		return KindDDL, "CREATE INDEX"
	case *pg_query.CreateFunctionStmt:
		if x.GetIsProcedure() {
			return KindDDL, "CREATE PROCEDURE"
		}
		return KindDDL, "CREATE FUNCTION"
	case *pg_query.AlterTableStmt:
		return KindDDL, "ALTER " + objectName(x.GetObjtype())
	case *pg_query.RenameStmt:
		return KindDDL, "ALTER " + objectName(x.GetRenameType())
	case *pg_query.AlterObjectSchemaStmt:
		return KindDDL, "ALTER " + objectName(x.GetObjectType())
	case *pg_query.AlterOwnerStmt:
		return KindDDL, "ALTER " + objectName(x.GetObjectType())
	case *pg_query.CreatedbStmt:
		return KindDDL, "CREATE DATABASE"
	case *pg_query.DropdbStmt:
		return KindDDL, "DROP DATABASE"
	case *pg_query.CreateSeqStmt:
		return KindDDL, "CREATE SEQUENCE"
	case *pg_query.AlterSeqStmt:
		return KindDDL, "ALTER SEQUENCE"
	case *pg_query.CreateTrigStmt:
		return KindDDL, "CREATE TRIGGER"
	case *pg_query.RuleStmt:
		return KindDDL, "CREATE RULE"
	case *pg_query.CompositeTypeStmt, *pg_query.CreateEnumStmt, *pg_query.CreateRangeStmt:
		return KindDDL, "CREATE TYPE"
	case *pg_query.DefineStmt:
		return KindDDL, "CREATE " + objectName(x.GetKind())
	default:
		return fallback(x)
	}
}

// fallback names a statement this package has no case for from its message
// name (AlterDomainStmt is "ALTER DOMAIN") and classes CREATE, ALTER, DROP
// and IMPORT as DDL; anything else is unknown.
func fallback(m proto.Message) (Kind, string) {
	name := string(m.ProtoReflect().Descriptor().Name())
	if !strings.HasSuffix(name, "Stmt") {
		return KindUnknown, ""
	}
	words := splitCamel(strings.TrimSuffix(name, "Stmt"))
	cmd := strings.ToUpper(strings.Join(words, " "))
	if len(words) > 0 {
		switch words[0] {
		case "Create", "Alter", "Drop", "Import":
			return KindDDL, cmd
		}
	}
	return KindUnknown, cmd
}

// splitCamel splits "AlterTSDictionary" into ["Alter", "TSDictionary"]:
// a word starts at an upper-case letter that follows a lower-case one.
func splitCamel(s string) []string {
	var words []string
	start := 0
	rs := []rune(s)
	for i := 1; i < len(rs); i++ {
		if unicode.IsUpper(rs[i]) && unicode.IsLower(rs[i-1]) {
			words = append(words, string(rs[start:i]))
			start = i
		}
	}
	if start < len(rs) {
		words = append(words, string(rs[start:]))
	}
	return words
}

// objectName spells an object type as SQL does ("MATERIALIZED VIEW").
func objectName(t pg_query.ObjectType) string {
	switch t {
	case pg_query.ObjectType_OBJECT_MATVIEW:
		return "MATERIALIZED VIEW"
	case pg_query.ObjectType_OBJECT_TSCONFIGURATION:
		return "TEXT SEARCH CONFIGURATION"
	case pg_query.ObjectType_OBJECT_TSDICTIONARY:
		return "TEXT SEARCH DICTIONARY"
	case pg_query.ObjectType_OBJECT_TSPARSER:
		return "TEXT SEARCH PARSER"
	case pg_query.ObjectType_OBJECT_TSTEMPLATE:
		return "TEXT SEARCH TEMPLATE"
	case pg_query.ObjectType_OBJECT_FDW:
		return "FOREIGN DATA WRAPPER"
	case pg_query.ObjectType_OBJECT_OPCLASS:
		return "OPERATOR CLASS"
	case pg_query.ObjectType_OBJECT_OPFAMILY:
		return "OPERATOR FAMILY"
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		return "TABLE"
	case pg_query.ObjectType_OBJECT_COLUMN:
		return "TABLE"
	}
	return strings.ReplaceAll(strings.TrimPrefix(t.String(), "OBJECT_"), "_", " ")
}

func setCommand(x *pg_query.VariableSetStmt) string {
	verb := "SET"
	if k := x.GetKind(); k == pg_query.VariableSetKind_VAR_RESET || k == pg_query.VariableSetKind_VAR_RESET_ALL {
		verb = "RESET"
	}
	switch strings.ToLower(x.GetName()) {
	case "role":
		return verb + " ROLE"
	case "session_authorization":
		return verb + " SESSION AUTHORIZATION"
	}
	return verb
}

func transactionCommand(k pg_query.TransactionStmtKind) string {
	switch k {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN:
		return "BEGIN"
	case pg_query.TransactionStmtKind_TRANS_STMT_START:
		return "START TRANSACTION"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		return "COMMIT"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		return "ROLLBACK"
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return "SAVEPOINT"
	case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
		return "RELEASE"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return "ROLLBACK TO SAVEPOINT"
	case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
		return "PREPARE TRANSACTION"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		return "COMMIT PREPARED"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		return "ROLLBACK PREPARED"
	}
	return "TRANSACTION"
}

// explainAnalyze reports whether EXPLAIN's options turn ANALYZE on
// (EXPLAIN ANALYZE …, EXPLAIN (ANALYZE), EXPLAIN (ANALYZE true)). An
// argument that is not a recognisable boolean counts as on.
func explainAnalyze(opts []*pg_query.Node) bool {
	on := false
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil || strings.ToLower(d.GetDefname()) != "analyze" {
			continue
		}
		if d.GetArg() == nil {
			on = true
			continue
		}
		v := eval(d.GetArg())
		if v.kind == valString && v.s == "" {
			on = true
			continue
		}
		b := toBool(v)
		on = !(b.kind == valBool && !b.b)
	}
	return on
}
