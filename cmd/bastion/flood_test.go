package main

import (
	"bufio"
	"bytes"
	"context"
	bin "encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sys/unix"
)

// The flood tests: one authenticated client that sends far more than it
// reads must not grow Bastion's memory past a fixed ceiling (the relays
// stop reading it while the other side is behind), and the connection and
// the others work afterwards.

// floodSocketBuffer is the flooding client's socket buffers, fixed (no
// autotuning) so that what the kernel holds for it is small next to what
// it sends.
const floodSocketBuffer = 64 << 10

// floodCeiling is how far Bastion's peak resident memory may rise above
// what it was before the flood (the test binary is built with -race, which
// multiplies heap memory several times). A million Syncs took 308 MB over
// the start before the PostgreSQL relay was bounded, 10 to 16 MB since.
const floodCeiling = 48 << 20

// TestPostgresSyncFlood: a client sends a million Sync messages (5 MB)
// without reading Bastion's answers. Bastion stops reading it while the
// answers back up, its peak memory stays within floodCeiling, every Sync
// is answered once the client reads, and the connection and another one
// still run statements.
func TestPostgresSyncFlood(t *testing.T) {
	const syncs = 1_000_000
	p := startPGBastion(t)
	plain := p.grantDB(t, "alice", "plain")
	ctx := t.Context()

	cfg, err := pgconn.ParseConfig(plain.URL)
	if err != nil {
		t.Fatal(err)
	}
	var tcp *net.TCPConn
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tcp = c.(*net.TCPConn)
		if err := tcp.SetReadBuffer(floodSocketBuffer); err != nil {
			return nil, err
		}
		return c, tcp.SetWriteBuffer(floodSocketBuffer)
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	conn := hc.Conn
	defer conn.Close()

	pid := p.cmd.Process.Pid
	before := procStatus(t, pid, "VmRSS")

	written := make(chan error, 1)
	go func() {
		_, err := conn.Write(bytes.Repeat([]byte{'S', 0, 0, 0, 4}, syncs))
		written <- err
	}()
	// The client reads nothing until it has sent everything or Bastion
	// stops reading it (the client's send queue fills).
	waitFor(t, 30*time.Second, func() bool {
		select {
		case err := <-written:
			written <- err
			return true
		default:
			return unsent(t, tcp) >= floodSocketBuffer
		}
	})
	t.Logf("before the flood: VmRSS %d MB; while the client does not read: VmRSS %d MB, peak %d MB",
		before>>20, procStatus(t, pid, "VmRSS")>>20, procStatus(t, pid, "VmHWM")>>20)

	br := bufio.NewReaderSize(conn, 64<<10)
	for i := range syncs {
		typ, body := readPGMessage(t, br)
		if typ != 'Z' || string(body) != "I" {
			t.Fatalf("answer %d to a Sync: %q %q, want ReadyForQuery idle", i, typ, body)
		}
	}
	if err := <-written; err != nil {
		t.Fatalf("send the Syncs: %v", err)
	}
	if got := pgQuery(t, conn, br, "SELECT 41 + 1"); got != "42" {
		t.Fatalf("the flooding connection after its flood: %q", got)
	}
	other, err := pgconn.Connect(ctx, plain.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	if res, err := other.Exec(ctx, "SELECT 1").ReadAll(); err != nil || string(res[0].Rows[0][0]) != "1" {
		t.Fatalf("another connection after the flood: %v %v", res, err)
	}

	peak := procStatus(t, pid, "VmHWM")
	t.Logf("peak VmRSS %d MB, %d MB over the start", peak>>20, (peak-before)>>20)
	if peak-before > floodCeiling {
		t.Fatalf("Bastion's peak memory rose by %d MB under a Sync flood, over the ceiling of %d MB", (peak-before)>>20, floodCeiling>>20)
	}
}

// TestPostgresPipelineBounds: the bounds on what is pending never stall a
// client that reads: a batch that failed early takes many more Executes
// than maxPendingEntries before its Sync (the target answers none of them),
// and Executes of a statement too large for maxPendingBytes are answered
// although PostgreSQL keeps their small answers until a Sync or Flush.
func TestPostgresPipelineBounds(t *testing.T) {
	p := startPGBastion(t)
	plain := p.grantDB(t, "alice", "plain")
	conn, br := rawPG(t, plain.URL)

	ok := t.Run("failed batch", func(t *testing.T) {
		const executes = 20_000
		var batch []byte
		batch = pgMsg(batch, 'P', "\x00SELECT 1/0\x00\x00\x00")
		for range executes {
			batch = pgMsg(batch, 'B', "\x00\x00\x00\x00\x00\x00\x00\x00")
			batch = pgMsg(batch, 'E', "\x00\x00\x00\x00\x00")
		}
		batch = pgMsg(batch, 'S', "")
		got := exchange(t, conn, br, batch)
		if want := "1 E Z"; got != want { // SELECT 1/0 fails at Bind
			t.Fatalf("answers %q, want %q", got, want)
		}
	})
	ok = ok && t.Run("large statement", func(t *testing.T) {
		const executes = 40
		sql := "SELECT 1 -- " + strings.Repeat("x", 256<<10)
		batch := pgMsg(nil, 'P', "\x00"+sql+"\x00\x00\x00")
		for range executes {
			batch = pgMsg(batch, 'B', "\x00\x00\x00\x00\x00\x00\x00\x00")
			batch = pgMsg(batch, 'E', "\x00\x00\x00\x00\x00")
		}
		batch = pgMsg(batch, 'S', "")
		got := exchange(t, conn, br, batch)
		if want := "1" + strings.Repeat(" 2 D C", executes) + " Z"; got != want {
			t.Fatalf("answers %q, want %q", got, want)
		}
	})
	ok = ok && t.Run("pgx batch", func(t *testing.T) {
		// pgx writes a whole batch before it reads: more statements than
		// maxPendingEntries, whose answers fit the sockets' buffers, must
		// not stall it.
		const queries = 10_000
		conn := p.connect(t, plain, "")
		b := &pgx.Batch{}
		for i := range queries {
			b.Queue("SELECT $1::int", i)
		}
		ctx, cancel := context.WithTimeout(t.Context(), exchangeTimeout)
		defer cancel()
		res := conn.SendBatch(ctx, b)
		for i := range queries {
			var n int
			if err := res.QueryRow().Scan(&n); err != nil || n != i {
				t.Fatalf("query %d: %d, %v", i, n, err)
			}
		}
		if err := res.Close(); err != nil {
			t.Fatal(err)
		}
	})
	if !ok {
		return // the connection is stuck
	}
	if got := pgQuery(t, conn, br, "SELECT 41 + 1"); got != "42" {
		t.Fatalf("the connection afterwards: %q", got)
	}
}

// TestPostgresHeldAlternativesBounded: when the relay cannot tell which of
// several statements or bindings a held execution runs (a Parse or Bind
// the target may skip), the approver is shown all of them; a client that
// keeps adding alternatives of 100 KB each is refused once they pass 1 MiB,
// instead of making Bastion hold a growing text for every few bytes sent.
func TestPostgresHeldAlternativesBounded(t *testing.T) {
	const alternatives = 20
	p := startPGBastion(t)
	orders := p.grantDB(t, "alice", "orders")
	conn, br := rawPG(t, orders.URL)
	big := "SELECT 1 -- " + strings.Repeat("x", 100<<10)
	const tooLong = "what its approver would be shown is too long"

	t.Run("parse", func(t *testing.T) {
		// A held statement, then others parsed as the unnamed statement in
		// the same batch: the target may have kept the held one.
		batch := pgMsg(nil, 'P', "\x00INSERT INTO refunds (note) VALUES ('parsed')\x00\x00\x00")
		for i := range alternatives {
			batch = pgMsg(batch, 'P', fmt.Sprintf("\x00%s %d\x00\x00\x00", big, i))
		}
		batch = pgMsg(batch, 'S', "")
		got := exchange(t, conn, br, batch)
		if want := strings.Repeat("1 ", 11) + "E Z"; got != want {
			t.Fatalf("answers %q, want %q", got, want)
		}
	})
	refusals := func() int {
		return strings.Count(p.mustRun("carol", "audit", "--user", "alice", "--type", "query", "--json"), tooLong)
	}
	afterParse := refusals()
	if afterParse == 0 {
		t.Fatal("no refusal audited in the Parse case")
	}
	t.Run("bind", func(t *testing.T) {
		batch := pgMsg(nil, 'P', "h\x00INSERT INTO refunds (note) VALUES ($1)\x00\x00\x00")
		batch = pgMsg(batch, 'P', "big\x00"+big+"\x00\x00\x00")
		batch = pgMsg(batch, 'S', "")
		if got := exchange(t, conn, br, batch); got != "1 1 Z" {
			t.Fatalf("prepare: %q", got)
		}
		// A portal of the held statement, then other bindings of it.
		batch = pgMsg(nil, 'B', "p\x00h\x00\x00\x00\x00\x01\x00\x00\x00\x04bind\x00\x00")
		for range alternatives {
			batch = pgMsg(batch, 'B', "p\x00big\x00\x00\x00\x00\x00\x00\x00")
		}
		batch = pgMsg(batch, 'S', "")
		// The target fails the second Bind (the portal exists) and skips
		// the rest; Bastion refuses one of those it forwards.
		if got := exchange(t, conn, br, batch); got != "2 E Z" {
			t.Fatalf("bind: %q", got)
		}
	})
	// In the Bind case the refusal is seen only in the audit log.
	if refusals() == afterParse {
		t.Fatal("no refusal audited in the Bind case")
	}
	if got := pgQuery(t, conn, br, "SELECT 41 + 1"); got != "42" {
		t.Fatalf("the connection afterwards: %q", got)
	}
}

// TestPostgresPortalsForgotten: portals last until the end of their
// transaction, and the relay forgets them there too: a client that binds
// a thousand portals of 16,000 parameters each, one per transaction, and
// never closes them does not make Bastion keep their parameters.
func TestPostgresPortalsForgotten(t *testing.T) {
	const portals, params = 1000, 16000
	p := startPGBastion(t)
	plain := p.grantDB(t, "alice", "plain")
	conn, br := rawPG(t, plain.URL)
	if got := exchange(t, conn, br, pgMsg(pgMsg(nil, 'P', "s\x00SELECT 1\x00\x00\x00"), 'S', "")); got != "1 Z" {
		t.Fatalf("prepare: %q", got)
	}
	pid := p.cmd.Process.Pid
	before := procStatus(t, pid, "VmRSS")
	nulls := strings.Repeat("\xff\xff\xff\xff", params)
	for i := range portals {
		// The target refuses the parameters (the statement takes none),
		// but the relay tracks the portal as it forwards the Bind.
		bind := fmt.Sprintf("p%d\x00s\x00\x00\x00%s%s\x00\x00", i, string(bin.BigEndian.AppendUint16(nil, params)), nulls)
		if got := exchange(t, conn, br, pgMsg(pgMsg(nil, 'B', bind), 'S', "")); got != "E Z" {
			t.Fatalf("bind %d: %q", i, got)
		}
	}
	peak := procStatus(t, pid, "VmHWM")
	t.Logf("peak VmRSS %d MB, %d MB over the start", peak>>20, (peak-before)>>20)
	if peak-before > floodCeiling {
		t.Fatalf("Bastion's peak memory rose by %d MB with %d portals bound, over the ceiling of %d MB", (peak-before)>>20, portals, floodCeiling>>20)
	}
	if got := pgQuery(t, conn, br, "SELECT 41 + 1"); got != "42" {
		t.Fatalf("the connection afterwards: %q", got)
	}
}

// rawPG logs in to url and returns the raw connection, for messages no
// client library sends.
func rawPG(t *testing.T, url string) (net.Conn, *bufio.Reader) {
	t.Helper()
	pc, err := pgconn.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Conn.Close() })
	return hc.Conn, bufio.NewReaderSize(hc.Conn, 64<<10)
}

