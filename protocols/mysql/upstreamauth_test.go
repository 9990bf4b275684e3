package mysql

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/leakcheck"
)

// rogueSecret is the upstream password the rogue servers must never learn.
const rogueSecret = "upstream-S3cret-pw"

// rogueMySQL is a fake MySQL server on a target's address, such as anyone
// who takes over that address could run. It greets with
// caching_sha2_password, then asks for what its script says (full
// authentication, an auth switch, or refuses); it serves its own RSA key to
// whoever asks, and learns the password from whatever it is sent: in
// clear, or encrypted for its key. When it learns the password, it lets
// the client in; otherwise it refuses.
type rogueMySQL struct {
	addr    string
	key     *rsa.PrivateKey
	learned chan string // the password it learned, or "" when the client left
	keyAsk  chan bool   // whether the client asked for its public key
}

// rogueScript is the rogue's answer to the handshake response.
type rogueScript []byte

var (
	askFullAuth = rogueScript{0x01, 0x04}
	nonce20     = []byte("abcdefghij0123456789")
)

func askSwitch(plugin string) rogueScript {
	return append(append(append([]byte{iEOF}, plugin...), 0), append(nonce20, 0)...)
}

func startRogueMySQL(t *testing.T, key *rsa.PrivateKey, cert *tls.Certificate, script rogueScript) *rogueMySQL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	r := &rogueMySQL{addr: l.Addr().String(), key: key, learned: make(chan string, 1), keyAsk: make(chan bool, 1)}
	go func() {
		nc, err := l.Accept()
		if err != nil {
			r.learned <- ""
			r.keyAsk <- false
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		pw, asked := r.serve(nc, cert, script)
		r.learned <- pw
		r.keyAsk <- asked
	}()
	return r
}

