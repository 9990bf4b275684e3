package postgres

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/internal/rawconn"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// upstream is the connection to the target, after its login.
type upstream struct {
	nc         net.Conn
	br         *bufio.Reader // the relay's buffers, kept with the connection
	bw         *bufio.Writer
	pid        uint32
	key        []byte
	params     map[string]string // ParameterStatus values the target reported
	txStatus   byte
	cancelAddr string
	tlsConfig  *tls.Config // for cancel requests; nil when the target is plain
}

// upstreamError is a failure to reach or log in to the target; tell is
// safe to show the user.
type upstreamError struct {
	tell string
	err  error
}

func (e *upstreamError) Error() string { return e.tell + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// Accounts gives each session on a target an upstream account of its own
// (the target's `provision:`).
type Accounts interface {
	// Account is called before each upstream login of g's sessions: it
	// makes sure g's account exists and may log in until g ends, and
	// returns its name and password.
	Account(ctx context.Context, g *access.Grant) (user, password string, err error)
}

// dialUpstream logs in to t, as g's own account when t provisions them and
// with its configured credentials otherwise, passing the client's allowed
// run-time parameters, and takes over the raw connection.
func dialUpstream(ctx context.Context, t Target, g *access.Grant, params map[string]string) (*upstream, error) {
	user, password := t.Username, t.Password
	if t.Accounts != nil {
		var err error
		if user, password, err = t.Accounts.Account(ctx, g); err != nil {
			return nil, &upstreamError{tell: "Bastion could not prepare your account on target " + t.Name, err: err}
		}
	}
	cfg, err := upstreamConfig(t, user, password)
	if err != nil {
		return nil, err
	}
	dial := cfg.DialFunc
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dial(ctx, network, addr)
		return rawconn.Wrap(nc), err
	}
	cfg.RuntimeParams = params
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		tell := "target " + t.Name + " cannot be reached"
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			tell = "target " + t.Name + " refused Bastion's login"
		}
		if method := refusedMethod(err); method != "" {
			tell = unverifiedPasswordTell(t, method)
		}
		return nil, &upstreamError{tell: tell, err: err}
	}
	// pgconn may still have a background reader blocked on the
	// connection (it starts one when a write is slow, and only stops it
	// after its next read): without SyncConn, that reader would steal the
	// first bytes of the first answer. SyncConn waits until nothing of
	// pgconn reads the connection any more.
	if err := pc.SyncConn(ctx); err != nil {
		pc.Close(ctx)
		return nil, &upstreamError{tell: "target " + t.Name + " cannot be reached", err: err}
	}
	h, err := pc.Hijack()
	if err != nil {
		pc.Close(ctx)
		return nil, &upstreamError{tell: "target " + t.Name + " cannot be reached", err: err}
	}
	return &upstream{nc: h.Conn, br: bufio.NewReaderSize(h.Conn, relayBufferSize), bw: bufio.NewWriterSize(h.Conn, relayBufferSize), pid: h.PID, key: h.SecretKey, params: h.ParameterStatuses, txStatus: h.TxStatus,
		cancelAddr: t.Address, tlsConfig: cfg.TLSConfig}, nil
}

// upstreamConfig is how Bastion logs in to t as user: t's address,
// database and TLS, and only the authentication methods t's TLS mode
// allows.
func upstreamConfig(t Target, user, password string) (*pgconn.Config, error) {
	host, portStr, err := net.SplitHostPort(t.Address)
	if err != nil {
		return nil, &upstreamError{tell: "target " + t.Name + " is misconfigured", err: err}
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, &upstreamError{tell: "target " + t.Name + " is misconfigured", err: err}
	}
	// ParseConfig("") would read the PG* environment of Bastion's own
	// process; the config is built from the target only.
	cfg, err := pgconn.ParseConfigWithOptions("host=127.0.0.1", pgconn.ParseConfigOptions{})
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port = host, uint16(port)
	cfg.Database = t.Database
	if cfg.Database == "" {
		cfg.Database = t.Name
	}
	cfg.User, cfg.Password = user, password
	cfg.Fallbacks = nil
	cfg.OnNotice, cfg.OnNotification = nil, nil
	cfg.ValidateConnect, cfg.AfterConnect = nil, nil
	cfg.KerberosSrvName, cfg.KerberosSpn = "", ""
	cfg.MinProtocolVersion, cfg.MaxProtocolVersion = "3.0", "3.0"
	cfg.ChannelBinding, cfg.RequireAuth = channelBinding, requireAuth(t.TLS)
	switch t.TLS {
	case "", "disable":
		cfg.TLSConfig = nil
	case "require":
		cfg.TLSConfig = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // sslmode=require does not verify, by definition
	case "verify-full":
		cfg.TLSConfig = &tls.Config{RootCAs: t.RootCAs, ServerName: host, MinVersion: tls.VersionTLS12}
	default:
		return nil, &upstreamError{tell: "target " + t.Name + " is misconfigured", err: fmt.Errorf("tls mode %q", t.TLS)}
	}
	return cfg, nil
}

// ConnectAdmin logs in to t with its configured credentials (with
// provisioning, the admin account that creates the users' accounts), under
// the same TLS and authentication rules as a session's login.
func ConnectAdmin(ctx context.Context, t Target) (*pgconn.PgConn, error) {
	cfg, err := upstreamConfig(t, t.Username, t.Password)
	if err != nil {
		return nil, err
	}
	return pgconn.ConnectConfig(ctx, cfg)
}

// close ends the connection politely: Terminate, then close.
func (u *upstream) close() {
	u.nc.SetWriteDeadline(time.Now().Add(fatalWriteTimeout))
	u.bw.Reset(u.nc)
	u.bw.Write(appendMsg(nil, msgTerminate))
	u.bw.Flush()
	u.nc.Close()
}

// cancel sends the target a CancelRequest for this connection, over TLS
// when the connection uses it.
func (u *upstream) cancel(ctx context.Context) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.cancelAddr)
	if err != nil {
		return err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	if u.tlsConfig != nil {
		ssl, err := (&pgproto3.SSLRequest{}).Encode(nil)
		if err != nil {
			return err
		}
		if _, err := nc.Write(ssl); err != nil {
			return err
		}
		var b [1]byte
		if _, err := nc.Read(b[:]); err != nil {
			return err
		}
		if b[0] != 'S' {
			return errors.New("the target refused TLS for the cancel request")
		}
		tc := tls.Client(nc, u.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		nc = tc
	}
	msg, err := (&pgproto3.CancelRequest{ProcessID: u.pid, SecretKey: u.key}).Encode(nil)
	if err != nil {
		return err
	}
	if _, err := nc.Write(msg); err != nil {
		return err
	}
	// The server closes the connection when it has read the request.
	var b [1]byte
	nc.Read(b[:])
	return nil
}
