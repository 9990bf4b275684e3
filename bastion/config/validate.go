package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/policy"
)

// The file's shape. Durations and other typed values are strings here so
// that converting them can report the field and line.
type rawConfig struct {
	DataDir    string             `yaml:"data_dir"`
	Listen     rawListen          `yaml:"listen"`
	Server     rawServer          `yaml:"server"`
	Store      rawStore           `yaml:"store"`
	CA         rawCA              `yaml:"ca"`
	Recordings string             `yaml:"recordings"`
	Recording  rawRecording       `yaml:"recording"`
	Requests   rawRequests        `yaml:"requests"`
	Notify     rawNotify          `yaml:"notify"`
	Users      []rawUser          `yaml:"users"`
	Targets    []rawTarget        `yaml:"targets"`
	Roles      map[string]rawRole `yaml:"roles"`
}

type rawListen struct {
	SSH      *string `yaml:"ssh"`
	HTTP     string  `yaml:"http"`
	Postgres string  `yaml:"postgres"`
	MySQL    string  `yaml:"mysql"`
	// MySQLPlaintext allows MySQL clients without TLS (loopback only).
	MySQLPlaintext bool `yaml:"mysql_plaintext"`
}

type rawServer struct {
	Hostnames        []string  `yaml:"hostnames"`
	HandshakeTimeout string    `yaml:"handshake_timeout"`
	IdleTimeout      string    `yaml:"idle_timeout"`
	Limits           rawLimits `yaml:"limits"`
}

type rawLimits struct {
	Unauthenticated          int `yaml:"unauthenticated"`
	UnauthenticatedPerSource int `yaml:"unauthenticated_per_source"`
	ConnectionsPerUser       int `yaml:"connections_per_user"`
	PendingRequestsPerUser   int `yaml:"pending_requests_per_user"`
	CommandsPerMinute        int `yaml:"commands_per_minute"`
	// Failed authentication (see Limits.AuthFailures).
	AuthFailuresPerSource int    `yaml:"auth_failures_per_source"`
	AuthFailuresPerUser   int    `yaml:"auth_failures_per_user"`
	AuthMaxDelay          string `yaml:"auth_max_delay"`
}

type rawStore struct {
	SQLite   string `yaml:"sqlite"`
	Postgres string `yaml:"postgres"`
}

type rawCA struct {
	UserCA     string `yaml:"user_ca"`
	UpstreamCA string `yaml:"upstream_ca"`
	HostCA     string `yaml:"host_ca"`
	TLSCert    string `yaml:"tls_cert"`
	TLSKey     string `yaml:"tls_key"`
}

type rawRequests struct {
	PendingTTL string `yaml:"pending_ttl"`
}

type rawNotify struct {
	Webhook *rawWebhook `yaml:"webhook"`
}

type rawWebhook struct {
	URL      string `yaml:"url"`
	Timeout  string `yaml:"timeout"`
	Attempts int    `yaml:"attempts"`
	Coalesce string `yaml:"coalesce"`
}

type rawUser struct {
	Name  string   `yaml:"name"`
	Keys  []string `yaml:"keys"`
	Roles []string `yaml:"roles"`
}

type rawTarget struct {
	Name     string            `yaml:"name"`
	Kind     string            `yaml:"kind"`
	Address  string            `yaml:"address"`
	Labels   map[string]string `yaml:"labels"`
	HostKey  string            `yaml:"host_key"`
	Database string            `yaml:"database"`
	Username string            `yaml:"username"`
	Password string            `yaml:"password"`
	// TLS is how Bastion connects to a database target: disable,
	// require or verify-full (against CAFile, or the system roots).
	TLS              string `yaml:"tls"`
	CAFile           string `yaml:"ca_file"`
	RedactParameters bool   `yaml:"redact_parameters"`
	// ServerPublicKey is a MySQL target's RSA public key (PEM, or a
	// file's path) for sending its password without TLS.
	ServerPublicKey string `yaml:"server_public_key"`
	// Provision creates an upstream account per user and grant (postgres).
	Provision *rawProvision `yaml:"provision"`
}