// pgMsg appends a frontend message of type typ and body to b.
func pgMsg(b []byte, typ byte, body string) []byte {
	b = append(b, typ)
	b = bin.BigEndian.AppendUint32(b, uint32(4+len(body)))
	return append(b, body...)
}

// exchangeTimeout bounds an exchange, which takes well under a second.
const exchangeTimeout = 20 * time.Second

// exchange sends msgs while it reads the answers up to ReadyForQuery, and
// returns their types, space-separated.
func exchange(t *testing.T, c net.Conn, r *bufio.Reader, msgs []byte) string {
	t.Helper()
	// A relay that stalls fails the test instead of holding it.
	c.SetReadDeadline(time.Now().Add(exchangeTimeout))
	defer c.SetReadDeadline(time.Time{})
	sent := make(chan error, 1)
	go func() {
		_, err := c.Write(msgs)
		sent <- err
	}()
	var types []string
	for {
		typ, _ := readPGMessage(t, r)
		types = append(types, string(typ))
		if typ == 'Z' {
			break
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	return strings.Join(types, " ")
}

// procStatus is a size field of /proc/PID/status ("VmRSS", "VmHWM") in
// bytes.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		v, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", field, err)
		}
		return kb << 10
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// unsent is the bytes c has queued that its peer has not taken (SIOCOUTQ).
func unsent(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
		t.Fatal(err)
	}
	if ierr != nil {
		t.Fatal(ierr)
	}
	return n
}

