package pgsql

import (
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// facts is what a walk of a parse tree finds, wherever it is in the tree.
type facts struct {
	tables      map[Table]struct{}
	functions   map[string]struct{}
	modifies    bool // INSERT, UPDATE, DELETE or MERGE somewhere
	locks       bool // SELECT … FOR UPDATE/SHARE somewhere
	selectInto  bool // SELECT … INTO somewhere
	unbounded   bool
	writesInCTE bool
	roles       bool
	executes    map[string]struct{} // prepared statements run (EXECUTE name)
	// sqlArgs is SQL given to functions that run it (query_to_xml('…'),
	// and TABLE name for table_to_xml('name')); unchecked says why some
	// such call cannot be checked.
	sqlArgs   []string
	unchecked string
	// serverFiles: a function that reads or writes the server's files, or
	// a foreign table or server reading a file or running a program;
	// program: a foreign table or server running a program.
	serverFiles bool
	program     bool
	// sideEffects: a function that changes state (see sideEffects).
	sideEffects bool
	// relations are the relation names met, tables or CTEs: which are
	// which is only worked out (cteRefs) when the tree has a WITH.
	relations []*pg_query.RangeVar
	with      bool
	// misreads says why the server may read later text differently from
	// this parser (see settingMisreads).
	misreads string
}

// writes reports whether the walked tree changes data even if its top
// statement is a query.
func (f *facts) writes() bool { return f.modifies || f.locks || f.selectInto }

// walk visits every message under m, depth first.
func walk(m protoreflect.Message, visit func(proto.Message)) {
	visit(m.Interface())
	children(m, func(_ protoreflect.FieldDescriptor, c protoreflect.Message) { walk(c, visit) })
}

// collect walks the tree under n and gathers its facts.
func collect(n *pg_query.Node) *facts {
	f := &facts{tables: map[Table]struct{}{}, functions: map[string]struct{}{}}
	walk(n.ProtoReflect(), f.visit)
	var ctes map[*pg_query.RangeVar]bool
	if f.with {
		ctes = cteRefs(n)
	}
	for _, x := range f.relations {
		if !ctes[x] {
			f.tables[Table{Schema: x.GetSchemaname(), Name: x.GetRelname()}] = struct{}{}
		}
	}
	return f
}

func (f *facts) visit(m proto.Message) {
	switch x := m.(type) {
	case *pg_query.RangeVar:
		if x.GetRelname() != "" {
			f.relations = append(f.relations, x)
		}
	case *pg_query.WithClause:
		f.with = true
	case *pg_query.FuncCall:
		f.funcCall(x)
	case *pg_query.CreateCastStmt, *pg_query.CreateTransformStmt, *pg_query.CreateTrigStmt,
		*pg_query.CreateEventTrigStmt, *pg_query.CreateOpClassItem, *pg_query.DefineStmt,
		*pg_query.AlterOperatorStmt, *pg_query.AlterTypeStmt:
		f.boundFunctions(x)
	case *pg_query.InsertStmt, *pg_query.MergeStmt:
		f.modifies = true
	case *pg_query.UpdateStmt:
		f.modifies = true
		if x.GetWhereClause() == nil || isTautology(x.GetWhereClause()) {
			f.unbounded = true
		}
	case *pg_query.DeleteStmt:
		f.modifies = true
		if x.GetWhereClause() == nil || isTautology(x.GetWhereClause()) {
			f.unbounded = true
		}
	case *pg_query.SelectStmt:
		if len(x.GetLockingClause()) > 0 {
			f.locks = true
		}
		if x.GetIntoClause() != nil {
			f.selectInto = true
		}
	case *pg_query.CommonTableExpr:
		switch x.GetCtequery().GetNode().(type) {
		case *pg_query.Node_InsertStmt, *pg_query.Node_UpdateStmt, *pg_query.Node_DeleteStmt, *pg_query.Node_MergeStmt:
			f.writesInCTE = true
		}
	case *pg_query.DropStmt:
		if namesRelations(x.GetRemoveType()) {
			for _, o := range x.GetObjects() {
				f.addNamed(o)
			}
		}
	case *pg_query.CommentStmt:
		if namesRelations(x.GetObjtype()) {
			f.addNamed(x.GetObject())
		}
	case *pg_query.SecLabelStmt:
		if namesRelations(x.GetObjtype()) {
			f.addNamed(x.GetObject())
		}
	case *pg_query.VariableSetStmt:
		if isRoleSetting(x.GetName()) {
			f.roles = true
		}
		if isFileSetting(x.GetName()) {
			f.serverFiles = true
		}
		// SET (NAMES is client_encoding); DEFAULT and RESET go back to the
		// session's first value, which was checked at login.
		if x.GetKind() == pg_query.VariableSetKind_VAR_SET_VALUE {
			for _, a := range x.GetArgs() {
				f.setting(value{kind: valString, s: x.GetName()}, eval(a))
			}
		}
	case *pg_query.LoadStmt:
		f.serverFiles = true // loads a library from the server's files
	case *pg_query.ExecuteStmt:
		if f.executes == nil {
			f.executes = map[string]struct{}{}
		}
		f.executes[x.GetName()] = struct{}{}
	case *pg_query.CreateForeignTableStmt:
		f.fdwOptions(x.GetOptions())
	case *pg_query.CreateForeignServerStmt:
		f.fdwOptions(x.GetOptions())
	case *pg_query.AlterFdwStmt, *pg_query.AlterForeignServerStmt, *pg_query.AlterTableCmd, *pg_query.CreateUserMappingStmt, *pg_query.AlterUserMappingStmt:
		// ALTER … OPTIONS (SET filename '…'), on a table, column or server.
		f.fdwOptions(optionsOf(x))
	case *pg_query.DiscardStmt:
		if x.GetTarget() == pg_query.DiscardMode_DISCARD_ALL {
			f.roles = true
		}
	}
}

// namesRelations reports whether objects of type t are relations named by
// a plain list of identifiers (DROP TABLE a.b, COMMENT ON VIEW v, …).
func namesRelations(t pg_query.ObjectType) bool {
	switch t {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW,
		pg_query.ObjectType_OBJECT_MATVIEW, pg_query.ObjectType_OBJECT_FOREIGN_TABLE,
		pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_INDEX:
		return true
	}
	return false
}

// addNamed records a relation given as a list of String nodes
// ([name], [schema, name] or [catalog, schema, name]).
func (f *facts) addNamed(n *pg_query.Node) {
	parts := stringList(n.GetList().GetItems())
	switch len(parts) {
	case 0:
	case 1:
		f.tables[Table{Name: parts[0]}] = struct{}{}
	default:
		f.tables[Table{Schema: parts[len(parts)-2], Name: parts[len(parts)-1]}] = struct{}{}
	}
}

// stringList returns the strings of a list of String nodes; nil if any
// item is not a String.
func stringList(items []*pg_query.Node) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.GetNode().(*pg_query.Node_String_)
		if !ok {
			return nil
		}
		out = append(out, s.String_.GetSval())
	}
	return out
}

