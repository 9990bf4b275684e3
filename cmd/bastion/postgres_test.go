package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
)

// The PostgreSQL tests share one real PostgreSQL (started on first use,
// stopped after the package's tests) and, within TestPostgres, one Bastion.

var sharedPG shared[*harness.Postgres]

// pgInitSQL seeds the orders database: the demo's tables.
const pgInitSQL = `
CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, total numeric NOT NULL);
INSERT INTO orders SELECT g, 'customer ' || g, g * 10 FROM generate_series(1, 100) g;
CREATE TABLE secrets (id int PRIMARY KEY, value text);
INSERT INTO secrets VALUES (1, 'the launch codes');
CREATE TABLE "Mixed" (id int);
CREATE SCHEMA audit;
CREATE TABLE audit.log (id serial PRIMARY KEY, line text);
CREATE TABLE refunds (id serial PRIMARY KEY, note text NOT NULL);
CREATE TABLE big (n int, pad text);
INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 200000) g;
`

func testPostgres(t *testing.T) *harness.Postgres {
	t.Helper()
	return sharedPG.get(t, "postgres", func() (*harness.Postgres, error) {
		return harness.StartPostgres(context.Background(), harness.PostgresConfig{
			TLS: true, Databases: []string{"orders", "plain"}, InitSQL: map[string]string{"orders": pgInitSQL},
		})
	})
}

