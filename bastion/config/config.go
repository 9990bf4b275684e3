// Package config reads Bastion's YAML configuration file into a Config and
// the policy.Policy it describes. Every error names the file, the line and
// the field at fault ("bastion.yaml:12: roles.developer.request[0].max_duration:
// invalid duration \"4x\""). Secrets may come from the environment as ${NAME}.
package config

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/policy"
)

// Defaults for fields the file leaves out.
const (
	DefaultSSHListen = ":2222"
	// DefaultHandshakeTimeout bounds an SSH handshake including authentication.
	DefaultHandshakeTimeout = 15 * time.Second
	// DefaultIdleTimeout closes a self-service session nobody types into.
	DefaultIdleTimeout = 15 * time.Minute
	// DefaultMaxDuration caps requested grants when a rule sets no maximum.
	DefaultMaxDuration = 8 * time.Hour
	// DefaultWebhookTimeout bounds one webhook delivery attempt.
	DefaultWebhookTimeout = 5 * time.Second
	// DefaultWebhookAttempts is how often a webhook delivery is tried.
	DefaultWebhookAttempts = 5
)

// Config is a loaded, validated configuration.
type Config struct {
	Path       string // the file it was read from
	DataDir    string // absolute
	Listen     Listen
	Server     Server
	Store      Store
	CA         CA
	Recordings string    // a directory, or s3://BUCKET/PREFIX
	Recording  Recording // object storage, spool and retention settings
	Notify     Notify
	Users      map[string]*User
	Targets    map[string]*Target
	Policy     *policy.Policy
}

// Listen holds listener addresses; an empty address disables the listener.
type Listen struct {
	SSH, HTTP, Postgres, MySQL string
	// MySQLPlaintext lets MySQL clients log in without TLS; allowed only
	// when the MySQL listener is on a loopback address.
	MySQLPlaintext bool
}

// Server holds SSH front-end settings.
type Server struct {
	// Hostnames are the names users reach Bastion by; they become the
	// principals of Bastion's host certificate and TLS certificates.
	Hostnames        []string
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	Limits           Limits
}

// Limits caps connections to all front ends together; 0 means the
// default (internal/frontend.DefaultLimits).
type Limits struct {
	// Unauthenticated caps connections still in their handshake or login,
	// in total; UnauthenticatedPerSource, from one address (IPv6: one /64).
	Unauthenticated, UnauthenticatedPerSource int
	// ConnectionsPerUser caps one user's authenticated connections.
	ConnectionsPerUser int
	// PendingRequestsPerUser caps one user's pending access requests
	// (0: access.DefaultMaxPending).
	PendingRequestsPerUser int
	// CommandsPerMinute caps one user's self-service commands over SSH
	// (0: cli.DefaultCommandsPerMinute).
	CommandsPerMinute int
	// AuthFailuresPerSource and AuthFailuresPerUser are the failed
	// authentications a minute from one address (IPv6: one /64), and
	// naming one user, before each further failure is held, for a delay
	// that doubles up to AuthMaxDelay (0: frontend.DefaultAuthLimits).
	AuthFailuresPerSource, AuthFailuresPerUser int
	AuthMaxDelay                               time.Duration
}

// Store selects the state store.
type Store struct {
	Driver string // "sqlite" or "postgres"
	DSN    string // file path for sqlite, URL for postgres
}

// CA names key files; empty paths mean "generated in the data dir".
type CA struct {
	UserCA, UpstreamCA, HostCA, TLSCert, TLSKey string
}

// Notify configures approver notifications.
type Notify struct {
	Webhook *Webhook
}

// Webhook posts JSON events to a URL.
type Webhook struct {
	URL      string
	Timeout  time.Duration
	Attempts int
	// Coalesce is the window in which a burst of like events is posted as
	// one digest (0: the notifier's default; negative: never).
	Coalesce time.Duration
}

// User is a configured user and the SSH keys they log in with.
type User struct {
	Name  string
	Keys  []ssh.PublicKey
	Roles []string
}

// Target is a configured target and how Bastion reaches it.
type Target struct {
	Name     string
	Kind     policy.Kind
	Address  string
	Labels   map[string]string
	HostKey  ssh.PublicKey // pinned host key (SSH), or nil
	Database string        // database name upstream (postgres, mysql)
	Username string        // upstream credentials (postgres, mysql)
	Password string
	// TLS is how Bastion connects to a database target: TLSDisable,
	// TLSRequire or TLSVerifyFull (against CAFile, or the system roots).
	TLS    string
	CAFile string
	// ServerPublicKey is a MySQL target's pinned RSA key: without TLS, the
	// password is sent encrypted for it when the target asks for the
	// password itself; nil refuses that.
	ServerPublicKey *rsa.PublicKey
	// RedactParameters keeps bind parameters out of query recordings.
	RedactParameters bool
	// Provision, when set, gives every user and grant an upstream account
	// of their own; Username is then the admin account that makes them.
	Provision *Provision
}

// Upstream TLS modes of database targets.
const (
	TLSDisable    = "disable"
	TLSRequire    = "require"
	TLSVerifyFull = "verify-full"
)

// Error is one configuration error at a place in the file.
type Error struct {
	File  string
	Line  int // 0 when unknown
	Field string
	Msg   string
}

func (e *Error) Error() string {
	var b bytes.Buffer
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Load reads and validates the file at path. The returned error, if any,
// joins one *Error per problem found.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(abs, data, os.LookupEnv)
}

// Parse validates data as if read from file, resolving relative paths
// against the file's directory and ${NAME} through lookupEnv.
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, nil, err)
	}
	if len(root.Content) == 0 {
		return nil, &Error{File: file, Msg: "the file is empty"}
	}
	lines := map[string]int{}
	indexLines(root.Content[0], "", lines)

	var raw rawConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, yamlError(file, lines, err)
	}
	v := &validator{file: file, dir: filepath.Dir(file), lines: lines, env: lookupEnv}
	cfg := v.config(&raw)
	if len(v.errs) > 0 {
		// Report in file order, whatever order maps were walked in.
		sort.SliceStable(v.errs, func(i, j int) bool {
			a, b := v.errs[i].(*Error), v.errs[j].(*Error)
			return a.Line < b.Line || (a.Line == b.Line && a.Field < b.Field)
		})
		return nil, errors.Join(v.errs...)
	}
	return cfg, nil
}