// addFunction records a function the statement calls or makes something
// call, named by parts (schema-qualified or not), and returns its bare
// name in lower case ("" for none).
func (f *facts) addFunction(parts []string) string {
	if len(parts) == 0 {
		return ""
	}
	for i := range parts {
		parts[i] = strings.ToLower(parts[i])
	}
	bare := parts[len(parts)-1]
	f.functions[bare] = struct{}{}
	if len(parts) > 1 {
		f.functions[strings.Join(parts, ".")] = struct{}{}
	}
	return bare
}

// boundFunctions records the functions a DDL statement binds to be called
// later, implicitly: a cast's, a trigger's, an operator's or an
// aggregate's, … ; otherwise CREATE OPERATOR ===> (FUNCTION = pg_read_file,
// RIGHTARG = text) would call pg_read_file under another name.
func (f *facts) boundFunctions(m proto.Message) {
	switch x := m.(type) {
	case *pg_query.CreateCastStmt:
		f.addFunction(stringList(x.GetFunc().GetObjname()))
	case *pg_query.CreateTransformStmt:
		f.addFunction(stringList(x.GetFromsql().GetObjname()))
		f.addFunction(stringList(x.GetTosql().GetObjname()))
	case *pg_query.CreateTrigStmt:
		f.addFunction(stringList(x.GetFuncname()))
	case *pg_query.CreateEventTrigStmt:
		f.addFunction(stringList(x.GetFuncname()))
	case *pg_query.CreateOpClassItem:
		f.addFunction(stringList(x.GetName().GetObjname()))
	case *pg_query.DefineStmt:
		f.definedFunctions(x.GetDefinition())
	case *pg_query.AlterOperatorStmt:
		f.definedFunctions(x.GetOptions())
	case *pg_query.AlterTypeStmt:
		f.definedFunctions(x.GetOptions())
	}
}