// freshOrders recreates the orders database from pgInitSQL, and drops the
// role TestPostgres creates, so that each run (go test -count=N) starts
// from the same data instead of from what the run before left: its
// tables, its role, its rows.
func freshOrders(t *testing.T, pg *harness.Postgres) {
	t.Helper()
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	for _, sql := range []string{
		"DROP DATABASE IF EXISTS orders WITH (FORCE)",
		"DROP ROLE IF EXISTS bastion_redacted",
		"CREATE DATABASE orders",
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	orders, err := pgx.Connect(ctx, pg.DSN("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer orders.Close(context.Background())
	if _, err := orders.Exec(ctx, pgInitSQL); err != nil {
		t.Fatalf("seed orders: %v", err)
	}
}

// pgRoles are the roles of the PostgreSQL tests: alice (developer) may
// request orders, with the demo's query rules, and gets the sandbox
// database "plain" (no rules) automatically.
const pgRoles = `
roles:
  developer:
    request:
      - targets: [orders]
        approvers: [lead]
        max_duration: 4h
      - labels: {env: sandbox}
        auto_approve:
          networks: [127.0.0.0/8]
    queries:
      - {name: no-drop, action: deny, targets: [orders], commands: ["DROP *", "TRUNCATE"], reason: dropping or truncating tables is not allowed}
      - {name: no-unbounded-writes, action: deny, targets: [orders], unbounded: true, reason: UPDATE and DELETE need a WHERE clause}
      - {name: no-secrets, action: deny, targets: [orders], tables: [public.secrets], reason: the secrets table is off limits}
      - {name: no-server-files, action: deny, targets: [orders], file_access: true, reason: the database server's files and programs are off limits}
      - {name: no-dangerous-functions, action: deny, targets: [orders], functions: [pg_read_file, pg_read_binary_file, pg_ls_dir, "lo_*", pg_terminate_backend, dblink*], reason: this function is off limits}
      - {name: no-role-change, action: deny, targets: [orders], role_change: true, reason: the role is fixed}
      - {name: no-audit-writes, action: deny, targets: [orders], kinds: [write], tables: ["audit.*"], reason: the audit schema is append-only for the application}
      - {name: ddl-needs-lead, action: require-approval, targets: [orders], kinds: [ddl], approvers: [lead], reason: schema changes need a lead}
      - {name: refunds-need-lead, action: require-approval, targets: [orders], kinds: [write], tables: [public.refunds], approvers: [lead], reason: refunds need a lead}
  lead:
    request:
      - targets: [orders]
        approvers: [lead]
  auditor:
    permissions: [audit]
`

// pgBastion is a Bastion in front of the shared PostgreSQL.
type pgBastion struct {
	*testBastion
	pg     *harness.Postgres
	caFile string // Bastion's TLS CA, for sslmode=verify-full
}

func startPGBastion(t *testing.T) *pgBastion {
	t.Helper()
	pg := testPostgres(t)
	b := startBastionWith(t, options{postgres: true, roles: pgRoles, targets: func(t *testing.T, _ *ca.Set) string {
		return fmt.Sprintf(`
targets:
  - {name: orders, kind: postgres, address: %q, database: orders, username: postgres, password: %q, tls: require}
  - {name: plain, kind: postgres, address: %q, database: plain, username: postgres, password: %q, labels: {env: sandbox}}
`, pg.Addr, pg.Password, pg.Addr, pg.Password)
	}})
	caFile := filepath.Join(b.dir, "bastion-ca.pem")
	if err := os.WriteFile(caFile, []byte(b.mustRun("alice", "ca", "--tls")), 0o644); err != nil {
		t.Fatal(err)
	}
	return &pgBastion{testBastion: b, pg: pg, caFile: caFile}
}

// connect opens a pgx connection with tok; extra is appended to the URL's
// query.
func (p *pgBastion) connect(t *testing.T, tok dbToken, extra string) *pgx.Conn {
	t.Helper()
	url := tok.URL
	if extra != "" {
		url += "&" + extra
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("connect %s: %v", tok.Database, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// pgError returns err as a PostgreSQL error, or fails.
func pgError(t *testing.T, err error) *pgconn.PgError {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("want a PostgreSQL error, got %v", err)
	}
	return pe
}

// psql runs psql with a connection string and returns its output.
func psql(t *testing.T, conninfo string, args ...string) (string, string, int) {
	t.Helper()
	return runCmd(t, nil, "psql", append([]string{"-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", conninfo}, args...)...)
}

func TestPostgres(t *testing.T) {
	freshOrders(t, testPostgres(t))
	p := startPGBastion(t)
	orders := p.grantDB(t, "alice", "orders")
	plain := p.grantDB(t, "alice", "plain")

	t.Run("psql", func(t *testing.T) { testPsql(t, p, orders) })
	t.Run("direct TLS", func(t *testing.T) { testDirectTLS(t, p, orders) })
	t.Run("rules", func(t *testing.T) { testRules(t, p, orders) })
	t.Run("encodings and string syntax", func(t *testing.T) { testEncodings(t, p, orders, plain) })
	t.Run("statements too deep or large to parse", func(t *testing.T) { testTooDeep(t, orders, plain) })
	t.Run("protocol", func(t *testing.T) { testProtocol(t, p, orders) })
	t.Run("approval", func(t *testing.T) {
		cfg, err := pgx.ParseConfig(orders.URL)
		if err != nil {
			t.Fatal(err)
		}
		notices := make(chan string, 10)
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices <- n.Severity + ": " + n.Message }
		conn, err := pgx.ConnectConfig(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		testHeldStatement(t, p.testBastion, func(ctx context.Context, sql string) error {
			_, err := conn.Exec(ctx, sql)
			return err
		})
		// The client was told, while it waited, why and for which request.
		select {
		case n := <-notices:
			if !strings.HasPrefix(n, "NOTICE: bastion: statement held for approval by rule ddl-needs-lead") || !strings.Contains(n, "request #") {
				t.Fatalf("notice while held: %q", n)
			}
		default:
			t.Fatal("no notice while the statement was held for approval")
		}
	})
	t.Run("approval per execution", func(t *testing.T) { testHeldExecutions(t, p, orders) })
	t.Run("pgbench", func(t *testing.T) { testPgbench(t, plain) })
	t.Run("target connections are reused", func(t *testing.T) { testReuse(t, p, plain) })
	t.Run("recording", func(t *testing.T) { testRecording(t, p, orders) })
	t.Run("revocation", func(t *testing.T) { testRevocation(t, p) })
}

// verifyFull is tok's URL with Bastion's certificate checked.
func (p *pgBastion) verifyFull(tok dbToken) string {
	return strings.Replace(tok.URL, "sslmode=require", "sslmode=verify-full&sslrootcert="+p.caFile, 1)
}

// testDirectTLS: PostgreSQL 17's sslnegotiation=direct (TLS first, no
// SSLRequest) works with the ALPN name "postgresql", and without it the
// client is refused over TLS, naming what is missing.
func testDirectTLS(t *testing.T, p *pgBastion, tok dbToken) {
	t.Run("pgx", func(t *testing.T) {
		conn := p.connect(t, tok, "sslnegotiation=direct")
		var n int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM orders").Scan(&n); err != nil || n != 100 {
			t.Fatalf("count over direct TLS = %d, %v", n, err)
		}
	})
	t.Run("without ALPN", func(t *testing.T) {
		nc, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tok.Port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the test checks the refusal, not the certificate
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(nc)
		if len(b) == 0 || b[0] != 'E' || !bytes.Contains(b, []byte("ALPN")) {
			t.Fatalf("direct TLS without ALPN: got %q, want a FATAL naming ALPN", b)
		}
	})
}

func testPsql(t *testing.T, p *pgBastion, tok dbToken) {
	t.Run("verify-full", func(t *testing.T) {
		out, errOut, code := psql(t, p.verifyFull(tok), "-c", "SELECT count(*) FROM orders", "-c", `\dt`)
		if code != 0 || !strings.HasPrefix(out, "100\n") || !strings.Contains(out, "public|orders|table|") {
			t.Fatalf("psql: exit %d: %s%s", code, out, errOut)
		}
	})
	t.Run("require", func(t *testing.T) {
		out, errOut, code := psql(t, tok.URL, "-c", "SELECT current_database(), current_setting('application_name')")
		if code != 0 || out != "orders|psql\n" {
			t.Fatalf("psql: exit %d: %q %s", code, out, errOut)
		}
	})
	t.Run("denied statement keeps the session", func(t *testing.T) {
		_, errOut, code := psql(t, tok.URL, "-v", "ON_ERROR_STOP=0", "-c", "SELECT * FROM secrets", "-c", "SELECT 'still here'")
		if code != 0 || !strings.Contains(errOut, "permission denied by rule no-secrets") {
			t.Fatalf("psql: exit %d: %s", code, errOut)
		}
	})
	refusals := []struct {
		name, conninfo, want string
	}{
		{"wrong password", strings.Replace(tok.URL, tok.Password, "wrong", 1), `password authentication failed for user "alice"`},
		{"no token", strings.Replace(tok.URL, "alice:", "mallory:", 1), `password authentication failed for user "mallory"`},
		{"no TLS", strings.Replace(tok.URL, "sslmode=require", "sslmode=disable", 1), "Bastion requires TLS"},
		{"options", tok.URL + "&options=-c%20role%3Dpg_read_server_files", `"options" is not allowed`},
		{"wrong host name", strings.Replace(p.verifyFull(tok), "127.0.0.1", "wrong.example", 1) + "&hostaddr=127.0.0.1", "does not match host name"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := psql(t, tt.conninfo, "-c", "SELECT 1")
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("psql: exit %d, want a refusal with %q: %s%s", code, tt.want, out, errOut)
			}
		})
	}
}

// ruleCases are statements on orders and the rule that must deny them
// ("" for allowed).
var ruleCases = []struct {
	sql, rule string
}{
	{"SELECT count(*) FROM orders", ""},
	{"SELECT 'DROP TABLE orders'", ""},
	{"SELECT 'secrets' AS s, $$DELETE FROM orders$$", ""},
	{"-- DROP TABLE orders\nSELECT 1", ""},
	{"UPDATE orders SET total = total WHERE id = 1", ""},
	{"DELETE FROM orders WHERE id = -1", ""},
	{"INSERT INTO audit.log (line) SELECT 'x' WHERE false", "no-audit-writes"},
	{"SELECT * FROM audit.log", ""},
	{"DROP TABLE orders", "no-drop"},
	{"drop   table\n/* hidden */ ORDERS", "no-drop"},
	{"TRUNCATE orders", "no-drop"},
	{"SELECT 1; DROP TABLE orders", "no-drop"},
	{"DELETE FROM orders", "no-unbounded-writes"},
	{"UPDATE orders SET total = 0 WHERE 1 = 1", "no-unbounded-writes"},
	{"UPDATE orders SET total = 0 WHERE true OR id = 1", "no-unbounded-writes"},
	{"WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d", "no-unbounded-writes"},
	{"SELECT * FROM secrets", "no-secrets"},
	{`SELECT * FROM "public"."secrets"`, "no-secrets"},
	{`SELECT * FROM PUBLIC.SECRETS`, "no-secrets"},
	{`SELECT * FROM U&"\0073ecrets"`, "no-secrets"},
	{"SELECT * FROM orders WHERE id IN (SELECT id FROM secrets)", "no-secrets"},
	{"SELECT (SELECT value FROM public.secrets LIMIT 1)", "no-secrets"},
	{"PREPARE p1 AS SELECT * FROM secrets", "no-secrets"},
	{"COPY secrets TO STDOUT", "no-secrets"},
	{"COPY orders TO '/tmp/orders.csv'", "no-server-files"},
	{"COPY orders FROM PROGRAM 'id'", "no-server-files"},
	// Functions that reach the server's files are file access, whatever
	// the function rules name (no-server-files comes first).
	{"SELECT pg_read_file('/etc/passwd')", "no-server-files"},
	{"SELECT pg_catalog.pg_read_file('/etc/passwd')", "no-server-files"},
	{"SELECT lo_import('/etc/passwd')", "no-server-files"},
	{"SELECT lo_export(1, '/tmp/out')", "no-server-files"},
	{"SELECT count(*) FROM orders WHERE customer = (SELECT pg_read_file('/etc/hostname'))", "no-server-files"},
	{"CREATE FOREIGN TABLE passwd (line text) SERVER files OPTIONS (filename '/etc/passwd')", "no-server-files"},
	{"SELECT pg_terminate_backend(pg_backend_pid() + 100000)", "no-dangerous-functions"},
	{"SELECT lo_get(1)", "no-dangerous-functions"},
	{"LOAD 'auto_explain'", "no-server-files"},
	{"ALTER SYSTEM SET archive_command = 'id'", "no-server-files"},
	{"SELECT set_config('ssl_passphrase_command', 'id', false)", "no-server-files"},
	{"SET ROLE pg_read_server_files", "no-role-change"},
	{"SET SESSION AUTHORIZATION postgres", "no-role-change"},
	{"SELECT set_config('role', 'pg_read_server_files', false)", "no-role-change"},
	{"SELEC 1", "(cannot be parsed)"},
	// The code of DO blocks and of functions being created is checked
	// statement by statement; code that cannot be is denied.
	{"DO $$ BEGIN RAISE NOTICE 'fine'; END $$", ""},
	{"DO $$ BEGIN DELETE FROM public.secrets WHERE id = 1; END $$", "no-secrets"},
	{"DO $$ DECLARE x text; BEGIN x := pg_read_file('/etc/hostname'); END $$", "no-server-files"},
	{"DO $$ DECLARE x text; BEGIN x := lo_get(1); END $$", "no-dangerous-functions"},
	{"DO $$ BEGIN UPDATE orders SET total = 0; END $$", "no-unbounded-writes"},
	{"DO $x$ BEGIN DO $y$ BEGIN DROP TABLE orders; END $y$; END $x$", "no-drop"},
	{"CREATE FUNCTION rf(text) RETURNS text LANGUAGE sql AS $$ SELECT pg_read_file($1) $$", "no-server-files"},
	{"CREATE FUNCTION rt(int) RETURNS bool LANGUAGE sql AS $$ SELECT pg_terminate_backend($1) $$", "no-dangerous-functions"},
	{"DO $$ BEGIN EXECUTE 'DROP ' || 'TABLE orders'; END $$", "(cannot be checked)"},
	{"DO $$ BEGIN EXECUTE 'TRUNCATE orders'; END $$", "no-drop"},
	{"DO $$ DECLARE n int; BEGIN EXECUTE $q$SELECT count(*) FROM public.secrets$q$ INTO n; END $$", "no-secrets"},
	{"DO $$ DECLARE n int; BEGIN EXECUTE 'SELECT count(*) FROM orders WHERE id > $1' INTO n USING 0; END $$", ""},
	{"DO LANGUAGE plperlu $$ system('id') $$", "(cannot be checked)"},
	{"SELECT query_to_xml('SELECT * FROM secrets', true, false, '')", "no-secrets"},
	{"SELECT table_to_xml('secrets', true, false, '')", "no-secrets"},
	{"SELECT query_to_xml('SELECT count(*) FROM orders', true, false, '')", ""},
	{"SELECT database_to_xml(true, false, '')", "(reads every table)"},
	{"CREATE OPERATOR ===> (FUNCTION = pg_terminate_backend, RIGHTARG = int)", "no-dangerous-functions"},
}

func testRules(t *testing.T, p *pgBastion, tok dbToken) {
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		t.Run(mode.String(), func(t *testing.T) {
			conn := p.connect(t, tok, "")
			for _, tt := range ruleCases {
				if strings.Contains(tt.sql, ";") && mode != pgx.QueryExecModeSimpleProtocol {
					continue // the extended protocol takes one statement
				}
				tx, err := conn.Begin(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				_, err = tx.Exec(t.Context(), tt.sql, mode)
				switch {
				case tt.rule == "" && err != nil:
					t.Errorf("%q: %v, want it allowed", tt.sql, err)
				case tt.rule != "" && err == nil:
					t.Errorf("%q ran, want it denied by %s", tt.sql, tt.rule)
				case strings.HasPrefix(tt.rule, "("):
					why := strings.Trim(tt.rule, "()")
					if pe := pgError(t, err); pe.Code != "42501" || !strings.Contains(pe.Message, why) {
						t.Errorf("%q: %v, want 42501 for a statement that %s", tt.sql, err, why)
					}
				case tt.rule != "":
					if pe := pgError(t, err); pe.Code != "42501" || !strings.Contains(pe.Message, "rule "+tt.rule+":") {
						t.Errorf("%q: %v, want 42501 from rule %s", tt.sql, err, tt.rule)
					}
				}
				// A denied statement fails the transaction, as any error does.
				if tt.rule != "" && conn.PgConn().TxStatus() != 'E' {
					t.Errorf("%q: transaction status %q after the denial, want E", tt.sql, conn.PgConn().TxStatus())
				}
				if err := tx.Rollback(t.Context()); err != nil {
					t.Fatalf("rollback after %q: %v", tt.sql, err)
				}
			}
			var n int
			if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM orders", mode).Scan(&n); err != nil || n != 100 {
				t.Fatalf("after the matrix: %d rows, %v", n, err)
			}
		})
	}
	t.Run("execute of a denied prepare", func(t *testing.T) {
		conn := p.connect(t, tok, "")
		_, err := conn.Exec(t.Context(), "PREPARE s AS SELECT * FROM secrets", pgx.QueryExecModeSimpleProtocol)
		pgError(t, err)
		_, err = conn.Exec(t.Context(), "EXECUTE s", pgx.QueryExecModeSimpleProtocol)
		if pe := pgError(t, err); pe.Code != "26000" {
			t.Fatalf("EXECUTE of the denied statement: %v, want 26000 (it does not exist)", err)
		}
	})
	t.Run("function call", func(t *testing.T) {
		conn := p.connect(t, tok, "")
		// The fast-path protocol names a function by OID, which no rule can
		// match: when rules apply it is refused. 2925 is pg_read_file(text).
		conn.PgConn().Frontend().Send(&pgproto3.FunctionCall{Function: 2925, ArgFormatCodes: []uint16{0},
			Arguments: [][]byte{[]byte("/etc/passwd")}})
		if err := conn.PgConn().Frontend().Flush(); err != nil {
			t.Fatal(err)
		}
		sawDenial := false
		for {
			msg, err := conn.PgConn().Frontend().Receive()
			if err != nil {
				t.Fatal(err)
			}
			if e, ok := msg.(*pgproto3.ErrorResponse); ok {
				sawDenial = e.Code == "42501" && strings.Contains(e.Message, "function calls")
			}
			if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
				break
			}
		}
		if !sawDenial {
			t.Fatal("FunctionCall not denied")
		}
	})
}

