package postgres

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/ca"
	"github.com/bastionhq/bastion/internal/leakcheck"
)

// sslRequestCode is the SSLRequest's protocol code.
const sslRequestCode = 80877103

// rogueSecret is the upstream password the rogue servers must never see.
const rogueSecret = "upstream-S3cret-pw"

// roguePG is a fake PostgreSQL server on a target's address, such as
// anyone who takes over that address could run: it asks for one
// authentication method and keeps every message Bastion sends after its
// startup. When Bastion answers a password request, it lets it in.
type roguePG struct {
	addr string
	got  chan []byte // the messages Bastion sent, once it closed
}

// startRoguePG serves one connection; with cert it accepts TLS.
func startRoguePG(t *testing.T, cert *tls.Certificate, auth []byte) *roguePG {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	r := &roguePG{addr: l.Addr().String(), got: make(chan []byte, 1)}
	go func() {
		nc, err := l.Accept()
		if err != nil {
			r.got <- nil
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		r.got <- r.serve(nc, cert, auth)
	}()
	return r
}

func (r *roguePG) serve(nc net.Conn, cert *tls.Certificate, auth []byte) []byte {
	code, _, err := readStartupPacket(nc)
	if err != nil {
		return nil
	}
	var c net.Conn = nc
	if code == sslRequestCode {
		if cert == nil {
			nc.Write([]byte{'N'})
		} else {
			nc.Write([]byte{'S'})
			c = tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{*cert}})
		}
		if _, _, err := readStartupPacket(c); err != nil {
			return nil
		}
	}
	c.Write(auth)
	var got []byte
	for {
		var hdr [5]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return got
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[1:])-4)
		if _, err := io.ReadFull(c, body); err != nil {
			return got
		}
		got = append(append(got, hdr[:]...), body...)
		if hdr[0] == msgPassword && !bytes.HasPrefix(body, []byte("SCRAM")) {
			c.Write(appendMsg(authMessage(0), msgBackendKeyData, []byte{0, 0, 0, 1, 0, 0, 0, 2}))
			c.Write(appendMsg(nil, msgReadyForQuery, []byte{'I'}))
		}
		if hdr[0] == msgPassword && bytes.HasPrefix(body, []byte("SCRAM")) {
			return got // the mechanism Bastion chose is all the test needs
		}
	}
}

// testTLS is a TLS CA and a certificate it issued for 127.0.0.1.
func testTLS(t *testing.T) (*tls.Certificate, *x509.CertPool) {
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
	return &cert, roots
}

// TestUpstreamPasswordOnlyToVerifiedServer: a server that asks for the
// password in clear or as MD5 gets nothing unless TLS verify-full proved it
// is the target; the user is told which method was refused and why.
func TestUpstreamPasswordOnlyToVerifiedServer(t *testing.T) {
	leakcheck.Check(t)
	cert, roots := testTLS(t)
	cleartext := authMessage(3)
	md5 := authMessage(5, []byte{1, 2, 3, 4})
	tests := []struct {
		name     string
		tls      string
		auth     []byte
		wantTell string // "" when Bastion logs in
	}{
		{name: "cleartext, no TLS", tls: "disable", auth: cleartext, wantTell: "asked for cleartext password authentication, and its server is not verified (tls: disable)"},
		{name: "md5, no TLS", tls: "", auth: md5, wantTell: "asked for MD5 authentication, and its server is not verified (tls: disable)"},
		{name: "cleartext, TLS not verified", tls: "require", auth: cleartext, wantTell: "asked for cleartext password authentication, and its server is not verified (tls: require)"},
		{name: "md5, TLS not verified", tls: "require", auth: md5, wantTell: "asked for MD5 authentication, and its server is not verified (tls: require)"},
		{name: "cleartext, verify-full", tls: "verify-full", auth: cleartext},
		{name: "md5, verify-full", tls: "verify-full", auth: md5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var serverCert *tls.Certificate
			if tt.tls == "require" || tt.tls == "verify-full" {
				serverCert = cert
			}
			rogue := startRoguePG(t, serverCert, tt.auth)
			target := Target{Name: "orders", Address: rogue.addr, Username: "app", Password: rogueSecret, TLS: tt.tls, RootCAs: roots}
			up, err := dialUpstream(context.Background(), target, nil, nil)
			if up != nil {
				up.close()
			}
			got := <-rogue.got
			if tt.wantTell == "" {
				if err != nil {
					t.Fatalf("login over verify-full: %v", err)
				}
				if len(got) == 0 || got[0] != msgPassword {
					t.Fatalf("the verified server got no password message: %q", got)
				}
				return
			}
			if bytes.Contains(got, []byte(rogueSecret)) || bytes.IndexByte(got, msgPassword) == 0 {
				t.Fatalf("the unverified server received a password message: %q", got)
			}
			var ue *upstreamError
			if !errors.As(err, &ue) || !strings.Contains(ue.tell, tt.wantTell) || !strings.HasPrefix(ue.tell, "target orders ") {
				t.Fatalf("err %v, want a refusal saying %q", err, tt.wantTell)
			}
		})
	}
}

// TestUpstreamSCRAMChannelBinding: over TLS, a target that offers
// SCRAM-SHA-256-PLUS gets a SCRAM exchange bound to the TLS connection
// (tls-server-end-point), even when TLS does not verify its certificate.
func TestUpstreamSCRAMChannelBinding(t *testing.T) {
	leakcheck.Check(t)
	cert, _ := testTLS(t)
	rogue := startRoguePG(t, cert, authMessage(10, cstr("SCRAM-SHA-256-PLUS"), cstr("SCRAM-SHA-256"), []byte{0}))
	target := Target{Name: "orders", Address: rogue.addr, Username: "app", Password: rogueSecret, TLS: "require"}
	if up, err := dialUpstream(context.Background(), target, nil, nil); err == nil {
		up.close()
		t.Fatal("logged in to a server that never finished SCRAM")
	}
	got := <-rogue.got
	if len(got) < 5 || got[0] != msgPassword {
		t.Fatalf("no SASLInitialResponse: %q", got)
	}
	body := got[5:]
	if !bytes.HasPrefix(body, cstr("SCRAM-SHA-256-PLUS")) || !bytes.Contains(body, []byte("p=tls-server-end-point,,n=")) {
		t.Fatalf("SASLInitialResponse %q: want SCRAM-SHA-256-PLUS with tls-server-end-point binding", body)
	}
}

func TestRefusedMethodNeedsRequireAuthError(t *testing.T) {
	for _, err := range []error{
		errors.New("server requested password authentication"), // not pgconn's require_auth refusal
		errors.New("failed to connect: dial tcp: connection refused"),
	} {
		if m := refusedMethod(err); m != "" {
			t.Errorf("refusedMethod(%q) = %q, want none", err, m)
		}
	}
}
