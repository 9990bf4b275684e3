package config_test

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // time zones without relying on the host's zoneinfo

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
)

const (
	aliceKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBX4Hvkmd7q3dT+O6R8/4LpD+Eyb/1hXUkmgLSAUhhM6 alice@example"
	hostKey  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBp2MW2fEZ7qvmDcGY77zkXu5lya1SqjGL5qqGp5B0h5 hostkey"
)

// fakeEnv is a lookupEnv over a fixed set of variables.
func fakeEnv(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

var testEnv = fakeEnv(map[string]string{
	"HOOK_TOKEN":  "tok123",
	"DB_USER":     "bastion_user",
	"DB_PASSWORD": "s3cret",
	"PG_URL":      "postgres://bastion@pg.internal/bastion",
	"EMPTY":       "",
})

// fullConfig uses every section. Its path is /etc/bastion/bastion.yaml.
const fullConfig = `
data_dir: data
listen:
  ssh: ":2022"
  http: "127.0.0.1:8080"
  postgres: ":5432"
  mysql: ":3306"
server:
  hostnames: [bastion.example.com]
  handshake_timeout: 10s
  idle_timeout: 30m
  limits: {unauthenticated: 500, unauthenticated_per_source: 20, connections_per_user: 40, pending_requests_per_user: 3}
ca:
  user_ca: keys/user_ca
  host_ca: /etc/bastion/host_ca
recordings: s3://recordings/bastion
requests:
  pending_ttl: 30m
notify:
  webhook:
    url: https://hooks.example.com/${HOOK_TOKEN}
    attempts: 3
users:
  - name: alice
    keys:
      - ` + aliceKey + `
    roles: [developer]
  - name: bob
    roles: [ops, developer]
targets:
  - name: web01
    kind: ssh
    address: 10.0.1.1:22
    labels: {env: prod, team: web}
    host_key: ` + hostKey + `
  - name: db01
    kind: postgres
    address: db01.internal:5432
    labels: {env: prod}
    database: app
    username: ${DB_USER}
    password: ${DB_PASSWORD}
  - name: db02
    kind: mysql
    address: "[2001:db8::5]:3306"
roles:
  developer:
    standing:
      - labels: {env: staging}
        logins: [deploy]
    request:
      - targets: ["web*"]
        logins: [root, deploy]
        approvers: [ops]
        conditions:
          networks: [10.0.0.0/8, 192.0.2.1, "2001:db8::1", 172.16.5.4/12]
          time_windows:
            - days: [weekdays]
              from: "09:00"
              to: "17:30"
              timezone: Europe/Paris
            - days: [sat, Sunday]
              from: "22:00"
              to: "06:00"
      - targets: [db01, db02]
        approvers: [ops]
        approvals: 2
        max_duration: 2h
        require_reason: false
        auto_approve:
          networks: [10.0.0.0/8]
          time_windows:
            - days: [weekend]
  ops:
    permissions: [audit]
    standing:
      - targets: ["*"]
        logins: [admin]
        conditions:
          networks: [10.0.0.0/8]
    request:
      - targets: [db01]
        auto_approve: {}
`

func mustKey(t *testing.T, line string) ssh.PublicKey {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestParseFullConfig(t *testing.T) {
	cfg, err := config.Parse("/etc/bastion/bastion.yaml", []byte(fullConfig), testEnv)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	pol := cfg.Policy
	cfg.Policy = nil

	want := &config.Config{
		Path:    "/etc/bastion/bastion.yaml",
		DataDir: "/etc/bastion/data",
		Listen:  config.Listen{SSH: ":2022", HTTP: "127.0.0.1:8080", Postgres: ":5432", MySQL: ":3306"},
		Server: config.Server{
			Hostnames:        []string{"bastion.example.com"},
			HandshakeTimeout: 10 * time.Second,
			IdleTimeout:      30 * time.Minute,
			Limits:           config.Limits{Unauthenticated: 500, UnauthenticatedPerSource: 20, ConnectionsPerUser: 40, PendingRequestsPerUser: 3},
		},
		Store:      config.Store{Driver: "sqlite", DSN: "/etc/bastion/data/bastion.db"},
		CA:         config.CA{UserCA: "/etc/bastion/keys/user_ca", HostCA: "/etc/bastion/host_ca"},
		Recordings: "s3://recordings/bastion",
		Recording: config.Recording{
			S3:       &config.S3Recordings{Endpoint: config.DefaultS3Endpoint, TLS: true, Bucket: "recordings", Prefix: "bastion", Region: "us-east-1", PathStyle: true},
			SpoolDir: "/etc/bastion/data/spool", Fsync: config.DefaultFsync, SpoolQuota: config.DefaultSpoolQuota,
		},
		Notify: config.Notify{Webhook: &config.Webhook{
			URL: "https://hooks.example.com/tok123", Timeout: config.DefaultWebhookTimeout, Attempts: 3,
		}},
		Users: map[string]*config.User{
			"alice": {Name: "alice", Keys: []ssh.PublicKey{mustKey(t, aliceKey)}, Roles: []string{"developer"}},
			"bob":   {Name: "bob", Roles: []string{"ops", "developer"}},
		},
		Targets: map[string]*config.Target{
			"web01": {
				Name: "web01", Kind: policy.KindSSH, Address: "10.0.1.1:22",
				Labels: map[string]string{"env": "prod", "team": "web"}, HostKey: mustKey(t, hostKey),
			},
			"db01": {
				Name: "db01", Kind: policy.KindPostgres, Address: "db01.internal:5432",
				Labels: map[string]string{"env": "prod"}, Database: "app", Username: "bastion_user", Password: "s3cret", TLS: config.TLSDisable,
			},
			"db02": {Name: "db02", Kind: policy.KindMySQL, Address: "[2001:db8::5]:3306", Database: "db02", TLS: config.TLSDisable},
		},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("config:\n got  %+v\n want %+v", cfg, want)
		for name, u := range cfg.Users {
			t.Logf("user %s: %+v", name, *u)
		}
		for name, tg := range cfg.Targets {
			t.Logf("target %s: %+v", name, *tg)
		}
	}

	// The Paris window's location is checked by name, then cleared so that
	// the rest compares with DeepEqual.
	rules := pol.Roles["developer"].Requestable
	if len(rules) != 2 || len(rules[0].Conditions.Windows) != 2 {
		t.Fatalf("developer rules: %+v", rules)
	}
	if loc := rules[0].Conditions.Windows[0].Location; loc == nil || loc.String() != "Europe/Paris" {
		t.Errorf("window location = %v, want Europe/Paris", loc)
	}
	rules[0].Conditions.Windows[0].Location = nil

	weekend := [7]bool{time.Sunday: true, time.Saturday: true}
	wantPol := &policy.Policy{
		PendingTTL: 30 * time.Minute,
		Users: map[string]*policy.User{
			"alice": {Name: "alice", Roles: []string{"developer"}},
			"bob":   {Name: "bob", Roles: []string{"ops", "developer"}},
		},
		Targets: map[string]*policy.Target{
			"web01": {Name: "web01", Kind: policy.KindSSH, Labels: map[string]string{"env": "prod", "team": "web"}},
			"db01":  {Name: "db01", Kind: policy.KindPostgres, Labels: map[string]string{"env": "prod"}},
			"db02":  {Name: "db02", Kind: policy.KindMySQL},
		},
		Roles: map[string]*policy.Role{
			"developer": {
				Name: "developer",
				Standing: []policy.Access{{
					Targets: policy.Selector{Labels: map[string]string{"env": "staging"}},
					Logins:  []string{"deploy"},
				}},
				Requestable: []policy.RequestRule{
					{
						Access: policy.Access{
							Targets: policy.Selector{Names: []string{"web*"}},
							Logins:  []string{"root", "deploy"},
							Conditions: policy.Conditions{
								// A bare address is a /32 or /128; prefixes are masked.
								Networks: prefixes("10.0.0.0/8", "192.0.2.1/32", "2001:db8::1/128", "172.16.0.0/12"),
								Windows: []policy.Window{
									{Days: [7]bool{false, true, true, true, true, true, false}, From: 9 * time.Hour, To: 17*time.Hour + 30*time.Minute},
									{Days: weekend, From: 22 * time.Hour, To: 6 * time.Hour, Location: time.UTC},
								},
							},
						},
						Approvers:     []string{"ops"},
						Approvals:     1,                         // default
						MaxDuration:   config.DefaultMaxDuration, // default
						RequireReason: true,                      // default
					},
					{
						Access:      policy.Access{Targets: policy.Selector{Names: []string{"db01", "db02"}}},
						Approvers:   []string{"ops"},
						Approvals:   2,
						MaxDuration: 2 * time.Hour,
						AutoApprove: &policy.Conditions{
							Networks: prefixes("10.0.0.0/8"),
							Windows:  []policy.Window{{Days: weekend, From: 0, To: 24 * time.Hour, Location: time.UTC}},
						},
					},
				},
			},
			"ops": {
				Name:        "ops",
				Permissions: []policy.Permission{policy.PermAudit},
				Standing: []policy.Access{{
					Targets:    policy.Selector{Names: []string{"*"}},
					Logins:     []string{"admin"},
					Conditions: policy.Conditions{Networks: prefixes("10.0.0.0/8")},
				}},
				Requestable: []policy.RequestRule{{
					Access:        policy.Access{Targets: policy.Selector{Names: []string{"db01"}}},
					Approvals:     1,
					MaxDuration:   8 * time.Hour,
					RequireReason: true,
					AutoApprove:   &policy.Conditions{},
				}},
			},
		},
	}
	for name, want := range wantPol.Roles {
		if got := pol.Roles[name]; !reflect.DeepEqual(got, want) {
			t.Errorf("role %s:\n got  %+v\n want %+v", name, got, want)
		}
	}
	if !reflect.DeepEqual(pol, wantPol) {
		t.Errorf("policy:\n got  %+v\n want %+v", pol, wantPol)
	}
}

// The parsed policy works end to end: a request planned with it.
func TestParsedPolicyDecides(t *testing.T) {
	cfg, err := config.Parse("/etc/bastion/bastion.yaml", []byte(fullConfig), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	// Monday 2024-06-03 09:15 in Paris is 07:15 UTC.
	env := policy.Env{Now: time.Date(2024, 6, 3, 7, 15, 0, 0, time.UTC), Source: netip.MustParseAddr("10.9.8.7")}
	plan, err := cfg.Policy.PlanRequest(policy.RequestInput{
		User: "alice", Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "INC-1",
	}, env)
	if err != nil {
		t.Fatalf("PlanRequest: %v", err)
	}
	if plan.Role != "developer" || plan.Approvals != 1 || plan.PendingTTL != 30*time.Minute {
		t.Errorf("plan = %+v", plan)
	}
	env.Now = env.Now.Add(-30 * time.Minute) // 08:45 in Paris
	_, err = cfg.Policy.PlanRequest(policy.RequestInput{
		User: "alice", Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "INC-1",
	}, env)
	var ref *policy.Refusal
	if !errors.As(err, &ref) {
		t.Errorf("before the window: err = %v, want a *policy.Refusal", err)
	}
}

func TestParseDefaults(t *testing.T) {
	const minimal = `
data_dir: /var/lib/bastion
users:
  - name: alice
`
	cfg, err := config.Parse("/etc/bastion/bastion.yaml", []byte(minimal), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"data dir", cfg.DataDir, "/var/lib/bastion"},
		{"listen", cfg.Listen, config.Listen{SSH: config.DefaultSSHListen}},
		{"handshake timeout", cfg.Server.HandshakeTimeout, config.DefaultHandshakeTimeout},
		{"idle timeout", cfg.Server.IdleTimeout, config.DefaultIdleTimeout},
		{"store", cfg.Store, config.Store{Driver: "sqlite", DSN: "/var/lib/bastion/bastion.db"}},
		{"recordings", cfg.Recordings, "/var/lib/bastion/recordings"},
		{"ca", cfg.CA, config.CA{}},
		{"webhook", cfg.Notify.Webhook, (*config.Webhook)(nil)},
		{"pending ttl", cfg.Policy.PendingTTL, policy.DefaultPendingTTL},
		{"pending ttl is 1h", cfg.Policy.PendingTTL, time.Hour},
		{"max duration is 8h", config.DefaultMaxDuration, 8 * time.Hour},
		{"has localhost", slices.Contains(cfg.Server.Hostnames, "localhost"), true},
		{"has 127.0.0.1", slices.Contains(cfg.Server.Hostnames, "127.0.0.1"), true},
		{"no empty hostname", slices.Contains(cfg.Server.Hostnames, ""), false},
		{"users", len(cfg.Users), 1},
		{"policy users", len(cfg.Policy.Users), 1},
		{"roles", len(cfg.Policy.Roles), 0},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("got %#v, want %#v", c.got, c.want)
			}
		})
	}
}