func testProtocol(t *testing.T, p *pgBastion, tok dbToken) {
	t.Run("prepared statements and pipelines", func(t *testing.T) {
		conn := p.connect(t, tok, "")
		ctx := t.Context()
		for i := range 3 { // the statement cache: Parse once, then Bind/Execute
			var c string
			if err := conn.QueryRow(ctx, "SELECT customer FROM orders WHERE id = $1", i+1).Scan(&c); err != nil || c != fmt.Sprintf("customer %d", i+1) {
				t.Fatalf("prepared query %d: %q, %v", i, c, err)
			}
		}
		// A batch: several statements, one of them denied, in one pipeline.
		pipe := conn.PgConn().StartPipeline(ctx)
		pipe.SendQueryParams("SELECT 1", nil, nil, nil, nil)
		if err := pipe.Sync(); err != nil {
			t.Fatal(err)
		}
		pipe.SendQueryParams("SELECT value FROM secrets", nil, nil, nil, nil)
		pipe.SendQueryParams("SELECT 2", nil, nil, nil, nil)
		if err := pipe.Sync(); err != nil {
			t.Fatal(err)
		}
		pipe.SendPrepare("named", "SELECT $1::int + 1", nil)
		pipe.SendQueryPrepared("named", [][]byte{[]byte("41")}, nil, nil)
		if err := pipe.Sync(); err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			res, err := pipe.GetResults()
			if err != nil {
				got = append(got, "error:"+pgError(t, err).Code)
				continue
			}
			switch r := res.(type) {
			case *pgconn.ResultReader:
				rr := r.Read()
				if rr.Err != nil {
					got = append(got, "error:"+pgError(t, rr.Err).Code)
				} else {
					got = append(got, string(rr.Rows[0][0]))
				}
			case *pgconn.StatementDescription:
				got = append(got, "described")
			case *pgconn.PipelineSync:
				got = append(got, "sync")
			case nil:
			}
			if res == nil {
				break
			}
		}
		if err := pipe.Close(); err != nil {
			t.Fatal(err)
		}
		want := "1 sync error:42501 sync described 42 sync"
		if strings.Join(got, " ") != want {
			t.Fatalf("pipeline results %v, want %s", got, want)
		}
	})
	t.Run("transactions and savepoints", func(t *testing.T) {
		conn := p.connect(t, tok, "")
		ctx := t.Context()
		script := []struct {
			sql    string
			denied bool
			status byte
		}{
			{"BEGIN", false, 'T'},
			{"UPDATE orders SET total = 1 WHERE id = 1", false, 'T'},
			{"SAVEPOINT a", false, 'T'},
			{"DELETE FROM orders", true, 'E'},
			{"ROLLBACK TO SAVEPOINT a", false, 'T'},
			{"SELECT total FROM orders WHERE id = 1", false, 'T'},
			{"ROLLBACK", false, 'I'},
		}
		for _, s := range script {
			_, err := conn.Exec(ctx, s.sql, pgx.QueryExecModeSimpleProtocol)
			if (err != nil) != s.denied {
				t.Fatalf("%s: %v", s.sql, err)
			}
			if st := conn.PgConn().TxStatus(); st != s.status {
				t.Fatalf("after %s: status %q, want %q", s.sql, st, s.status)
			}
		}
	})
	t.Run("copy both ways", func(t *testing.T) {
		conn := p.connect(t, tok, "")
		ctx := t.Context()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rows := make([][]any, 5000)
		for i := range rows {
			rows[i] = []any{1000 + i, fmt.Sprint("row ", i), i}
		}
		n, err := tx.CopyFrom(ctx, pgx.Identifier{"orders"}, []string{"id", "customer", "total"}, pgx.CopyFromRows(rows))
		if err != nil || n != 5000 {
			t.Fatalf("copy from: %d, %v", n, err)
		}
		var out strings.Builder
		tag, err := conn.PgConn().CopyTo(ctx, &out, "COPY (SELECT * FROM orders WHERE id >= 1000 ORDER BY id) TO STDOUT")
		if err != nil || tag.RowsAffected() != 5000 || !strings.HasPrefix(out.String(), "1000\trow 0\t0\n") {
			t.Fatalf("copy to: %v, %v, %.40q", tag, err, out.String())
		}
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.PgConn().CopyFrom(ctx, strings.NewReader("1\tx\n"), "COPY secrets FROM STDIN"); err == nil {
			t.Fatal("COPY into secrets ran")
		}
	})
	t.Run("large results are streamed", func(t *testing.T) {
		conn := p.connect(t, tok, "")
		rows, err := conn.Query(t.Context(), "SELECT n, pad FROM big")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if rows.Err() != nil || n != 200000 {
			t.Fatalf("%d rows, %v", n, rows.Err())
		}
	})
	t.Run("listen notify and notices", func(t *testing.T) {
		listener := p.connect(t, tok, "")
		ctx := t.Context()
		if _, err := listener.Exec(ctx, "LISTEN jobs"); err != nil {
			t.Fatal(err)
		}
		sender := p.connect(t, tok, "")
		if _, err := sender.Exec(ctx, "SELECT pg_notify('jobs', 'hello')"); err != nil {
			t.Fatal(err)
		}
		n, err := listener.WaitForNotification(ctx)
		if err != nil || n.Channel != "jobs" || n.Payload != "hello" {
			t.Fatalf("notification %+v, %v", n, err)
		}
		var notices []string
		cfg, err := pgconn.ParseConfig(tok.URL)
		if err != nil {
			t.Fatal(err)
		}
		cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Message) }
		pc, err := pgconn.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close(context.Background())
		if _, err := pc.Exec(ctx, "DO $$ BEGIN RAISE NOTICE 'careful'; END $$").ReadAll(); err != nil {
			t.Fatal(err)
		}
		if len(notices) != 1 || notices[0] != "careful" {
			t.Fatalf("notices %q", notices)
		}
	})
	for _, proto := range []string{"3.0", "3.2"} {
		t.Run("cancel protocol "+proto, func(t *testing.T) { testCancel(t, p, tok, proto) })
	}
}