// readPGMessage reads one backend message: its type and body.
func readPGMessage(t *testing.T, r *bufio.Reader) (byte, []byte) {
	t.Helper()
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("read a message: %v", err)
	}
	body := make([]byte, int(bin.BigEndian.Uint32(hdr[1:]))-4)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("read a %q message: %v", hdr[0], err)
	}
	return hdr[0], body
}

// pgQuery runs a simple query returning one text value on a raw
// connection and returns the value.
func pgQuery(t *testing.T, w io.Writer, r *bufio.Reader, sql string) string {
	t.Helper()
	q := append([]byte{'Q', 0, 0, 0, 0}, sql...)
	q = append(q, 0)
	bin.BigEndian.PutUint32(q[1:], uint32(len(q)-1))
	if _, err := w.Write(q); err != nil {
		t.Fatal(err)
	}
	var value string
	for {
		typ, body := readPGMessage(t, r)
		switch typ {
		case 'D': // one column: int16 count, int32 length, value
			value = string(body[6:])
		case 'E':
			t.Fatalf("%s: error %q", sql, body)
		case 'Z':
			return value
		}
	}
}

// sshFloodCeiling is floodCeiling for an SSH session, whose two channel
// windows (2 MiB each) and per-packet buffers of x/crypto/ssh come on top:
// measured 17 to 31 MB with -race under load; a relay that buffered the
// output took 1,149 MB.
const sshFloodCeiling = 64 << 20

