package ssh

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/internal/leakcheck"
)

func TestSelfServiceCommand(t *testing.T) {
	e := newEnv(t)
	c := e.mustDial("alice", "alice")

	r := run(t, c, "whoami", nil)
	if r.err != nil || r.stdout != "alice\n" || r.stderr != "" || r.status != 0 {
		t.Errorf("whoami: %+v; want stdout alice, status 0", r)
	}
	r = run(t, c, "fail", nil)
	if r.err != nil || r.stdout != "" || r.stderr != "boom\n" || r.status != 3 {
		t.Errorf("fail: %+v; want stderr boom, status 3", r)
	}

	e.commands.mu.Lock()
	actor := e.commands.actors[0]
	e.commands.mu.Unlock()
	if actor.User != "alice" || actor.Key == nil || string(actor.Key.Marshal()) != string(e.keys["alice"].PublicKey().Marshal()) {
		t.Errorf("command ran as %+v; want alice with her key", actor)
	}
	if !actor.Source.IsLoopback() {
		t.Errorf("actor source %v; want the client's loopback address", actor.Source)
	}
	logins := e.audit.of(audit.Login)
	if len(logins) != 1 || logins[0].Subject != "alice" || logins[0].Details["via"] != "self-service" ||
		logins[0].Details["key"] != ssh.FingerprintSHA256(e.keys["alice"].PublicKey()) {
		t.Errorf("login events %+v; want one self-service login of alice with her key's fingerprint", logins)
	}
}

func TestSelfServiceRefusesKeys(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, user, key string
	}{
		{"a key registered to another user", "alice", "bob"},
		{"a key nobody registered", "alice", "mallory"},
		{"a user nobody registered", "mallory", "mallory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.dial(tt.user, tt.key)
			if err == nil {
				c.Close()
				t.Fatalf("login as %s with %s's key succeeded", tt.user, tt.key)
			}
			if !strings.Contains(err.Error(), "unable to authenticate") {
				t.Errorf("error %v; want an authentication failure", err)
			}
		})
	}
	if ran := e.commands.ran(); len(ran) != 0 {
		t.Errorf("commands ran after refused logins: %q", ran)
	}
	if logins := e.audit.of(audit.Login); len(logins) != 0 {
		t.Errorf("login events after refused logins: %+v", logins)
	}
}

func TestBannerExplains(t *testing.T) {
	tests := []struct {
		name       string
		user       string
		selfOnly   bool // no target sessions served
		wantBanner string
	}{
		{"invalid user name", "-alice", false, `bastion: invalid user name "-alice"`},
		{"target sessions not served", "root@web01", true, "sessions on targets (root@web01) are not served here"},
		{"valid user name", "alice", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(_ *env, cfg *Config) {
				if tt.selfOnly {
					cfg.Grants = nil
				}
			})
			var banner string
			c, err := ssh.Dial("tcp", e.addr, &ssh.ClientConfig{
				User:            tt.user,
				Auth:            []ssh.AuthMethod{ssh.PublicKeys(e.keys["alice"])},
				HostKeyCallback: ssh.FixedHostKey(e.hostKey),
				BannerCallback:  func(m string) error { banner += m; return nil },
			})
			if err == nil {
				c.Close()
			}
			if tt.wantBanner == "" {
				if err != nil || banner != "" {
					t.Errorf("login: %v, banner %q; want a login without a banner", err, banner)
				}
				return
			}
			if err == nil {
				t.Errorf("login as %q succeeded", tt.user)
			}
			if !strings.Contains(banner, tt.wantBanner) {
				t.Errorf("banner %q; want it to contain %q", banner, tt.wantBanner)
			}
		})
	}
}

func TestSelfServiceShellWithoutTerminal(t *testing.T) {
	e := newEnv(t, func(_ *env, cfg *Config) { cfg.Banner = "Authorised use only.\n" })
	c := e.mustDial("alice", "alice")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stdout, stderr syncBuffer
	s.Stdin = strings.NewReader("whoami\n\nfail\nexit\nwhoami\n")
	s.Stdout, s.Stderr = &stdout, &stderr
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	err = waitSession(t, s)
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 3 {
		t.Errorf("shell ended with %v; want exit status 3 (that of the last command before exit)", err)
	}
	want := "Authorised use only.\nWelcome to Bastion, alice. Type `help` for commands, `exit` to leave.\nweb01\nalice\n"
	if stdout.String() != want {
		t.Errorf("stdout %q; want %q", stdout.String(), want)
	}
	if stderr.String() != "boom\n" {
		t.Errorf("stderr %q; want boom", stderr.String())
	}
	if got := strings.Join(e.commands.ran(), ","); got != "targets,whoami,fail" {
		t.Errorf("commands run: %s; want targets (the welcome), whoami, fail, and nothing after exit", got)
	}
}

