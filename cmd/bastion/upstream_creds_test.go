package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	byteorder "encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/harness"
)

// The upstream password goes only to a server that proved it is the target.
// Rogue servers written here stand on targets' addresses, as anyone who
// takes over such an address could: they ask for the password in the ways
// that would hand it over, and keep what they receive. Real servers on the
// same Bastion still work, and MySQL clients read Bastion's refusals.

// credSecret is the targets' upstream password; no rogue may learn it.
const credSecret = "upstream-Cred-S3cret"

// credRoles: alice gets every sandbox target automatically.
const credRoles = `
roles:
  developer:
    request:
      - labels: {env: sandbox}
        auto_approve:
          networks: [127.0.0.0/8]
  lead:
    request:
      - labels: {env: sandbox}
        approvers: [lead]
  auditor:
    permissions: [audit]
`

// rogue keeps what a rogue server received, from every connection.
type rogue struct {
	addr string
	mu   sync.Mutex
	got  []byte
	note []string // what the rogue saw happen ("asked for the key")
	wg   sync.WaitGroup
}

func (r *rogue) keep(b []byte, note ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, b...)
	r.note = append(r.note, note...)
}

func (r *rogue) received() ([]byte, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.got), append([]string(nil), r.note...)
}

// startRogue serves each connection with serve until the test ends.
func startRogue(t *testing.T, serve func(r *rogue, nc net.Conn)) *rogue {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &rogue{addr: l.Addr().String()}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer nc.Close()
				nc.SetDeadline(time.Now().Add(20 * time.Second))
				serve(r, nc)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		r.wg.Wait()
	})
	return r
}

// roguePostgres asks for auth (cleartext or MD5 password) without TLS and
// keeps everything it is sent after the startup.
func roguePostgres(auth pgproto3.BackendMessage) func(r *rogue, nc net.Conn) {
	return func(r *rogue, nc net.Conn) {
		be := pgproto3.NewBackend(nc, nc)
		msg, err := be.ReceiveStartupMessage()
		if _, ok := msg.(*pgproto3.SSLRequest); ok && err == nil {
			nc.Write([]byte{'N'})
			msg, err = be.ReceiveStartupMessage()
		}
		if _, ok := msg.(*pgproto3.StartupMessage); !ok || err != nil {
			return
		}
		be.Send(auth)
		if be.Flush() != nil {
			return
		}
		b, _ := io.ReadAll(nc)
		r.keep(b)
	}
}

// rogueMySQL greets with caching_sha2_password and answers the handshake
// response with reply (full authentication, or an error). It serves its own
// RSA key to whoever asks, keeps everything it is sent after the handshake
// response (and the password, when it can decrypt it), and refuses the
// login.
func rogueMySQL(key *rsa.PrivateKey, reply []byte) func(r *rogue, nc net.Conn) {
	return func(r *rogue, nc net.Conn) {
		nonce := []byte("abcdefghij0123456789")
		caps := uint32(0xffffffff) &^ (1 << 11) // all but TLS
		g := append([]byte{10}, "8.0.40-rogue\x00"...)
		g = byteorder.LittleEndian.AppendUint32(g, 7)
		g = append(append(g, nonce[:8]...), 0)
		g = byteorder.LittleEndian.AppendUint16(g, uint16(caps))
		g = append(g, 45, 2, 0)
		g = byteorder.LittleEndian.AppendUint16(g, uint16(caps>>16))
		g = append(append(g, 21), make([]byte, 10)...)
		g = append(append(g, nonce[8:]...), 0)
		g = append(g, "caching_sha2_password\x00"...)
		if writeMyPacket(nc, 0, g) != nil {
			return
		}
		if _, _, err := readMyPacket(nc); err != nil {
			return
		}
		if writeMyPacket(nc, 2, reply) != nil || reply[0] == 0xff {
			return
		}
		for {
			seq, p, err := readMyPacket(nc)
			if err != nil {
				return
			}
			if bytes.Equal(p, []byte{0x02}) {
				der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
				r.keep(p, "asked for the key")
				writeMyPacket(nc, seq+1, append([]byte{0x01}, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...))
				continue
			}
			if plain, err := rsa.DecryptOAEP(sha1.New(), nil, key, p, nil); err == nil {
				for i := range plain {
					plain[i] ^= nonce[i%len(nonce)]
				}
				r.keep(plain, "decrypted a password")
			}
			r.keep(p)
			writeMyPacket(nc, seq+1, append([]byte{0xff, 0x15, 0x04}, "#28000Access denied for user 'app'"...))
			return
		}
	}
}