type rawRole struct {
	Permissions    []string         `yaml:"permissions"`
	Standing       []rawAccess      `yaml:"standing"`
	Request        []rawRequestRule `yaml:"request"`
	Commands       []rawCommandRule `yaml:"commands"`
	CommandDefault string           `yaml:"command_default"`
	Files          []rawFileRule    `yaml:"files"`
	Queries        []rawQueryRule   `yaml:"queries"`
	QueryDefault   string           `yaml:"query_default"`
	ReadOnly       bool             `yaml:"read_only"`
	Forwarding     rawForwarding    `yaml:"forwarding"`
	Recording      string           `yaml:"recording"`
	Durability     string           `yaml:"durability"`
}

// rawForwarding is the SSH forwarding a role allows (all off by default).
// local and remote are each true, false or a list of destinations (see
// rawDestinations).
type rawForwarding struct {
	Local  rawDestinations `yaml:"local"`
	Remote rawDestinations `yaml:"remote"`
	Agent  bool            `yaml:"agent"`
	X11    bool            `yaml:"x11"`
}

// rawCommandRule is one per-command rule of a role (SSH sessions).
type rawCommandRule struct {
	Name    string            `yaml:"name"`
	Action  string            `yaml:"action"`
	Command string            `yaml:"command"`
	Args    string            `yaml:"args"`
	Targets []string          `yaml:"targets"`
	Labels  map[string]string `yaml:"labels"`
	Reason  string            `yaml:"reason"`
	// Approvers are the roles that may allow a command held by a
	// require-approval rule.
	Approvers []string `yaml:"approvers"`
}

type rawAccess struct {
	Targets    []string          `yaml:"targets"`
	Labels     map[string]string `yaml:"labels"`
	Logins     []string          `yaml:"logins"`
	Conditions rawConditions     `yaml:"conditions"`
}

type rawRequestRule struct {
	rawAccess     `yaml:",inline"`
	Approvers     []string       `yaml:"approvers"`
	Approvals     int            `yaml:"approvals"`
	MaxDuration   string         `yaml:"max_duration"`
	RequireReason *bool          `yaml:"require_reason"`
	AutoApprove   *rawConditions `yaml:"auto_approve"`
}

type rawConditions struct {
	TimeWindows []rawWindow `yaml:"time_windows"`
	Networks    []string    `yaml:"networks"`
}

type rawWindow struct {
	Days     []string `yaml:"days"`
	From     string   `yaml:"from"`
	To       string   `yaml:"to"`
	Timezone string   `yaml:"timezone"`
}

// validator converts raw values, collecting every error with its place.
type validator struct {
	file  string
	dir   string
	lines map[string]int
	env   func(string) (string, bool)
	errs  []error
}

