package ca

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// testNow is the fixed clock of tests that need reproducible output.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// testSigner returns a deterministic ed25519 signer derived from seed.
func testSigner(t testing.TB, seed byte) ssh.Signer {
	t.Helper()
	s, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testAuthority returns an ed25519 authority with a deterministic key, a
// clock fixed at testNow and deterministic nonces, so that what it signs is
// byte-for-byte reproducible.
func testAuthority(t testing.TB, name string, seed byte) *SSHAuthority {
	t.Helper()
	a, err := NewSSHAuthority(name, testSigner(t, seed))
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return testNow }
	a.rand = rand.NewChaCha8([32]byte{seed})
	return a
}

// requireBinary skips the test if name is not installed.
func requireBinary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return path
}

// writeTestFile writes a test file and returns its path.
func writeTestFile(t testing.TB, dir, name string, data []byte, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// connDeadline bounds each connection of the test SSH server.
const connDeadline = 10 * time.Second

// serveSSH runs a minimal SSH server on loopback until the test ends. Each
// exec request is answered with "user=<user> cmd=<command>\n" and exit
// status 0.
func serveSSH(t *testing.T, cfg *ssh.ServerConfig) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // runs after the listener is closed (cleanups are LIFO)
	t.Cleanup(func() { l.Close() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { handleSSHConn(t, c, cfg) })
		}
	})
	return l.Addr().String()
}

func handleSSHConn(t *testing.T, c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(connDeadline)); err != nil {
		t.Error(err)
		return
	}
	conn, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		t.Logf("test SSH server: handshake: %v", err) // expected in refusal cases
		return
	}
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			if err := nc.Reject(ssh.UnknownChannelType, "only sessions"); err != nil {
				t.Error(err)
			}
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		serveSession(t, conn.User(), ch, chReqs)
	}
}

func serveSession(t *testing.T, user string, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			if req.WantReply {
				if err := req.Reply(false, nil); err != nil {
					t.Error(err)
				}
			}
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			t.Error(err)
			return
		}
		if err := req.Reply(true, nil); err != nil {
			t.Error(err)
			return
		}
		if _, err := fmt.Fprintf(ch, "user=%s cmd=%s\n", user, payload.Command); err != nil {
			t.Error(err)
			return
		}
		// RFC 4254 order: exit status, end of output, close (deferred).
		if _, err := ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0})); err != nil {
			t.Error(err)
		}
		if err := ch.CloseWrite(); err != nil {
			t.Error(err)
		}
		return
	}
}
