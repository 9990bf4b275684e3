package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
	"github.com/bastionhq/bastion/internal/leakcheck"
)

// binary is the bastion binary built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bastion-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "bastion")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build bastion:", err)
		os.Exit(1)
	}
	before := leakcheck.Take()
	code := m.Run()
	for _, f := range atExit {
		f()
	}
	// What the tests started in this process (clients, their connections,
	// helpers) must be gone once they and the shared servers have stopped.
	if err := before.Leaked(); err != nil && code == 0 {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// atExit runs after every test, for servers the tests share.
var atExit []func()

// shared is a server the tests of this binary share: started by the first
// test that needs it, stopped after all of them.
type shared[T interface{ Stop() error }] struct {
	once sync.Once
	v    T
	err  error
}

// get returns the server, starting it on first use; a server that failed
// to start fails every test that needs it.
func (s *shared[T]) get(t *testing.T, what string, start func() (T, error)) T {
	t.Helper()
	s.once.Do(func() {
		if s.v, s.err = start(); s.err == nil {
			atExit = append(atExit, func() { s.v.Stop() })
		}
	})
	if s.err != nil {
		t.Fatalf("start %s: %v", what, s.err)
	}
	return s.v
}

// startTimeout bounds how long a bastion takes to start listening.
const startTimeout = 30 * time.Second

// testBastion is a `bastion serve` process with its users' keys.
type testBastion struct {
	t          *testing.T
	dir        string
	configPath string
	nofile     int // RLIMIT_NOFILE, if the test set one
	sshAddr    string
	sshPort    string
	knownHosts string
	cmd        *exec.Cmd
	logs       *syncBuffer
	exited     chan error
	dbAddrs    sync.Map // "postgres", "mysql" → the front end's address
}

// dbAddr is the address of a database front end ("postgres", "mysql"),
// which the test turned on with options.
func (b *testBastion) dbAddr(kind string) string {
	b.t.Helper()
	a, ok := b.dbAddrs.Load(kind)
	if !ok {
		b.t.Fatalf("bastion does not serve %s (set options.%s)", kind, kind)
	}
	return a.(string)
}

// defaultUsers are the users every test bastion has; roles refer to
// defaultRoles.
var defaultUsers = map[string]string{
	"alice": "developer", "bob": "lead", "dave": "lead", "erin": "lead", "carol": "auditor", "mallory": "developer",
}

const defaultRoles = `
roles:
  developer:
    standing:
      - targets: [staging]
        logins: [ubuntu]
      - targets: [stg]
        logins: [root]
    request:
      - targets: [web01, web02, web03, orders]
        logins: [root, deploy]
        approvers: [lead]
        max_duration: 4h
      - targets: [db-prod]
        approvers: [lead]
        approvals: 2
      - labels: {env: sandbox}
        logins: [root]
        auto_approve:
          networks: [127.0.0.0/8]
      - targets: [vpn-only]
        logins: [root]
        approvers: [lead]
        conditions:
          networks: [10.0.0.0/8]
    commands:
      - {name: no-rm, action: deny, command: rm, reason: deleting files on servers is not allowed}
      - {name: no-shutdown, action: deny, command: "shutdown", reason: ask the on-call lead}
      - {name: touch-needs-lead, action: require-approval, command: touch, approvers: [lead], reason: creating files needs a lead}
  lead:
    request:
      - targets: [web01]
        logins: [root]
        approvers: [lead]
    forwarding: {local: true, agent: true}
    recording: fail-open
  auditor:
    permissions: [audit]
`

const defaultTargets = `
targets:
  - {name: web01, kind: ssh, address: "127.0.0.1:1"}
  - {name: staging, kind: ssh, address: "127.0.0.1:1"}
  - {name: orders, kind: postgres, address: "127.0.0.1:1", database: orders}
  - {name: db-prod, kind: mysql, address: "127.0.0.1:1", database: prod}
  - {name: sandbox1, kind: ssh, address: "127.0.0.1:1", labels: {env: sandbox}}
  - {name: vpn-only, kind: ssh, address: "127.0.0.1:1"}
`

// startBastion writes a config (extra YAML is appended) and starts bastion
// serve on a free port.
func startBastion(t *testing.T, extra string) *testBastion {
	t.Helper()
	return startBastionWith(t, options{extra: extra})
}

// options shape a test bastion.
type options struct {
	extra string // YAML appended to the config
	// targets returns the targets section; it may start real targets that
	// trust the bastion's CAs, which exist by then. Default: defaultTargets.
	targets func(t *testing.T, cas *ca.Set) string
	// postgres and mysql turn on those front ends (on free ports; see
	// testBastion.dbAddr).
	postgres, mysql bool
	// mysqlPlaintext lets MySQL clients in without TLS (loopback only).
	mysqlPlaintext bool
	// roles replaces defaultRoles (it must define developer, lead and
	// auditor, the roles of defaultUsers).
	roles string
	// server is added to the server section (YAML flow mapping entries,
	// e.g. "handshake_timeout: 3s").
	server string
	// nofile, when set, is the soft and hard RLIMIT_NOFILE bastion runs
	// under (through prlimit).
	nofile int
}

func startBastionWith(t *testing.T, o options) *testBastion {
	t.Helper()
	dir := t.TempDir()
	targets := defaultTargets
	if o.targets != nil {
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		cas, err := ca.LoadOrCreate(filepath.Join(dir, "data", "ca"), ca.Files{})
		if err != nil {
			t.Fatal(err)
		}
		targets = o.targets(t, cas)
	}
	var users strings.Builder
	users.WriteString("users:\n")
	for name, role := range defaultUsers {
		pub := writeKey(t, filepath.Join(dir, "keys", name))
		fmt.Fprintf(&users, "  - {name: %s, roles: [%s], keys: [%q]}\n", name, role, pub)
	}
	listen := `ssh: "127.0.0.1:0"`
	if o.postgres {
		listen += `, postgres: "127.0.0.1:0"`
	}
	if o.mysql {
		listen += `, mysql: "127.0.0.1:0"`
	}
	if o.mysqlPlaintext {
		listen += `, mysql_plaintext: true`
	}
	roles := defaultRoles
	if o.roles != "" {
		roles = o.roles
	}
	server := "hostnames: [127.0.0.1, localhost]"
	if o.server != "" {
		server += ", " + o.server
	}
	if !strings.Contains(o.server, "limits:") {
		// Tests poll with waitFor as fast as ssh runs; the per-user command
		// limit would slow them, not test them (it has its own test).
		server += ", limits: {commands_per_minute: 100000}"
	}
	cfg := "data_dir: ./data\nlisten: {" + listen + "}\nserver: {" + server + "}\n" +
		users.String() + targets + roles + o.extra
	b := &testBastion{t: t, dir: dir, configPath: filepath.Join(dir, "bastion.yaml"), nofile: o.nofile}
	if err := os.WriteFile(b.configPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	b.start()
	t.Cleanup(b.stop)
	b.knownHosts = filepath.Join(dir, "known_hosts")
	var ca struct {
		HostCA string `json:"host_ca"`
	}
	out, _, code := b.local("ca", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &ca) != nil {
		t.Fatalf("bastion ca --json: exit %d: %s", code, out)
	}
	line := fmt.Sprintf("@cert-authority [127.0.0.1]:%s %s\n", b.sshPort, ca.HostCA)
	if err := os.WriteFile(b.knownHosts, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// start runs bastion serve and waits for its "serving ssh" log line.
func (b *testBastion) start() {
	t := b.t
	t.Helper()
	b.logs = &syncBuffer{}
	b.cmd = exec.Command(binary, "serve", "--config", b.configPath)
	if b.nofile > 0 {
		// prlimit execs bastion in its own process: the PID is bastion's.
		n := fmt.Sprint(b.nofile)
		b.cmd = exec.Command("prlimit", "--nofile="+n+":"+n, "--", binary, "serve", "--config", b.configPath)
	}
	stderr, err := b.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			b.logs.WriteString(line + "\n")
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) != nil {
				continue
			}
			switch rec.Msg {
			case "serving ssh":
				addr <- rec.Addr
			case "serving postgres", "serving mysql":
				b.dbAddrs.Store(strings.TrimPrefix(rec.Msg, "serving "), rec.Addr)
			}
		}
	}()
	b.exited = make(chan error, 1)
	go func() { b.exited <- b.cmd.Wait() }()
	select {
	case a := <-addr:
		b.sshAddr = a
		b.sshPort = a[strings.LastIndex(a, ":")+1:]
	case err := <-b.exited:
		t.Fatalf("bastion exited before listening: %v\n%s", err, b.logs.String())
	case <-time.After(startTimeout):
		t.Fatalf("bastion did not listen within %s\n%s", startTimeout, b.logs.String())
	}
}

func (b *testBastion) stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Signal(os.Interrupt)
	select {
	case <-b.exited:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.exited
	}
	b.cmd = nil
	if b.t.Failed() {
		b.t.Logf("bastion log:\n%s", b.logs.String())
	}
}