// Smaller valid files, each checking one conversion.
func TestParseValid(t *testing.T) {
	const users = "users:\n  - name: alice\n"
	role := func(rule string) string {
		return "data_dir: /data\n" + users + "roles:\n  r:\n    request:\n      - targets: [web01]\n        approvers: [r]\n" + rule
	}
	window := func(cfg *config.Config) policy.Window {
		return cfg.Policy.Roles["r"].Requestable[0].Conditions.Windows[0]
	}
	tests := []struct {
		name  string
		file  string
		yaml  string
		check func(t *testing.T, cfg *config.Config)
	}{
		{
			name: "relative data_dir against the file's directory",
			file: "/etc/bastion/conf/bastion.yaml", yaml: "data_dir: ../state\n" + users,
			check: func(t *testing.T, cfg *config.Config) {
				eq(t, cfg.DataDir, "/etc/bastion/state")
				eq(t, cfg.Store.DSN, "/etc/bastion/state/bastion.db")
				eq(t, cfg.Recordings, "/etc/bastion/state/recordings")
			},
		},
		{
			name: "relative file name",
			file: "bastion.yaml", yaml: "data_dir: data\n" + users,
			check: func(t *testing.T, cfg *config.Config) { eq(t, cfg.DataDir, "data") },
		},
		{
			name: "sqlite path against the file's directory",
			file: "/etc/bastion/bastion.yaml", yaml: "data_dir: /data\nstore:\n  sqlite: db/state.db\n" + users,
			check: func(t *testing.T, cfg *config.Config) {
				eq(t, cfg.Store, config.Store{Driver: "sqlite", DSN: "/etc/bastion/db/state.db"})
			},
		},
		{
			name: "postgres store from the environment",
			file: "/etc/bastion/bastion.yaml", yaml: "data_dir: /data\nstore:\n  postgres: ${PG_URL}?sslmode=require\n" + users,
			check: func(t *testing.T, cfg *config.Config) {
				eq(t, cfg.Store, config.Store{Driver: "postgres", DSN: "postgres://bastion@pg.internal/bastion?sslmode=require"})
			},
		},
		{
			name: "relative recordings directory",
			file: "/etc/bastion/bastion.yaml", yaml: "data_dir: /data\nrecordings: rec\n" + users,
			check: func(t *testing.T, cfg *config.Config) { eq(t, cfg.Recordings, "/etc/bastion/rec") },
		},
		{
			name: "absolute recordings directory",
			file: "/etc/bastion/bastion.yaml", yaml: "data_dir: /data\nrecordings: /srv/rec\n" + users,
			check: func(t *testing.T, cfg *config.Config) { eq(t, cfg.Recordings, "/srv/rec") },
		},
		{
			name: "empty ssh listen address disables the listener",
			file: "bastion.yaml", yaml: "data_dir: /data\nlisten:\n  ssh: \"\"\n" + users,
			check: func(t *testing.T, cfg *config.Config) { eq(t, cfg.Listen.SSH, "") },
		},
		{
			name: "webhook defaults",
			file: "bastion.yaml", yaml: "data_dir: /data\nnotify:\n  webhook:\n    url: http://hooks.internal/x\n" + users,
			check: func(t *testing.T, cfg *config.Config) {
				eq(t, *cfg.Notify.Webhook, config.Webhook{URL: "http://hooks.internal/x", Timeout: 5 * time.Second, Attempts: 5})
			},
		},
		{
			name: "plaintext MySQL on loopback",
			file: "bastion.yaml", yaml: "data_dir: /data\nlisten:\n  mysql: \"127.0.0.1:3307\"\n  mysql_plaintext: true\n" + users,
			check: func(t *testing.T, cfg *config.Config) { eq(t, cfg.Listen.MySQLPlaintext, true) },
		},
		{
			name: "MySQL requires TLS by default",
			file: "bastion.yaml", yaml: "data_dir: /data\nlisten:\n  mysql: \"127.0.0.1:3307\"\n" + users,
			check: func(t *testing.T, cfg *config.Config) { eq(t, cfg.Listen.MySQLPlaintext, false) },
		},
		{
			name: "webhook coalescing window, or off",
			file: "bastion.yaml", yaml: "data_dir: /data\nnotify:\n  webhook:\n    url: http://hooks.internal/x\n    coalesce: 30s\n" + users,
			check: func(t *testing.T, cfg *config.Config) { eq(t, cfg.Notify.Webhook.Coalesce, 30*time.Second) },
		},
		{
			name: "webhook coalescing off",
			file: "bastion.yaml", yaml: "data_dir: /data\nnotify:\n  webhook:\n    url: http://hooks.internal/x\n    coalesce: \"off\"\n" + users,
			check: func(t *testing.T, cfg *config.Config) { eq(t, cfg.Notify.Webhook.Coalesce, time.Duration(-1)) },
		},
		{
			name: "commands per minute",
			file: "bastion.yaml", yaml: "data_dir: /data\nserver:\n  limits:\n    commands_per_minute: 30\n" + users,
			check: func(t *testing.T, cfg *config.Config) { eq(t, cfg.Server.Limits.CommandsPerMinute, 30) },
		},
		{
			name: "variable set to the empty string",
			file: "bastion.yaml", yaml: "data_dir: /data\n" + users + "targets:\n  - name: db\n    kind: mysql\n    address: db:3306\n    password: \"${EMPTY}\"\n",
			check: func(t *testing.T, cfg *config.Config) { eq(t, cfg.Targets["db"].Password, "") },
		},
		{
			name: "text around a variable is kept",
			file: "bastion.yaml", yaml: "data_dir: /data\n" + users + "targets:\n  - name: db\n    kind: mysql\n    address: db:3306\n    password: a-${DB_PASSWORD}-$HOME-${DB_USER}\n",
			check: func(t *testing.T, cfg *config.Config) {
				eq(t, cfg.Targets["db"].Password, "a-s3cret-$HOME-bastion_user")
			},
		},
		{
			name: "bare ipv6 address is a /128",
			file: "bastion.yaml", yaml: role("        conditions:\n          networks: [\"2001:db8::1\", \"fe80::1/10\"]\n"),
			check: func(t *testing.T, cfg *config.Config) {
				eq(t, cfg.Policy.Roles["r"].Requestable[0].Conditions.Networks, prefixes("2001:db8::1/128", "fe80::/10"))
			},
		},
		{
			name: "day names and abbreviations",
			file: "bastion.yaml", yaml: role("        conditions:\n          time_windows:\n            - days: [Monday, tues, WED, thurs, fri]\n"),
			check: func(t *testing.T, cfg *config.Config) {
				eq(t, window(cfg).Days, [7]bool{false, true, true, true, true, true, false})
			},
		},
		{
			name: "no days is every day, whole day, utc",
			file: "bastion.yaml", yaml: role("        conditions:\n          time_windows:\n            - {}\n"),
			check: func(t *testing.T, cfg *config.Config) {
				eq(t, window(cfg), policy.Window{Days: [7]bool{true, true, true, true, true, true, true}, To: 24 * time.Hour, Location: time.UTC})
			},
		},
		{
			name: "window ending at 24:00",
			file: "bastion.yaml", yaml: role("        conditions:\n          time_windows:\n            - days: [weekend]\n              from: \"18:45\"\n              to: \"24:00\"\n"),
			check: func(t *testing.T, cfg *config.Config) {
				w := window(cfg)
				eq(t, [2]time.Duration{w.From, w.To}, [2]time.Duration{18*time.Hour + 45*time.Minute, 24 * time.Hour})
			},
		},
		{
			name: "explicit require_reason and max_duration",
			file: "bastion.yaml", yaml: role("        require_reason: false\n        max_duration: 90m\n        approvals: 3\n"),
			check: func(t *testing.T, cfg *config.Config) {
				r := cfg.Policy.Roles["r"].Requestable[0]
				eq(t, []any{r.RequireReason, r.MaxDuration, r.Approvals}, []any{false, 90 * time.Minute, 3})
			},
		},
		{
			name: "auto_approve without approvers",
			file: "bastion.yaml",
			yaml: "data_dir: /data\n" + users + "roles:\n  r:\n    request:\n      - targets: [web01]\n        auto_approve:\n          networks: [10.0.0.0/8]\n",
			check: func(t *testing.T, cfg *config.Config) {
				r := cfg.Policy.Roles["r"].Requestable[0]
				eq(t, r.AutoApprove, &policy.Conditions{Networks: prefixes("10.0.0.0/8")})
				eq(t, len(r.Approvers), 0)
			},
		},
		{
			name: "targets selected by labels only",
			file: "bastion.yaml",
			yaml: "data_dir: /data\n" + users + "roles:\n  r:\n    standing:\n      - labels: {env: dev}\n",
			check: func(t *testing.T, cfg *config.Config) {
				eq(t, cfg.Policy.Roles["r"].Standing[0].Targets, policy.Selector{Labels: map[string]string{"env": "dev"}})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse(tt.file, []byte(tt.yaml), testEnv)
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, tt.yaml)
			}
			tt.check(t, cfg)
		})
	}
}

