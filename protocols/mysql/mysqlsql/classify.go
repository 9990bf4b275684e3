package mysqlsql

import (
	"reflect"
	"slices"
	"strings"
	"unicode"

	"github.com/pingcap/tidb/pkg/parser/ast"

	"github.com/bastionhq/bastion/bastion/policy"
)

// summarise describes one parsed statement (all but its Text).
func (r reading) summarise(n ast.StmtNode) Statement {
	var s Statement
	s.Kind, s.Command = r.classify(n, &s)
	w := &walker{s: &s, tables: s.Tables, funcs: s.Functions} // PREPARE's inner statement's
	n.Accept(w)
	s.Tables = sortUnique(w.tables)
	s.Functions = sortUnique(w.funcs)
	if x, ok := n.(*ast.ExplainStmt); ok && !x.Analyze {
		// Plans, runs nothing: no row changes, no function is called.
		s.Unbounded, s.WritesInCTE, s.SideEffects = false, false, false
	}
	return s
}

// commands names statements whose type name does not say it well.
var commands = map[reflect.Type]struct {
	kind    policy.StatementKind
	command string
}{
	reflect.TypeFor[*ast.BeginStmt]():            {policy.StatementTransaction, "BEGIN"},
	reflect.TypeFor[*ast.CommitStmt]():           {policy.StatementTransaction, "COMMIT"},
	reflect.TypeFor[*ast.RollbackStmt]():         {policy.StatementTransaction, "ROLLBACK"},
	reflect.TypeFor[*ast.SavepointStmt]():        {policy.StatementTransaction, "SAVEPOINT"},
	reflect.TypeFor[*ast.ReleaseSavepointStmt](): {policy.StatementTransaction, "RELEASE SAVEPOINT"},
	reflect.TypeFor[*ast.SetStmt]():              {policy.StatementUtility, "SET"},
	reflect.TypeFor[*ast.SetConfigStmt]():        {policy.StatementUtility, "SET CONFIG"},
	reflect.TypeFor[*ast.ShowStmt]():             {policy.StatementUtility, "SHOW"},
	reflect.TypeFor[*ast.UseStmt]():              {policy.StatementUtility, "USE"},
	reflect.TypeFor[*ast.DoStmt]():               {policy.StatementUtility, "DO"},
	reflect.TypeFor[*ast.CallStmt]():             {policy.StatementUtility, "CALL"},
	reflect.TypeFor[*ast.ExecuteStmt]():          {policy.StatementUtility, "EXECUTE"},
	reflect.TypeFor[*ast.DeallocateStmt]():       {policy.StatementUtility, "DEALLOCATE"},
	reflect.TypeFor[*ast.KillStmt]():             {policy.StatementUtility, "KILL"},
	reflect.TypeFor[*ast.FlushStmt]():            {policy.StatementUtility, "FLUSH"},
	reflect.TypeFor[*ast.ShutdownStmt]():         {policy.StatementUtility, "SHUTDOWN"},
	reflect.TypeFor[*ast.LockTablesStmt]():       {policy.StatementUtility, "LOCK TABLES"},
	reflect.TypeFor[*ast.UnlockTablesStmt]():     {policy.StatementUtility, "UNLOCK TABLES"},
	reflect.TypeFor[*ast.AnalyzeTableStmt]():     {policy.StatementUtility, "ANALYZE TABLE"},
	reflect.TypeFor[*ast.OptimizeTableStmt]():    {policy.StatementUtility, "OPTIMIZE TABLE"},
	reflect.TypeFor[*ast.SetPwdStmt]():           {policy.StatementDCL, "SET PASSWORD"},
	reflect.TypeFor[*ast.GrantStmt]():            {policy.StatementDCL, "GRANT"},
	reflect.TypeFor[*ast.GrantRoleStmt]():        {policy.StatementDCL, "GRANT"},
	reflect.TypeFor[*ast.GrantProxyStmt]():       {policy.StatementDCL, "GRANT"},
	reflect.TypeFor[*ast.RevokeStmt]():           {policy.StatementDCL, "REVOKE"},
	reflect.TypeFor[*ast.RevokeRoleStmt]():       {policy.StatementDCL, "REVOKE"},
	reflect.TypeFor[*ast.CreateUserStmt]():       {policy.StatementDCL, "CREATE USER"},
	reflect.TypeFor[*ast.AlterUserStmt]():        {policy.StatementDCL, "ALTER USER"},
	reflect.TypeFor[*ast.DropUserStmt]():         {policy.StatementDCL, "DROP USER"},
	reflect.TypeFor[*ast.RenameUserStmt]():       {policy.StatementDCL, "RENAME USER"},
	reflect.TypeFor[*ast.TruncateTableStmt]():    {policy.StatementDDL, "TRUNCATE"},
	reflect.TypeFor[*ast.RenameTableStmt]():      {policy.StatementDDL, "RENAME TABLE"},
}

