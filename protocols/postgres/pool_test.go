package postgres

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// tcpUpstream is an upstream over a loopback TCP connection, and the
// target's end of it.
func tcpUpstream(t *testing.T) (*upstream, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	return &upstream{nc: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c), params: map[string]string{}}, peer
}

// terminated checks that the target's end got a Terminate and then the
// end of the connection.
func terminated(t *testing.T, peer net.Conn) {
	t.Helper()
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(peer)
	if err != nil || string(b) != "X\x00\x00\x00\x04" {
		t.Fatalf("the target got %q, %v; want a Terminate and the end", b, err)
	}
}

func TestPoolLimitAndExpiry(t *testing.T) {
	p := newPool()
	k := newPoolKey(Target{Name: "t", Address: "a"}, map[string]string{"application_name": "x"})
	var peers []net.Conn
	for range poolMaxIdle + 1 {
		up, peer := tcpUpstream(t)
		p.put(k, up)
		peers = append(peers, peer)
	}
	terminated(t, peers[poolMaxIdle]) // one over the limit: closed at once

	other := newPoolKey(Target{Name: "t", Address: "a"}, map[string]string{"application_name": "y"})
	if up := p.get(other); up != nil {
		t.Fatal("a connection kept for other parameters was handed out")
	}
	if up := p.get(k); up == nil {
		t.Fatal("no kept connection handed out")
	}
	p.expire(time.Now().Add(poolIdleTimeout))
	for _, peer := range peers[:poolMaxIdle-1] {
		terminated(t, peer)
	}
	if up := p.get(k); up != nil {
		t.Fatal("an expired connection was handed out")
	}
}

func TestPoolSkipsClosed(t *testing.T) {
	p := newPool()
	k := newPoolKey(Target{Name: "t"}, nil)
	live, _ := tcpUpstream(t)
	dead, deadPeer := tcpUpstream(t)
	p.put(k, live)
	p.put(k, dead)
	deadPeer.Close() // the target ended the kept connection
	// Wait until its end has arrived (reading the end of file leaves it
	// there for the pool to see).
	dead.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := dead.nc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the closed connection reads %d, %v; want the end of file", n, err)
	}
	dead.nc.SetReadDeadline(time.Time{})
	if got := p.get(k); got != live {
		t.Fatalf("get = %v, want the live connection (the closed one is skipped)", got)
	}
	p.close()
	up, peer := tcpUpstream(t)
	p.put(k, up)
	terminated(t, peer) // after close, nothing is kept
}

func TestPoolKey(t *testing.T) {
	a := newPoolKey(Target{Name: "t"}, map[string]string{"a": "b", "c": "d"})
	b := newPoolKey(Target{Name: "t"}, map[string]string{"c": "d", "a": "b"})
	c := newPoolKey(Target{Name: "t"}, map[string]string{"a": "bc", "": "d"})
	d := newPoolKey(Target{Name: "t", Password: "changed"}, map[string]string{"a": "b", "c": "d"})
	if a != b || a == c || a == d {
		t.Fatalf("keys: same parameters in another order must match, others not: %v %v %v %v", a == b, a == c, a == d, c == d)
	}
}
