// Package demo runs a local Bastion sandbox: demo users with keys (alice the
// developer, bob the lead, carol the auditor), real targets (an OpenSSH
// server web01, a PostgreSQL database orders and a MariaDB database shop, each
// on a free loopback port), and Bastion in front of them. It writes demo.json
// once everything listens, prints a cheat sheet, and stops everything it
// started when interrupted.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/internal/server"
)

// Default ports; each falls back to a free one when taken.
const (
	defaultSSHPort      = 2222
	defaultHTTPPort     = 8080
	defaultPostgresPort = 5433
	defaultMySQLPort    = 3307
)

// Users are the demo's people.
var Users = []struct{ Name, Role string }{
	{"alice", "developer"},
	{"bob", "lead"},
	{"carol", "auditor"},
}

// Info is what demo.json holds.
type Info struct {
	SSH      string            `json:"ssh"`
	HTTP     string            `json:"http"`
	Postgres string            `json:"postgres"` // Bastion's PostgreSQL front end
	MySQL    string            `json:"mysql"`    // Bastion's MySQL front end
	DataDir  string            `json:"data_dir"`
	Config   string            `json:"config"`
	Keys     string            `json:"keys"`
	Known    string            `json:"known_hosts"`
	Targets  map[string]string `json:"targets"`      // real addresses, to check that going around Bastion fails
	S3       *S3Info           `json:"s3,omitempty"` // where recordings go (none with DEMO_STORAGE=file)
}