// classify returns a statement's kind and command, and sets the facts that
// depend on its type. A statement PREPARE prepares is read as r reads.
func (r reading) classify(n ast.StmtNode, s *Statement) (policy.StatementKind, string) {
	switch x := n.(type) {
	case *ast.SelectStmt:
		if x.SelectIntoOpt != nil && x.SelectIntoOpt.Tp != ast.SelectIntoVars {
			s.FileAccess = true
		}
		if x.LockInfo != nil && x.LockInfo.LockType != ast.SelectLockNone {
			return policy.StatementWrite, "SELECT"
		}
		return policy.StatementRead, "SELECT"
	case *ast.SetOprStmt:
		return policy.StatementRead, "SELECT"
	case *ast.InsertStmt:
		if x.IsReplace {
			return policy.StatementWrite, "REPLACE"
		}
		return policy.StatementWrite, "INSERT"
	case *ast.UpdateStmt:
		s.Unbounded = x.Where == nil || isTautology(x.Where)
		return policy.StatementWrite, "UPDATE"
	case *ast.DeleteStmt:
		s.Unbounded = x.Where == nil || isTautology(x.Where)
		return policy.StatementWrite, "DELETE"
	case *ast.LoadDataStmt:
		s.FileAccess = true
		s.LocalInfile = x.FileLocRef == ast.FileLocClient
		return policy.StatementWrite, "LOAD DATA"
	case *ast.ExplainStmt:
		inner := Statement{}
		k, _ := r.classify(x.Stmt, &inner)
		if !x.Analyze {
			return policy.StatementUtility, "EXPLAIN"
		}
		s.ExplainAnalyze = k != policy.StatementRead
		s.Unbounded, s.FileAccess, s.RoleChange = inner.Unbounded, inner.FileAccess, inner.RoleChange
		return k, "EXPLAIN"
	case *ast.ExecuteStmt:
		s.Executes = []string{strings.ToLower(x.Name)}
		return policy.StatementUtility, "EXECUTE"
	case *ast.PrepareStmt:
		s.Prepares = strings.ToLower(x.Name)
		if x.SQLVar != nil {
			s.Dynamic = true
			return policy.StatementUnknown, "PREPARE"
		}
		inner, err := r.parse(x.SQLText)
		if err != nil || len(inner) != 1 {
			s.Dynamic = true // the server will refuse it too; nothing to check
			return policy.StatementUnknown, "PREPARE"
		}
		in := inner[0]
		s.Unbounded, s.FileAccess, s.RoleChange, s.Dynamic = in.Unbounded, in.FileAccess, in.RoleChange, in.Dynamic
		s.SideEffects, s.WritesInCTE = in.SideEffects, in.WritesInCTE
		s.SetsSQLMode, s.SQLModeDynamic = in.SetsSQLMode, in.SQLModeDynamic         // when executed
		s.Tables, s.Functions = slices.Clone(in.Tables), slices.Clone(in.Functions) // merged with the walk's
		// The statement prepared is decided as itself too (DROP TABLE can
		// be prepared, and a rule on commands must see it).
		s.inner = inner
		return in.Kind, "PREPARE"
	case *ast.UseStmt:
		s.Database = x.DBName
	case *ast.SetStmt:
		s.ClientCharset = clientCharset(x)
		s.SetsSQLMode, s.SQLModeDynamic = setsSQLMode(x)
	case *ast.SetRoleStmt:
		s.RoleChange = true
		return policy.StatementUtility, "SET ROLE"
	case *ast.SetDefaultRoleStmt:
		s.RoleChange = true
		return policy.StatementDCL, "SET DEFAULT ROLE"
	case *ast.CreateUserStmt:
		if x.IsCreateRole {
			return policy.StatementDCL, "CREATE ROLE"
		}
	case *ast.DropUserStmt:
		if x.IsDropRole {
			return policy.StatementDCL, "DROP ROLE"
		}
	case *ast.AlterTableStmt:
		s.Actions = alterTableActions(x)
		return policy.StatementDDL, "ALTER TABLE"
	case *ast.DropTableStmt:
		if x.IsView {
			return policy.StatementDDL, "DROP VIEW"
		}
		return policy.StatementDDL, "DROP TABLE"
	}
	if c, ok := commands[reflect.TypeOf(n)]; ok {
		return c.kind, c.command
	}
	command := typeCommand(n)
	if _, ok := n.(ast.DDLNode); ok {
		return policy.StatementDDL, command
	}
	return policy.StatementUnknown, command
}

