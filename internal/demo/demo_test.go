package demo

import (
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/internal/server"
	"golang.org/x/crypto/ssh"
)

// TestConfig renders the demo's configuration, loads it as Bastion does,
// and checks the query rules the README and the cheat sheet promise on
// orders and shop.
func TestConfig(t *testing.T) {
	listen := func() net.Listener {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	ls := &server.Listeners{SSH: listen(), HTTP: listen(), Databases: map[policy.Kind]net.Listener{
		policy.KindPostgres: listen(), policy.KindMySQL: listen(),
	}}
	newKey := func() ssh.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keys := map[string]string{}
	for _, u := range Users {
		keys[u.Name] = string(ssh.MarshalAuthorizedKey(newKey()))
	}
	targets := &targetSet{
		web01:     &harness.SSHD{Addr: "127.0.0.1:1022", HostPublicKey: newKey()},
		orders:    &harness.Postgres{Addr: "127.0.0.1:15432", User: "postgres", Password: "pw", TLSCert: []byte("-----BEGIN CERTIFICATE-----\n")},
		shop:      &harness.MariaDB{Addr: "127.0.0.1:13306", User: "bastion", Password: "pw"},
		ordersApp: account{ordersAppUser, "pw1"}, shopApp: account{shopAppUser, "pw2"},
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "bastion.yaml")
	if err := writeConfig(path, filepath.Join(dir, "data"), ls, keys, targets); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the demo's configuration does not load: %v", err)
	}
	// The listeners' actual addresses, not the default ports: when 5433 or
	// 3307 is taken the demo listens elsewhere, and token prints the URL
	// with the port from listen.
	for _, l := range []struct{ name, got, want string }{
		{"ssh", cfg.Listen.SSH, ls.SSH.Addr().String()},
		{"http", cfg.Listen.HTTP, ls.HTTP.Addr().String()},
		{"postgres", cfg.Listen.Postgres, ls.Databases[policy.KindPostgres].Addr().String()},
		{"mysql", cfg.Listen.MySQL, ls.Databases[policy.KindMySQL].Addr().String()},
	} {
		if l.got != l.want {
			t.Errorf("listen.%s = %q, want the listener's address %q", l.name, l.got, l.want)
		}
	}

	// Bastion logs in to orders and shop with least-privilege accounts,
	// not the servers' superusers, and sends orders' password only over
	// TLS that verifies orders' certificate.
	orders, shop := cfg.Targets["orders"], cfg.Targets["shop"]
	if orders.Username != ordersAppUser || orders.Password != "pw1" || shop.Username != shopAppUser || shop.Password != "pw2" {
		t.Errorf("upstream accounts %s/%s, want %s and %s", orders.Username, shop.Username, ordersAppUser, shopAppUser)
	}
	if orders.TLS != config.TLSVerifyFull {
		t.Errorf("orders tls: %s, want verify-full", orders.TLS)
	}
	if ca, err := os.ReadFile(orders.CAFile); err != nil || string(ca) != string(targets.orders.TLSCert) {
		t.Errorf("orders ca_file %s: %q, %v; want orders' certificate", orders.CAFile, ca, err)
	}

	read := func(tables, functions []string) policy.Statement {
		return policy.Statement{Kind: policy.StatementRead, Command: "SELECT", Tables: tables, Functions: functions}
	}
	tests := []struct {
		target string
		stmt   policy.Statement
		rule   string // "" for allowed
	}{
		{"orders", read([]string{"orders"}, []string{"count"}), ""},
		{"orders", read([]string{"public.secrets"}, nil), "no-secrets"},
		{"orders", read(nil, []string{"dblink_exec"}), "no-dangerous-functions"},
		{"orders", read(nil, []string{"pg_terminate_backend"}), "no-dangerous-functions"},
		{"orders", policy.Statement{Kind: policy.StatementDDL, Command: "DROP TABLE", Tables: []string{"orders"}}, "no-drop"},
		{"orders", policy.Statement{Kind: policy.StatementWrite, Command: "DELETE", Tables: []string{"orders"}, Unbounded: true}, "bounded-writes"},
		{"orders", read(nil, []string{"pg_read_file"}), "no-file-functions"},
		{"orders", policy.Statement{Kind: policy.StatementUtility, Command: "COPY", FileAccess: true}, "no-server-files"},
		{"shop", read(nil, []string{"sys_exec"}), "no-dangerous-functions"},
		{"orders", policy.Statement{Kind: policy.StatementDDL, Command: "ALTER TABLE", Actions: []string{"ALTER TABLE DROP COLUMN"}}, "no-drop"},
		{"shop", policy.Statement{Kind: policy.StatementDDL, Command: "ALTER TABLE", Actions: []string{"ALTER TABLE ADD COLUMN", "ALTER TABLE DROP PRIMARY KEY"}}, "no-drop"},
		{"shop", policy.Statement{Kind: policy.StatementDDL, Command: "ALTER TABLE", Actions: []string{"ALTER TABLE TRUNCATE PARTITION"}}, "no-drop"},
		{"orders", policy.Statement{Kind: policy.StatementDDL, Command: "ALTER TABLE", Actions: []string{"ALTER TABLE ADD COLUMN"}}, ""},
		{"orders", policy.Statement{Kind: policy.StatementWrite, Command: "COPY", FileAccess: true, Program: true}, "no-programs"},
		{"shop", policy.Statement{Kind: policy.StatementUtility, Command: "SET ROLE", RoleChange: true}, "no-role-change"},
	}
	for _, tt := range tests {
		d := cfg.Policy.DecideQueries("alice", tt.target, []policy.Statement{tt.stmt})
		switch {
		case tt.rule == "" && d.Action != policy.CommandAllow:
			t.Errorf("%s: %+v: %s by %q, want allowed", tt.target, tt.stmt, d.Action, d.Rule)
		case tt.rule != "" && (d.Action != policy.CommandDeny || d.Rule != tt.rule):
			t.Errorf("%s: %+v: %s by %q, want denied by %q", tt.target, tt.stmt, d.Action, d.Rule, tt.rule)
		}
	}
}
