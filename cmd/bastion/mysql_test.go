package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
)

// The MySQL tests share one real MariaDB (started on first use, stopped
// after the package's tests) and, within TestMySQL, one Bastion.

var sharedMariaDB shared[*harness.MariaDB]

// myInitSQL seeds the shop database: the demo's tables, and room for
// messages over 16 MiB.
const myInitSQL = `
SET GLOBAL max_allowed_packet = 64 * 1024 * 1024;
CREATE TABLE orders (id int PRIMARY KEY, customer varchar(100) NOT NULL, total decimal(10,2) NOT NULL, note varchar(100));
INSERT INTO orders (id, customer, total) SELECT seq, concat('customer ', seq), seq * 10 FROM seq_1_to_100;
CREATE TABLE secrets (id int PRIMARY KEY, value text);
INSERT INTO secrets VALUES (1, 'the launch codes');
CREATE TABLE big (n int, pad varchar(100));
INSERT INTO big SELECT seq, repeat('x', 100) FROM seq_1_to_200000;
CREATE TABLE refunds (id int AUTO_INCREMENT PRIMARY KEY, note varchar(100) NOT NULL);
`

func testMariaDB(t *testing.T) *harness.MariaDB {
	t.Helper()
	return sharedMariaDB.get(t, "mariadb", func() (*harness.MariaDB, error) {
		return harness.StartMariaDB(context.Background(), harness.MariaDBConfig{
			Databases: []string{"shop", "plain"}, InitSQL: map[string]string{"shop": myInitSQL},
		})
	})
}

// freshShop recreates the shop database from myInitSQL, and drops the
// user TestMySQL creates, so that each run (go test -count=N) starts from
// the same data instead of from what the run before left.
func freshShop(t *testing.T, m *harness.MariaDB) {
	t.Helper()
	db, err := sql.Open("mysql", m.DSN("")+"?multiStatements=true")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"DROP DATABASE IF EXISTS shop",
		"DROP USER IF EXISTS 'bastion_redacted'@'%'",
		"CREATE DATABASE shop",
		"USE shop;" + myInitSQL,
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
}

// myRoles: alice (developer) may request shop, with the demo's query rules
// (those of orders, in MySQL's terms), and gets the sandbox database
// "plain" (no rules) automatically.
const myRoles = `
roles:
  developer:
    request:
      - targets: [shop]
        approvers: [lead]
        max_duration: 4h
      - labels: {env: sandbox}
        auto_approve:
          networks: [127.0.0.0/8]
    queries:
      - {name: no-drop, action: deny, targets: [shop], commands: ["DROP *", "TRUNCATE"], reason: dropping or truncating tables is not allowed}
      - {name: no-unbounded-writes, action: deny, targets: [shop], unbounded: true, reason: UPDATE and DELETE need a WHERE clause}
      - {name: no-secrets, action: deny, targets: [shop], tables: [shop.secrets], reason: the secrets table is off limits}
      - {name: no-server-files, action: deny, targets: [shop], file_access: true, reason: the database server's files are off limits}
      - {name: no-dangerous-functions, action: deny, targets: [shop], functions: [sys_exec, sys_eval], reason: this function is off limits}
      - {name: no-role-change, action: deny, targets: [shop], role_change: true, reason: the role is fixed}
      - {name: ddl-needs-lead, action: require-approval, targets: [shop], kinds: [ddl], approvers: [lead], reason: schema changes need a lead}
      - {name: refunds-need-lead, action: require-approval, targets: [shop], kinds: [write], tables: [shop.refunds], approvers: [lead], reason: refunds need a lead}
  lead:
    request:
      - targets: [shop]
        approvers: [lead]
  auditor:
    permissions: [audit]
`

// myBastion is a Bastion in front of the shared MariaDB.
type myBastion struct {
	*testBastion
	db     *harness.MariaDB
	caFile string // Bastion's TLS CA
}

func startMyBastion(t *testing.T) *myBastion { t.Helper(); return startMyBastionWith(t, false) }