// Main runs the demo until ctx ends. Flags: --dir (default $DEMO_DIR or
// ./demo-data), --ssh-port, --http-port (defaults $DEMO_SSH_PORT,
// $DEMO_HTTP_PORT, else 2222 and 8080).
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, log *slog.Logger) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", envOr("DEMO_DIR", "demo-data"), "directory for the demo's keys, config and data")
	sshPort := fs.Int("ssh-port", envInt("DEMO_SSH_PORT", defaultSSHPort), "SSH port (falls back to a free one when taken)")
	httpPort := fs.Int("http-port", envInt("DEMO_HTTP_PORT", defaultHTTPPort), "HTTP port (falls back to a free one when taken)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return 2
	}
	if err := run(ctx, *dir, *sshPort, *httpPort, stdout, log); err != nil {
		fmt.Fprintf(stderr, "bastion demo: %v\n", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, dir string, sshPort, httpPort int, stdout io.Writer, log *slog.Logger) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	dataDir := filepath.Join(dir, "data")
	keysDir := filepath.Join(dir, "keys")
	for _, d := range []string{dir, dataDir, keysDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	// A stale demo.json would tell a waiting script the demo is up.
	if err := os.Remove(filepath.Join(dir, "demo.json")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	userKeys := map[string]string{}
	for _, u := range Users {
		pub, err := userKey(filepath.Join(keysDir, u.Name))
		if err != nil {
			return err
		}
		userKeys[u.Name] = pub
	}
	// The CAs are created here, before Bastion starts, so that web01 can
	// trust the upstream CA from its first connection.
	cas, err := ca.LoadOrCreate(filepath.Join(dataDir, "ca"), ca.Files{})
	if err != nil {
		return err
	}

	targets, err := startTargets(ctx, cas.Upstream.AuthorizedKey())
	if err != nil {
		return err
	}
	defer targets.stop(log)
	gw, s3info, err := startStorage(ctx, dir)
	if err != nil {
		return err
	}
	if gw != nil {
		defer func() {
			if err := gw.Stop(); err != nil {
				log.Warn("stop the demo's S3 server", "err", err)
			}
		}()
	}

	sshL, err := listenWithFallback(sshPort)
	if err != nil {
		return err
	}
	httpL, err := listenWithFallback(httpPort)
	if err != nil {
		sshL.Close()
		return err
	}
	dbL := map[policy.Kind]net.Listener{}
	for kind, port := range map[policy.Kind]int{policy.KindPostgres: defaultPostgresPort, policy.KindMySQL: defaultMySQLPort} {
		l, err := listenWithFallback(port)
		if err != nil {
			sshL.Close()
			httpL.Close()
			for _, l := range dbL {
				l.Close()
			}
			return err
		}
		dbL[kind] = l
	}
	listeners := &server.Listeners{SSH: sshL, HTTP: httpL, Databases: dbL}
	cfgPath := filepath.Join(dir, "bastion.yaml")
	if err := writeConfig(cfgPath, dataDir, listeners, userKeys, targets); err != nil {
		listeners.Close()
		return err
	}
	if err := addStorage(cfgPath, s3info); err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	b, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte(knownHostsLine(sshL.Addr().String(), cas)+"\n"), 0o644); err != nil {
		b.Close()
		return err
	}
	info := Info{
		SSH: sshL.Addr().String(), HTTP: httpL.Addr().String(), DataDir: dataDir, Config: cfgPath,
		Postgres: dbL[policy.KindPostgres].Addr().String(), MySQL: dbL[policy.KindMySQL].Addr().String(),
		Keys: keysDir, Known: knownHosts, Targets: targets.addrs(), S3: s3info,
	}
	if err := writeJSON(filepath.Join(dir, "demo.json"), info); err != nil {
		b.Close()
		return err
	}
	printCheatSheet(stdout, dir, info)
	err = b.Run(ctx, listeners)
	fmt.Fprintln(stdout, "\nBastion demo stopped; stopping its targets.")
	return err
}

// userKey returns the public key of the demo key at path, creating an
// ed25519 key pair (OpenSSH format, 0600) on first use.
func userKey(path string) (string, error) {
	if pub, err := os.ReadFile(path + ".pub"); err == nil {
		if _, err := os.Stat(path); err == nil {
			return strings.TrimSpace(string(pub)), nil
		}
	}
	return harness.WriteKeyPair(path, filepath.Base(path)+"@bastion-demo")
}

// listenWithFallback listens on 127.0.0.1:port, or on a free port if that
// one is taken.
func listenWithFallback(port int) (net.Listener, error) {
	if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
		return l, nil
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

func knownHostsLine(addr string, cas *ca.Set) string {
	_, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("@cert-authority [127.0.0.1]:%s,[localhost]:%s %s", port, port, cas.Host.AuthorizedKey())
}

// targetSet is the demo's running targets, and the least-privilege
// accounts Bastion logs in to orders and shop with.
type targetSet struct {
	web01  *harness.SSHD
	orders *harness.Postgres
	shop   *harness.MariaDB
	// ordersApp and shopApp are the accounts Bastion uses upstream: they
	// read and write the demo's tables and nothing else (no superuser, no
	// DDL, no other databases).
	ordersApp, shopApp account
}

// account is an upstream login.
type account struct{ User, Password string }

// The demo's upstream accounts.
const (
	ordersAppUser = "bastion_orders"
	shopAppUser   = "bastion_shop"
)

// ordersAppSQL creates orders' upstream account (run in orders as the
// superuser; PostgreSQL 15 lets no one but the owner create in public).
const ordersAppSQL = `
CREATE ROLE ` + ordersAppUser + ` LOGIN PASSWORD '%s';
REVOKE ALL ON DATABASE orders FROM PUBLIC;
GRANT CONNECT ON DATABASE orders TO ` + ordersAppUser + `;
GRANT USAGE ON SCHEMA public TO ` + ordersAppUser + `;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ` + ordersAppUser + `;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO ` + ordersAppUser + `;
`

// shopAppSQL creates shop's upstream account (run as root).
const shopAppSQL = `
CREATE USER '` + shopAppUser + `'@'%%' IDENTIFIED BY '%s';
GRANT SELECT, INSERT, UPDATE, DELETE ON shop.* TO '` + shopAppUser + `'@'%%';
`

func (t *targetSet) addrs() map[string]string {
	return map[string]string{"web01": t.web01.Addr, "orders": t.orders.Addr, "shop": t.shop.Addr}
}

func (t *targetSet) stop(log *slog.Logger) {
	for name, s := range map[string]interface{ Stop() error }{"web01": t.web01, "orders": t.orders, "shop": t.shop} {
		if s == nil || (name == "web01" && t.web01 == nil) || (name == "orders" && t.orders == nil) || (name == "shop" && t.shop == nil) {
			continue
		}
		if err := s.Stop(); err != nil {
			log.Warn("stop demo target", "target", name, "err", err)
		}
	}
}

const ordersSQL = `
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers(id), total numeric(10,2), created_at timestamptz DEFAULT now());
CREATE TABLE secrets (id serial PRIMARY KEY, name text, value text);
INSERT INTO customers (name, email) VALUES ('Ada', 'ada@example.com'), ('Linus', 'linus@example.com'), ('Grace', 'grace@example.com');
INSERT INTO orders (customer_id, total) SELECT 1 + (g % 3), (g * 7.5)::numeric(10,2) FROM generate_series(1, 50) g;
INSERT INTO secrets (name, value) VALUES ('stripe_key', 'sk_live_demo_not_real'), ('db_root', 'hunter2');
`

const shopSQL = `
CREATE TABLE products (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, price DECIMAL(10,2));
CREATE TABLE orders (id INT AUTO_INCREMENT PRIMARY KEY, product_id INT, quantity INT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE secrets (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100), value VARCHAR(200));
INSERT INTO products (name, price) VALUES ('keyboard', 49.90), ('mouse', 19.90), ('monitor', 199.00);
INSERT INTO orders (product_id, quantity) VALUES (1, 2), (2, 1), (3, 1), (1, 5);
INSERT INTO secrets (name, value) VALUES ('payment_api_key', 'pk_demo_not_real');
`

// startTargets starts web01, orders and shop in parallel.
func startTargets(ctx context.Context, upstreamCA string) (*targetSet, error) {
	// rand.Text is letters and digits: safe inside the SQL quotes.
	t := &targetSet{ordersApp: account{ordersAppUser, rand.Text()}, shopApp: account{shopAppUser, rand.Text()}}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Add(3)
	go func() {
		defer wg.Done()
		t.web01, errs[0] = harness.StartSSHD(ctx, harness.SSHDConfig{TrustedUserCAKeys: []string{upstreamCA}})
	}()
	go func() {
		defer wg.Done()
		t.orders, errs[1] = harness.StartPostgres(ctx, harness.PostgresConfig{TLS: true, Databases: []string{"orders"}, InitSQL: map[string]string{"orders": ordersSQL + fmt.Sprintf(ordersAppSQL, t.ordersApp.Password)}})
	}()
	go func() {
		defer wg.Done()
		t.shop, errs[2] = harness.StartMariaDB(ctx, harness.MariaDBConfig{Databases: []string{"shop"}, InitSQL: map[string]string{"shop": shopSQL + fmt.Sprintf(shopAppSQL, t.shopApp.Password)}})
	}()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.stop(slog.Default())
		return nil, fmt.Errorf("start demo targets (run `make deps` to install them): %w", err)
	}
	return t, nil
}

var configTemplate = template.Must(template.New("config").Parse(`# Bastion demo configuration, written by ` + "`bastion demo`" + `.
data_dir: {{.DataDir}}
listen:
  ssh: {{.SSH}}
  http: {{.HTTP}}
  postgres: {{.Postgres}}
  mysql: {{.MySQL}}
server:
  hostnames: [localhost, 127.0.0.1]
requests:
  pending_ttl: 1h

users:
{{- range .Users}}
  - name: {{.Name}}
    roles: [{{.Role}}]
    keys: ["{{.Key}}"]
{{- end}}

targets:
  - name: web01
    kind: ssh
    address: {{.Web01}}
    host_key: "{{.Web01Key}}"
    labels: {env: prod, team: web}
  # Bastion's accounts on orders and shop may read and write the demo's
  # tables, nothing more: not superusers.
  - name: orders
    kind: postgres
    address: {{.Orders}}
    database: orders
    username: {{.OrdersUser}}
    # A production config names an environment variable: ${ORDERS_PASSWORD}.
    password: "{{.OrdersPassword}}"
    # TLS with the server's certificate checked against orders-ca.pem and
    # its address: the password goes only to the real orders.
    tls: verify-full
    ca_file: {{.OrdersCA}}
    labels: {env: prod, team: data}
  - name: shop
    kind: mysql
    address: {{.Shop}}
    database: shop
    username: {{.ShopUser}}
    password: "{{.ShopPassword}}"
    # MariaDB logs Bastion in with mysql_native_password, a challenge that
    # never sends the password. A MySQL 8 target that asks for the password
    # itself (caching_sha2_password) needs tls: verify-full, or its RSA key
    # pinned: server_public_key: shop-public-key.pem.
    labels: {env: prod, team: data}

roles:
  developer:
    request:
      - targets: [web01, orders, shop]
        logins: [root, deploy]
        approvers: [lead]
        approvals: 1
        max_duration: 4h
        require_reason: true
    # Rules on every command in SSH sessions (exec and, best effort, typed lines).
    commands:
      - {name: no-recursive-rm, action: deny, command: rm, args: "-*r*", reason: recursive deletes are not allowed on servers}
      - {name: restarts-need-a-lead, action: require-approval, command: systemctl, args: "restart *", approvers: [lead], reason: restarts need a lead}
    # Rules on every SQL statement on orders (PostgreSQL) and shop (MariaDB),
    # decided on each database's own grammar.
    queries:
      - {name: no-drop, action: deny, commands: ["DROP *", TRUNCATE, "ALTER * DROP *", "ALTER * TRUNCATE *"], reason: "no destructive DDL on prod: dropping, truncating, ALTER … DROP (columns, constraints, indexes, defaults, partitions)"}
      - {name: bounded-writes, action: deny, unbounded: true, reason: UPDATE and DELETE need a WHERE clause}
      - {name: no-secrets, action: deny, tables: [secrets], reason: the secrets table is off limits}
      - {name: no-programs, action: deny, program: true, reason: no running programs on the database server}
      - {name: no-server-files, action: deny, file_access: true, reason: no reading or writing files on the database server}
      - {name: no-file-functions, action: deny, functions: [pg_read_file, pg_read_binary_file, pg_ls_dir, lo_import, lo_export, load_file], reason: no reading files on the database server}
      - {name: no-dangerous-functions, action: deny, functions: ["dblink*", pg_terminate_backend, pg_cancel_backend, pg_reload_conf, pg_promote, sys_exec, sys_eval], reason: "these functions reach past this session: other connections, other servers, the server itself"}
      - {name: no-role-change, action: deny, role_change: true, reason: stay the user Bastion logs in as}
  lead:
    request:
      # Leads may grant themselves short access only through another lead.
      - targets: [web01, orders, shop]
        logins: [root]
        approvers: [lead]
        max_duration: 1h
    forwarding: {local: true, agent: true}
  auditor:
    permissions: [audit]
`))

func writeConfig(path, dataDir string, l *server.Listeners, keys map[string]string, t *targetSet) error {
	type user struct{ Name, Role, Key string }
	var users []user
	for _, u := range Users {
		users = append(users, user{u.Name, u.Role, keys[u.Name]})
	}
	// orders' certificate is self-signed: it is its own CA.
	ordersCA := filepath.Join(filepath.Dir(path), "orders-ca.pem")
	if err := os.WriteFile(ordersCA, t.orders.TLSCert, 0o644); err != nil {
		return err
	}
	var b strings.Builder
	err := configTemplate.Execute(&b, map[string]any{
		"DataDir": dataDir, "SSH": l.SSH.Addr().String(), "HTTP": l.HTTP.Addr().String(), "Users": users,
		"Postgres": l.Databases[policy.KindPostgres].Addr().String(), "MySQL": l.Databases[policy.KindMySQL].Addr().String(),
		"Web01": t.web01.Addr, "Web01Key": strings.TrimSpace(string(ssh.MarshalAuthorizedKey(t.web01.HostPublicKey))),
		"Orders": t.orders.Addr, "OrdersUser": t.ordersApp.User, "OrdersPassword": t.ordersApp.Password, "OrdersCA": ordersCA,
		"Shop": t.shop.Addr, "ShopUser": t.shopApp.User, "ShopPassword": t.shopApp.Password,
	})
	if err != nil {
		return err
	}
	// The file holds the demo databases' passwords (random, local): 0600.
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path) // readers never see a half-written file
}

