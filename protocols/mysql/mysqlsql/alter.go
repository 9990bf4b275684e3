package mysqlsql

import (
	"slices"

	"github.com/pingcap/tidb/pkg/parser/ast"
)

// alterActions names the sub-actions of ALTER TABLE as the words that
// follow "ALTER TABLE" in a command name: ALTER TABLE t DROP COLUMN c is
// "ALTER TABLE DROP COLUMN". A rule's command pattern "ALTER * DROP *"
// thus matches DROP COLUMN, DROP INDEX, DROP PRIMARY KEY, DROP FOREIGN
// KEY, DROP CONSTRAINT (and DROP CHECK), DROP PARTITION and ALTER COLUMN
// DROP DEFAULT; "ALTER * TRUNCATE *" matches TRUNCATE PARTITION. A
// sub-action not listed is "ALTER TABLE OTHER".
var alterActions = map[ast.AlterTableType]string{
	ast.AlterTableOption:                     "OPTION",
	ast.AlterTableAddColumns:                 "ADD COLUMN",
	ast.AlterTableDropColumn:                 "DROP COLUMN",
	ast.AlterTableDropPrimaryKey:             "DROP PRIMARY KEY",
	ast.AlterTableDropIndex:                  "DROP INDEX",
	ast.AlterTableDropForeignKey:             "DROP FOREIGN KEY",
	ast.AlterTableModifyColumn:               "MODIFY COLUMN",
	ast.AlterTableChangeColumn:               "CHANGE COLUMN",
	ast.AlterTableRenameColumn:               "RENAME COLUMN",
	ast.AlterTableRenameTable:                "RENAME",
	ast.AlterTableAlterColumn:                "ALTER COLUMN SET DEFAULT", // DROP DEFAULT: see alterAction
	ast.AlterTableLock:                       "LOCK",
	ast.AlterTableAlgorithm:                  "ALGORITHM",
	ast.AlterTableRenameIndex:                "RENAME INDEX",
	ast.AlterTableForce:                      "FORCE",
	ast.AlterTableAddPartitions:              "ADD PARTITION",
	ast.AlterTableCoalescePartitions:         "COALESCE PARTITION",
	ast.AlterTableDropPartition:              "DROP PARTITION",
	ast.AlterTableTruncatePartition:          "TRUNCATE PARTITION",
	ast.AlterTablePartition:                  "PARTITION BY",
	ast.AlterTableEnableKeys:                 "ENABLE KEYS",
	ast.AlterTableDisableKeys:                "DISABLE KEYS",
	ast.AlterTableRemovePartitioning:         "REMOVE PARTITIONING",
	ast.AlterTableWithValidation:             "WITH VALIDATION",
	ast.AlterTableWithoutValidation:          "WITHOUT VALIDATION",
	ast.AlterTableRebuildPartition:           "REBUILD PARTITION",
	ast.AlterTableReorganizePartition:        "REORGANIZE PARTITION",
	ast.AlterTableCheckPartitions:            "CHECK PARTITION",
	ast.AlterTableExchangePartition:          "EXCHANGE PARTITION",
	ast.AlterTableOptimizePartition:          "OPTIMIZE PARTITION",
	ast.AlterTableRepairPartition:            "REPAIR PARTITION",
	ast.AlterTableImportPartitionTablespace:  "IMPORT PARTITION TABLESPACE",
	ast.AlterTableDiscardPartitionTablespace: "DISCARD PARTITION TABLESPACE",
	ast.AlterTableAlterCheck:                 "ALTER CONSTRAINT",
	ast.AlterTableDropCheck:                  "DROP CONSTRAINT",
	ast.AlterTableImportTablespace:           "IMPORT TABLESPACE",
	ast.AlterTableDiscardTablespace:          "DISCARD TABLESPACE",
	ast.AlterTableIndexInvisible:             "ALTER INDEX",
}

// alterAction names one sub-action of ALTER TABLE.
func alterAction(spec *ast.AlterTableSpec) string {
	switch spec.Tp {
	case ast.AlterTableAlterColumn:
		if len(spec.NewColumns) == 1 && len(spec.NewColumns[0].Options) == 0 {
			return "ALTER COLUMN DROP DEFAULT"
		}
	case ast.AlterTableAddConstraint:
		switch c := spec.Constraint; {
		case c == nil:
		case c.Tp == ast.ConstraintPrimaryKey:
			return "ADD PRIMARY KEY"
		case c.Tp == ast.ConstraintForeignKey:
			return "ADD FOREIGN KEY"
		case c.Tp == ast.ConstraintCheck:
			return "ADD CONSTRAINT"
		default:
			return "ADD INDEX"
		}
		return "ADD CONSTRAINT"
	}
	if a, ok := alterActions[spec.Tp]; ok {
		return a
	}
	return "OTHER"
}

// alterTableActions returns the command names of an ALTER TABLE's
// sub-actions, one per distinct sub-action, in the order written.
func alterTableActions(x *ast.AlterTableStmt) []string {
	var out []string
	for _, spec := range x.Specs {
		if a := "ALTER TABLE " + alterAction(spec); !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