// functionOptions are the options of CREATE OPERATOR, AGGREGATE, TYPE,
// TEXT SEARCH PARSER/TEMPLATE (and their ALTER forms) that name a function.
var functionOptions = map[string]bool{
	"function": true, "procedure": true, "restrict": true, "join": true,
	"sfunc": true, "finalfunc": true, "combinefunc": true, "serialfunc": true, "deserialfunc": true,
	"msfunc": true, "minvfunc": true, "mfinalfunc": true,
	"input": true, "output": true, "receive": true, "send": true, "typmod_in": true, "typmod_out": true,
	"analyze": true, "subscript": true, "canonical": true, "subtype_diff": true,
	"start": true, "gettoken": true, "end": true, "headline": true, "lextypes": true, "init": true, "lexize": true,
}

// definedFunctions records the functions named in such options.
func (f *facts) definedFunctions(opts []*pg_query.Node) {
	for _, o := range opts {
		if !functionOptions[strings.ToLower(o.GetDefElem().GetDefname())] {
			continue
		}
		switch a := o.GetDefElem().GetArg(); {
		case a.GetTypeName() != nil:
			f.addFunction(stringList(a.GetTypeName().GetNames()))
		case a.GetList() != nil:
			f.addFunction(stringList(a.GetList().GetItems()))
		}
	}
}

func (f *facts) funcCall(fc *pg_query.FuncCall) {
	bare := f.addFunction(stringList(fc.GetFuncname()))
	if bare == "" {
		return
	}
	if fileFunctions[bare] {
		f.serverFiles = true
	}
	if _, ok := sideEffects[bare]; ok {
		f.sideEffects = true
	}
	if r, ok := sqlRunners[bare]; ok {
		s, ok := constString(argument(fc, r.pos, r.name))
		switch {
		case !ok:
			f.unchecked = bare + " runs SQL that is not a constant string"
		case r.table:
			f.sqlArgs = append(f.sqlArgs, "TABLE "+s)
		default:
			f.sqlArgs = append(f.sqlArgs, s)
		}
	}
	if pick, ok := dblinkSQL[bare]; ok {
		s, ok := constString(pick(fc.GetArgs()))
		if !ok {
			f.unchecked = bare + " runs SQL that is not a constant string"
		} else {
			f.sqlArgs = append(f.sqlArgs, s)
		}
	}
	if readsAll[bare] {
		f.unchecked = bare + " reads every table of a schema or database"
	}
	if bare == "set_config" {
		args := fc.GetArgs()
		if len(args) == 0 {
			return
		}
		v := eval(args[0])
		if v.kind != valString || isRoleSetting(v.s) {
			f.roles = true
		}
		if v.kind != valString || isFileSetting(v.s) {
			f.serverFiles = true
		}
		to := value{} // unknown
		if len(args) > 1 {
			to = eval(args[1])
		}
		f.setting(v, to)
	}
}

// setting notes in f.misreads when setting name to v would make the server
// read the text that follows differently from this parser: a client
// encoding in which a backslash can be part of a character (PostgreSQL
// converts the client's text before reading it), or
// standard_conforming_strings off (a backslash in '…' escapes). A name or
// value that is not a constant string is taken at its worst.
func (f *facts) setting(name, v value) {
	known := name.kind == valString
	is := func(s string) bool { return !known || strings.EqualFold(strings.TrimSpace(name.s), s) }
	switch {
	case f.misreads != "":
	case is("client_encoding") && (v.kind != valString || HidesBackslash(v.s)):
		f.misreads = "it may set client_encoding to one in which a backslash can be part of a character"
	case is("standard_conforming_strings") && (v.kind != valString || !isOn(v.s)):
		f.misreads = "it may turn standard_conforming_strings off"
	}
}

// isOn reports whether PostgreSQL reads s as a true boolean setting: on,
// 1, or true or yes or a prefix of them, in any case.
func isOn(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	return s == "on" || s == "1" || s != "" && (strings.HasPrefix("true", s) || strings.HasPrefix("yes", s))
}