// cancelWait bounds each wait of the cancel test: for the target to run a
// statement, for Bastion to log, for a statement to end. Generous for a
// loaded machine, and below the minute of the statement it cancels.
const cancelWait = 30 * time.Second

// refusedCancel is what Bastion logs when a cancel request names no live
// connection or carries the wrong key.
const refusedCancel = `"msg":"cancel request for no live connection"`

// testCancel: a cancel request with the key Bastion made up for a
// connection is forwarded to the target and cancels the statement running
// there; one with a wrong key (the right process ID with another secret,
// or another process ID) cancels nothing. Both are checked on the target
// itself, not by how a client reacts to a cancelled context.
//
// Nothing runs on the connection after the cancelled statement: one cancel
// request may also cancel the statement that follows the one it was meant
// for (the postmaster signals the backend twice, its process and its
// process group; pgx's CancelRequestContextWatcherHandler sleeps after a
// cancel for this reason). A second statement run at once after a cancel
// was cancelled too, in 1 of 4 runs of go test -count=2.
func testCancel(t *testing.T, p *pgBastion, tok dbToken, proto string) {
	ctx := t.Context()
	app := "cancel-" + proto
	conn := p.connect(t, tok, "max_protocol_version="+proto+"&application_name="+app)
	pid, key := conn.PgConn().PID(), conn.PgConn().SecretKey()
	if wantLen := map[string]int{"3.0": 4, "3.2": 32}[proto]; len(key) != wantLen {
		t.Fatalf("cancel key of %d bytes, want %d", len(key), wantLen)
	}
	// admin is a connection straight to the target: it holds the lock the
	// first statement waits for and watches what the target runs.
	admin, err := pgx.Connect(ctx, p.pg.DSN("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	// running waits until the target runs sql for this connection, and
	// waits for a lock in it if locked.
	running := func(sql string, locked bool) {
		t.Helper()
		q := "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query = $2"
		if locked {
			q += " AND wait_event_type = 'Lock'"
		}
		waitFor(t, cancelWait, func() bool {
			var n int
			if err := admin.QueryRow(ctx, q, app, sql).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		})
	}
	run := func(sql string) chan error {
		done := make(chan error, 1)
		go func() { _, err := conn.Exec(context.Background(), sql); done <- err }()
		return done
	}
	// result is how the statement of done ended, within a bound below
	// the minute pg_sleep(60) would take.
	result := func(done chan error) error {
		t.Helper()
		select {
		case err := <-done:
			return err
		case <-time.After(cancelWait):
			t.Fatalf("the statement did not end within %s", cancelWait)
			return nil
		}
	}

	// Wrong keys: the statement waits for a lock the admin holds, Bastion
	// refuses both requests, then the lock is released and the statement
	// must end normally (a forwarded cancel would have ended it with
	// 57014 while it waited).
	lock := int64(len(key)) // one per protocol
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock($1)", lock); err != nil {
		t.Fatal(err)
	}
	waiting := fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", lock)
	done := run(waiting)
	running(waiting, true)
	refused := strings.Count(p.logs.String(), refusedCancel)
	otherSecret := bytes.Clone(key)
	otherSecret[len(otherSecret)-1] ^= 1
	sendCancel(t, tok.Port, pid, otherSecret)
	sendCancel(t, tok.Port, pid^1, key)
	// Bastion answers a cancel request with nothing, as PostgreSQL does:
	// its log says when it has refused both.
	waitFor(t, cancelWait, func() bool { return strings.Count(p.logs.String(), refusedCancel) == refused+2 })
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_unlock($1)", lock); err != nil {
		t.Fatal(err)
	}
	if err := result(done); err != nil {
		t.Fatalf("a statement that cancel requests with wrong keys were sent for: %v, want it to run to its end", err)
	}

	// The right key, from pgx on a TLS connection of its own: the target
	// cancels the running statement.
	sleep := "SELECT pg_sleep(60)"
	done = run(sleep)
	running(sleep, false)
	if err := conn.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	if pe := pgError(t, result(done)); pe.Code != "57014" {
		t.Fatalf("cancelled statement: %v, want 57014 (query_canceled)", pe)
	}
}

