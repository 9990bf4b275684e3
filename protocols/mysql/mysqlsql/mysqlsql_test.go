package mysqlsql

import (
	"errors"
	"reflect"
	"testing"

	"github.com/bastionhq/bastion/bastion/policy"
)

func list(s ...string) []string { return s }

const (
	read  = policy.StatementRead
	write = policy.StatementWrite
	ddl   = policy.StatementDDL
	dcl   = policy.StatementDCL
	util  = policy.StatementUtility
	txn   = policy.StatementTransaction
)

func st(kind policy.StatementKind, command string, tables []string, funcs ...string) policy.Statement {
	return policy.Statement{Kind: kind, Command: command, Tables: tables, Functions: sortUnique(funcs)}
}

func prepares(name string, s policy.Statement) policy.Statement { s.Prepares = name; return s }

func executes(name string, s policy.Statement) policy.Statement {
	s.Executes = []string{name}
	return s
}

// TestParseSingle checks the summary (all but Text) of strings holding one
// statement: the MySQL forms, the bypass forms, and false positives.
func TestParseSingle(t *testing.T) {
	unb := func(s policy.Statement) policy.Statement { s.Unbounded = true; return s }
	file := func(s policy.Statement) policy.Statement { s.FileAccess = true; return s }
	role := func(s policy.Statement) policy.Statement { s.RoleChange = true; return s }
	tests := []struct {
		name string
		sql  string
		want policy.Statement
	}{
		{name: "select", sql: "SELECT id FROM orders WHERE id = 1", want: st(read, "SELECT", list("orders"))},
		{name: "qualified and join", sql: "select * from shop.orders o join items i on i.o = o.id", want: st(read, "SELECT", list("items", "shop.orders"))},
		{name: "backticks", sql: "SELECT * FROM `shop`.`secrets`", want: st(read, "SELECT", list("shop.secrets"))},
		{name: "backtick escape", sql: "SELECT * FROM `sec``rets`", want: st(read, "SELECT", list("sec`rets"))},
		{name: "subquery", sql: "SELECT 1 FROM a WHERE x IN (SELECT y FROM secrets)", want: st(read, "SELECT", list("a", "secrets"))},
		{name: "union", sql: "SELECT a FROM t UNION SELECT b FROM secrets", want: st(read, "SELECT", list("secrets", "t"))},
		{name: "table statement", sql: "TABLE secrets", want: st(read, "SELECT", list("secrets"))},
		{name: "cte", sql: "WITH s AS (SELECT * FROM secrets) SELECT * FROM s", want: st(read, "SELECT", list("secrets"))},
		{name: "for update", sql: "SELECT * FROM t FOR UPDATE", want: st(write, "SELECT", list("t"))},

		// False positives: words in strings, comments and identifiers.
		{name: "drop in string", sql: "SELECT 'DROP TABLE x'", want: st(read, "SELECT", nil)},
		{name: "drop in double quotes", sql: `SELECT "; DROP TABLE x"`, want: st(read, "SELECT", nil)},
		{name: "drop in hash comment", sql: "SELECT 1 # ; DROP TABLE x", want: st(read, "SELECT", nil)},
		{name: "drop in dash comment", sql: "SELECT 1 -- ; DROP TABLE x", want: st(read, "SELECT", nil)},
		{name: "drop in block comment", sql: "SELECT /* ; DROP TABLE x; */ 1", want: st(read, "SELECT", nil)},
		{name: "column named delete", sql: "SELECT `delete` FROM t", want: st(read, "SELECT", list("t"))},
		{name: "escaped quote", sql: `SELECT 'it''s; DROP TABLE x'`, want: st(read, "SELECT", nil)},
		{name: "bounded update", sql: "UPDATE orders SET status = 'x' WHERE id = 5", want: st(write, "UPDATE", list("orders"))},
		{name: "where column", sql: "DELETE FROM t WHERE flag", want: st(write, "DELETE", list("t"))},
		{name: "where false", sql: "DELETE FROM t WHERE 1 = 2", want: st(write, "DELETE", list("t"))},
		{name: "load_file in string", sql: "SELECT 'LOAD_FILE(1)'", want: st(read, "SELECT", nil)},

		// Executable comments are code.
		{name: "executable comment", sql: "SELECT 1 /*! , (SELECT x FROM secrets) */", want: st(read, "SELECT", list("secrets"))},
		{name: "versioned comment", sql: "SELECT 1 /*!50001 , (SELECT x FROM secrets) */", want: st(read, "SELECT", list("secrets"))},
		{name: "mariadb comment", sql: "SELECT 1 /*M!100100 , (SELECT x FROM secrets) */", want: st(read, "SELECT", list("secrets"))},
		{name: "mariadb comment no version", sql: "SELECT 1 /*M! , LOAD_FILE('/etc/passwd') */", want: file(st(read, "SELECT", nil, "load_file"))},
		{name: "statement in executable comment", sql: "/*!40101 DROP TABLE secrets */", want: st(ddl, "DROP TABLE", list("secrets"))},

		// Writes and the MySQL forms.
		{name: "insert", sql: "INSERT INTO t (id) VALUES (1)", want: st(write, "INSERT", list("t"))},
		{name: "insert select", sql: "INSERT INTO a SELECT * FROM secrets", want: st(write, "INSERT", list("a", "secrets"))},
		{name: "on duplicate key", sql: "INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE v = (SELECT v FROM secrets)", want: st(write, "INSERT", list("secrets", "t"))},
		{name: "replace", sql: "REPLACE INTO t VALUES (1)", want: st(write, "REPLACE", list("t"))},
		{name: "multi-table delete", sql: "DELETE t1, t2 FROM t1 JOIN secrets t2 ON t1.a = t2.a WHERE t1.id = 3", want: st(write, "DELETE", list("secrets", "t1", "t2"))},
		{name: "update join", sql: "UPDATE t JOIN secrets s ON s.id = t.id SET t.v = s.v WHERE t.id = 1", want: st(write, "UPDATE", list("secrets", "t"))},
		{name: "rename table", sql: "RENAME TABLE secrets TO public_data", want: st(ddl, "RENAME TABLE", list("public_data", "secrets"))},
		{name: "create table select", sql: "CREATE TABLE copy SELECT * FROM secrets", want: st(ddl, "CREATE TABLE", list("copy", "secrets"))},
		{name: "create index", sql: "CREATE INDEX k ON t (k)", want: st(ddl, "CREATE INDEX", list("t"))},
		{name: "drop view", sql: "DROP VIEW v", want: st(ddl, "DROP VIEW", list("v"))},
		{name: "truncate", sql: "TRUNCATE secrets", want: st(ddl, "TRUNCATE", list("secrets"))},
		{name: "handler", sql: "HANDLER secrets OPEN", want: st(read, "HANDLER", list("secrets"))},
		{name: "handler backticks", sql: "handler `shop`.`secrets` open as h", want: st(read, "HANDLER", list("shop.secrets"))},
		{name: "handler read", sql: "HANDLER h READ FIRST", want: st(read, "HANDLER", list("h"))},

		// Unbounded.
		{name: "update no where", sql: "UPDATE t SET a = 1", want: unb(st(write, "UPDATE", list("t")))},
		{name: "update limit no where", sql: "UPDATE t SET a = 1 LIMIT 5", want: unb(st(write, "UPDATE", list("t")))},
		{name: "delete where 1", sql: "DELETE FROM t WHERE 1", want: unb(st(write, "DELETE", list("t")))},
		{name: "delete where true", sql: "DELETE FROM t WHERE TRUE", want: unb(st(write, "DELETE", list("t")))},
		{name: "delete 1=1", sql: "DELETE FROM t WHERE 1=1", want: unb(st(write, "DELETE", list("t")))},
		{name: "delete string equal", sql: "DELETE FROM t WHERE 'a' = 'A'", want: unb(st(write, "DELETE", list("t")))},
		{name: "delete or true", sql: "DELETE FROM t WHERE id = 3 OR 1", want: unb(st(write, "DELETE", list("t")))},
		{name: "delete not false", sql: "DELETE FROM t WHERE NOT 0", want: unb(st(write, "DELETE", list("t")))},
		{name: "delete null is null", sql: "DELETE FROM t WHERE NULL IS NULL", want: unb(st(write, "DELETE", list("t")))},
		{name: "delete in list", sql: "DELETE FROM t WHERE 2 IN (1, 2)", want: unb(st(write, "DELETE", list("t")))},
		{name: "delete between", sql: "DELETE FROM t WHERE 5 BETWEEN 1 AND 9", want: unb(st(write, "DELETE", list("t")))},
		{name: "delete numeric string", sql: "DELETE FROM t WHERE '1abc'", want: unb(st(write, "DELETE", list("t")))},
		{name: "multi-table delete no where", sql: "DELETE t1 FROM t1 JOIN t2 ON t1.a = t2.a", want: unb(st(write, "DELETE", list("t1", "t2")))},
		{name: "delete in executable comment", sql: "DELETE FROM t /*! WHERE 1 */", want: unb(st(write, "DELETE", list("t")))},

		// Files.
		{name: "into outfile", sql: "SELECT * FROM t INTO OUTFILE '/tmp/x'", want: file(st(read, "SELECT", list("t")))},
		{name: "load_file", sql: "SELECT LOAD_FILE('/etc/passwd')", want: file(st(read, "SELECT", nil, "load_file"))},
		{name: "load_file upper", sql: "SELECT length(Load_File('/etc/passwd'))", want: file(st(read, "SELECT", nil, "length", "load_file"))},
		{name: "load data", sql: "LOAD DATA INFILE '/x' INTO TABLE t", want: file(st(write, "LOAD DATA", list("t")))},
		{name: "load data local", sql: "LOAD DATA LOCAL INFILE '/x' INTO TABLE t", want: file(st(write, "LOAD DATA", list("t")))},

		// Roles, users, transactions, utility.
		{name: "set role", sql: "SET ROLE analyst", want: role(st(util, "SET ROLE", nil))},
		{name: "set default role", sql: "SET DEFAULT ROLE analyst TO u", want: role(st(dcl, "SET DEFAULT ROLE", nil))},
		{name: "grant", sql: "GRANT ALL ON *.* TO u", want: st(dcl, "GRANT", nil)},
		{name: "create user", sql: "CREATE USER u IDENTIFIED BY 'x'", want: st(dcl, "CREATE USER", nil)},
		{name: "begin", sql: "BEGIN", want: st(txn, "BEGIN", nil)},
		{name: "start transaction", sql: "START TRANSACTION", want: st(txn, "BEGIN", nil)},
		{name: "commit", sql: "COMMIT", want: st(txn, "COMMIT", nil)},
		{name: "set names", sql: "SET NAMES utf8mb4", want: st(util, "SET", nil)},
		{name: "show", sql: "SHOW TABLES", want: st(util, "SHOW", nil)},
		{name: "show columns", sql: "SHOW COLUMNS FROM secrets", want: st(util, "SHOW", list("secrets"))},
		{name: "version comment", sql: "select @@version_comment limit 1", want: st(read, "SELECT", nil)},
		{name: "explain", sql: "EXPLAIN SELECT * FROM t", want: st(util, "EXPLAIN", list("t"))},
		{name: "describe", sql: "DESCRIBE secrets", want: st(util, "EXPLAIN", list("secrets"))},
		{name: "call", sql: "CALL shop.do_things(1)", want: st(util, "CALL", nil, "do_things", "shop.do_things")},
		{name: "prepare", sql: "PREPARE p FROM 'DELETE FROM secrets'", want: prepares("p", unb(st(write, "PREPARE", list("secrets"))))},
		{name: "prepare case folded", sql: "PREPARE Refund FROM 'SELECT 1'", want: prepares("refund", st(read, "PREPARE", nil))},
		{name: "execute", sql: "EXECUTE p", want: executes("p", st(util, "EXECUTE", nil))},
		{name: "execute using, case folded", sql: "EXECUTE Refund USING @a, @b", want: executes("refund", st(util, "EXECUTE", nil))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.sql)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.sql, err)
			}
			if len(got) == 0 || (len(got) > 1 && !got[1].Alternate) {
				t.Fatalf("Parse(%q): %d statements, want 1: %+v", tt.sql, len(got), got)
			}
			s := got[0].Statement
			s.Text = ""
			if !reflect.DeepEqual(s, tt.want) {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.sql, s, tt.want)
			}
		})
	}
}

