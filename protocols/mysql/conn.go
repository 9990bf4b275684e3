package mysql

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/dbauth"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/internal/frontend"
	"github.com/bastionhq/bastion/internal/rawconn"
	"github.com/bastionhq/bastion/protocols/dbrec"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// serverVersion is the version in the greeting. Clients read features from
// it; it names a MySQL 8 compatible server, and Bastion.
const serverVersion = "8.0.40-Bastion"

// clientConn is one client connection.
type clientConn struct {
	srv  *Server
	fc   *frontend.Conn
	conn net.Conn
	id   uint32
	log  *slog.Logger

	r *packetReader
	w *packetWriter

	caps    uint32 // negotiated with the client, passed upstream
	charset byte   // the client's
	tls     bool
	actor   access.Actor
	grant   *access.Grant
	target  Target
	up      *upstreamConn
	rec     *queryRecorder
	dec     *decider
	stmts   map[uint32]*prepared // prepared statements by id
	// maxMessage is the largest command read, at most the target's
	// max_allowed_packet.
	maxMessage int
	// sqlHolds are the statements prepared with SQL's PREPARE that need
	// approval, by lower-case name: each EXECUTE of one is held.
	sqlHolds map[string]sqlHold

	ctx    context.Context
	cancel context.CancelCauseFunc

	mu   sync.Mutex
	busy bool // a command is being relayed: the main loop tells the client
	// idleSince is when the main loop began waiting for the next command;
	// watchIdle ends the session when that lasts over IdleTimeout (a
	// check once a second costs less than a read deadline per command).
	idleSince time.Time
	closed    bool
	stopWatch func() // ends the grant's watch
}

func (s *Server) newConn(fc *frontend.Conn) *clientConn {
	ctx, cancel := context.WithCancelCause(context.Background())
	conn := rawconn.Wrap(fc.NetConn)
	c := &clientConn{srv: s, fc: fc, conn: conn, id: uint32(fc.ID), ctx: ctx, cancel: cancel, log: fc.Log,
		r: newPacketReader(conn, ioBuffer), w: newPacketWriter(conn, ioBuffer), stmts: map[uint32]*prepared{}}
	c.actor.Source = fc.Source
	fc.OnEnd(c.end)
	return c
}

// end ends the connection with a cause the user is told: an ERR packet is
// sent when the connection is between commands; otherwise the relay sends
// it when it notices.
func (c *clientConn) end(cause error) {
	c.cancel(cause)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if !c.busy && c.grant != nil {
		// The main loop is waiting for the client: wake it. It tells the
		// client why and closes.
		c.conn.SetReadDeadline(time.Now())
		return
	}
	if c.up != nil {
		c.up.conn.SetDeadline(time.Now()) // interrupts a relay; the loop tells the client
	}
	if c.grant == nil {
		c.conn.SetDeadline(time.Now())
	}
}

func (c *clientConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopWatch != nil {
		c.stopWatch()
	}
	c.closed = true
	c.conn.Close()
	if c.up != nil {
		c.up.Close()
	}
}

// serve runs the connection: handshake and login, then commands.
func (c *clientConn) serve() {
	defer c.close()
	defer c.cancel(nil)
	c.conn.SetDeadline(time.Now().Add(c.srv.cfg.HandshakeTimeout))
	if !c.handshake() {
		return
	}
	c.conn.SetDeadline(time.Time{})
	c.commands()
}

// fail sends an ERR packet and reports false.
func (c *clientConn) fail(seq byte, code uint16, state, msg string) bool {
	if err := c.w.send(seq, errPacket(code, state, msg)); err != nil {
		c.log.Debug("send error", "err", err)
	}
	return false
}

func randomNonce() []byte {
	b := make([]byte, 20)
	rand.Read(b)
	for i := range b {
		// Printable, no NUL: some clients treat the nonce as a C string.
		b[i] = b[i]%94 + 33
	}
	return b
}

