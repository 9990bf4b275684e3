package postgres

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"

	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/dbauth"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/internal/frontend"
	"github.com/bastionhq/bastion/internal/rawconn"
	"github.com/bastionhq/bastion/protocols/dbrec"
	"github.com/bastionhq/bastion/protocols/postgres/pgsql"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// fatalWriteTimeout bounds writing the final FATAL message to a client
// that does not read.
const fatalWriteTimeout = time.Second

// conn is one client connection.
type conn struct {
	srv *Server
	fc  *frontend.Conn
	nc  net.Conn // the client; TLS after the handshake
	br  *bufio.Reader
	bw  *bufio.Writer
	// bwMu guards bw while relaying: the target-to-client loop holds it
	// except while it waits for the target, and a notice to the client
	// (a statement held for approval) takes it.
	bwMu sync.Mutex
	log  *slog.Logger

	requested uint32 // the protocol version the client asked for
	st        *startup
	actor     access.Actor
	grant     *access.Grant
	target    Target
	pid       uint32 // the process ID and key the client was given
	key       []byte

	up      *upstream
	ubr     *bufio.Reader
	ubw     *bufio.Writer
	poolKey poolKey
	// lastStatus is the transaction status of the target's last
	// ReadyForQuery (target-to-client loop only).
	lastStatus byte
	// lasting: the session ran something DISCARD ALL does not undo, so its
	// target connection is not reused (client-to-target loop only).
	lasting bool

	ctx    context.Context
	cancel context.CancelCauseFunc
	activity

	dec     *decider
	rec     *queryRecorder
	pending queue
	ext     extendedState // client-to-target loop only
	copy    copyState
	// signalChecks caches checkSignals' refusals by text (client-to-target
	// loop only).
	signalChecks map[string]string
	bigIn        []byte // messages larger than the read buffer, each way
	bigOut       []byte

	endOnce   sync.Once
	stopWatch func() // ends the grant's watch
}

func newConn(s *Server, fc *frontend.Conn) *conn {
	c := &conn{srv: s, fc: fc, nc: rawconn.Wrap(fc.NetConn), log: fc.Log}
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	c.actor.Source = fc.Source
	fc.OnEnd(c.end)
	c.touch()
	return c
}

// newKey makes up the process ID and cancel key the client sees: 4 bytes
// of key in protocol 3.0, 32 in 3.2.
func (c *conn) newKey() {
	n := 4
	if c.st != nil && c.st.protocol >= protocol32 {
		n = 32
	}
	b := randBytes(4 + n)
	c.pid = binary.BigEndian.Uint32(b) &^ (1 << 31) // PostgreSQL's PIDs are positive
	c.key = b[4:]
}

// end closes the connection, telling the client why.
func (c *conn) end(why error) { c.cancel(&endError{err: why}) }

// endError is a reason to end a live connection that the client is told,
// with its SQLSTATE (admin_shutdown when empty).
type endError struct {
	err  error
	code string
}

func (e *endError) Error() string { return e.err.Error() }
func (e *endError) Unwrap() error { return e.err }

// close closes the client connection (a panic's last resort).
func (c *conn) close(why error) {
	c.cancel(why)
	c.nc.Close()
	if c.up != nil {
		c.up.nc.Close()
	}
}

// readMessage and send make conn a msgConn for the login.
func (c *conn) readMessage(limit int) (byte, []byte, error) {
	hdr, err := c.br.Peek(headerLen)
	if err != nil {
		return 0, nil, err
	}
	n, err := bodyLen(hdr, limit)
	if err != nil {
		return 0, nil, err
	}
	typ := hdr[0]
	if _, err := c.br.Discard(headerLen); err != nil {
		return 0, nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return 0, nil, err
	}
	return typ, body, nil
}

func (c *conn) send(msgs ...[]byte) error {
	for _, m := range msgs {
		if _, err := c.bw.Write(m); err != nil {
			return err
		}
	}
	return c.bw.Flush()
}