func writeMyPacket(w io.Writer, seq byte, p []byte) error {
	_, err := w.Write(append([]byte{byte(len(p)), byte(len(p) >> 8), byte(len(p) >> 16), seq}, p...))
	return err
}

func readMyPacket(r io.Reader) (byte, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	p := make([]byte, int(hdr[0])|int(hdr[1])<<8|int(hdr[2])<<16)
	_, err := io.ReadFull(r, p)
	return hdr[3], p, err
}

func TestUpstreamCredentials(t *testing.T) {
	pg := testPostgres(t)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cleartextPG := startRogue(t, roguePostgres(&pgproto3.AuthenticationCleartextPassword{}))
	md5PG := startRogue(t, roguePostgres(&pgproto3.AuthenticationMD5Password{Salt: [4]byte{1, 2, 3, 4}}))
	fullAuthMy := startRogue(t, rogueMySQL(key, []byte{0x01, 0x04}))
	busyMy := startRogue(t, rogueMySQL(key, append([]byte{0xff, 0x10, 0x04}, "#08004Too many connections"...)))
	pinnedMy := startRogue(t, rogueMySQL(key, []byte{0x01, 0x04}))
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherPinnedMy := startRogue(t, rogueMySQL(key, []byte{0x01, 0x04}))
	b := startBastionWith(t, options{postgres: true, mysql: true, roles: credRoles, targets: func(t *testing.T, _ *ca.Set) string {
		dir := t.TempDir()
		pgCA := filepath.Join(dir, "pg-ca.pem")
		if err := os.WriteFile(pgCA, pg.TLSCert, 0o644); err != nil {
			t.Fatal(err)
		}
		// The pinned keys: the rogue's own (as if it were the target), and
		// another server's.
		pinned, other := filepath.Join(dir, "pinned.pem"), filepath.Join(dir, "other.pem")
		for path, k := range map[string]*rsa.PrivateKey{pinned: key, other: otherKey} {
			der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return fmt.Sprintf(`
targets:
  - {name: rogue-pg, kind: postgres, address: %q, database: orders, username: app, password: %q, labels: {env: sandbox}}
  - {name: rogue-pg-md5, kind: postgres, address: %q, database: orders, username: app, password: %q, tls: disable, labels: {env: sandbox}}
  - {name: verified-pg, kind: postgres, address: %q, database: plain, username: postgres, password: %q, tls: verify-full, ca_file: %q, labels: {env: sandbox}}
  - {name: rogue-my, kind: mysql, address: %q, database: shop, username: app, password: %q, labels: {env: sandbox}}
  - {name: busy-my, kind: mysql, address: %q, database: shop, username: app, password: %q, labels: {env: sandbox}}
  - {name: gone-my, kind: mysql, address: "127.0.0.1:1", database: shop, username: app, password: %q, labels: {env: sandbox}}
  - {name: pinned-my, kind: mysql, address: %q, database: shop, username: app, password: %q, server_public_key: %q, labels: {env: sandbox}}
  - {name: other-pinned-my, kind: mysql, address: %q, database: shop, username: app, password: %q, server_public_key: %q, labels: {env: sandbox}}
`, cleartextPG.addr, credSecret, md5PG.addr, credSecret, pg.Addr, pg.Password, pgCA,
			fullAuthMy.addr, credSecret, busyMy.addr, credSecret, credSecret,
			pinnedMy.addr, credSecret, pinned, otherPinnedMy.addr, credSecret, other)
	}})

	for _, tt := range []struct {
		target, method, tls string
		rogue               *rogue
	}{
		{target: "rogue-pg", method: "cleartext password", tls: "disable", rogue: cleartextPG},
		{target: "rogue-pg-md5", method: "MD5", tls: "disable", rogue: md5PG},
	} {
		t.Run("postgres "+tt.method+" to an unverified server", func(t *testing.T) {
			tok := b.grantDB(t, "alice", tt.target)
			out, errOut, code := psql(t, tok.URL, "-c", "SELECT 1")
			want := fmt.Sprintf("target %s asked for %s authentication, and its server is not verified (tls: %s)", tt.target, tt.method, tt.tls)
			if code == 0 || !strings.Contains(errOut, want) {
				t.Fatalf("psql: exit %d, want a refusal saying %q: %s%s", code, want, out, errOut)
			}
			got, _ := tt.rogue.received()
			if bytes.Contains(got, []byte(credSecret)) || bytes.IndexByte(got, 'p') == 0 {
				t.Fatalf("the rogue server received a password message: %q", got)
			}
			if logs := b.logs.String(); !strings.Contains(logs, want) {
				t.Fatalf("the log does not name the target and the method:\n%s", logs)
			}
			if audit := b.mustRun("carol", "audit", "--user", "alice", "--json"); !strings.Contains(audit, want) {
				t.Fatalf("the audit log does not name the target and the method:\n%s", audit)
			}
		})
	}
	t.Run("postgres verify-full to the real server", func(t *testing.T) {
		tok := b.grantDB(t, "alice", "verified-pg")
		out, errOut, code := psql(t, tok.URL, "-c", "SELECT current_database()")
		if code != 0 || out != "plain\n" {
			t.Fatalf("psql: exit %d: %q %s", code, out, errOut)
		}
	})
	t.Run("mysql full authentication without TLS or a pinned key", func(t *testing.T) {
		tok := b.grantDB(t, "alice", "rogue-my")
		out, errOut, code := mariadbCLI(t, tok, "-e", "SELECT 1")
		want := "ERROR 1251 (08004): bastion: target rogue-my asks for the password itself (caching_sha2_password full authentication) without TLS, and the target's configuration pins no server_public_key"
		if code == 0 || !strings.Contains(errOut, want) {
			t.Fatalf("mariadb: exit %d, want %q: %s%s", code, want, out, errOut)
		}
		got, notes := fullAuthMy.received()
		if bytes.Contains(got, []byte(credSecret)) || len(notes) != 0 {
			t.Fatalf("the rogue server learned something: %q %v", got, notes)
		}
		said := "target rogue-my asks for the password itself (caching_sha2_password full authentication)"
		if logs := b.logs.String(); !strings.Contains(logs, said) {
			t.Fatalf("the log does not name the target and the method:\n%s", logs)
		}
		if audit := b.mustRun("carol", "audit", "--user", "alice", "--json"); !strings.Contains(audit, said) {
			t.Fatalf("the audit log does not name the target and the method:\n%s", audit)
		}
	})
	// With the server's key pinned, the password goes encrypted for that key
	// (the key the server offers is never asked for): only the holder of the
	// pinned key's private half reads it. This rogue holds it when its own
	// key is pinned, and refuses the login either way.
	for _, tt := range []struct {
		target  string
		rogue   *rogue
		readsPW bool
	}{
		{target: "pinned-my", rogue: pinnedMy, readsPW: true},
		{target: "other-pinned-my", rogue: otherPinnedMy},
	} {
		t.Run("mysql full authentication with a pinned key: "+tt.target, func(t *testing.T) {
			tok := b.grantDB(t, "alice", tt.target)
			_, errOut, code := mariadbCLI(t, tok, "-e", "SELECT 1")
			want := "ERROR 1045 (28000): bastion: target " + tt.target + " refused Bastion's login"
			if code == 0 || !strings.Contains(errOut, want) {
				t.Fatalf("mariadb: exit %d, want %q: %s", code, want, errOut)
			}
			got, notes := tt.rogue.received()
			if slices.Contains(notes, "asked for the key") {
				t.Fatal("Bastion asked the server for its key")
			}
			if readPW := slices.Contains(notes, "decrypted a password") && bytes.Contains(got, []byte(credSecret)); readPW != tt.readsPW {
				t.Fatalf("the server read the password: %v, want %v (%v)", readPW, tt.readsPW, notes)
			}
		})
	}
	// The mariadb client prints Bastion's and the target's refusals (a
	// code of the client's range, such as 2003, made it report a
	// malformed packet instead).
	for _, tt := range []struct{ name, target, want string }{
		{name: "the target's own error", target: "busy-my", want: "ERROR 1040 (08004): Too many connections"},
		{name: "target unreachable", target: "gone-my", want: "ERROR 1429 (HY000): bastion: gone-my cannot be reached (the operator's log has the details)"},
	} {
		t.Run("mysql "+tt.name, func(t *testing.T) {
			tok := b.grantDB(t, "alice", tt.target)
			out, errOut, code := mariadbCLI(t, tok, "-e", "SELECT 1")
			if code == 0 || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "malformed") {
				t.Fatalf("mariadb: exit %d, want %q: %s%s", code, tt.want, out, errOut)
			}
		})
	}
}