// startMyBastionWith starts a myBastion whose MySQL listener allows
// clients without TLS if plaintext.
func startMyBastionWith(t *testing.T, plaintext bool) *myBastion {
	t.Helper()
	db := testMariaDB(t)
	b := startBastionWith(t, options{mysql: true, mysqlPlaintext: plaintext, roles: myRoles, targets: func(t *testing.T, _ *ca.Set) string {
		return fmt.Sprintf(`
targets:
  - {name: shop, kind: mysql, address: %q, database: shop, username: %s, password: %q}
  - {name: plain, kind: mysql, address: %q, database: plain, username: %s, password: %q, labels: {env: sandbox}, redact_parameters: true}
`, db.Addr, db.User, db.Password, db.Addr, db.User, db.Password)
	}})
	caFile := filepath.Join(b.dir, "bastion-ca.pem")
	if err := os.WriteFile(caFile, []byte(b.mustRun("alice", "ca", "--tls")), 0o644); err != nil {
		t.Fatal(err)
	}
	return &myBastion{testBastion: b, db: db, caFile: caFile}
}

// grant gets user an approved request for target (bob approves shop) and a
// token for it, a mysql:// URL for this front end.
func (m *myBastion) grant(t *testing.T, user, target string) dbToken {
	t.Helper()
	tok := m.grantDB(t, user, target)
	if !strings.HasPrefix(tok.URL, "mysql://") || !strings.HasSuffix(m.dbAddr("mysql"), ":"+strconv.Itoa(tok.Port)) {
		t.Fatalf("token %+v (front end at %s)", tok, m.dbAddr("mysql"))
	}
	return tok
}

// dsn is a go-sql-driver DSN for tok; params are appended. Bastion's MySQL
// listener requires TLS: without a tls= of params', the DSN asks for TLS
// without checking the certificate (testMariaDBCLI checks it).
func (tok dbToken) dsn(params string) string {
	if !strings.Contains(params, "tls=") {
		params = strings.TrimSuffix("tls=skip-verify&"+params, "&")
	}
	return fmt.Sprintf("%s:%s@tcp(%s:%d)/%s?%s", tok.User, tok.Password, tok.Host, tok.Port, tok.Database, params)
}

// open opens a database handle through Bastion.
func (tok dbToken) open(t *testing.T, params string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", tok.dsn(params))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mariadbCLI runs the mariadb client through Bastion with tok, over TLS
// (which Bastion's MySQL listener requires; --skip-ssl in args turns it off).
func mariadbCLI(t *testing.T, tok dbToken, args ...string) (string, string, int) {
	t.Helper()
	base := []string{"--no-defaults", "--batch", "--skip-column-names", "--connect-timeout=10", "--protocol=TCP", "--ssl",
		"-h", tok.Host, "-P", strconv.Itoa(tok.Port), "-u", tok.User, "-p" + tok.Password}
	return runCmd(t, nil, "mariadb", append(append(base, args...), tok.Database)...)
}

// myError returns err as a MySQL error, or fails.
func myError(t *testing.T, err error) *mysql.MySQLError {
	t.Helper()
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		t.Fatalf("want a MySQL error, got %v", err)
	}
	return me
}

func TestMySQL(t *testing.T) {
	freshShop(t, testMariaDB(t))
	m := startMyBastion(t)
	shop := m.grant(t, "alice", "shop")
	plain := m.grant(t, "alice", "plain")

	t.Run("mariadb cli", func(t *testing.T) { testMariaDBCLI(t, m, shop) })
	t.Run("driver", func(t *testing.T) { testMySQLDriver(t, shop) })
	t.Run("rules", func(t *testing.T) { testMySQLRules(t, shop) })
	t.Run("protocol", func(t *testing.T) { testMySQLProtocol(t, shop) })
	t.Run("approval", func(t *testing.T) {
		db := shop.open(t, "")
		testHeldStatement(t, m.testBastion, func(ctx context.Context, sql string) error {
			_, err := db.ExecContext(ctx, sql)
			return err
		})
	})
	t.Run("approval per EXECUTE", func(t *testing.T) { testMySQLHeldExecutes(t, m, shop) })
	t.Run("sysbench", func(t *testing.T) {
		// sysbench 1.0 takes TLS client files from its working directory
		// only, so it talks in clear, to a Bastion that allows it on
		// loopback (listen.mysql_plaintext).
		testSysbench(t, startMyBastionWith(t, true).grant(t, "alice", "plain"))
	})
	t.Run("recording", func(t *testing.T) { testMySQLRecording(t, m, shop, plain) })
	t.Run("revocation", func(t *testing.T) { testMySQLRevocation(t, m) })
}