// fatal tells the client why the connection ends and closes it.
func (c *conn) fatal(code, msg string) {
	c.nc.SetWriteDeadline(time.Now().Add(fatalWriteTimeout))
	m := errorResponse(severityFatal, code, "bastion: "+msg, "")
	if c.bw != nil {
		c.bw.Write(m)
		c.bw.Flush()
	} else {
		c.nc.Write(m)
	}
	c.nc.Close()
}

// serve runs the connection: login, then relay until either side ends.
func (c *conn) serve() {
	c.nc.SetDeadline(time.Now().Add(c.srv.cfg.HandshakeTimeout))
	st, cr, err := c.handshake()
	if cr != nil {
		c.nc.Close()
		c.srv.cancel(cr)
		return
	}
	if err != nil {
		c.refuseStartup(err)
		return
	}
	c.st = st
	c.actor.User = st.user
	c.log = c.log.With("user", st.user, "target", st.database)
	if !c.login() {
		return
	}
	c.nc.SetDeadline(time.Time{})
	c.relay()
}

func (c *conn) refuseStartup(err error) {
	var se *startupError
	if errors.As(err, &se) {
		c.log.Info("refused at startup", "reason", se.msg)
		c.fatal(se.code, se.msg)
		return
	}
	if !isClosed(err) {
		c.log.Info("startup failed", "err", err)
	}
	c.nc.Close()
}