func TestSelfServicePrompt(t *testing.T) {
	e := newEnv(t)
	c := e.mustDial("alice", "alice")
	s, in, out := ptyShell(t, c)
	waitOutput(t, out, "bastion> ")
	if err := s.WindowChange(40, 120); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(in, "whoami\r"); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out, "alice\r\n")
	if _, err := io.WriteString(in, "exit\r"); err != nil {
		t.Fatal(err)
	}
	if err := waitSession(t, s); err != nil {
		t.Errorf("prompt ended with %v; want exit status 0", err)
	}
	if !strings.Contains(out.String(), "Welcome to Bastion, alice.") {
		t.Errorf("output %q; want the welcome", out.String())
	}
}

func TestSelfServiceRefusesChannels(t *testing.T) {
	e := newEnv(t)
	c := e.mustDial("alice", "alice")
	_, err := c.Dial("tcp", "127.0.0.1:22")
	if err == nil || !strings.Contains(err.Error(), "bastion: only sessions are allowed here") {
		t.Errorf("forwarding from self-service: %v; want it refused, saying only sessions are allowed", err)
	}
	// The connection still serves sessions.
	if r := run(t, c, "whoami", nil); r.stdout != "alice\n" {
		t.Errorf("whoami after the refusal: %+v", r)
	}
}

func TestServeAfterClose(t *testing.T) {
	leakcheck.Check(t)
	srv, err := NewServer(Config{HostSigners: []ssh.Signer{newSigner(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := srv.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Close: %v; want ErrServerClosed", err)
	}
	if _, err := NewServer(Config{}); err == nil {
		t.Error("NewServer without a host key succeeded")
	}
}

// TestShutdown checks that Shutdown stops new logins and lets an open
// connection finish, and closes it when its context ends first.
func TestShutdown(t *testing.T) {
	tests := []struct {
		name     string
		finishes bool // the session ends by itself before the deadline
	}{
		{"the session finishes", true},
		{"the deadline comes first", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.mustDial("alice", "alice")
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			in, err := s.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			var out syncBuffer
			s.Stdout = &out
			if err := s.Shell(); err != nil {
				t.Fatal(err)
			}
			waitOutput(t, &out, "Welcome")

			deadline := 100 * time.Millisecond
			if tt.finishes {
				deadline = waitTimeout
			}
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			shut := make(chan error, 1)
			go func() { shut <- e.srv.Shutdown(ctx) }()
			// Listeners close first: a new login fails while the session is open.
			waitFor(t, "logins to be refused", func() bool {
				c, err := e.dial("alice", "alice")
				if err == nil {
					c.Close()
				}
				return err != nil
			})
			if tt.finishes {
				if _, err := io.WriteString(in, "whoami\nexit\n"); err != nil {
					t.Fatal(err)
				}
				if err := waitSession(t, s); err != nil {
					t.Errorf("the session ended with %v; want it to finish normally", err)
				}
				if !strings.Contains(out.String(), "alice\n") {
					t.Errorf("output %q; want the command served during shutdown", out.String())
				}
				// Shutdown waits for connections, not sessions: ssh closes
				// its connection when its session ends.
				c.Close()
				if err := <-shut; err != nil {
					t.Errorf("Shutdown: %v; want nil once the session finished", err)
				}
				return
			}
			if err := <-shut; !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Shutdown with an open session: %v; want the context's deadline", err)
			}
			if err := waitSession(t, s); err == nil {
				t.Error("the session went on after Shutdown's deadline")
			}
		})
	}
}

// TestPanicEndsOneConnection checks that a panic while serving a
// connection (a self-service command, an exec rule) ends that connection
// only: another open connection goes on, and new ones are served.
func TestPanicEndsOneConnection(t *testing.T) {
	tests := []struct{ name, user string }{
		{"self-service command", "alice"},
		{"exec rule on a target", "root@web01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			other := e.mustDial(tt.user, "alice")
			c := e.mustDial(tt.user, "alice")
			if r := run(t, c, "panic", nil); r.err == nil && r.status == 0 {
				t.Errorf("the panicking command succeeded: %v", r)
			}
			closed := make(chan error, 1)
			go func() { closed <- c.Wait() }()
			select {
			case <-closed:
			case <-time.After(waitTimeout):
				t.Fatal("the connection that panicked is still open")
			}
			for name, client := range map[string]*ssh.Client{"the other connection": other, "a new connection": e.mustDial(tt.user, "alice")} {
				want := "alice\n"
				cmd := "whoami"
				if tt.user != "alice" {
					cmd, want = "echo alive", "alive\n"
				}
				if r := run(t, client, cmd, nil); r.err != nil || r.stdout != want {
					t.Errorf("%s after the panic: %v", name, r)
				}
			}
		})
	}
}