func testMariaDBCLI(t *testing.T, m *myBastion, tok dbToken) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "tls", args: nil},
		{name: "tls verified", args: []string{"--ssl", "--ssl-ca=" + m.caFile, "--ssl-verify-server-cert"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := mariadbCLI(t, tok, append(tc.args, "-e", "SELECT count(*) FROM orders; SHOW STATUS LIKE 'Ssl_cipher'")...)
			if code != 0 || !strings.HasPrefix(out, "100\n") {
				t.Fatalf("mariadb: exit %d: %s%s", code, out, errOut)
			}
		})
	}
	t.Run("plaintext refused", func(t *testing.T) {
		_, errOut, code := mariadbCLI(t, tok, "--skip-ssl", "-e", "SELECT 1")
		if code == 0 || !strings.Contains(errOut, "ERROR 1045 (28000)") || !strings.Contains(errOut, "bastion: TLS is required") {
			t.Fatalf("mariadb --skip-ssl: exit %d: %s", code, errOut)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		bad := tok
		bad.Password = "not-the-secret"
		_, errOut, code := mariadbCLI(t, bad, "-e", "SELECT 1")
		if code == 0 || !strings.Contains(errOut, "Access denied for user 'alice'") {
			t.Fatalf("wrong password: exit %d: %s", code, errOut)
		}
	})
	t.Run("denied statement", func(t *testing.T) {
		_, errOut, code := mariadbCLI(t, tok, "-e", "DROP TABLE orders")
		if code == 0 || !strings.Contains(errOut, "ERROR 1142 (42000)") || !strings.Contains(errOut, "rule no-drop") {
			t.Fatalf("DROP TABLE: exit %d: %s", code, errOut)
		}
	})
	t.Run("load data local", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "rows.csv")
		if err := os.WriteFile(f, []byte("101,x,1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, errOut, code := mariadbCLI(t, tok, "--local-infile=1", "-e",
			fmt.Sprintf("LOAD DATA LOCAL INFILE '%s' INTO TABLE orders FIELDS TERMINATED BY ','", f))
		if code == 0 || !strings.Contains(errOut, "ERROR 1148") || !strings.Contains(errOut, "LOAD DATA LOCAL INFILE is not allowed through Bastion") {
			t.Fatalf("LOAD DATA LOCAL: exit %d: %s", code, errOut)
		}
	})
	// Character sets whose multibyte characters can end in a backslash
	// byte would make MariaDB read strings differently from the parser.
	t.Run("gbk connection refused", func(t *testing.T) {
		_, errOut, code := mariadbCLI(t, tok, "--default-character-set=gbk", "-e", "SELECT 1")
		if code == 0 || !strings.Contains(errOut, "ERROR 1115 (42000)") || !strings.Contains(errOut, "backslash") {
			t.Fatalf("--default-character-set=gbk: exit %d: %s", code, errOut)
		}
	})
	t.Run("SET NAMES gbk refused", func(t *testing.T) {
		out, errOut, code := mariadbCLI(t, tok, "-e", "SET NAMES gbk; SELECT 'ran'")
		if code == 0 || strings.Contains(out, "ran") || !strings.Contains(errOut, "ERROR 1142 (42000)") || !strings.Contains(errOut, "character set gbk") {
			t.Fatalf("SET NAMES gbk: exit %d: %s%s", code, out, errOut)
		}
		out, errOut, code = mariadbCLI(t, tok, "-e", "SET NAMES utf8mb4; SELECT 'ran'")
		if code != 0 || strings.TrimSpace(out) != "ran" {
			t.Fatalf("SET NAMES utf8mb4: exit %d: %s%s", code, out, errOut)
		}
	})
}