// login authenticates and authorises the client, opens the target, and
// starts the recording; it reports whether the connection may relay.
func (c *conn) login() bool {
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.cfg.HandshakeTimeout)
	defer cancel()
	if nv := negotiateVersion(c.requested, c.st); nv != nil {
		if err := c.send(nv); err != nil {
			c.nc.Close()
			return false
		}
	}
	in := access.DBLogin{User: c.st.user, Target: c.st.database, Kind: policy.KindPostgres, Source: c.actor.Source}
	secret, why := c.srv.cfg.Access.DBSecretFor(ctx, in)
	var v dbauth.SCRAM
	if why == nil {
		v, why = dbauth.ParseSCRAM(secret.SCRAM)
	} else if !errors.Is(why, access.ErrNoDBSecret) {
		c.log.Error("look up database secret", "err", why)
		c.fatal(codeConnectionFailure, "internal error (the operator's log has the details)")
		return false
	}
	mock := why != nil
	if mock {
		v = mockVerifier(c.srv.mockKey, c.st.user, c.st.database)
	}
	if err := scramServer(c, v, mock); err != nil {
		if why == nil {
			why = err
		}
		dbrec.LoginFailed(ctx, c.srv.cfg.Access, c.srv.cfg.Throttle, c.log, in, why)
		c.log.Info("authentication failed", "reason", why)
		c.fatal(codeInvalidPassword, fmt.Sprintf("password authentication failed for user %q", c.st.user))
		return false
	}
	g, err := c.srv.cfg.Access.AuthorizeDB(ctx, in, secret)
	if err == nil {
		if err = c.fc.Authenticated(g.User); err != nil {
			c.fatal(codeTooManyConnections, err.Error())
			return false
		}
	}
	if err != nil {
		c.log.Info("login refused", "reason", err)
		var r *policy.Refusal
		if errors.As(err, &r) {
			c.fatal(codeInvalidAuthorization, "access refused: "+r.Error())
		} else {
			c.fatal(codeInvalidAuthorization, "access refused (the operator's log has the details)")
		}
		return false
	}
	c.grant = g
	t, ok := c.srv.cfg.Targets.Target(c.st.database)
	if !ok {
		c.fatal(codeInvalidAuthorization, fmt.Sprintf("no PostgreSQL target %q", c.st.database))
		return false
	}
	c.target = t
	c.log = c.log.With("request", g.RequestID)
	if why := c.misreads(c.st.params); why != "" {
		c.refuseMisread(ctx, why)
		return false
	}
	if err := c.guaranteeRecording(ctx); err != nil {
		c.log.Error("recording cannot be guaranteed", "err", err)
		c.srv.cfg.Access.Record(ctx, c.actor, c.session("").StartRefused("recording cannot be guaranteed: "+err.Error()))
		c.fatal(codeConnectionFailure, "the session cannot be recorded now, so it may not start")
		return false
	}
	c.poolKey = newPoolKey(t, c.st.params)
	up := c.srv.pool.get(c.poolKey)
	if up == nil {
		up, err = dialUpstream(ctx, t, g, c.st.params)
	}
	if err != nil {
		c.log.Warn("open target", "err", err)
		c.srv.cfg.Access.Record(ctx, c.actor, c.session("").StartFailed(err.Error()))
		tell := "the target cannot be reached"
		var ue *upstreamError
		if errors.As(err, &ue) {
			tell = ue.tell
		}
		c.fatal(codeConnectionFailure, tell+" (the operator's log has the details)")
		return false
	}
	if why := c.misreads(up.params); why != "" {
		// The target's default for the database or role.
		up.nc.Close()
		c.refuseMisread(ctx, why)
		return false
	}
	c.up = up
	if err := c.startRecording(ctx); err != nil {
		c.log.Error("start recording", "err", err)
		c.srv.cfg.Access.Record(ctx, c.actor, c.session("").StartFailed("recording unavailable: "+err.Error()))
		up.nc.Close()
		c.fatal(codeConnectionFailure, "the session cannot be recorded, so it may not start")
		return false
	}
	// A session whose start cannot be audited does not start.
	if err := c.srv.cfg.Access.Audit(ctx, c.actor, c.session(c.rec.id).Start()); err != nil {
		up.nc.Close()
		c.rec.end(ctx, c, "the session start could not be audited")
		c.fatal(codeConnectionFailure, "the session cannot be audited now, so it may not start (the operator's log has the details)")
		return false
	}
	c.newKey()
	c.srv.register(c)
	c.stopWatch = c.srv.grants.Watch(g, func(msg string) { c.end(errors.New(msg)) })
	c.log.Info("session started", "session", c.rec.id)

	msgs := [][]byte{authMessage(0)}
	names := make([]string, 0, len(up.params))
	for k := range up.params {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		msgs = append(msgs, appendMsg(nil, msgParameterStatus, cstr(k), cstr(up.params[k])))
	}
	kd := binary.BigEndian.AppendUint32(nil, c.pid)
	msgs = append(msgs, appendMsg(nil, msgBackendKeyData, kd, c.key))
	msgs = append(msgs, appendMsg(nil, msgReadyForQuery, []byte{up.txStatus}))
	if err := c.send(msgs...); err != nil {
		c.stopWatch()
		c.srv.unregister(c)
		up.nc.Close()
		c.nc.Close()
		c.finish("client closed the connection")
		return false
	}
	c.dec = &decider{user: g.User, target: g.Target, policy: c.srv.cfg.Policy, parsed: c.srv.parsed}
	c.ubr, c.ubw = up.br, up.bw
	return true
}

// relay copies messages both ways until one side ends or the connection
// is ended, then records the end.
func (c *conn) relay() {
	defer c.srv.unregister(c)
	defer c.stopWatch()
	upDone := make(chan struct{})
	clientDone := make(chan struct{})
	go func() {
		defer close(upDone)
		defer c.recoverRelay()
		err := c.targetToClient()
		c.cancel(relayEnd(err, errTargetClosed))
	}()
	go func() {
		defer close(clientDone)
		defer c.recoverRelay()
		err := c.clientToTarget()
		c.cancel(relayEnd(err, errClientClosed))
	}()
	<-c.ctx.Done()
	cause := context.Cause(c.ctx)
	// When the client left, the target connection may be kept for
	// another session (pool.go): the target-to-client loop is stopped
	// with a deadline instead of by closing it.
	keep := cause == errClientClosed
	if keep {
		c.up.nc.SetReadDeadline(time.Unix(1, 0))
	} else {
		c.up.nc.Close()
	}
	var ee *endError
	if errors.As(cause, &ee) {
		// The target-to-client loop stops writing once the target's
		// connection is closed; then the FATAL message is the last one.
		c.nc.SetWriteDeadline(time.Now().Add(fatalWriteTimeout))
		<-upDone
		c.log.Info("ending the connection", "reason", ee.err)
		c.bwMu.Lock()
		code := codeAdminShutdown
		if ee.code != "" {
			code = ee.code
		}
		c.bw.Write(errorResponse(severityFatal, code, "bastion: "+ee.err.Error(), ""))
		c.bw.Flush()
		c.bwMu.Unlock()
	}
	c.nc.Close()
	<-upDone
	<-clientDone
	if keep {
		c.release()
	}
	c.finish(cause.Error())
}