func eq(t *testing.T, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
}

// ruleHead is a valid file whose last line (9) is inside a request rule, so
// that a case can append fields to the rule from line 10 on.
func ruleHead(approvers string) string {
	return `data_dir: /data
users:
  - name: alice
    roles: [developer]
roles:
  developer:
    request:
      - targets: [web01]
        approvers: [` + approvers + `]
`
}

// targetHead is a valid file whose targets section starts at line 4.
const targetHead = `data_dir: /data
users:
  - name: alice
targets:
`

// TestParseErrors is the golden table of configuration errors: each input
// and the exact message it yields, one line per error.
func TestParseErrors(t *testing.T) {
	const rule = "roles.developer.request[0]"
	tests := []struct {
		name string
		yaml string
		want string
	}{
		// Structure.
		{
			name: "empty file",
			yaml: "",
			want: `bastion.yaml: the file is empty`,
		},
		{
			name: "only comments and blank lines",
			yaml: "# bastion\n\n   \n# nothing yet\n",
			want: `bastion.yaml: the file is empty`,
		},
		{
			name: "yaml syntax error keeps its line",
			yaml: "data_dir: /data\nusers:\n  - name: alice\n  - name: bob: carol\n",
			want: `bastion.yaml:4: mapping values are not allowed in this context`,
		},
		{
			// yaml.v3 reports parser (not scanner) errors at the 0-based
			// line of their context, here the line before the sequence.
			// Bastion keeps whatever line yaml gives.
			name: "yaml indentation error",
			yaml: "data_dir: /data\nusers:\n  - name: alice\n   roles: [x]\n",
			want: `bastion.yaml:2: did not find expected '-' indicator`,
		},
		{
			name: "unterminated quote",
			yaml: "data_dir: \"/data\nusers: []\n",
			want: `bastion.yaml:3: found unexpected end of stream`,
		},
		{
			name: "duplicate key",
			yaml: "data_dir: /data\nusers:\n  - name: alice\ndata_dir: /other\n",
			want: `bastion.yaml:4: data_dir: mapping key "data_dir" already defined at line 1`,
		},
		{
			name: "unknown top-level field",
			yaml: "data_dir: /data\ncolour: blue\nusers:\n  - name: alice\n",
			want: `bastion.yaml:2: colour: unknown field "colour"`,
		},
		{
			name: "unknown nested field",
			yaml: "data_dir: /data\nusers:\n  - name: alice\n    roles: [developer]\nroles:\n  developer:\n    request:\n      - targets: [web01]\n        aprovers: [developer]\n",
			want: `bastion.yaml:9: roles.developer.request[0].aprovers: unknown field "aprovers"`,
		},
		{
			name: "unknown field in a user",
			yaml: "data_dir: /data\nusers:\n  - name: alice\n    role: [developer]\n",
			want: `bastion.yaml:4: users[0].role: unknown field "role"`,
		},
		{
			name: "unknown field in a time window",
			yaml: ruleHead("developer") + "        conditions:\n          time_windows:\n            - from: \"09:00\"\n              until: \"17:00\"\n",
			want: `bastion.yaml:13: roles.developer.request[0].conditions.time_windows[0].until: unknown field "until"`,
		},
		{
			name: "every unknown field is reported",
			yaml: "data_dir: /data\ncolour: blue\nusers:\n  - name: alice\n    shell: /bin/sh\nlisten:\n  sshd: \":22\"\n",
			want: `bastion.yaml:2: colour: unknown field "colour"` + "\n" +
				`bastion.yaml:5: users[0].shell: unknown field "shell"` + "\n" +
				`bastion.yaml:7: listen.sshd: unknown field "sshd"`,
		},
		{
			name: "wrong type",
			yaml: ruleHead("developer") + "        approvals: many\n",
			want: "bastion.yaml:10: roles.developer.request[0].approvals: cannot unmarshal string `many` into int",
		},
		{
			name: "missing data_dir",
			yaml: "users:\n  - name: alice\n",
			want: `bastion.yaml: data_dir: required: the directory for state, keys and recordings`,
		},
		{
			name: "no users",
			yaml: "data_dir: /data\nusers: []\n",
			want: `bastion.yaml:2: users: configure at least one user`,
		},

		// Durations and times of day.
		{
			name: "bad duration",
			yaml: ruleHead("developer") + "        max_duration: 4x\n",
			want: `bastion.yaml:10: ` + rule + `.max_duration: invalid duration "4x" (use e.g. 30m, 4h)`,
		},
		{
			name: "plaintext MySQL on a listener that is not loopback",
			yaml: "data_dir: /data\nlisten:\n  mysql: \"0.0.0.0:3307\"\n  mysql_plaintext: true\nusers:\n  - name: alice\n",
			want: `bastion.yaml:4: listen.mysql_plaintext: plaintext MySQL logins are allowed only on a loopback listener, and listen.mysql is "0.0.0.0:3307" (use TLS: mariadb --ssl, go-sql-driver tls=true)`,
		},
		{
			name: "negative connection limit",
			yaml: "data_dir: /data\nserver:\n  limits:\n    connections_per_user: -1\nusers:\n  - name: alice\n",
			want: `bastion.yaml:4: server.limits.connections_per_user: must be a positive number of connections (or unset for the default)`,
		},
		{
			name: "negative duration",
			yaml: "data_dir: /data\nserver:\n  idle_timeout: -5m\nusers:\n  - name: alice\n",
			want: `bastion.yaml:3: server.idle_timeout: invalid duration "-5m" (use e.g. 30m, 4h)`,
		},
		{
			name: "zero duration",
			yaml: "data_dir: /data\nrequests:\n  pending_ttl: 0s\nusers:\n  - name: alice\n",
			want: `bastion.yaml:3: requests.pending_ttl: invalid duration "0s" (use e.g. 30m, 4h)`,
		},
		{
			name: "duration without unit",
			yaml: "data_dir: /data\nnotify:\n  webhook:\n    url: https://x.example\n    timeout: 30\nusers:\n  - name: alice\n",
			want: `bastion.yaml:5: notify.webhook.timeout: invalid duration "30" (use e.g. 30m, 4h)`,
		},
		{
			name: "bad time of day",
			yaml: ruleHead("developer") + "        conditions:\n          time_windows:\n            - from: 9am\n              to: \"25:00\"\n",
			want: `bastion.yaml:12: ` + rule + `.conditions.time_windows[0].from: invalid time of day "9am" (use HH:MM)` + "\n" +
				`bastion.yaml:13: ` + rule + `.conditions.time_windows[0].to: invalid time of day "25:00" (use HH:MM)`,
		},
		{
			name: "time of day with seconds",
			yaml: ruleHead("developer") + "        auto_approve:\n          time_windows:\n            - to: \"17:00:00\"\n",
			want: `bastion.yaml:12: ` + rule + `.auto_approve.time_windows[0].to: invalid time of day "17:00:00" (use HH:MM)`,
		},
		{
			name: "unknown timezone",
			yaml: ruleHead("developer") + "        conditions:\n          time_windows:\n            - timezone: Mars/Olympus_Mons\n",
			want: `bastion.yaml:12: ` + rule + `.conditions.time_windows[0].timezone: unknown time zone "Mars/Olympus_Mons"`,
		},
		{
			name: "unknown weekday",
			yaml: ruleHead("developer") + "        conditions:\n          time_windows:\n            - days: [mon, funday]\n",
			want: `bastion.yaml:12: ` + rule + `.conditions.time_windows[0].days[1]: unknown day "funday" (mon … sun, weekdays, weekend)`,
		},
		{
			name: "a range is not a weekday",
			yaml: ruleHead("developer") + "        conditions:\n          time_windows:\n            - days:\n                - mon-fri\n                - monkey\n",
			want: `bastion.yaml:13: ` + rule + `.conditions.time_windows[0].days[0]: unknown day "mon-fri" (mon … sun, weekdays, weekend)` + "\n" +
				`bastion.yaml:14: ` + rule + `.conditions.time_windows[0].days[1]: unknown day "monkey" (mon … sun, weekdays, weekend)`,
		},
		{
			name: "too short a weekday",
			yaml: ruleHead("developer") + "        conditions:\n          time_windows:\n            - days: [mo]\n",
			want: `bastion.yaml:12: ` + rule + `.conditions.time_windows[0].days[0]: unknown day "mo" (mon … sun, weekdays, weekend)`,
		},

		// Networks and addresses.
		{
			name: "bad cidr",
			yaml: ruleHead("developer") + "        conditions:\n          networks:\n            - 10.0.0.0/33\n            - corp-lan\n",
			want: `bastion.yaml:12: ` + rule + `.conditions.networks[0]: invalid network "10.0.0.0/33" (use CIDR notation, e.g. 10.0.0.0/8)` + "\n" +
				`bastion.yaml:13: ` + rule + `.conditions.networks[1]: invalid network "corp-lan" (use CIDR notation, e.g. 10.0.0.0/8)`,
		},
		{
			name: "bad auto_approve network",
			yaml: ruleHead("developer") + "        auto_approve:\n          networks: [10.0.0.256]\n",
			want: `bastion.yaml:11: ` + rule + `.auto_approve.networks[0]: invalid network "10.0.0.256" (use CIDR notation, e.g. 10.0.0.0/8)`,
		},
		{
			name: "target address without port",
			yaml: targetHead + "  - name: web01\n    kind: ssh\n    address: web01\n",
			want: `bastion.yaml:7: targets[0].address: invalid address "web01": want host:port`,
		},
		{
			name: "target address with a bad port",
			yaml: targetHead + "  - name: web01\n    kind: ssh\n    address: web01:99999\n",
			want: `bastion.yaml:7: targets[0].address: invalid address "web01:99999": bad port`,
		},
		{
			name: "target without address",
			yaml: targetHead + "  - name: web01\n    kind: ssh\n",
			want: `bastion.yaml:5: targets[0].address: invalid address "": want host:port`,
		},
		{
			name: "bad listen address",
			yaml: "data_dir: /data\nlisten:\n  http: localhost:http\nusers:\n  - name: alice\n",
			want: `bastion.yaml:3: listen.http: invalid address "localhost:http": bad port`,
		},

		// Names and references.
		{
			name: "unknown role referenced by a user",
			yaml: "data_dir: /data\nusers:\n  - name: alice\n    roles: [developer, admin]\nroles:\n  developer:\n    permissions: [audit]\n",
			want: `bastion.yaml:4: users[0].roles[1]: unknown role "admin"`,
		},
		{
			name: "unknown role referenced by approvers",
			yaml: ruleHead("developer, ops"),
			want: `bastion.yaml:9: ` + rule + `.approvers[1]: unknown role "ops"`,
		},
		{
			name: "duplicate user",
			yaml: "data_dir: /data\nusers:\n  - name: alice\n  - name: bob\n  - name: alice\n",
			want: `bastion.yaml:5: users[2].name: duplicate user "alice"`,
		},
		{
			name: "duplicate target",
			yaml: targetHead + "  - name: web01\n    kind: ssh\n    address: web01:22\n  - name: web01\n    kind: ssh\n    address: web02:22\n",
			want: `bastion.yaml:8: targets[1].name: duplicate target "web01"`,
		},
		{
			name: "bad target kind",
			yaml: targetHead + "  - name: cache\n    kind: redis\n    address: cache:6379\n",
			want: `bastion.yaml:6: targets[0].kind: must be ssh, postgres or mysql, not "redis"`,
		},
		{
			name: "missing target kind reported at the target",
			yaml: targetHead + "  - name: web01\n    address: web01:22\n",
			want: `bastion.yaml:5: targets[0].kind: must be ssh, postgres or mysql, not ""`,
		},
		{
			name: "bad target name",
			yaml: targetHead + "  - name: -web01\n    kind: ssh\n    address: web01:22\n",
			want: `bastion.yaml:5: targets[0].name: invalid target name "-web01" (letters, digits, . _ -)`,
		},
		{
			name: "bad user name",
			yaml: "data_dir: /data\nusers:\n  - name: Alice\n  - name: bob\n",
			want: `bastion.yaml:3: users[0].name: invalid user name "Alice" (lowercase letters, digits, . _ -; at most 32)`,
		},
		{
			name: "user name too long",
			yaml: "data_dir: /data\nusers:\n  - name: bob\n  - name: " + strings.Repeat("a", 33) + "\n",
			want: `bastion.yaml:4: users[1].name: invalid user name "` + strings.Repeat("a", 33) + `" (lowercase letters, digits, . _ -; at most 32)`,
		},
		{
			name: "only user invalid",
			yaml: "data_dir: /data\nusers:\n  - name: \"\"\n",
			want: `bastion.yaml:2: users: configure at least one user` + "\n" +
				`bastion.yaml:3: users[0].name: invalid user name "" (lowercase letters, digits, . _ -; at most 32)`,
		},
		{
			name: "bad role name",
			yaml: "data_dir: /data\nusers:\n  - name: alice\nroles:\n  Developers:\n    permissions: [audit]\n",
			want: `bastion.yaml:5: roles.Developers: invalid role name "Developers" (lowercase letters, digits, . _ -)`,
		},
		{
			name: "unknown permission",
			yaml: "data_dir: /data\nusers:\n  - name: alice\nroles:\n  auditor:\n    permissions: [audit, admin]\n",
			want: `bastion.yaml:6: roles.auditor.permissions[1]: unknown permission "admin" (known: audit)`,
		},
		{
			name: "bad login",
			yaml: ruleHead("developer") + "        logins: [root, \"Administrator\"]\n",
			want: `bastion.yaml:10: ` + rule + `.logins[1]: invalid login "Administrator"`,
		},
		{
			name: "bad target pattern",
			yaml: "data_dir: /data\nusers:\n  - name: alice\nroles:\n  r:\n    standing:\n      - targets: [\"web[0-9\"]\n",
			want: `bastion.yaml:7: roles.r.standing[0].targets[0]: invalid pattern "web[0-9"`,
		},
		{
			name: "access without targets",
			yaml: "data_dir: /data\nusers:\n  - name: alice\nroles:\n  r:\n    standing:\n      - logins: [root]\n",
			want: `bastion.yaml:7: roles.r.standing[0].targets: name targets (or select them with labels)`,
		},

		// Keys.
		{
			name: "invalid ssh key",
			yaml: "data_dir: /data\nusers:\n  - name: alice\n    keys:\n      - " + aliceKey + "\n      - hello\n",
			want: `bastion.yaml:6: users[0].keys[1]: not an SSH public key: ssh: no key found`,
		},
		{
			name: "invalid host key",
			yaml: targetHead + "  - name: web01\n    kind: ssh\n    address: web01:22\n    host_key: ssh-ed25519 notbase64!\n",
			want: `bastion.yaml:8: targets[0].host_key: not an SSH public key: ssh: no key found; last parsing error for ignored line: illegal base64 data at input byte 9`,
		},

		// Approval.
		{
			name: "request rule without approvers nor auto_approve",
			yaml: "data_dir: /data\nusers:\n  - name: alice\n    roles: [developer]\nroles:\n  developer:\n    request:\n      - targets: [web01]\n        max_duration: 1h\n",
			want: `bastion.yaml:8: ` + rule + `.approvers: name the roles that may approve (or set auto_approve)`,
		},
		{
			name: "empty approvers",
			yaml: ruleHead(""),
			want: `bastion.yaml:9: ` + rule + `.approvers: name the roles that may approve (or set auto_approve)`,
		},
		{
			name: "negative approvals",
			yaml: ruleHead("developer") + "        approvals: -1\n",
			want: `bastion.yaml:10: ` + rule + `.approvals: must be at least 1`,
		},

		// Environment and store.
		{
			name: "unset variable in a target password",
			yaml: targetHead + "  - name: db01\n    kind: postgres\n    address: db01:5432\n    password: ${DB_PASSWORD_TYPO}\n",
			want: `bastion.yaml:8: targets[0].password: environment variable DB_PASSWORD_TYPO is not set`,
		},
		{
			name: "unset variables in a webhook URL",
			yaml: "data_dir: /data\nnotify:\n  webhook:\n    url: https://hooks.example.com/${A}/${B}\nusers:\n  - name: alice\n",
			want: `bastion.yaml:4: notify.webhook.url: environment variable A is not set` + "\n" +
				`bastion.yaml:4: notify.webhook.url: environment variable B is not set`,
		},
		{
			name: "unset variable in the postgres store",
			yaml: "data_dir: /data\nstore:\n  postgres: ${NOPE}\nusers:\n  - name: alice\n",
			want: `bastion.yaml:3: store.postgres: environment variable NOPE is not set`,
		},
		{
			name: "both store backends",
			yaml: "data_dir: /data\nstore:\n  sqlite: state.db\n  postgres: postgres://db/bastion\nusers:\n  - name: alice\n",
			want: `bastion.yaml:2: store: choose one of sqlite and postgres`,
		},
		{
			name: "webhook URL not http",
			yaml: "data_dir: /data\nnotify:\n  webhook:\n    url: ftp://x.example\nusers:\n  - name: alice\n",
			want: `bastion.yaml:4: notify.webhook.url: must be an http:// or https:// URL`,
		},
		{
			name: "webhook attempts out of range",
			yaml: "data_dir: /data\nnotify:\n  webhook:\n    url: https://x.example\n    attempts: 21\nusers:\n  - name: alice\n",
			want: `bastion.yaml:5: notify.webhook.attempts: must be between 1 and 20`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkParseError(t, tt.yaml, tt.want)
		})
	}
}

