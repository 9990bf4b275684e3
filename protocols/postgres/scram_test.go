package postgres

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastionhq/bastion/bastion/dbauth"
)

// scramPeer serves one pgconn login: SCRAM against v, then ReadyForQuery.
func scramPeer(t *testing.T, v dbauth.SCRAM, mock bool) (addr string, result <-chan error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	done := make(chan error, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer nc.Close()
		if _, _, err := readStartupPacket(nc); err != nil {
			done <- err
			return
		}
		p := &testConn{br: bufio.NewReader(nc), w: nc}
		err = scramServer(p, v, mock)
		if err == nil {
			err = p.send(authMessage(0), appendMsg(nil, msgBackendKeyData, []byte{0, 0, 0, 1, 0, 0, 0, 2}),
				appendMsg(nil, msgReadyForQuery, []byte{'I'}))
		} else {
			p.send(errorResponse(severityFatal, codeInvalidPassword, "password authentication failed", ""))
		}
		done <- err
	}()
	return l.Addr().String(), done
}

func TestSCRAMServerWithPgconn(t *testing.T) {
	secret := dbauth.NewSecret()
	v, err := dbauth.ParseSCRAM(dbauth.Derive(secret).SCRAM)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		password string
		mock     bool
		options  string
		wantErr  string // "" for success
	}{
		{name: "right secret", password: secret},
		{name: "wrong secret", password: secret + "x", wantErr: "password does not match"},
		{name: "no secret (mock exchange)", password: secret, mock: true, wantErr: "password authentication failed"},
		{name: "channel binding required", password: secret, options: " channel_binding=require", wantErr: "channel binding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, result := scramPeer(t, v, tt.mock)
			host, port, _ := net.SplitHostPort(addr)
			cfg, err := pgconn.ParseConfig("host=" + host + " port=" + port + " user=alice dbname=orders sslmode=disable" + tt.options)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Password = tt.password
			pc, err := pgconn.ConnectConfig(context.Background(), cfg)
			if err == nil {
				pc.Close(context.Background())
			}
			serr := <-result
			if tt.wantErr == "" {
				if err != nil || serr != nil {
					t.Fatalf("client: %v; server: %v", err, serr)
				}
				return
			}
			if err == nil {
				t.Fatal("the client logged in")
			}
			if serr == nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("client: %v; want %q", err, tt.wantErr)
			}
			if serr != nil && !errors.Is(serr, errBadPassword) && !strings.Contains(serr.Error()+err.Error(), tt.wantErr) {
				t.Fatalf("server: %v; client: %v; want %q", serr, err, tt.wantErr)
			}
		})
	}
}

func TestParseClientMessages(t *testing.T) {
	tests := []struct {
		name, first, final string
		wantErr            string
	}{
		{name: "plain", first: "n,,n=,r=abc", final: "c=biws,r=abcdef,p=AAAA"},
		{name: "client could bind", first: "y,,n=,r=abc", final: "c=eSws,r=abcdef,p=AAAA"},
		{name: "binding required", first: "p=tls-server-end-point,,n=,r=abc", wantErr: "channel binding"},
		{name: "authzid", first: "n,a=bob,n=,r=abc", wantErr: "authorization identity"},
		{name: "no nonce", first: "n,,n=", wantErr: "malformed"},
		{name: "comma in nonce", first: "n,,n=,r=", wantErr: "malformed"},
		{name: "no proof", first: "n,,n=,r=abc", final: "c=biws,r=abcdef", wantErr: "no proof"},
		{name: "bad proof", first: "n,,n=,r=abc", final: "c=biws,r=abcdef,p=!!", wantErr: "proof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseClientFirst(tt.first)
			if err == nil && tt.final != "" {
				_, err = parseClientFinal(tt.final)
			}
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}