// sendCancel sends a CancelRequest for pid and key to Bastion on a plain
// connection of its own (as libpq before PostgreSQL 17 does) and waits
// until Bastion closes it, answering nothing.
func sendCancel(t *testing.T, port int, pid uint32, key []byte) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), cancelWait)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(cancelWait))
	msg, err := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: key}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(msg); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(nc); err != nil || len(b) != 0 {
		t.Fatalf("Bastion answered a cancel request with %q, %v; want nothing", b, err)
	}
}

// testPgbench: pgbench initialises and runs through Bastion, both
// protocols.
func testPgbench(t *testing.T, tok dbToken) {
	env := []string{"PGSSLMODE=require", "PGPASSWORD=" + tok.Password}
	url := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s", tok.User, tok.Port, tok.Database)
	for _, args := range [][]string{
		{"-i", "-s", "1", "-q", url},
		{"-c", "2", "-t", "50", "-S", url},
		{"-c", "2", "-t", "50", "-M", "prepared", url},
		{"-C", "-c", "2", "-t", "10", "-S", url},
	} {
		// Bounded: a run that stops making progress fails instead of
		// holding the package's tests until their timeout.
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "pgbench", args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pgbench %v: %v\n%s", args, err, out)
		}
		if args[0] != "-i" && !strings.Contains(string(out), "number of failed transactions: 0") {
			t.Fatalf("pgbench %v:\n%s", args, out)
		}
	}
}