// handshake greets the client, upgrades to TLS when asked, checks the
// proof of the secret, authorises the grant, and only then logs in to the
// target. It reports whether the session may go on.
func (c *clientConn) handshake() bool {
	ctx := c.ctx
	nonce := randomNonce()
	caps := uint32(serverCaps)
	if c.srv.cfg.TLS != nil {
		caps |= capSSL
	}
	hs := &handshakeV10{version: serverVersion, connID: c.id, nonce: nonce, caps: caps, charset: 45,
		status: statusAutocommit, plugin: c.srv.cfg.AuthPlugin}
	if err := c.w.send(0, hs.marshal()); err != nil {
		return false
	}
	p, seq, err := c.r.readMessage(1 << 16)
	if err != nil {
		c.log.Debug("read handshake response", "err", err)
		return false
	}
	resp, err := parseHandshakeResponse(p)
	if err != nil {
		return c.fail(seq+1, erHandshake, "08S01", "bastion: bad handshake")
	}
	if resp.caps&capSSL != 0 && len(p) == sslRequestLen {
		if c.srv.cfg.TLS == nil {
			return c.fail(seq+1, erHandshake, "08S01", "bastion: TLS is not offered")
		}
		// The client may have sent its ClientHello right behind the
		// SSLRequest: TLS reads what the buffer holds first.
		tc := tls.Server(bufferedConn{c.r.r, c.conn}, c.srv.cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.log.Debug("TLS handshake", "err", err)
			return false
		}
		c.mu.Lock()
		c.conn, c.tls = tc, true
		c.mu.Unlock()
		c.r, c.w = newPacketReader(tc, ioBuffer), newPacketWriter(tc, ioBuffer)
		p, seq, err = c.r.readMessage(1 << 16)
		if err != nil {
			return false
		}
		if resp, err = parseHandshakeResponse(p); err != nil || len(p) == sslRequestLen {
			return c.fail(seq+1, erHandshake, "08S01", "bastion: bad handshake")
		}
	}
	if !c.tls && !c.srv.cfg.AllowPlaintext {
		// Refused before anything of the login is read: without TLS the
		// secret's proof and every statement cross the wire in clear.
		return c.fail(seq+1, erAccessDenied, "28000", "bastion: TLS is required: connect with TLS (mariadb --ssl, mysql --ssl-mode=REQUIRED, go-sql-driver tls=true)")
	}
	if resp.caps&requiredCaps != requiredCaps {
		return c.fail(seq+1, erHandshake, "08S01", "bastion: the client must speak protocol 4.1 with secure authentication")
	}
	c.caps, c.charset = resp.caps&caps, resp.charset
	c.log = c.log.With("user", resp.user, "target", resp.database)
	c.actor = access.Actor{User: resp.user, Source: c.fc.Source}
	in := access.DBLogin{User: resp.user, Target: resp.database, Kind: policy.KindMySQL, Source: c.actor.Source}
	seq++

	if in.Target == "" {
		c.srv.cfg.Access.DBLoginFailed(ctx, in, errors.New("no database (the target) named"))
		return c.fail(seq, erAccessDenied, "28000", "bastion: name the target as the database (for example: mariadb -u alice -p TARGET)")
	}
	secret, seq, why := c.authenticate(ctx, in, resp, nonce, seq)
	if secret == nil {
		if why != nil {
			dbrec.LoginFailed(ctx, c.srv.cfg.Access, c.srv.cfg.Throttle, c.log, in, why)
			c.log.Info("authentication failed", "reason", why)
		}
		return c.fail(seq, erAccessDenied, "28000", fmt.Sprintf("Access denied for user '%s' (using password: %s)", resp.user, yesNo(len(resp.auth) > 0)))
	}
	return c.open(ctx, in, secret, seq)
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// authenticate checks the client's proof of its secret; it returns the
// secret proved (nil when the login failed, and why), and the sequence
// number of the next packet to send.
func (c *clientConn) authenticate(ctx context.Context, in access.DBLogin, resp *handshakeResponse, nonce []byte, seq byte) (*store.DBSecret, byte, error) {
	secret, why := c.srv.cfg.Access.DBSecretFor(ctx, in)
	if why != nil && !errors.Is(why, access.ErrNoDBSecret) {
		c.log.Error("look up database secret", "err", why)
		return nil, seq, why
	}
	native, sha2 := randomNonce(), append(randomNonce(), randomNonce()[:12]...) // never match
	if why == nil {
		native, sha2 = secret.MySQLNative, secret.MySQLSHA2
	}
	plugin, auth := resp.plugin, resp.auth
	if plugin != pluginNative && plugin != pluginCachingSHA {
		// An unknown plugin, or none named: switch to native.
		plugin = pluginNative
		sw := append([]byte{iEOF}, pluginNative...)
		sw = append(append(append(sw, 0), nonce...), 0)
		if err := c.w.send(seq, sw); err != nil {
			return nil, seq, err
		}
		p, s, err := c.r.readMessage(1 << 10)
		if err != nil {
			return nil, seq, err
		}
		auth, seq = append([]byte(nil), p...), s+1
	}
	var err error
	switch {
	case plugin == pluginNative:
		err = dbauth.CheckMySQLNative(native, nonce, auth)
	case len(auth) == 32:
		// caching_sha2_password's fast path: Bastion keeps the verifier, so
		// the "cache" always holds it.
		if err = dbauth.CheckCachingSHA2(sha2, nonce, auth); err == nil {
			if err := c.w.send(seq, []byte{0x01, 0x03}); err != nil {
				return nil, seq, err
			}
			seq++
		}
	default:
		// Full authentication sends the password itself: only over TLS.
		// (Bastion has no RSA key pair to offer instead.)
		if !c.tls {
			return nil, seq, errors.New("caching_sha2_password full authentication needs TLS")
		}
		if err := c.w.send(seq, []byte{0x01, 0x04}); err != nil {
			return nil, seq, err
		}
		p, s, rerr := c.r.readMessage(1 << 10)
		if rerr != nil {
			return nil, seq, rerr
		}
		seq = s + 1
		pw, _, ok := readNulString(p)
		if !ok {
			pw = p
		}
		err = dbauth.CheckPlainSHA2(sha2, string(pw))
	}
	if why != nil {
		return nil, seq, why
	}
	if err != nil {
		return nil, seq, err
	}
	return secret, seq, nil
}

// open authorises the grant, logs in to the target, starts the recording
// and tells the client it is in.
func (c *clientConn) open(ctx context.Context, in access.DBLogin, secret *store.DBSecret, seq byte) bool {
	g, err := c.srv.cfg.Access.AuthorizeDB(ctx, in, secret)
	if err == nil {
		if err := c.fc.Authenticated(g.User); err != nil {
			return c.fail(seq, erConCount, "08004", "bastion: "+err.Error())
		}
	}
	if err != nil {
		c.log.Info("login refused", "reason", err)
		var r *policy.Refusal
		if errors.As(err, &r) {
			return c.fail(seq, erAccessDenied, "28000", "bastion: access refused: "+r.Error())
		}
		return c.fail(seq, erAccessDenied, "28000", "bastion: access refused (the operator's log has the details)")
	}
	t, ok := c.srv.cfg.Targets[g.Target]
	if !ok {
		return c.fail(seq, erAccessDenied, "28000", fmt.Sprintf("bastion: no MySQL target %q", g.Target))
	}
	if backslashCollation(c.charset) && c.srv.cfg.Policy().QueriesRestricted(g.User, g.Target) {
		c.log.Info("login refused", "reason", "character set", "collation", c.charset)
		return c.fail(seq, erUnknownCharset, "42000", fmt.Sprintf("bastion: the connection's character set (collation %d) can hide a backslash inside a multibyte character, so statements could not be checked, and queries are restricted on %s: connect with utf8mb4", c.charset, g.Target))
	}
	c.mu.Lock()
	c.grant, c.target = g, t
	c.mu.Unlock()
	c.log = c.log.With("request", g.RequestID)
	// A fail-closed session does not reach the target while its recording
	// cannot be guaranteed (storage down, spool full).
	if err := c.guaranteeRecording(ctx); err != nil {
		c.log.Error("recording cannot be guaranteed", "err", err)
		c.srv.cfg.Access.Record(ctx, c.actor, c.session("").StartRefused("recording cannot be guaranteed: "+err.Error()))
		return c.fail(seq, erUnknownError, "HY000", "bastion: the session cannot be recorded now, so it may not start (recording storage unavailable)")
	}
	up, err := openUpstream(ctx, t, g, c.caps, c.charset)
	if err != nil {
		c.log.Warn("open target", "err", err)
		c.srv.cfg.Access.Record(ctx, c.actor, c.session("").StartFailed(err.Error()))
		code, state, msg := upstreamRefusal(g.Target, err)
		return c.fail(seq, code, state, msg)
	}
	c.mu.Lock()
	c.up = up
	c.mu.Unlock()
	if err := c.startRecording(ctx); err != nil {
		c.log.Error("start recording", "err", err)
		c.srv.cfg.Access.Record(ctx, c.actor, c.session("").StartFailed("recording unavailable: "+err.Error()))
		return c.fail(seq, erUnknownError, "HY000", "bastion: the session cannot be recorded, so it may not start")
	}
	// A session whose start cannot be audited does not start.
	if err := c.srv.cfg.Access.Audit(ctx, c.actor, c.session(c.sessionID()).Start()); err != nil {
		c.endRecording(ctx, "the session start could not be audited")
		return c.fail(seq, erUnknownError, "HY000", "bastion: the session cannot be audited now, so it may not start (the operator's log has the details)")
	}
	c.log.Info("session started")
	c.dec = newDecider(c.srv.cfg.Policy, g.User, g.Target, t.Database, g.Target)
	if err := c.w.send(seq, okPacket(up.status)); err != nil {
		c.finish("client closed the connection")
		return false
	}
	c.mu.Lock()
	c.idleSince = time.Now()
	c.mu.Unlock()
	c.stopWatch = c.srv.grants.Watch(c.grant, func(msg string) { c.end(errors.New(msg)) })
	c.fc.Go(c.watchIdle)
	return true
}

// session is the connection's session as audit events name it.
func (c *clientConn) session(id string) audit.Session {
	return c.grant.AuditSession(querylog.ProtocolMySQL, id)
}

// watchIdle ends the session when it waits for the client's next command
// for longer than IdleTimeout. (Grants are the Watcher's.)
func (c *clientConn) watchIdle() {
	tick := time.NewTicker(idleCheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case now := <-tick.C:
			c.mu.Lock()
			idle := !c.busy && now.Sub(c.idleSince) > c.srv.cfg.IdleTimeout
			c.mu.Unlock()
			if idle {
				c.end(errors.New("the session was idle for too long"))
				return
			}
		}
	}
}

// bufferedConn is a connection whose reads go through a buffer that may
// already hold data.
type bufferedConn struct {
	r io.Reader
	net.Conn
}

func (b bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