// TestParseMulti checks the split of multi-statement strings, and the
// texts the recording shows.
func TestParseMulti(t *testing.T) {
	tests := []struct {
		name     string
		sql      string
		texts    []string
		commands []string
	}{
		{name: "two", sql: "SELECT 1; SELECT 2", texts: list("SELECT 1", "SELECT 2"), commands: list("SELECT", "SELECT")},
		{name: "semicolon in string", sql: "SELECT ';'; DROP TABLE t", texts: list("SELECT ';'", "DROP TABLE t"), commands: list("SELECT", "DROP TABLE")},
		{name: "hidden in executable comment", sql: "SELECT 1 /*! ; DROP TABLE secrets */", commands: list("SELECT", "DROP TABLE")},
		// The server unknown, a MariaDB comment is read both run (first)
		// and skipped.
		{name: "hidden in mariadb comment", sql: "SELECT 1 /*M!100000 ; DROP TABLE secrets */", commands: list("SELECT", "DROP TABLE", "SELECT")},
		{name: "original text kept", sql: "SELECT 1 /*M! , 2 */; SELECT 3", texts: list("SELECT 1 /*M! , 2 */", "SELECT 3"), commands: list("SELECT", "SELECT")},
		{name: "empty", sql: "  ;; ", texts: nil, commands: nil},
		{name: "comments only", sql: "-- x\n# y\n/* z */", texts: nil, commands: nil},
		// With NO_BACKSLASH_ESCAPES, the string ends at the backslash and a
		// DROP follows: both readings are decided.
		{name: "backslash both readings", sql: `SELECT 'a\'; DROP TABLE secrets; -- '`, commands: list("SELECT", "SELECT", "DROP TABLE")},
		// What PREPARE prepares is decided as itself.
		{name: "prepare", sql: "PREPARE p FROM 'DROP TABLE secrets'; EXECUTE p", texts: list("PREPARE p FROM 'DROP TABLE secrets'", "EXECUTE p"),
			commands: list("PREPARE", "EXECUTE", "DROP TABLE")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.sql)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.sql, err)
			}
			var texts, commands []string
			for _, s := range got {
				if !s.Alternate {
					texts = append(texts, s.Text)
				}
				commands = append(commands, s.Command)
			}
			if tt.texts != nil && !reflect.DeepEqual(texts, tt.texts) {
				t.Errorf("texts %q, want %q", texts, tt.texts)
			}
			if !reflect.DeepEqual(commands, tt.commands) {
				t.Errorf("commands %q, want %q", commands, tt.commands)
			}
		})
	}
}