// TestDemoUpstreamAccounts: the demo logs in to orders over TLS that
// verifies orders' certificate, and to both databases with accounts that
// may read and write the demo's tables and nothing more: DDL is refused by
// the target itself.
func TestDemoUpstreamAccounts(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary, "demo", "--dir", dir, "--ssh-port", "0", "--http-port", "0")
	cmd.Env = append(os.Environ(), "DEMO_STORAGE=file")
	var out syncBuffer
	cmd.Stdout = writerFunc(out.WriteString)
	cmd.Stderr = writerFunc(out.WriteString)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	var info struct {
		SSH string `json:"ssh"`
	}
	waitFor(t, 90*time.Second, func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("demo exited: %v\n%s", err, out.String())
		default:
		}
		data, err := os.ReadFile(filepath.Join(dir, "demo.json"))
		return err == nil && jsonUnmarshal(string(data), &info) == nil
	})
	port := info.SSH[strings.LastIndex(info.SSH, ":")+1:]
	ssh := func(user string, args ...string) string {
		t.Helper()
		a := []string{"-F", "/dev/null", "-p", port, "-i", filepath.Join(dir, "keys", user), "-o", "IdentitiesOnly=yes",
			"-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"), "-o", "StrictHostKeyChecking=yes",
			"-o", "BatchMode=yes", user + "@127.0.0.1"}
		o, e, code := runCmd(t, nil, "ssh", append(a, args...)...)
		if code != 0 {
			t.Fatalf("ssh %s %v: exit %d: %s%s", user, args, code, o, e)
		}
		return o
	}
	grant := func(target string) dbToken {
		var r requestJSON
		if err := jsonUnmarshal(ssh("alice", "request", target, "--for", "30m", "--reason", "INC-2", "--json"), &r); err != nil {
			t.Fatal(err)
		}
		ssh("bob", "approve", fmt.Sprint(r.ID))
		var tok dbToken
		if err := jsonUnmarshal(ssh("alice", "token", fmt.Sprint(r.ID), "--json"), &tok); err != nil {
			t.Fatal(err)
		}
		return tok
	}

	orders := grant("orders")
	if o, e, code := psql(t, orders.URL, "-c", "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"); code != 0 || o != "bastion_orders|t\n" {
		t.Fatalf("orders: exit %d: %q %s, want bastion_orders over TLS", code, o, e)
	}
	if o, e, code := psql(t, orders.URL, "-c", "CREATE TABLE ddl_probe (a int)"); code == 0 || !strings.Contains(e, "permission denied for schema public") {
		t.Fatalf("orders DDL: exit %d: %s%s, want the target's refusal", code, o, e)
	}

	shop := grant("shop")
	if o, e, code := mariadbCLI(t, shop, "-e", "SELECT CURRENT_USER()"); code != 0 || o != "bastion_shop@%\n" {
		t.Fatalf("shop: exit %d: %q %s", code, o, e)
	}
	if o, e, code := mariadbCLI(t, shop, "-e", "CREATE TABLE ddl_probe (a int)"); code == 0 || !strings.Contains(e, "ERROR 1142 (42000)") || !strings.Contains(e, "CREATE command denied to user 'bastion_shop'") {
		t.Fatalf("shop DDL: exit %d: %s%s, want the target's refusal", code, o, e)
	}
}

