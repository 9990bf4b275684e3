package harness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sqlClientTimeout bounds one run of psql or mariadb in tests.
const sqlClientTimeout = 20 * time.Second

func TestPostgres(t *testing.T) {
	t.Parallel()
	pg := NewPostgres(t, PostgresConfig{
		Databases: []string{"app", `odd "name"`},
		InitSQL:   map[string]string{"app": "CREATE TABLE t (x int);\nINSERT INTO t VALUES (42);"},
	})
	tests := []struct {
		name string
		dsn  string
		sql  string
		want string
	}{
		{name: "select 1", dsn: pg.DSN("postgres"), sql: "SELECT 1", want: "1"},
		{name: "init SQL ran", dsn: pg.DSN("app"), sql: "SELECT x FROM t", want: "42"},
		{name: "database with an odd name", dsn: pg.DSN(`odd "name"`), sql: "SELECT current_database()", want: `odd "name"`},
		{name: "no TLS", dsn: pg.DSN("postgres"), sql: "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", want: "f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := psql(t, tt.dsn, tt.sql); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
	if !strings.Contains(pg.DSN("x"), "sslmode=disable") {
		t.Errorf("DSN without TLS = %q, want sslmode=disable", pg.DSN("x"))
	}
}

func TestPostgresTLS(t *testing.T) {
	t.Parallel()
	pg := NewPostgres(t, PostgresConfig{TLS: true})
	if !strings.Contains(pg.DSN("postgres"), "sslmode=require") {
		t.Fatalf("DSN with TLS = %q, want sslmode=require", pg.DSN("postgres"))
	}
	const inTLS = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
	if got := psql(t, pg.DSN("postgres"), inTLS); got != "t" {
		t.Errorf("connection with sslmode=require: ssl = %q, want t", got)
	}
	// The certificate verifies for 127.0.0.1 against itself.
	rootCert := filepath.Join(t.TempDir(), "root.crt")
	if err := os.WriteFile(rootCert, pg.TLSCert, 0o644); err != nil {
		t.Fatal(err)
	}
	dsn := strings.Replace(pg.DSN("postgres"), "sslmode=require", "sslmode=verify-full&sslrootcert="+rootCert, 1)
	if got := psql(t, dsn, inTLS); got != "t" {
		t.Errorf("connection with sslmode=verify-full: ssl = %q, want t", got)
	}
}

// psql runs sql with psql at dsn and returns its unaligned, tuples-only output.
func psql(t *testing.T, dsn, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), sqlClientTimeout)
	defer cancel()
	out, err := Run(exec.CommandContext(ctx, "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql, dsn))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}