// typeCommand derives a command from a node's type name:
// *ast.CreateIndexStmt → "CREATE INDEX".
func typeCommand(n ast.StmtNode) string {
	name := strings.TrimSuffix(reflect.TypeOf(n).Elem().Name(), "Stmt")
	var b strings.Builder
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// walker collects the tables and functions a statement references,
// wherever the grammar puts them, but for names that refer to a CTE
// (cteScope).
type walker struct {
	s      *Statement
	tables []string
	funcs  []string
	cteScope
}

func (w *walker) Enter(n ast.Node) (ast.Node, bool) {
	w.enterScope(n)
	switch x := n.(type) {
	case *ast.TableName:
		name := x.Name.O
		if x.Schema.O != "" {
			name = x.Schema.O + "." + name
		}
		if x.Name.O != "" && !w.isCTE(x) {
			w.tables = append(w.tables, name)
		}
	case *ast.FuncCallExpr:
		w.addFunc(x.Schema.L, x.FnName.L)
	case *ast.AggregateFuncExpr:
		w.addFunc("", strings.ToLower(x.F))
	case *ast.WindowFuncExpr:
		w.addFunc("", strings.ToLower(x.Name))
	case *ast.UpdateStmt:
		if x != nil && (x.Where == nil || isTautology(x.Where)) {
			w.s.Unbounded = true
		}
	case *ast.DeleteStmt:
		if x != nil && (x.Where == nil || isTautology(x.Where)) {
			w.s.Unbounded = true
		}
	case *ast.SelectStmt:
		if x.SelectIntoOpt != nil && x.SelectIntoOpt.Tp != ast.SelectIntoVars {
			w.s.FileAccess = true
		}
	case *ast.CommonTableExpression:
		if x.Query != nil {
			if _, ok := x.Query.Query.(*ast.SelectStmt); !ok {
				if _, ok := x.Query.Query.(*ast.SetOprStmt); !ok {
					w.s.WritesInCTE = true
				}
			}
		}
	}
	return n, false
}

func (w *walker) addFunc(schema, name string) {
	if name == "" {
		return
	}
	w.funcs = append(w.funcs, name)
	if schema != "" {
		w.funcs = append(w.funcs, schema+"."+name)
	}
	if name == "load_file" {
		w.s.FileAccess = true
	}
	if _, ok := sideEffects[name]; ok {
		w.s.SideEffects = true
	}
}

func (w *walker) Leave(n ast.Node) (ast.Node, bool) {
	w.leaveScope(n)
	return n, true
}

func sortUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// clientCharset returns the character set a SET statement gives the
// client's side of the connection, "" when it sets none, "?" when it is
// not a plain name.
func clientCharset(x *ast.SetStmt) string {
	cs := ""
	for _, v := range x.Variables {
		if v.Name != ast.SetNames && v.Name != ast.SetCharset && !(v.IsSystem && strings.EqualFold(v.Name, "character_set_client")) {
			continue
		}
		switch e := v.Value.(type) {
		case *ast.DefaultExpr:
			cs = "default"
		case ast.ValueExpr:
			cs = strings.ToLower(e.GetString())
		case *ast.ColumnNameExpr:
			cs = e.Name.Name.L
		default:
			return "?"
		}
	}
	return cs
}

// setsSQLMode reports whether a SET statement assigns sql_mode, and
// whether a value it assigns is an expression rather than a constant (a
// string, a number, a bare name, DEFAULT).
func setsSQLMode(x *ast.SetStmt) (sets, dynamic bool) {
	for _, v := range x.Variables {
		if !v.IsSystem || !strings.EqualFold(v.Name, "sql_mode") {
			continue
		}
		sets = true
		switch v.Value.(type) {
		case ast.ValueExpr, *ast.DefaultExpr, *ast.ColumnNameExpr:
		default:
			dynamic = true
		}
	}
	return sets, dynamic
}