func (v *validator) errorf(field, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// line finds the line of field, or of its nearest parent present in the file.
func (v *validator) line(field string) int {
	for p := field; p != ""; {
		if l, ok := v.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

var (
	nameRE   = regexp.MustCompile(`^[a-z_][a-z0-9._-]{0,31}$`)         // users, roles, logins
	targetRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`) // target names
	envRE    = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
)

// expand replaces ${NAME} with the environment variable's value.
func (v *validator) expand(field, s string) string {
	return envRE.ReplaceAllStringFunc(s, func(m string) string {
		name := envRE.FindStringSubmatch(m)[1]
		val, ok := v.env(name)
		if !ok {
			v.errorf(field, "environment variable %s is not set", name)
		}
		return val
	})
}

func (v *validator) duration(field, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		v.errorf(field, "invalid duration %q (use e.g. 30m, 4h)", s)
		return def
	}
	return d
}

// limit is a connection cap: 0 (unset) leaves the default.
func (v *validator) limit(field string, n int) int {
	if n < 0 {
		v.errorf(field, "must be a positive number of connections (or unset for the default)")
		return 0
	}
	return n
}

func (v *validator) path(s string) string {
	if s == "" || filepath.IsAbs(s) {
		return s
	}
	return filepath.Join(v.dir, s)
}

func (v *validator) config(raw *rawConfig) *Config {
	cfg := &Config{
		Path:    v.file,
		DataDir: v.path(raw.DataDir),
		Listen: Listen{
			SSH: DefaultSSHListen, HTTP: raw.Listen.HTTP,
			Postgres: raw.Listen.Postgres, MySQL: raw.Listen.MySQL,
			MySQLPlaintext: v.mysqlPlaintext(raw.Listen),
		},
		Server: Server{
			Hostnames:        raw.Server.Hostnames,
			HandshakeTimeout: v.duration("server.handshake_timeout", raw.Server.HandshakeTimeout, DefaultHandshakeTimeout),
			IdleTimeout:      v.duration("server.idle_timeout", raw.Server.IdleTimeout, DefaultIdleTimeout),
			Limits: Limits{
				Unauthenticated:          v.limit("server.limits.unauthenticated", raw.Server.Limits.Unauthenticated),
				UnauthenticatedPerSource: v.limit("server.limits.unauthenticated_per_source", raw.Server.Limits.UnauthenticatedPerSource),
				ConnectionsPerUser:       v.limit("server.limits.connections_per_user", raw.Server.Limits.ConnectionsPerUser),
				PendingRequestsPerUser:   v.limit("server.limits.pending_requests_per_user", raw.Server.Limits.PendingRequestsPerUser),
				CommandsPerMinute:        v.limit("server.limits.commands_per_minute", raw.Server.Limits.CommandsPerMinute),
				AuthFailuresPerSource:    v.limit("server.limits.auth_failures_per_source", raw.Server.Limits.AuthFailuresPerSource),
				AuthFailuresPerUser:      v.limit("server.limits.auth_failures_per_user", raw.Server.Limits.AuthFailuresPerUser),
				AuthMaxDelay:             v.duration("server.limits.auth_max_delay", raw.Server.Limits.AuthMaxDelay, 0),
			},
		},
		CA: CA{
			UserCA: v.path(raw.CA.UserCA), UpstreamCA: v.path(raw.CA.UpstreamCA), HostCA: v.path(raw.CA.HostCA),
			TLSCert: v.path(raw.CA.TLSCert), TLSKey: v.path(raw.CA.TLSKey),
		},
		Users:   map[string]*User{},
		Targets: map[string]*Target{},
	}
	if raw.DataDir == "" {
		v.errorf("data_dir", "required: the directory for state, keys and recordings")
	}
	if raw.Listen.SSH != nil {
		cfg.Listen.SSH = *raw.Listen.SSH
	}
	for field, addr := range map[string]string{"listen.ssh": cfg.Listen.SSH, "listen.http": cfg.Listen.HTTP, "listen.postgres": cfg.Listen.Postgres, "listen.mysql": cfg.Listen.MySQL} {
		if _, _, err := splitHostPort(addr); addr != "" && err != nil {
			v.errorf(field, "invalid address %q: %v", addr, err)
		}
	}
	if len(cfg.Server.Hostnames) == 0 {
		host, _ := os.Hostname()
		cfg.Server.Hostnames = slices.DeleteFunc([]string{"localhost", "127.0.0.1", host}, func(s string) bool { return s == "" })
	}

	switch {
	case raw.Store.SQLite != "" && raw.Store.Postgres != "":
		v.errorf("store", "choose one of sqlite and postgres")
	case raw.Store.Postgres != "":
		cfg.Store = Store{Driver: "postgres", DSN: v.expand("store.postgres", raw.Store.Postgres)}
	case raw.Store.SQLite != "":
		cfg.Store = Store{Driver: "sqlite", DSN: v.path(raw.Store.SQLite)}
	default:
		cfg.Store = Store{Driver: "sqlite", DSN: filepath.Join(cfg.DataDir, "bastion.db")}
	}
	cfg.Recordings = raw.Recordings
	if cfg.Recordings == "" {
		cfg.Recordings = filepath.Join(cfg.DataDir, "recordings")
	} else if !strings.Contains(cfg.Recordings, "://") {
		cfg.Recordings = v.path(cfg.Recordings)
	}
	cfg.Recording = v.recording(raw.Recording, cfg.Recordings, cfg.DataDir)
	if w := raw.Notify.Webhook; w != nil {
		cfg.Notify.Webhook = &Webhook{
			URL:      v.expand("notify.webhook.url", w.URL),
			Timeout:  v.duration("notify.webhook.timeout", w.Timeout, DefaultWebhookTimeout),
			Attempts: w.Attempts,
		}
		if w.Coalesce == "off" {
			cfg.Notify.Webhook.Coalesce = -1
		} else {
			cfg.Notify.Webhook.Coalesce = v.duration("notify.webhook.coalesce", w.Coalesce, 0)
		}
		if !strings.HasPrefix(cfg.Notify.Webhook.URL, "http://") && !strings.HasPrefix(cfg.Notify.Webhook.URL, "https://") {
			v.errorf("notify.webhook.url", "must be an http:// or https:// URL")
		}
		if w.Attempts == 0 {
			cfg.Notify.Webhook.Attempts = DefaultWebhookAttempts
		} else if w.Attempts < 0 || w.Attempts > 20 {
			v.errorf("notify.webhook.attempts", "must be between 1 and 20")
		}
	}

	pol := &policy.Policy{
		Users: map[string]*policy.User{}, Roles: map[string]*policy.Role{}, Targets: map[string]*policy.Target{},
		PendingTTL: v.duration("requests.pending_ttl", raw.Requests.PendingTTL, policy.DefaultPendingTTL),
	}
	for name, r := range raw.Roles {
		if !nameRE.MatchString(name) {
			v.errorf("roles."+name, "invalid role name %q (lowercase letters, digits, . _ -)", name)
		}
		pol.Roles[name] = v.role(name, r, raw.Roles)
	}
	for i, t := range raw.Targets {
		v.target(fmt.Sprintf("targets[%d]", i), t, cfg, pol)
	}
	for i, u := range raw.Users {
		v.user(fmt.Sprintf("users[%d]", i), u, cfg, pol)
	}
	if len(cfg.Users) == 0 {
		v.errorf("users", "configure at least one user")
	}
	cfg.Policy = pol
	return cfg
}

func splitHostPort(addr string) (string, int, error) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("want host:port")
	}
	port, err := strconv.Atoi(addr[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port")
	}
	return addr[:i], port, nil
}

func (v *validator) user(field string, u rawUser, cfg *Config, pol *policy.Policy) {
	if !nameRE.MatchString(u.Name) {
		v.errorf(field+".name", "invalid user name %q (lowercase letters, digits, . _ -; at most 32)", u.Name)
		return
	}
	if cfg.Users[u.Name] != nil {
		v.errorf(field+".name", "duplicate user %q", u.Name)
		return
	}
	user := &User{Name: u.Name, Roles: u.Roles}
	for i, line := range u.Keys {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			v.errorf(fmt.Sprintf("%s.keys[%d]", field, i), "not an SSH public key: %v", err)
			continue
		}
		if err := userKey(key); err != nil {
			v.errorf(fmt.Sprintf("%s.keys[%d]", field, i), "user %s's key %s %v", u.Name, ssh.FingerprintSHA256(key), err)
			continue
		}
		user.Keys = append(user.Keys, key)
	}
	for i, r := range u.Roles {
		if _, ok := pol.Roles[r]; !ok {
			v.errorf(fmt.Sprintf("%s.roles[%d]", field, i), "unknown role %q", r)
		}
	}
	cfg.Users[u.Name] = user
	pol.Users[u.Name] = &policy.User{Name: u.Name, Roles: u.Roles}
}

func (v *validator) target(field string, t rawTarget, cfg *Config, pol *policy.Policy) {
	if !targetRE.MatchString(t.Name) {
		v.errorf(field+".name", "invalid target name %q (letters, digits, . _ -)", t.Name)
		return
	}
	if cfg.Targets[t.Name] != nil {
		v.errorf(field+".name", "duplicate target %q", t.Name)
		return
	}
	kind := policy.Kind(t.Kind)
	switch kind {
	case policy.KindSSH, policy.KindPostgres, policy.KindMySQL:
	default:
		v.errorf(field+".kind", "must be ssh, postgres or mysql, not %q", t.Kind)
	}
	if _, _, err := splitHostPort(t.Address); err != nil {
		v.errorf(field+".address", "invalid address %q: %v", t.Address, err)
	}
	target := &Target{
		Name: t.Name, Kind: kind, Address: t.Address, Labels: t.Labels,
		Database: t.Database, Username: v.expand(field+".username", t.Username),
		Password: v.expand(field+".password", t.Password),
	}
	v.databaseTarget(field, t, target)
	v.provision(field, t, target)
	if t.HostKey != "" {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(t.HostKey))
		if err != nil {
			v.errorf(field+".host_key", "not an SSH public key: %v", err)
		}
		target.HostKey = key
	}
	cfg.Targets[t.Name] = target
	pol.Targets[t.Name] = &policy.Target{Name: t.Name, Kind: kind, Labels: t.Labels}
}

func (v *validator) role(name string, r rawRole, all map[string]rawRole) *policy.Role {
	field := "roles." + name
	role := &policy.Role{Name: name, Forwarding: v.forwarding(field+".forwarding", r.Forwarding), Recording: v.recordingMode(field+".recording", r.Recording),
		Durability: v.durability(field+".durability", r.Durability)}
	for i, p := range r.Permissions {
		switch perm := policy.Permission(p); perm {
		case policy.PermAudit:
			role.Permissions = append(role.Permissions, perm)
		default:
			v.errorf(fmt.Sprintf("%s.permissions[%d]", field, i), "unknown permission %q (known: audit)", p)
		}
	}
	for i, a := range r.Standing {
		role.Standing = append(role.Standing, v.access(fmt.Sprintf("%s.standing[%d]", field, i), a))
	}
	for i, rr := range r.Request {
		f := fmt.Sprintf("%s.request[%d]", field, i)
		rule := policy.RequestRule{
			Access:        v.access(f, rr.rawAccess),
			Approvers:     rr.Approvers,
			Approvals:     rr.Approvals,
			MaxDuration:   v.duration(f+".max_duration", rr.MaxDuration, DefaultMaxDuration),
			RequireReason: rr.RequireReason == nil || *rr.RequireReason,
		}
		if rr.Approvals == 0 {
			rule.Approvals = 1
		} else if rr.Approvals < 0 {
			v.errorf(f+".approvals", "must be at least 1")
		}
		for j, a := range rr.Approvers {
			if _, ok := all[a]; !ok {
				v.errorf(fmt.Sprintf("%s.approvers[%d]", f, j), "unknown role %q", a)
			}
		}
		if rr.AutoApprove != nil {
			c := v.conditions(f+".auto_approve", *rr.AutoApprove)
			rule.AutoApprove = &c
		} else if len(rr.Approvers) == 0 {
			v.errorf(f+".approvers", "name the roles that may approve (or set auto_approve)")
		}
		role.Requestable = append(role.Requestable, rule)
	}
	if r.CommandDefault != "" {
		role.CommandDefault = v.commandAction(field+".command_default", r.CommandDefault)
	}
	seen := map[string]int{}
	for i, c := range r.Commands {
		role.Commands = append(role.Commands, v.commandRule(fmt.Sprintf("%s.commands[%d]", field, i), i, c, seen, all))
	}
	v.files(field, role, r.Files)
	v.queries(field, role, r, all)
	return role
}

// ruleRE is the shape of a command rule's name: it is shown to users and
// written to the audit log.
var ruleRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$`)

func (v *validator) commandAction(field, s string) policy.CommandAction {
	a := policy.CommandAction(s)
	if !a.Valid() {
		v.errorf(field, "must be allow, deny or require-approval, not %q", s)
	}
	return a
}

// commandRule validates rule i of a role's commands; seen maps the names of
// the rules before it to their index.
func (v *validator) commandRule(field string, i int, c rawCommandRule, seen map[string]int, roles map[string]rawRole) policy.CommandRule {
	v.ruleHead(field, "commands", i, c.Name, c.Action, seen)
	switch _, err := path.Match(c.Command, ""); {
	case c.Command == "":
		v.errorf(field+".command", "required: a pattern for the command's name (e.g. rm, systemctl, apt*)")
	case err != nil:
		v.errorf(field+".command", "invalid pattern %q", c.Command)
	case strings.Contains(c.Command, "/"):
		v.errorf(field+".command", "patterns match the command's name without its directory: use %q, not %q", path.Base(c.Command), c.Command)
	}
	if _, err := path.Match(c.Args, ""); err != nil {
		v.errorf(field+".args", "invalid pattern %q", c.Args)
	}
	for j, pat := range c.Targets {
		if _, err := path.Match(pat, ""); err != nil {
			v.errorf(fmt.Sprintf("%s.targets[%d]", field, j), "invalid pattern %q", pat)
		}
	}
	for j, a := range c.Approvers {
		if _, ok := roles[a]; !ok {
			v.errorf(fmt.Sprintf("%s.approvers[%d]", field, j), "unknown role %q", a)
		}
	}
	if policy.CommandAction(c.Action) == policy.CommandRequireApproval && len(c.Approvers) == 0 {
		v.errorf(field+".approvers", "required for require-approval: the roles that may allow the command")
	}
	return policy.CommandRule{
		Name:      c.Name,
		Action:    policy.CommandAction(c.Action),
		Command:   c.Command,
		Args:      c.Args,
		Targets:   policy.Selector{Names: c.Targets, Labels: c.Labels},
		Reason:    c.Reason,
		Approvers: c.Approvers,
	}
}

func (v *validator) access(field string, a rawAccess) policy.Access {
	if len(a.Targets) == 0 && len(a.Labels) == 0 {
		v.errorf(field+".targets", "name targets (or select them with labels)")
	}
	for i, pat := range a.Targets {
		if _, err := path.Match(pat, ""); err != nil {
			v.errorf(fmt.Sprintf("%s.targets[%d]", field, i), "invalid pattern %q", pat)
		}
	}
	for i, l := range a.Logins {
		if !nameRE.MatchString(l) {
			v.errorf(fmt.Sprintf("%s.logins[%d]", field, i), "invalid login %q", l)
		}
	}
	return policy.Access{
		Targets:    policy.Selector{Names: a.Targets, Labels: a.Labels},
		Logins:     a.Logins,
		Conditions: v.conditions(field+".conditions", a.Conditions),
	}
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func (v *validator) conditions(field string, c rawConditions) policy.Conditions {
	var out policy.Conditions
	for i, n := range c.Networks {
		f := fmt.Sprintf("%s.networks[%d]", field, i)
		p, err := netip.ParsePrefix(n)
		if err != nil {
			a, aerr := netip.ParseAddr(n)
			if aerr != nil {
				v.errorf(f, "invalid network %q (use CIDR notation, e.g. 10.0.0.0/8)", n)
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out.Networks = append(out.Networks, p.Masked())
	}
	for i, w := range c.TimeWindows {
		f := fmt.Sprintf("%s.time_windows[%d]", field, i)
		win := policy.Window{Location: time.UTC}
		if w.Timezone != "" {
			loc, err := time.LoadLocation(w.Timezone)
			if err != nil {
				v.errorf(f+".timezone", "unknown time zone %q", w.Timezone)
			} else {
				win.Location = loc
			}
		}
		if len(w.Days) == 0 {
			win.Days = [7]bool{true, true, true, true, true, true, true}
		}
		for j, d := range w.Days {
			switch d := strings.ToLower(d); d {
			case "weekdays":
				for day := time.Monday; day <= time.Friday; day++ {
					win.Days[day] = true
				}
			case "weekend":
				win.Days[time.Saturday], win.Days[time.Sunday] = true, true
			default:
				// A day's name or an abbreviation of at least three letters
				// ("mon", "tues", "thursday"), not any word that starts like
				// one: "mon-fri" must not silently mean Monday.
				wd, ok := weekdays[d[:min(3, len(d))]]
				if !ok || !strings.HasPrefix(strings.ToLower(wd.String()), d) {
					v.errorf(fmt.Sprintf("%s.days[%d]", f, j), "unknown day %q (mon … sun, weekdays, weekend)", d)
				}
				win.Days[wd] = true
			}
		}
		win.From = v.clock(f+".from", w.From, 0)
		win.To = v.clock(f+".to", w.To, 24*time.Hour)
		out.Windows = append(out.Windows, win)
	}
	return out
}

// clock parses "HH:MM" as an offset from midnight.
func (v *validator) clock(field, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	t, err := time.Parse("15:04", s)
	if err != nil {
		if s == "24:00" {
			return 24 * time.Hour
		}
		v.errorf(field, "invalid time of day %q (use HH:MM)", s)
		return def
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
}

// mysqlPlaintext checks listen.mysql_plaintext: MySQL logins without TLS
// (the secret's proof and every statement readable on the wire) are
// allowed only on a loopback listener, where the wire never leaves the
// machine.
func (v *validator) mysqlPlaintext(l rawListen) bool {
	if !l.MySQLPlaintext {
		return false
	}
	host, _, err := net.SplitHostPort(l.MySQL)
	ip, perr := netip.ParseAddr(host)
	if err != nil || (host != "localhost" && (perr != nil || !ip.IsLoopback())) {
		v.errorf("listen.mysql_plaintext", "plaintext MySQL logins are allowed only on a loopback listener, and listen.mysql is %q (use TLS: mariadb --ssl, go-sql-driver tls=true)", l.MySQL)
		return false
	}
	return true
}