func testMySQLDriver(t *testing.T, tok dbToken) {
	ctx := t.Context()
	for _, mode := range []struct{ name, params string }{
		{"binary protocol", ""},
		{"text protocol", "interpolateParams=true"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			db := tok.open(t, mode.params)
			var customer string
			var total float64
			if err := db.QueryRowContext(ctx, "SELECT customer, total FROM orders WHERE id = ?", 7).Scan(&customer, &total); err != nil {
				t.Fatal(err)
			}
			if customer != "customer 7" || total != 70 {
				t.Fatalf("order 7: %q %v", customer, total)
			}
			rows, err := db.QueryContext(ctx, "SELECT n, pad FROM big WHERE n > ?", 0)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for rows.Next() {
				n++
			}
			if err := rows.Err(); err != nil || n != 200000 {
				t.Fatalf("big: %d rows, %v", n, err)
			}
			rows.Close()
			// Transactions: a rolled back write is gone.
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO orders (id, customer, total) VALUES (?, ?, ?)", 1000, "rollback", 1); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			var count int
			if err := db.QueryRowContext(ctx, "SELECT count(*) FROM orders WHERE id = ?", 1000).Scan(&count); err != nil || count != 0 {
				t.Fatalf("after rollback: %d, %v", count, err)
			}
		})
	}
	t.Run("multi statements", func(t *testing.T) {
		db := tok.open(t, "multiStatements=true")
		rows, err := db.QueryContext(ctx, "SELECT 1; SELECT id FROM orders WHERE id <= 3; UPDATE orders SET note = 'x' WHERE id = 1")
		if err != nil {
			t.Fatal(err)
		}
		var sets []int
		for {
			n := 0
			for rows.Next() {
				n++
			}
			sets = append(sets, n)
			if !rows.NextResultSet() {
				break
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if fmt.Sprint(sets) != "[1 3]" {
			t.Fatalf("result sets %v, want [1 3]", sets)
		}
	})
	t.Run("over 16 MiB", func(t *testing.T) {
		db := tok.open(t, "")
		big := strings.Repeat("b", 17<<20)
		var n int
		if err := db.QueryRowContext(ctx, "SELECT LENGTH(?)", big).Scan(&n); err != nil || n != len(big) {
			t.Fatalf("17 MiB parameter: %d, %v", n, err)
		}
		var s string
		if err := db.QueryRowContext(ctx, "SELECT REPEAT('r', 20000000)").Scan(&s); err != nil || len(s) != 20000000 {
			t.Fatalf("20 MB value: %d bytes, %v", len(s), err)
		}
	})
}

// testMySQLRules: the rule matrix, with the MySQL bypass forms and false
// positives; a denied statement leaves the connection usable.
func testMySQLRules(t *testing.T, tok dbToken) {
	ctx := t.Context()
	db := tok.open(t, "multiStatements=true&interpolateParams=true")
	db.SetMaxOpenConns(1)
	tests := []struct {
		name string
		sql  string
		rule string // "" when allowed
	}{
		{"select", "SELECT id FROM orders WHERE id = 1", ""},
		{"drop", "DROP TABLE orders", "no-drop"},
		{"drop in executable comment", "SELECT 1 /*! ; DROP TABLE orders */", "no-drop"},
		{"drop in versioned comment", "/*!40101 DROP TABLE orders */", "no-drop"},
		{"drop in mariadb comment", "SELECT 1 /*M!100100 ; DROP TABLE orders */", "no-drop"},
		{"truncate", "TRUNCATE orders", "no-drop"},
		{"unbounded delete", "DELETE FROM orders", "no-unbounded-writes"},
		{"tautology", "UPDATE orders SET note = 'x' WHERE 1 = 1", "no-unbounded-writes"},
		{"where in executable comment", "DELETE FROM orders /*! WHERE 1 */", "no-unbounded-writes"},
		{"multi-table delete", "DELETE o FROM orders o JOIN secrets s ON s.id = o.id", "no-unbounded-writes"},
		{"secrets", "SELECT * FROM secrets", "no-secrets"},
		{"secrets backticks", "SELECT * FROM `shop`.`secrets`", "no-secrets"},
		// SHOP.SECRETS is another table than shop.secrets here
		// (lower_case_table_names = 0): see TestSQLPolicy.
		{"secrets subquery", "SELECT (SELECT value FROM secrets LIMIT 1)", "no-secrets"},
		{"secrets in union", "SELECT customer FROM orders UNION SELECT value FROM secrets", "no-secrets"},
		{"secrets rename", "RENAME TABLE secrets TO open_data", "no-secrets"},
		{"secrets create select", "CREATE TABLE copy SELECT * FROM secrets", "no-secrets"},
		{"secrets replace", "REPLACE INTO secrets VALUES (2, 'x')", "no-secrets"},
		{"secrets on duplicate key", "INSERT INTO orders (id, customer, total) VALUES (1, 'x', 1) ON DUPLICATE KEY UPDATE note = (SELECT value FROM secrets)", "no-secrets"},
		{"secrets handler", "HANDLER secrets OPEN", "no-secrets"},
		{"outfile", "SELECT * FROM orders INTO OUTFILE '/tmp/orders.txt'", "no-server-files"},
		{"load_file", "SELECT LOAD_FILE('/etc/passwd')", "no-server-files"},
		{"load data", "LOAD DATA INFILE '/etc/passwd' INTO TABLE orders", "no-server-files"},
		{"set role", "SET ROLE analyst", "no-role-change"},
		{"function", "SELECT sys_exec('id')", "no-dangerous-functions"},
		{"prepare denied statement", "PREPARE p FROM 'SELECT * FROM secrets'", "no-secrets"},
		{"prepare drop", "PREPARE p FROM 'DROP TABLE orders'", "no-drop"},
		{"prepare from variable", "PREPARE p FROM @s", "cannot be checked"},
		{"unparseable", "SELEKT 1", "cannot be checked"},
		// TiDB's parser panicked on an 82-digit number, which ended the
		// connection; it is a statement Bastion cannot read.
		{"parser panic", "SELECT 0000000000000000000000000000000000000000000000000000000000000020000000000000000000", "cannot be checked"},
		{"use another database", "USE mysql", "switching to another database"}, // 1044
		{"one denied runs none", "UPDATE orders SET note = 'multi' WHERE id = 2; DROP TABLE orders", "no-drop"},
		// False positives.
		{"drop in string", "SELECT 'DROP TABLE orders'", ""},
		{"secrets in string", "SELECT id FROM orders WHERE note = 'secrets'", ""},
		{"drop in comment", "SELECT 1 # ; DROP TABLE orders", ""},
		{"drop in block comment", "SELECT /* DROP TABLE orders; */ 1", ""},
		{"bounded update", "UPDATE orders SET note = 'ok' WHERE id = 3", ""},
		{"column named like a table", "SELECT customer AS secrets FROM orders WHERE id = 1", ""},
		{"use own database", "USE shop", ""},
		// SELECT … INTO @var, which TiDB's grammar lacks: read as its query.
		{"select into variable", "SELECT total INTO @t FROM orders WHERE id = 1", ""},
		{"select into variable at the end", "SELECT total FROM orders WHERE id = 1 INTO @t", ""},
		{"secrets into variable", "SELECT value INTO @v FROM secrets LIMIT 1", "no-secrets"},
		{"into variable among statements", "SELECT 1 INTO @x; DELETE FROM orders WHERE id = 9", "cannot be checked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.ExecContext(ctx, tt.sql)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("%s: %v", tt.sql, err)
				}
				return
			}
			me := myError(t, err)
			want := uint16(1142)
			if strings.HasPrefix(tt.sql, "USE") {
				want = 1044
			}
			if me.Number != want || string(me.SQLState[:]) != "42000" || !strings.Contains(me.Message, tt.rule) {
				t.Fatalf("%s: %d %s %q, want %d 42000 naming %s", tt.sql, me.Number, me.SQLState, me.Message, want, tt.rule)
			}
		})
	}
	var note sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT note FROM orders WHERE id = 2").Scan(&note); err != nil || note.String == "multi" {
		t.Fatalf("the allowed half of a denied multi-statement ran: %v %v", note, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 100 {
		t.Fatalf("orders after the matrix: %d, %v", n, err)
	}
}