// fileFunctions are the functions that read or write files on the database
// server or list its directories (core, and adminpack's).
var fileFunctions = map[string]bool{
	"pg_read_file": true, "pg_read_binary_file": true, "pg_stat_file": true, "pg_ls_dir": true,
	"pg_ls_logdir": true, "pg_ls_waldir": true, "pg_ls_tmpdir": true, "pg_ls_archive_statusdir": true,
	"pg_ls_logicalsnapdir": true, "pg_ls_logicalmapdir": true, "pg_ls_replslotdir": true,
	"lo_import": true, "lo_export": true,
	"pg_file_write": true, "pg_file_rename": true, "pg_file_unlink": true, "pg_file_sync": true, "pg_logdir_ls": true,
}

// fdwOptions notes foreign-data options that name a server file or a
// program (file_fdw's filename and program).
func (f *facts) fdwOptions(opts []*pg_query.Node) {
	for _, o := range opts {
		switch strings.ToLower(o.GetDefElem().GetDefname()) {
		case "filename":
			f.serverFiles = true
		case "program":
			f.serverFiles, f.program = true, true
		}
	}
}

// optionsOf returns the foreign-data options an ALTER or a user mapping
// sets.
func optionsOf(m proto.Message) []*pg_query.Node {
	switch x := m.(type) {
	case *pg_query.AlterFdwStmt:
		return x.GetOptions()
	case *pg_query.AlterForeignServerStmt:
		return x.GetOptions()
	case *pg_query.CreateUserMappingStmt:
		return x.GetOptions()
	case *pg_query.AlterUserMappingStmt:
		return x.GetOptions()
	case *pg_query.AlterTableCmd:
		return x.GetDef().GetList().GetItems()
	}
	return nil
}

// sqlRunners are the built-in functions that run SQL given as text, and
// those that read a table given by name (table), with the position and
// name of that argument.
var sqlRunners = map[string]struct {
	pos   int
	name  string
	table bool
}{
	"query_to_xml":               {0, "query", false},
	"query_to_xmlschema":         {0, "query", false},
	"query_to_xml_and_xmlschema": {0, "query", false},
	"ts_stat":                    {0, "query", false},
	"table_to_xml":               {0, "tbl", true},
	"table_to_xmlschema":         {0, "tbl", true},
	"table_to_xml_and_xmlschema": {0, "tbl", true},
}

// readsAll are the built-in functions that read every table of a schema or
// of the database, which no table rule can follow.
var readsAll = map[string]bool{
	"schema_to_xml": true, "schema_to_xmlschema": true, "schema_to_xml_and_xmlschema": true,
	"database_to_xml": true, "database_to_xmlschema": true, "database_to_xml_and_xmlschema": true,
}

// argument returns fc's argument at position pos, or the one passed by
// name (name => …), or nil.
func argument(fc *pg_query.FuncCall, pos int, name string) *pg_query.Node {
	i := 0
	for _, a := range fc.GetArgs() {
		if na := a.GetNamedArgExpr(); na != nil {
			if strings.EqualFold(na.GetName(), name) {
				return na.GetArg()
			}
			continue
		}
		if i == pos {
			return a
		}
		i++
	}
	return nil
}

// constString returns the string constant n is, cast or not.
func constString(n *pg_query.Node) (string, bool) {
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.GetArg()
	}
	if c := n.GetAConst(); c != nil && c.GetSval() != nil {
		return c.GetSval().GetSval(), true
	}
	return "", false
}

// isFileSetting reports whether a setting's name is one that makes the
// server run a program or load a library from its files (set with SET,
// ALTER SYSTEM, ALTER ROLE/DATABASE … SET or set_config).
func isFileSetting(name string) bool {
	name = strings.ToLower(strings.TrimSpace(name))
	switch name {
	case "shared_preload_libraries", "session_preload_libraries", "local_preload_libraries", "dynamic_library_path":
		return true
	}
	// archive_command, restore_command, ssl_passphrase_command, …; not a
	// custom setting (app.last_command), which has a dot.
	return strings.HasSuffix(name, "_command") && !strings.Contains(name, ".")
}

// isRoleSetting reports whether a setting's name is one that changes the
// current role or session authorization.
func isRoleSetting(name string) bool {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "role", "session_authorization":
		return true
	}
	return false
}

func (f *facts) sortedTables() []Table {
	if len(f.tables) == 0 {
		return nil
	}
	out := make([]Table, 0, len(f.tables))
	for t := range f.tables {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Schema != out[j].Schema {
			return out[i].Schema < out[j].Schema
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (f *facts) sortedFunctions() []string { return sortedKeys(f.functions) }

// sortedKeys returns m's keys in order, nil for none.
func sortedKeys(m map[string]struct{}) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