func TestParseDynamicAndErrors(t *testing.T) {
	got, err := Parse("PREPARE p FROM @s")
	if err != nil || len(got) != 1 || !got[0].Dynamic {
		t.Errorf("PREPARE FROM @s: %+v, %v; want one Dynamic statement", got, err)
	}
	got, err = Parse("LOAD DATA LOCAL INFILE '/x' INTO TABLE t; LOAD DATA INFILE '/x' INTO TABLE t")
	if err != nil || len(got) != 2 || !got[0].LocalInfile || got[1].LocalInfile {
		t.Errorf("LOAD DATA LOCAL: %+v, %v", got, err)
	}
	got, err = Parse("USE `other db`")
	if err != nil || len(got) != 1 || got[0].Database != "other db" {
		t.Errorf("USE: %+v, %v", got, err)
	}
	// TiDB's grammar lacks INTO DUMPFILE: it is refused where rules apply.
	for _, sql := range []string{"SELECT x FROM t LIMIT 1 INTO DUMPFILE '/tmp/x'", "SELEC 1", "SELECT 1; DROP", "HANDLER t OPEN; DROP TABLE x", "SELECT 'unterminated"} {
		got, err := Parse(sql)
		var se *SyntaxError
		if !errors.As(err, &se) || got != nil {
			t.Errorf("Parse(%q) = %+v, %v; want a *SyntaxError", sql, got, err)
		}
	}
}