// testRecording: the sessions so far are listed, and their recordings
// hold the statements with decisions.
func testRecording(t *testing.T, p *pgBastion, tok dbToken) {
	conn := p.connect(t, tok, "")
	ctx := t.Context()
	if _, err := conn.Exec(ctx, "SELECT id FROM orders WHERE customer = $1", "customer 7"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "DELETE FROM orders"); err == nil {
		t.Fatal("DELETE ran")
	}
	if _, err := conn.Exec(ctx, "SELECT 1/0"); err == nil {
		t.Fatal("division by zero")
	}
	// Passwords in statements are redacted in the recording and the audit
	// log, allowed or denied.
	if _, err := conn.Exec(ctx, "CREATE ROLE bastion_redacted LOGIN PASSWORD 'hunter2-allowed'"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "ALTER ROLE bastion_redacted PASSWORD 'hunter2-denied'; DROP TABLE orders", pgx.QueryExecModeSimpleProtocol); err == nil {
		t.Fatal("DROP TABLE ran")
	}
	conn.Close(ctx)
	var sessions []struct {
		ID        string `json:"id"`
		Protocol  string `json:"protocol"`
		User      string `json:"user"`
		State     string `json:"state"`
		Recording string `json:"recording"`
	}
	var last string
	waitFor(t, 10*time.Second, func() bool {
		out := p.mustRun("carol", "sessions", "--json")
		if err := json.Unmarshal([]byte(out), &sessions); err != nil {
			t.Fatalf("sessions --json: %v\n%s", err, out)
		}
		for _, s := range sessions {
			if s.Protocol == "postgres" && s.State == "ended" {
				export := p.mustRun("carol", "export", s.ID)
				if strings.Contains(export, `"statement":"DELETE FROM orders"`) {
					last = export
					return true
				}
			}
		}
		return false
	})
	last = strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(last) // however the JSON escapes them
	for _, want := range []string{
		`"type":"start"`, `"user":"alice"`, `"target":"orders"`, `"protocol":"postgres"`,
		`"statement":"SELECT id FROM orders WHERE customer = $1","params":["customer 7"],"decision":"allow"`, `"tag":"SELECT 1","rows":1`,
		`"statement":"DELETE FROM orders","decision":"deny","rule":"no-unbounded-writes"`,
		`"error":"ERROR: division by zero (SQLSTATE 22012)"`, `"type":"end","reason":"client closed the connection"`,
		`"statement":"CREATE ROLE bastion_redacted LOGIN PASSWORD '<redacted>'","decision":"allow"`,
		`"statement":"ALTER ROLE bastion_redacted PASSWORD '<redacted>'; DROP TABLE orders","decision":"deny","rule":"no-drop"`,
	} {
		if !strings.Contains(last, want) {
			t.Errorf("recording lacks %s:\n%s", want, last)
		}
	}
	if audit := p.mustRun("carol", "audit", "--json"); strings.Contains(last+audit, "hunter2") || !strings.Contains(audit, "redacted") {
		t.Errorf("a password reached the recording or the audit log:\n%s\n%s", last, audit)
	}
}