// misreads says why the server would read statements differently from
// the rules' parser under params (startup or ParameterStatus values), when
// query rules apply to the session: a client_encoding that hides
// backslashes, or standard_conforming_strings off (a database's or role's
// default). It returns "" when neither.
func (c *conn) misreads(params map[string]string) string {
	why := ""
	for k, v := range params {
		switch {
		case strings.EqualFold(k, "client_encoding") && pgsql.HidesBackslash(v):
			why = fmt.Sprintf("client_encoding %s: %v", v, errHidingEncoding)
		case strings.EqualFold(k, "standard_conforming_strings") && !strings.EqualFold(v, "on"):
			why = "standard_conforming_strings is " + v + ": the server would read backslashes in strings differently from the rules' parser"
		}
	}
	if why == "" || !c.srv.cfg.Policy().QueriesRestricted(c.grant.User, c.grant.Target) {
		return ""
	}
	return why
}

// refuseMisread ends a login under which the server would read statements
// differently from the rules' parser.
func (c *conn) refuseMisread(ctx context.Context, why string) {
	c.log.Info("login refused", "reason", why)
	c.srv.cfg.Access.Record(ctx, c.actor, c.session("").StartRefused(why))
	c.fatal(codeInsufficientPrivilege, why)
}

// session is the connection's session as audit events name it.
func (c *conn) session(id string) audit.Session {
	return c.grant.AuditSession(querylog.ProtocolPostgres, id)
}

// release resets the target connection and keeps it for another session
// when the session left it idle and in step: not in a transaction, no
// statement pending, no answer half read. Otherwise it closes it.
func (c *conn) release() {
	up := c.up
	if c.lastStatus != 'I' || !c.pending.empty() || c.ubr.Buffered() != 0 || c.ubw.Buffered() != 0 || c.lasting {
		up.close()
		return
	}
	c.fc.Go(func() {
		if err := up.reset(); err != nil {
			c.log.Info("target connection not kept", "err", err)
			up.close()
			return
		}
		c.srv.pool.put(c.poolKey, up)
	})
}

// recoverRelay turns a panic in a relay loop into the end of its
// connection.
func (c *conn) recoverRelay() {
	if p := recover(); p != nil {
		c.log.Error("panic in relay", "panic", p)
		c.cancel(errors.New("internal error"))
	}
}

// relayEnd is why a relay loop ended: clean when it ended cleanly, else
// its error.
func relayEnd(err error, clean error) error {
	if err == nil || isClosed(err) {
		return clean
	}
	return err
}

// Why a relay loop ended cleanly.
var (
	errClientClosed = errors.New("client closed the connection")
	errTargetClosed = errors.New("the target closed the connection")
)

// finish records the end of a started session.
func (c *conn) finish(reason string) {
	c.endOnce.Do(func() {
		ctx := context.Background()
		audited := dbrec.AuditEnd(ctx, c.srv.cfg.Access, c.actor, c.grant, querylog.ProtocolPostgres, c.rec.id, reason)
		c.rec.end(ctx, c, reason)
		audited()
		c.log.Info("session ended", "session", c.rec.id, "reason", reason)
	})
}