// testMySQLProtocol: commands a client uses besides queries.
func testMySQLProtocol(t *testing.T, tok dbToken) {
	ctx := t.Context()
	db := tok.open(t, "")
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.PingContext(ctx); err != nil {
		t.Fatal(err)
	}
	// Prepared statements: prepare once, run many times, close.
	stmt, err := conn.PrepareContext(ctx, "SELECT total FROM orders WHERE id = ?")
	if err != nil {
		t.Fatal(err)
	}
	for id := 1; id <= 5; id++ {
		var total float64
		if err := stmt.QueryRowContext(ctx, id).Scan(&total); err != nil || total != float64(id*10) {
			t.Fatalf("order %d: %v, %v", id, total, err)
		}
	}
	if err := stmt.Close(); err != nil {
		t.Fatal(err)
	}
	// A prepared statement the rules deny is refused at prepare.
	if _, err := conn.PrepareContext(ctx, "SELECT value FROM secrets WHERE id = ?"); err == nil || myError(t, err).Number != 1142 {
		t.Fatalf("prepare on secrets: %v", err)
	}
	// The connection is still usable after all of it.
	var one int
	if err := conn.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1: %v %v", one, err)
	}
	// COM_INIT_DB: the mariadb client's "use" (its -D and \u).
	out, errOut, code := mariadbCLI(t, tok, "-e", "use shop; SELECT DATABASE(); use mysql")
	if code == 0 || !strings.HasPrefix(out, "shop\n") || !strings.Contains(errOut, "ERROR 1044") {
		t.Fatalf("use: exit %d: %s%s", code, out, errOut)
	}
}