// testRevocation: revoking the request ends a live connection, with a
// FATAL message saying why.
func testRevocation(t *testing.T, p *pgBastion) {
	tok := p.grantDB(t, "alice", "orders")
	conn := p.connect(t, tok, "")
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(context.Background(), "SELECT pg_sleep(60)")
		done <- err
	}()
	p.mustRun("bob", "revoke", fmt.Sprint(tok.Request), "--reason", "incident over")
	err := <-done
	pe := pgError(t, err)
	if pe.Severity != "FATAL" || !strings.Contains(pe.Message, "your access to orders ended") || !strings.Contains(pe.Message, "revoked") {
		t.Fatalf("after revocation: %v", err)
	}
	if _, _, code := psql(t, tok.URL, "-c", "SELECT 1"); code == 0 {
		t.Fatal("a revoked token still logs in")
	}
}

// testHeldExecutions: a prepared statement that needs approval is held at
// each execution, with the parameters bound to it, not once at its Parse
// (which would let one approval run it any number of times).
func testHeldExecutions(t *testing.T, p *pgBastion, tok dbToken) {
	conn := p.connect(t, tok, "")
	ctx := t.Context()
	// Preparing runs nothing, so it is not held.
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := conn.Prepare(pctx, "refund", "INSERT INTO refunds (note) VALUES ($1)"); err != nil {
		t.Fatalf("prepare a held statement: %v", err)
	}
	// run execs sql with args in the background.
	run := func(sql string, args ...any) chan error {
		done := make(chan error, 1)
		go func() { _, err := conn.Exec(ctx, sql, args...); done <- err }()
		return done
	}
	// decide waits for the execution done waits on to be held (as a new
	// request), checks what its approver sees, and has bob approve it (it
	// must then run) or deny it (it must then fail with 42501 naming the
	// rule and the reason).
	held := map[int64]bool{}
	decide := func(done chan error, approve bool, shows func(command string) bool) {
		t.Helper()
		id, command := pendingCommand(t, p.testBastion, "alice")
		if held[id] {
			t.Fatalf("request %d held a second execution", id)
		}
		held[id] = true
		if !shows(command) {
			t.Fatalf("the approver of request %d sees %q", id, command)
		}
		if approve {
			p.mustRun("bob", "approve", fmt.Sprint(id))
			if err := <-done; err != nil {
				t.Fatalf("approved execution of %q: %v", command, err)
			}
			return
		}
		p.mustRun("bob", "deny", fmt.Sprint(id), "--reason", "not this one")
		if pe := pgError(t, <-done); pe.Code != "42501" || !strings.Contains(pe.Message, "refunds-need-lead") || !strings.Contains(pe.Message, "not this one") {
			t.Fatalf("denied execution of %q: %s %s", command, pe.Code, pe.Message)
		}
	}
	is := func(want string) func(string) bool { return func(got string) bool { return got == want } }
	has := func(parts ...string) func(string) bool {
		return func(got string) bool {
			for _, part := range parts {
				if !strings.Contains(got, part) {
					return false
				}
			}
			return true
		}
	}
	// refunds checks the notes this test stored so far (after those of an
	// earlier run on the same database).
	var before int64
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(id), 0) FROM refunds").Scan(&before); err != nil {
		t.Fatal(err)
	}
	refunds := func(after string, want ...string) {
		t.Helper()
		rows, err := conn.Query(ctx, "SELECT note FROM refunds WHERE id > $1 ORDER BY id", before)
		if err != nil {
			t.Fatal(err)
		}
		if notes, err := pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || !slices.Equal(notes, want) {
			t.Fatalf("refunds after %s = %q, %v; want %q", after, notes, err, want)
		}
	}

	decide(run("refund", "first refund"), true, is("INSERT INTO refunds (note) VALUES ($1)\n-- parameters: $1 = 'first refund'"))
	// The same prepared statement again: held again, with its own
	// parameters; denied, it runs nothing and the connection goes on.
	decide(run("refund", "second refund"), false, has("$1 = 'second refund'"))
	refunds("one approved and one denied execution", "first refund")

	// A Close that the target skips (it skips everything after an error up
	// to Sync) leaves the held statement there: it is still held after.
	fe := conn.PgConn().Frontend()
	// send sends msgs and a Sync as they are; receive returns what comes
	// back up to ReadyForQuery.
	send := func(msgs ...pgproto3.FrontendMessage) {
		t.Helper()
		for _, m := range append(msgs, &pgproto3.Sync{}) {
			fe.Send(m)
		}
		if err := fe.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	receive := func() (got []pgproto3.BackendMessage, err error) {
		for {
			msg, err := fe.Receive()
			if err != nil {
				return got, err
			}
			if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
				return got, nil
			}
			got = append(got, msg)
		}
	}
	batch := func(msgs ...pgproto3.FrontendMessage) []pgproto3.BackendMessage {
		t.Helper()
		send(msgs...)
		got, err := receive()
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for _, msg := range batch(&pgproto3.Parse{Query: "SELEC 1"}, &pgproto3.Close{ObjectType: 'S', Name: "refund"}) {
		if _, ok := msg.(*pgproto3.CloseComplete); ok {
			t.Fatal("the target ran the Close after an error")
		}
	}
	decide(run("refund", "after a skipped close"), false, has("$1 = 'after a skipped close'"))
	refunds("an execution after a skipped Close", "first refund")

	// A portal bound to a held statement and not executed may still be
	// there, within its transaction, when the client binds it again (if
	// the target skipped that Bind): the next execution of the portal is
	// held, showing both. Once the transaction ended, no portal is left,
	// and the approver sees only what runs.
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	batch(&pgproto3.Bind{PreparedStatement: "refund", Parameters: [][]byte{[]byte("phantom")}})
	decide(run("refund", "rebound"), false,
		has("$1 = 'rebound'", "earlier binding: INSERT INTO refunds (note) VALUES ($1)\n-- parameters: $1 = 'phantom'"))
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	batch(&pgproto3.Bind{PreparedStatement: "refund", Parameters: [][]byte{[]byte("phantom")}})
	decide(run("refund", "after the transaction"), false, is("INSERT INTO refunds (note) VALUES ($1)\n-- parameters: $1 = 'after the transaction'"))

	// The unnamed statement: a Parse after a failed message of its batch is
	// skipped and the held statement stays, so its execution stays held.
	batch(&pgproto3.Parse{Query: "INSERT INTO refunds (note) VALUES ($1)"})
	batch(&pgproto3.Parse{Name: "bad", Query: "SELEC 1"}, &pgproto3.Parse{Query: "SELECT $1::text"})
	send(&pgproto3.Bind{Parameters: [][]byte{[]byte("unnamed")}}, &pgproto3.Execute{})
	done := make(chan error, 1)
	go func() {
		got, err := receive()
		for _, msg := range got {
			if e, ok := msg.(*pgproto3.ErrorResponse); ok && err == nil {
				err = pgconn.ErrorResponseToPgError(e)
			}
		}
		done <- err
	}()
	decide(done, false, has("-- or, if the target kept an earlier statement: INSERT INTO refunds (note) VALUES ($1)"))
	refunds("an execution after a skipped Parse", "first refund")

	// A named statement that needs approval cannot be swapped for another
	// text under its name: the target would keep the first.
	_, err := conn.Prepare(ctx, "refund", "SELECT 1")
	if pe := pgError(t, err); pe.Code != "42501" || !strings.Contains(pe.Message, "another name") {
		t.Fatalf("re-prepare under a held name: %s %s", pe.Code, pe.Message)
	}

	// The same with SQL's PREPARE and EXECUTE (simple protocol): the
	// PREPARE runs nothing and is not held; each EXECUTE is, and the
	// approver sees what it runs.
	if _, err := conn.Exec(pctx, "PREPARE sqlrefund(text) AS INSERT INTO refunds (note) VALUES ($1)"); err != nil {
		t.Fatalf("SQL PREPARE of a held statement: %v", err)
	}
	decide(run("EXECUTE sqlrefund('third refund')"), true,
		is("EXECUTE sqlrefund('third refund')\n-- sqlrefund was prepared as: PREPARE sqlrefund(text) AS INSERT INTO refunds (note) VALUES ($1)"))
	decide(run("EXPLAIN ANALYZE EXECUTE sqlrefund('fourth refund')"), false, has("-- sqlrefund was prepared as:"))
	// A PREPARE and its EXECUTE in one query string: held as a whole.
	decide(run("PREPARE together(text) AS INSERT INTO refunds (note) VALUES ($1); EXECUTE together('fifth refund')"), false,
		has("-- together was prepared as: PREPARE together(text)"))
	refunds("SQL EXECUTEs", "first refund", "third refund")
	_, err = conn.Exec(ctx, "DEALLOCATE sqlrefund; PREPARE sqlrefund AS SELECT 1")
	if pe := pgError(t, err); pe.Code != "42501" || !strings.Contains(pe.Message, "another name") {
		t.Fatalf("PREPARE under a held name: %s %s", pe.Code, pe.Message)
	}
}