func printCheatSheet(w io.Writer, dir string, info Info) {
	_, port, _ := net.SplitHostPort(info.SSH)
	rel := dir
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, dir); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
		}
	}
	ssh := fmt.Sprintf("ssh -p %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s/known_hosts -i %s/keys", port, rel, rel)
	bin := "bastion"
	if exe, err := os.Executable(); err == nil {
		bin = exe
		if wd, err := os.Getwd(); err == nil {
			if r, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(r, "..") {
				bin = r
			}
		}
	}
	fmt.Fprintf(w, `
Bastion demo is running (Ctrl-C stops it and everything it started).
  ssh:     %s        http: http://%s/healthz
  config:  %s/bastion.yaml      details: %s/demo.json
  users:   alice (developer), bob (lead, approves), carol (auditor); keys in %s/keys/
  targets: web01 (this machine's own sshd, %s: root there is root here), orders (PostgreSQL %s), shop (MariaDB %s)

Try, in another terminal:
  %s/alice alice@127.0.0.1 targets
  %s/alice alice@127.0.0.1 request web01 --login root --for 30m --reason "INC-1 disk full"
  %s/bob bob@127.0.0.1 requests --state pending
  %s/bob bob@127.0.0.1 approve 1 --comment "go ahead"
  %s/alice alice@127.0.0.1 wait 1 > %s/keys/alice-cert.pub   # prints the certificate once approved
  ssh-keygen -L -f %s/keys/alice-cert.pub
  %s/alice root@web01@127.0.0.1           # a recorded shell on web01 (ssh uses keys/alice-cert.pub)
  %s/carol carol@127.0.0.1 sessions
  %s/carol carol@127.0.0.1 audit --since 1h
  %s/alice alice@127.0.0.1          # interactive prompt
  %s --config %s/bastion.yaml audit verify

Databases (PostgreSQL front end on %s, MySQL on %s):
  %s/alice alice@127.0.0.1 request orders shop --for 1h --reason "INC-2 refund"
  %s/bob bob@127.0.0.1 approve 2
  %s/alice alice@127.0.0.1 token 2  # prints a psql URL for orders and a mariadb line for shop
  psql 'postgres://alice:SECRET@127.0.0.1:%s/orders?sslmode=require' -c 'select count(*) from orders'
  psql '…' -c 'select * from secrets'   # refused: rule no-secrets (SQLSTATE 42501)
  mariadb --ssl -h 127.0.0.1 -P %s -u alice -pSECRET shop -e 'delete from orders'   # refused: bounded-writes
  %s/carol carol@127.0.0.1 replay <session id from sessions>

`, info.SSH, info.HTTP, rel, rel, rel, info.Targets["web01"], info.Targets["orders"], info.Targets["shop"],
		ssh, ssh, ssh, ssh, ssh, rel, rel, ssh, ssh, ssh, ssh, bin, rel,
		info.Postgres, info.MySQL, ssh, ssh, ssh, portOf(info.Postgres), portOf(info.MySQL), ssh)
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return port
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}