// testSysbench: sysbench oltp_read_write prepares its tables and runs a
// fixed number of transactions through Bastion.
func testSysbench(t *testing.T, tok dbToken) {
	args := []string{"oltp_read_write", "--db-driver=mysql", "--mysql-host=" + tok.Host, "--mysql-port=" + strconv.Itoa(tok.Port),
		"--mysql-user=" + tok.User, "--mysql-password=" + tok.Password, "--mysql-db=" + tok.Database,
		"--tables=2", "--table-size=1000", "--threads=2"}
	for _, step := range [][]string{{"prepare"}, {"--events=200", "--time=0", "run"}, {"cleanup"}} {
		out, errOut, code := runCmd(t, nil, "sysbench", append(append([]string{}, args...), step...)...)
		if code != 0 {
			t.Fatalf("sysbench %v: exit %d: %s%s", step, code, out, errOut)
		}
		if step[len(step)-1] == "run" && !strings.Contains(out, "transactions:                        200") {
			t.Fatalf("sysbench run:\n%s", out)
		}
	}
}

// testMySQLRecording: the sessions are listed, and their recordings hold
// the statements with decisions, parameters (redacted where the target
// says so), rows and errors.
func testMySQLRecording(t *testing.T, m *myBastion, shop, plain dbToken) {
	ctx := t.Context()
	db := shop.open(t, "")
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "SELECT id FROM orders WHERE id = ?", 7); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM orders"); err == nil {
		t.Fatal("DELETE ran")
	}
	if _, err := db.ExecContext(ctx, "SELECT * FROM no_such_table"); err == nil {
		t.Fatal("no_such_table")
	}
	// A password in a statement is hidden in the recording.
	if _, err := db.ExecContext(ctx, "CREATE USER 'bastion_redacted'@'%' IDENTIFIED BY 'hunter2-mysql'"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	pdb := plain.open(t, "")
	if _, err := pdb.ExecContext(ctx, "SELECT ? + 1", 41); err != nil {
		t.Fatal(err)
	}
	pdb.Close()
	var sessions []struct {
		ID       string `json:"id"`
		Protocol string `json:"protocol"`
		Target   string `json:"target"`
		State    string `json:"state"`
	}
	var shopLog, plainLog, shopID string
	waitFor(t, 10*time.Second, func() bool {
		out := m.mustRun("carol", "sessions", "--json")
		if err := json.Unmarshal([]byte(out), &sessions); err != nil {
			t.Fatalf("sessions --json: %v\n%s", err, out)
		}
		for _, s := range sessions {
			if s.Protocol != "mysql" || s.State != "ended" {
				continue
			}
			export := m.mustRun("carol", "export", s.ID)
			switch {
			case strings.Contains(export, `no_such_table`):
				shopLog, shopID = export, s.ID
			case strings.Contains(export, `"statement":"SELECT ? + 1"`):
				plainLog = export
			}
		}
		return shopLog != "" && plainLog != ""
	})
	for _, want := range []string{
		`"type":"start"`, `"user":"alice"`, `"target":"shop"`, `"protocol":"mysql"`,
		`"statement":"SELECT id FROM orders WHERE id = ?","params":["7"],"decision":"allow"`, `"rows":1`,
		`"statement":"DELETE FROM orders","decision":"deny","rule":"no-unbounded-writes"`,
		`"error":"Table 'shop.no_such_table' doesn't exist"`, `"type":"end","reason":"client closed the connection"`,
	} {
		if !strings.Contains(shopLog, want) {
			t.Errorf("shop recording lacks %s:\n%s", want, shopLog)
		}
	}
	if strings.Contains(shopLog, "hunter2") || !strings.Contains(shopLog, `"statement":"create user {bastion_redacted@% password = ***}","decision":"allow"`) {
		t.Errorf("shop recording does not hide the password of CREATE USER:\n%s", shopLog)
	}
	if out := m.mustRun("carol", "replay", shopID, "--idle-limit", "10ms"); !strings.Contains(out, "DELETE FROM orders") {
		t.Errorf("replay of %s lacks the denied DELETE:\n%s", shopID, out)
	}
	if !strings.Contains(plainLog, `"params":["<redacted>"]`) || strings.Contains(plainLog, `"41"`) {
		t.Errorf("plain recording does not redact parameters:\n%s", plainLog)
	}
}