// TestMySQLRecordingRefusalReadable: with the recording storage down, a
// fail-closed MySQL session is refused, and the mariadb client prints
// Bastion's reason (1105) instead of "malformed packet".
func TestMySQLRecordingRefusalReadable(t *testing.T) {
	t.Parallel()
	db := testMariaDB(t)
	gw := harness.NewS3(t, harness.S3Config{})
	if err := gw.CreateBucket(t.Context(), "recordings"); err != nil {
		t.Fatal(err)
	}
	b := startBastionWith(t, options{mysql: true, roles: credRoles,
		targets: func(t *testing.T, _ *ca.Set) string {
			return fmt.Sprintf(`
targets:
  - {name: plain, kind: mysql, address: %q, database: plain, username: %s, password: %q, labels: {env: sandbox}}
`, db.Addr, db.User, db.Password)
		},
		extra: fmt.Sprintf(`
recordings: s3://recordings/bastion
recording:
  endpoint: %q
  access_key: %q
  secret_key: %q
`, gw.Endpoint, gw.AccessKey, gw.SecretKey)})
	tok := b.grantDB(t, "alice", "plain")
	if o, e, code := mariadbCLI(t, tok, "-e", "SELECT 'recorded'"); code != 0 || o != "recorded\n" {
		t.Fatalf("with the storage up: exit %d: %q %s", code, o, e)
	}
	if err := gw.Pause(); err != nil {
		t.Fatal(err)
	}
	want := "ERROR 1105 (HY000): bastion: the session cannot be recorded now, so it may not start (recording storage unavailable)"
	waitFor(t, s3Wait, func() bool {
		o, e, code := mariadbCLI(t, tok, "-e", "SELECT 'recorded'")
		if code == 0 {
			return false // Bastion has not noticed the outage yet
		}
		if !strings.Contains(e, want) {
			t.Fatalf("with the storage down: exit %d: %s%s, want %q", code, o, e, want)
		}
		return true
	})
}
