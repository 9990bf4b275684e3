package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestMariaDB(t *testing.T) {
	t.Parallel()
	db := NewMariaDB(t, MariaDBConfig{
		Databases: []string{"app"},
		InitSQL:   map[string]string{"app": "CREATE TABLE t (x int);\nINSERT INTO t VALUES (42);"},
	})
	tests := []struct {
		name string
		sql  string
		want string
	}{
		{name: "select 1", sql: "SELECT 1", want: "1"},
		{name: "init SQL ran", sql: "SELECT x FROM app.t", want: "42"},
		{name: "logged in over TCP", sql: "SELECT current_user()", want: "bastion@127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), sqlClientTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, "mariadb", "--no-defaults", "--protocol=TCP", "-h", db.Host,
				"-P", strconv.Itoa(db.Port), "-u", db.User, "--batch", "--skip-column-names", "-e", tt.sql)
			cmd.Env = append(os.Environ(), "MYSQL_PWD="+db.Password)
			out, err := Run(cmd)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(out); got != tt.want {
				t.Errorf("%s = %q, want %q", tt.sql, got, tt.want)
			}
		})
	}
	if want := fmt.Sprintf("bastion:%s@tcp(127.0.0.1:%d)/app", db.Password, db.Port); db.DSN("app") != want {
		t.Errorf("DSN = %q, want %q", db.DSN("app"), want)
	}
}