// TestClientCharset: SET statements that change the client's character
// set say which one, so that those hiding backslashes in multibyte
// characters can be refused.
func TestClientCharset(t *testing.T) {
	for sql, want := range map[string]string{
		"SET NAMES gbk": "gbk",
		"SET NAMES 'utf8mb4' COLLATE 'utf8mb4_bin'":      "utf8mb4",
		"SET NAMES DEFAULT":                              "default",
		"SET CHARACTER SET gb18030":                      "gb18030",
		"SET character_set_client = 'big5'":              "big5",
		"SET @@session.character_set_client = sjis":      "sjis",
		"SET SESSION CHARACTER_SET_CLIENT = cp932":       "cp932",
		"SET character_set_client = @cs":                 "?",
		"SET character_set_client = CONCAT('gb', 'k')":   "?",
		"/*!40101 SET NAMES gbk */":                      "gbk",
		"SET @cs = 'gbk'":                                "",
		"SET character_set_results = gbk, sql_mode = ''": "",
		"SET autocommit = 0":                             "",
	} {
		got, err := Parse(sql)
		if err != nil || len(got) != 1 || got[0].ClientCharset != want {
			t.Errorf("Parse(%q) = %+v, %v; want ClientCharset %q", sql, got, err, want)
		}
	}
	for cs, want := range map[string]bool{"gbk": true, "GB18030": true, "big5": true, "sjis": true, "cp932": true, "?": true,
		"utf8mb4": false, "latin1": false, "default": false, "": false} {
		if BackslashCharset(cs) != want {
			t.Errorf("BackslashCharset(%q) = %v", cs, !want)
		}
	}
}
