package pgsql

import (
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// alterActions names the sub-actions of ALTER TABLE (and ALTER INDEX,
// VIEW, MATERIALIZED VIEW, SEQUENCE, FOREIGN TABLE, which share its
// grammar), as the words that follow "ALTER <object>" in a command name:
// ALTER TABLE t DROP COLUMN c is "ALTER TABLE DROP COLUMN". A rule's
// command pattern "ALTER * DROP *" thus matches DROP COLUMN, DROP
// CONSTRAINT and ALTER COLUMN DROP DEFAULT / NOT NULL / EXPRESSION /
// IDENTITY. Sub-actions not listed here (those PostgreSQL only makes
// internally) are named from their type: AT_ReAddIndex is "RE ADD INDEX".
var alterActions = map[pg_query.AlterTableType]string{
	pg_query.AlterTableType_AT_AddColumn:                 "ADD COLUMN",
	pg_query.AlterTableType_AT_AddColumnToView:           "ADD COLUMN",
	pg_query.AlterTableType_AT_ColumnDefault:             "ALTER COLUMN SET DEFAULT", // DROP DEFAULT: see alterAction
	pg_query.AlterTableType_AT_CookedColumnDefault:       "ALTER COLUMN SET DEFAULT",
	pg_query.AlterTableType_AT_DropNotNull:               "ALTER COLUMN DROP NOT NULL",
	pg_query.AlterTableType_AT_SetNotNull:                "ALTER COLUMN SET NOT NULL",
	pg_query.AlterTableType_AT_SetExpression:             "ALTER COLUMN SET EXPRESSION",
	pg_query.AlterTableType_AT_DropExpression:            "ALTER COLUMN DROP EXPRESSION",
	pg_query.AlterTableType_AT_SetStatistics:             "ALTER COLUMN SET STATISTICS",
	pg_query.AlterTableType_AT_SetOptions:                "ALTER COLUMN SET",
	pg_query.AlterTableType_AT_ResetOptions:              "ALTER COLUMN RESET",
	pg_query.AlterTableType_AT_SetStorage:                "ALTER COLUMN SET STORAGE",
	pg_query.AlterTableType_AT_SetCompression:            "ALTER COLUMN SET COMPRESSION",
	pg_query.AlterTableType_AT_AlterColumnType:           "ALTER COLUMN TYPE",
	pg_query.AlterTableType_AT_AlterColumnGenericOptions: "ALTER COLUMN OPTIONS",
	pg_query.AlterTableType_AT_AddIdentity:               "ALTER COLUMN ADD IDENTITY",
	pg_query.AlterTableType_AT_SetIdentity:               "ALTER COLUMN SET IDENTITY",
	pg_query.AlterTableType_AT_DropIdentity:              "ALTER COLUMN DROP IDENTITY",
	pg_query.AlterTableType_AT_DropColumn:                "DROP COLUMN",
	pg_query.AlterTableType_AT_AddConstraint:             "ADD CONSTRAINT",
	pg_query.AlterTableType_AT_AddIndexConstraint:        "ADD CONSTRAINT",
	pg_query.AlterTableType_AT_AlterConstraint:           "ALTER CONSTRAINT",
	pg_query.AlterTableType_AT_ValidateConstraint:        "VALIDATE CONSTRAINT",
	pg_query.AlterTableType_AT_DropConstraint:            "DROP CONSTRAINT",
	pg_query.AlterTableType_AT_ChangeOwner:               "OWNER TO",
	pg_query.AlterTableType_AT_ClusterOn:                 "CLUSTER ON",
	pg_query.AlterTableType_AT_DropCluster:               "SET WITHOUT CLUSTER",
	pg_query.AlterTableType_AT_SetLogged:                 "SET LOGGED",
	pg_query.AlterTableType_AT_SetUnLogged:               "SET UNLOGGED",
	pg_query.AlterTableType_AT_DropOids:                  "SET WITHOUT OIDS",
	pg_query.AlterTableType_AT_SetAccessMethod:           "SET ACCESS METHOD",
	pg_query.AlterTableType_AT_SetTableSpace:             "SET TABLESPACE",
	pg_query.AlterTableType_AT_SetRelOptions:             "SET",
	pg_query.AlterTableType_AT_ReplaceRelOptions:         "SET",
	pg_query.AlterTableType_AT_ResetRelOptions:           "RESET",
	pg_query.AlterTableType_AT_EnableTrig:                "ENABLE TRIGGER",
	pg_query.AlterTableType_AT_EnableAlwaysTrig:          "ENABLE TRIGGER",
	pg_query.AlterTableType_AT_EnableReplicaTrig:         "ENABLE TRIGGER",
	pg_query.AlterTableType_AT_EnableTrigAll:             "ENABLE TRIGGER",
	pg_query.AlterTableType_AT_EnableTrigUser:            "ENABLE TRIGGER",
	pg_query.AlterTableType_AT_DisableTrig:               "DISABLE TRIGGER",
	pg_query.AlterTableType_AT_DisableTrigAll:            "DISABLE TRIGGER",
	pg_query.AlterTableType_AT_DisableTrigUser:           "DISABLE TRIGGER",
	pg_query.AlterTableType_AT_EnableRule:                "ENABLE RULE",
	pg_query.AlterTableType_AT_EnableAlwaysRule:          "ENABLE RULE",
	pg_query.AlterTableType_AT_EnableReplicaRule:         "ENABLE RULE",
	pg_query.AlterTableType_AT_DisableRule:               "DISABLE RULE",
	pg_query.AlterTableType_AT_AddInherit:                "INHERIT",
	pg_query.AlterTableType_AT_DropInherit:               "NO INHERIT",
	pg_query.AlterTableType_AT_AddOf:                     "OF",
	pg_query.AlterTableType_AT_DropOf:                    "NOT OF",
	pg_query.AlterTableType_AT_ReplicaIdentity:           "REPLICA IDENTITY",
	pg_query.AlterTableType_AT_EnableRowSecurity:         "ENABLE ROW LEVEL SECURITY",
	pg_query.AlterTableType_AT_DisableRowSecurity:        "DISABLE ROW LEVEL SECURITY",
	pg_query.AlterTableType_AT_ForceRowSecurity:          "FORCE ROW LEVEL SECURITY",
	pg_query.AlterTableType_AT_NoForceRowSecurity:        "NO FORCE ROW LEVEL SECURITY",
	pg_query.AlterTableType_AT_GenericOptions:            "OPTIONS",
	pg_query.AlterTableType_AT_AttachPartition:           "ATTACH PARTITION",
	pg_query.AlterTableType_AT_DetachPartition:           "DETACH PARTITION",
	pg_query.AlterTableType_AT_DetachPartitionFinalize:   "DETACH PARTITION",
}

// alterAction names one sub-action of an ALTER TABLE-like statement.
func alterAction(c *pg_query.AlterTableCmd) string {
	t := c.GetSubtype()
	if t == pg_query.AlterTableType_AT_ColumnDefault && c.GetDef() == nil {
		return "ALTER COLUMN DROP DEFAULT"
	}
	if a, ok := alterActions[t]; ok {
		return a
	}
	return strings.ToUpper(strings.Join(splitCamel(strings.TrimPrefix(t.String(), "AT_")), " "))
}

// actions returns the command names of n's sub-actions when n is an
// ALTER that has them (command is n's own command, "ALTER TABLE"): one
// per distinct sub-action, in the order written, so that a rule on
// "ALTER TABLE DROP COLUMN" matches an ALTER that does that among others.
func actions(n *pg_query.Node, command string) []string {
	var out []string
	add := func(a string) {
		if a = command + " " + a; !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	switch x := inner(n).(type) {
	case *pg_query.AlterTableStmt:
		for _, c := range x.GetCmds() {
			if cmd := c.GetAlterTableCmd(); cmd != nil {
				add(alterAction(cmd))
			}
		}
	case *pg_query.RenameStmt:
		switch x.GetRenameType() {
		case pg_query.ObjectType_OBJECT_COLUMN:
			add("RENAME COLUMN")
		case pg_query.ObjectType_OBJECT_TABCONSTRAINT:
			add("RENAME CONSTRAINT")
		default:
			add("RENAME")
		}
	case *pg_query.AlterObjectSchemaStmt:
		add("SET SCHEMA")
	case *pg_query.AlterOwnerStmt:
		add("OWNER TO")
	}
	return out
}