// sshArgs are the options every test ssh uses: no user config, only the
// given key, Bastion's host certificate checked against its host CA. The
// extra options come first: ssh keeps the first value of an option.
func (b *testBastion) sshArgs(user string, extra ...string) []string {
	args := append(extra, "-F", "/dev/null", "-p", b.sshPort,
		"-i", filepath.Join(b.dir, "keys", user), "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile="+b.knownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR")
	return args
}

// ssh runs the real OpenSSH client as user with the given remote command.
func (b *testBastion) ssh(user string, command ...string) (stdout, stderr string, code int) {
	b.t.Helper()
	args := append(b.sshArgs(user), user+"@127.0.0.1")
	return runCmd(b.t, nil, "ssh", append(args, command...)...)
}

// local runs a bastion subcommand on the server's config.
func (b *testBastion) local(args ...string) (stdout, stderr string, code int) {
	b.t.Helper()
	return runCmd(b.t, nil, binary, append([]string{"--config", b.configPath}, args...)...)
}

func runCmd(t *testing.T, stdin io.Reader, name string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, stdin
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", name, err)
	}
	return out.String(), errb.String(), code
}

// writeKey writes an ed25519 key pair in OpenSSH format and returns the
// public key line.
func writeKey(t *testing.T, path string) string {
	t.Helper()
	line, err := harness.WriteKeyPair(path, "")
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// requestJSON is the subset of a request's --json output the tests read.
type requestJSON struct {
	ID        int64    `json:"id"`
	State     string   `json:"state"`
	Requester string   `json:"requester"`
	Targets   []string `json:"targets"`
	Logins    []string `json:"logins"`
	GrantEnd  string   `json:"grant_end"`
	Approvals []struct {
		Approver string `json:"approver"`
	} `json:"approvals"`
}

// mustRequest creates a request as user and returns it.
func (b *testBastion) mustRequest(user string, args ...string) requestJSON {
	b.t.Helper()
	out, errOut, code := b.ssh(user, append(append([]string{"request"}, args...), "--json")...)
	if code != 0 {
		b.t.Fatalf("request %v: exit %d: %s%s", args, code, out, errOut)
	}
	var r requestJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		b.t.Fatalf("request --json output %q: %v", out, err)
	}
	return r
}

func (b *testBastion) mustRun(user string, command ...string) string {
	b.t.Helper()
	out, errOut, code := b.ssh(user, command...)
	if code != 0 {
		b.t.Fatalf("%s: %v: exit %d: %s%s", user, command, code, out, errOut)
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) WriteString(str string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.WriteString(str)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