// testMySQLRevocation: revoking the request ends a live connection, in the
// middle of a query, with an error saying why.
func testMySQLRevocation(t *testing.T, m *myBastion) {
	tok := m.grant(t, "alice", "shop")
	db := tok.open(t, "")
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	done := make(chan error, 1)
	go func() {
		_, err := conn.ExecContext(context.Background(), "SELECT SLEEP(60)")
		done <- err
	}()
	m.mustRun("bob", "revoke", fmt.Sprint(tok.Request), "--reason", "incident over")
	err = <-done
	me := myError(t, err)
	if me.Number != 1927 || !strings.Contains(me.Message, "revoked") {
		t.Fatalf("after revocation: %v", err)
	}
	if _, errOut, code := mariadbCLI(t, tok, "-e", "SELECT 1"); code == 0 || !strings.Contains(errOut, "revoked") {
		t.Fatalf("a revoked token still logs in: exit %d: %s", code, errOut)
	}
}

// testMySQLHeldExecutes: SQL's PREPARE of a statement that needs approval
// runs nothing and is not held; each EXECUTE of it is, and its approver
// sees what it runs.
func testMySQLHeldExecutes(t *testing.T, m *myBastion, tok dbToken) {
	ctx := t.Context()
	conn, err := tok.open(t, "").Conn(ctx) // prepared statements live in one session
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	run := func(sql string) chan error {
		done := make(chan error, 1)
		go func() { _, err := conn.ExecContext(ctx, sql); done <- err }()
		return done
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	const prepare = "PREPARE mk FROM 'CREATE TABLE IF NOT EXISTS held_sql (id int)'"
	if _, err := conn.ExecContext(pctx, prepare); err != nil {
		t.Fatalf("PREPARE of a held statement: %v", err)
	}
	done := run("EXECUTE mk")
	id, command := pendingCommand(t, m.testBastion, "alice")
	if want := "EXECUTE mk\n-- mk was prepared as: " + prepare; command != want {
		t.Fatalf("the approver of an EXECUTE sees %q, want %q", command, want)
	}
	m.mustRun("bob", "approve", fmt.Sprint(id))
	if err := <-done; err != nil {
		t.Fatalf("approved EXECUTE: %v", err)
	}
	done = run("EXECUTE MK") // names are case-insensitive
	id2, _ := pendingCommand(t, m.testBastion, "alice")
	if id2 == id {
		t.Fatalf("the second EXECUTE reused request %d", id)
	}
	m.mustRun("bob", "deny", fmt.Sprint(id2), "--reason", "once is enough")
	if me := myError(t, <-done); me.Number != 1142 || !strings.Contains(me.Message, "once is enough") {
		t.Fatalf("denied EXECUTE: %d %s", me.Number, me.Message)
	}
	_, err = conn.ExecContext(ctx, "PREPARE mk FROM 'SELECT 1'")
	if me := myError(t, err); me.Number != 1142 || !strings.Contains(me.Message, "another name") {
		t.Fatalf("PREPARE under a held name: %d %s", me.Number, me.Message)
	}
	if _, err := conn.ExecContext(ctx, "DEALLOCATE PREPARE mk"); err != nil {
		t.Fatalf("the connection after the refusals: %v", err)
	}

	// The binary protocol (COM_STMT_EXECUTE, which go-sql-driver uses for
	// arguments): the approver sees the parameters as SQL literals.
	done = make(chan error, 1)
	go func() {
		_, err := conn.ExecContext(ctx, "INSERT INTO refunds (note) VALUES (?)", `it's \ one`)
		done <- err
	}()
	id3, command := pendingCommand(t, m.testBastion, "alice")
	if want := `INSERT INTO refunds (note) VALUES (?)` + "\n-- parameters: 1 = 'it''s \\\\ one'"; command != want {
		t.Fatalf("the approver of an execution sees %q, want %q", command, want)
	}
	m.mustRun("bob", "approve", fmt.Sprint(id3))
	if err := <-done; err != nil {
		t.Fatalf("approved execution: %v", err)
	}
}