// leaves flattens joined errors.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// Every problem in a file is reported at once, each as a *config.Error.
func TestParseReportsEveryError(t *testing.T) {
	const bad = `data_dir: /data
listen:
  http: nowhere
server:
  idle_timeout: forever
users:
  - name: alice
    roles: [developer, ghost]
  - name: alice
targets:
  - name: db01
    kind: oracle
    address: db01:1521
    password: ${UNSET}
roles:
  developer:
    request:
      - targets: [db01]
        max_duration: 1d
  ops:
    standing:
      - targets: [web01]
        conditions:
          networks: [10.0.0.0/40]
`
	_, err := config.Parse("/etc/bastion.yaml", []byte(bad), testEnv)
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	want := []string{
		`/etc/bastion.yaml:3: listen.http: invalid address "nowhere": want host:port`,
		`/etc/bastion.yaml:5: server.idle_timeout: invalid duration "forever" (use e.g. 30m, 4h)`,
		`/etc/bastion.yaml:8: users[0].roles[1]: unknown role "ghost"`,
		`/etc/bastion.yaml:9: users[1].name: duplicate user "alice"`,
		`/etc/bastion.yaml:12: targets[0].kind: must be ssh, postgres or mysql, not "oracle"`,
		`/etc/bastion.yaml:14: targets[0].password: environment variable UNSET is not set`,
		`/etc/bastion.yaml:18: roles.developer.request[0].approvers: name the roles that may approve (or set auto_approve)`,
		`/etc/bastion.yaml:19: roles.developer.request[0].max_duration: invalid duration "1d" (use e.g. 30m, 4h)`,
		`/etc/bastion.yaml:24: roles.ops.standing[0].conditions.networks[0]: invalid network "10.0.0.0/40" (use CIDR notation, e.g. 10.0.0.0/8)`,
	}
	var got []string
	for _, e := range leaves(err) {
		var ce *config.Error
		if !errors.As(e, &ce) {
			t.Errorf("%q is a %T, want *config.Error", e, e)
		}
		got = append(got, e.Error())
	}
	// Roles are a map: compare without order.
	slices.Sort(got)
	slices.SortFunc(want, strings.Compare)
	if !slices.Equal(got, want) {
		t.Errorf("errors:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want) {
		t.Errorf("Error() has %d lines, want %d", n, len(want))
	}
}

func TestErrorFields(t *testing.T) {
	_, err := config.Parse("bastion.yaml", []byte(ruleHead("developer")+"        max_duration: 4x\n"), testEnv)
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *config.Error", err)
	}
	want := config.Error{File: "bastion.yaml", Line: 10, Field: "roles.developer.request[0].max_duration", Msg: `invalid duration "4x" (use e.g. 30m, 4h)`}
	if *ce != want {
		t.Errorf("error = %+v, want %+v", *ce, want)
	}
	for _, tt := range []struct {
		e    config.Error
		want string
	}{
		{config.Error{File: "f.yaml", Msg: "m"}, "f.yaml: m"},
		{config.Error{File: "f.yaml", Line: 3, Msg: "m"}, "f.yaml:3: m"},
		{config.Error{File: "f.yaml", Field: "a.b", Msg: "m"}, "f.yaml: a.b: m"},
		{config.Error{File: "f.yaml", Line: 3, Field: "a.b", Msg: "m"}, "f.yaml:3: a.b: m"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope", "bastion.yaml")
		cfg, err := config.Load(path)
		if err == nil || cfg != nil {
			t.Fatalf("Load(%s) = %v, %v; want an error", path, cfg, err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name %s", err, path)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %q is not fs.ErrNotExist", err)
		}
	})
	t.Run("relative paths against the file's directory", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "bastion.yaml")
		if err := os.WriteFile(path, []byte("data_dir: state\nusers:\n  - name: alice\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		eq(t, cfg.Path, path)
		eq(t, cfg.DataDir, filepath.Join(dir, "state"))
		eq(t, cfg.Store.DSN, filepath.Join(dir, "state", "bastion.db"))
	})
	t.Run("relative file name becomes absolute", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "b.yaml"), []byte("data_dir: state\nusers:\n  - name: alice\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Chdir(dir)
		cfg, err := config.Load("b.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !filepath.IsAbs(cfg.Path) || !filepath.IsAbs(cfg.DataDir) {
			t.Errorf("Path %q, DataDir %q: want absolute paths", cfg.Path, cfg.DataDir)
		}
	})
	t.Run("errors name the absolute path", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "bastion.yaml")
		if err := os.WriteFile(path, []byte("data_dir: /data\nusers:\n  - name: alice\nbogus: 1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path)
		if want := path + `:4: bogus: unknown field "bogus"`; err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
}

// checkParseError parses yaml as bastion.yaml and checks that it fails
// with exactly want, every part of it a *config.Error naming the file.
func checkParseError(t *testing.T, yaml, want string) {
	t.Helper()
	cfg, err := config.Parse("bastion.yaml", []byte(yaml), testEnv)
	if err == nil {
		t.Fatalf("Parse succeeded, want\n%s\ninput:\n%s", want, yaml)
	}
	if cfg != nil {
		t.Errorf("Parse returned a config with its error")
	}
	if got := err.Error(); got != want {
		t.Errorf("error:\n got  %s\n want %s\ninput:\n%s", got, want, yaml)
	}
	for _, e := range leaves(err) {
		var ce *config.Error
		if !errors.As(e, &ce) || ce.File != "bastion.yaml" {
			t.Errorf("error %q (%T) is not a *config.Error naming the file", e, e)
		}
	}
}