func (r *rogueMySQL) serve(nc net.Conn, cert *tls.Certificate, script rogueScript) (learned string, askedKey bool) {
	var c net.Conn = nc
	rd, w := newPacketReader(c, 1<<16), newPacketWriter(c, 1<<16)
	caps := uint32(serverCaps | capSSL)
	hs := &handshakeV10{version: "8.0.40-rogue", connID: 7, nonce: nonce20, caps: caps, charset: 45, plugin: pluginCachingSHA}
	if w.send(0, hs.marshal()) != nil {
		return "", false
	}
	p, _, err := rd.readMessage(1 << 16)
	if err != nil {
		return "", false
	}
	if len(p) == sslRequestLen && cert != nil {
		c = tls.Server(bufferedConn{rd.r, nc}, &tls.Config{Certificates: []tls.Certificate{*cert}})
		rd, w = newPacketReader(c, 1<<16), newPacketWriter(c, 1<<16)
		if _, _, err := rd.readMessage(1 << 16); err != nil {
			return "", false
		}
	}
	if w.send(rd.seq+1, script) != nil || script[0] == iERR {
		return "", false
	}
	for {
		p, _, err := rd.readMessage(1 << 16)
		if err != nil {
			return "", askedKey
		}
		if bytes.Equal(p, []byte{0x02}) || bytes.Equal(p, []byte{0x01}) { // the client asks for the key
			askedKey = true
			der, _ := x509.MarshalPKIXPublicKey(&r.key.PublicKey)
			w.send(rd.seq+1, append([]byte{0x01}, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...))
			continue
		}
		pw := string(bytes.TrimSuffix(p, []byte{0}))
		if plain, err := rsa.DecryptOAEP(sha1.New(), nil, r.key, p, nil); err == nil {
			for i := range plain {
				plain[i] ^= nonce20[i%len(nonce20)]
			}
			pw = string(bytes.TrimSuffix(plain, []byte{0}))
		}
		if pw == rogueSecret {
			w.send(rd.seq+1, okPacket(0))
			return pw, askedKey
		}
		w.send(rd.seq+1, errPacket(erAccessDenied, "28000", "Access denied"))
		return "", askedKey
	}
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testTLS is a client configuration that verifies a certificate it issued
// for 127.0.0.1, and that certificate.
func testTLS(t *testing.T) (*tls.Certificate, *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	authority, err := ca.LoadOrCreateTLS(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := authority.IssueServer([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(authority.Certificate())
	return &cert, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// TestUpstreamPasswordOnlyToVerifiedServer: the password itself goes only
// to a server verified by TLS, or encrypted for the key pinned in the
// configuration; never for the key the server sends. Otherwise the login
// is refused with 1251 naming the target and the method.
func TestUpstreamPasswordOnlyToVerifiedServer(t *testing.T) {
	leakcheck.Check(t)
	rogueKey, targetKey := rsaKey(t), rsaKey(t)
	cert, verified := testTLS(t)
	unverified := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // tls: require
	tests := []struct {
		name     string
		tls      *tls.Config
		pinned   *rsa.PublicKey
		script   rogueScript
		wantTell string // "" when the server (then the real target) learns the password
	}{
		{name: "caching_sha2 full, no TLS, no pinned key", script: askFullAuth,
			wantTell: "asks for the password itself (caching_sha2_password full authentication) without TLS, and the target's configuration pins no server_public_key"},
		{name: "caching_sha2 full, no TLS, another server's key pinned", pinned: &targetKey.PublicKey, script: askFullAuth, wantTell: "-"},
		{name: "caching_sha2 full, no TLS, its key pinned", pinned: &rogueKey.PublicKey, script: askFullAuth},
		{name: "caching_sha2 full, TLS not verified", tls: unverified, script: askFullAuth,
			wantTell: "over TLS that does not verify the server (tls: require)"},
		{name: "caching_sha2 full, TLS verified", tls: verified, script: askFullAuth},
		{name: "sha256_password, no TLS, no pinned key", script: askSwitch(pluginSHA256),
			wantTell: "asks for the password itself (sha256_password) without TLS"},
		{name: "sha256_password, no TLS, its key pinned", pinned: &rogueKey.PublicKey, script: askSwitch(pluginSHA256)},
		{name: "sha256_password, TLS verified", tls: verified, script: askSwitch(pluginSHA256)},
		{name: "clear password, no TLS, key pinned", pinned: &rogueKey.PublicKey, script: askSwitch(pluginClear),
			wantTell: "asks for the password itself (mysql_clear_password) in clear, without TLS"},
		{name: "clear password, TLS not verified", tls: unverified, script: askSwitch(pluginClear), wantTell: "tls: require"},
		{name: "clear password, TLS verified", tls: verified, script: askSwitch(pluginClear)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var serverCert *tls.Certificate
			if tt.tls != nil {
				serverCert = cert
			}
			rogue := startRogueMySQL(t, rogueKey, serverCert, tt.script)
			target := Target{Name: "shop", Address: rogue.addr, Username: "app", Password: rogueSecret, TLS: tt.tls, ServerPublicKey: tt.pinned}
			up, err := dialUpstream(context.Background(), target, requiredCaps, 45)
			if up != nil {
				up.Close()
			}
			learned, askedKey := <-rogue.learned, <-rogue.keyAsk
			if askedKey {
				t.Error("Bastion asked the server for its public key")
			}
			if tt.wantTell == "" {
				if err != nil || learned != rogueSecret {
					t.Fatalf("login: %v (the server learned %q)", err, learned)
				}
				return
			}
			if learned != "" {
				t.Fatalf("the server learned the password (err %v)", err)
			}
			if tt.wantTell == "-" {
				if err == nil {
					t.Fatal("logged in")
				}
				return
			}
			code, state, msg := upstreamRefusal("shop", err)
			if code != erNotSupportedAuth || state != "08004" || !strings.Contains(msg, tt.wantTell) || !strings.HasPrefix(msg, "bastion: target shop asks") {
				t.Fatalf("refusal %d %s %q (err %v), want 1251 saying %q", code, state, msg, err, tt.wantTell)
			}
		})
	}
}

// TestUpstreamRefusalCodes: the client gets the target's own login errors
// with their codes, Bastion's account named only in the log, and
// server-range codes for Bastion's own refusals.
func TestUpstreamRefusalCodes(t *testing.T) {
	leakcheck.Check(t)
	tests := []struct {
		name      string
		err       error
		wantCode  uint16
		wantState string
		wantMsg   string
	}{
		{name: "too many connections", err: targetRefusal("shop", errPacket(1040, "08004", "Too many connections")),
			wantCode: 1040, wantState: "08004", wantMsg: "Too many connections"},
		{name: "unknown database", err: targetRefusal("shop", errPacket(1049, "42000", "Unknown database 'shop'")),
			wantCode: 1049, wantState: "42000", wantMsg: "Unknown database 'shop'"},
		{name: "access denied names no account", err: targetRefusal("shop", errPacket(1045, "28000", "Access denied for user 'app'@'10.0.0.1' (using password: YES)")),
			wantCode: 1045, wantState: "28000", wantMsg: "bastion: target shop refused Bastion's login (the operator's log has the details)"},
		{name: "unreachable", err: errors.New("dial tcp 127.0.0.1:1: connect: connection refused"),
			wantCode: 1429, wantState: "HY000", wantMsg: "bastion: shop cannot be reached (the operator's log has the details)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, state, msg := upstreamRefusal("shop", tt.err)
			if code != tt.wantCode || state != tt.wantState || msg != tt.wantMsg {
				t.Fatalf("got %d %s %q, want %d %s %q", code, state, msg, tt.wantCode, tt.wantState, tt.wantMsg)
			}
			if code >= 2000 && code < 3000 {
				t.Fatalf("code %d is in the client's range", code)
			}
		})
	}
}