// TestSSHBackpressure: an SSH session whose one side does not keep up
// (a target that reads its input late, a user who reads the output late)
// makes Bastion hold back the other side instead of buffering what it
// sends: Bastion's peak memory stays within sshFloodCeiling while 64 MiB go
// through each way, and every byte arrives.
func TestSSHBackpressure(t *testing.T) {
	const size = 64 << 20
	p := startProxyBastion(t, "")
	_, cert := p.grant(t, "30m", "web01")
	args := append(p.sshArgs("alice", "-o", "CertificateFile="+cert), "root@web01@127.0.0.1")
	ssh := "ssh"
	for _, a := range args {
		ssh += " '" + a + "'"
	}
	pid := p.cmd.Process.Pid
	before := procStatus(t, pid, "VmRSS")
	for _, tt := range []struct{ name, pipeline string }{
		// The target reads nothing for 2 s while the user sends.
		{"to a target that reads late", fmt.Sprintf("head -c %d /dev/zero | %s 'sleep 2; wc -c'", size, ssh)},
		// The user reads nothing for 2 s while the target sends.
		{"to a user who reads late", fmt.Sprintf("%s 'head -c %d /dev/zero' | (sleep 2; wc -c)", ssh, size)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, code := runCmd(t, nil, "sh", "-c", tt.pipeline)
			if code != 0 || strings.TrimSpace(out) != fmt.Sprint(size) {
				t.Fatalf("exit %d, %q bytes arrived: %s", code, out, stderr)
			}
			peak := procStatus(t, pid, "VmHWM")
			t.Logf("peak VmRSS %d MB, %d MB over the start", peak>>20, (peak-before)>>20)
			if peak-before > sshFloodCeiling {
				t.Fatalf("Bastion's peak memory rose by %d MB, over the ceiling of %d MB", (peak-before)>>20, sshFloodCeiling>>20)
			}
		})
	}
}
