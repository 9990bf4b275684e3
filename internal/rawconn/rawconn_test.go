package rawconn_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/bastionhq/bastion/internal/rawconn"
)

// pair is a wrapped connection and its plain peer, over loopback TCP.
func pair(t *testing.T) (wrapped net.Conn, peer net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p := <-accepted
	if p == nil {
		t.Fatal("accept failed")
	}
	w := rawconn.Wrap(c)
	if _, ok := w.(*rawconn.Conn); !ok {
		t.Fatalf("Wrap(%T) = %T, want *rawconn.Conn", c, w)
	}
	t.Cleanup(func() { w.Close(); p.Close() })
	return w, p
}

// TestBulkBothWays sends more than the socket buffers hold each way at
// once, so that writes come back short and with EAGAIN and reads wait, and
// checks every byte arrives.
func TestBulkBothWays(t *testing.T) {
	w, p := pair(t)
	data := make([]byte, 16<<20)
	rand.Read(data)
	want := sha256.Sum256(data)
	errs := make(chan error, 2)
	go func() { _, err := w.Write(data); errs <- err }()
	go func() { _, err := p.Write(data); errs <- err }()
	for name, c := range map[string]net.Conn{"wrapped": w, "peer": p} {
		got := sha256.New()
		if _, err := io.CopyN(got, c, int64(len(data))); err != nil {
			t.Fatalf("%s read: %v", name, err)
		}
		if !bytes.Equal(got.Sum(nil), want[:]) {
			t.Fatalf("%s read other bytes than were written", name)
		}
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("write: %v", err)
		}
	}
}

func TestEOF(t *testing.T) {
	w, p := pair(t)
	p.Write([]byte("last"))
	p.Close()
	b, err := io.ReadAll(w)
	if err != nil || string(b) != "last" {
		t.Fatalf("ReadAll = %q, %v; want \"last\", nil", b, err)
	}
}

func TestReadDeadline(t *testing.T) {
	w, _ := pair(t)
	w.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := w.Read(make([]byte, 1))
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past the deadline = %v, want a timeout", err)
	}
}

func TestWriteDeadline(t *testing.T) {
	w, p := pair(t) // the peer does not read until the end: the buffers fill up
	data := make([]byte, 64<<20)
	w.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	n, err := w.Write(data)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n >= len(data) {
		t.Fatalf("Write to a peer that does not read = %d, %v; want a timeout", n, err)
	}
	// The count is what went out: exactly that much arrives.
	w.Close()
	got, err := io.ReadAll(p)
	if err != nil || len(got) != n {
		t.Fatalf("the peer read %d bytes (%v), Write reported %d", len(got), err, n)
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	w, _ := pair(t)
	done := make(chan error, 1)
	go func() { _, err := w.Read(make([]byte, 1)); done <- err }()
	time.AfterFunc(20*time.Millisecond, func() { w.Close() })
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after Close = %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
}

func TestWriteToResetPeer(t *testing.T) {
	w, p := pair(t)
	p.(*net.TCPConn).SetLinger(0) // close with RST
	p.Close()
	// The reset reaches the socket at once on loopback; allow for a slow
	// machine all the same.
	var err error
	for deadline := time.Now().Add(10 * time.Second); err == nil && time.Now().Before(deadline); {
		_, err = w.Write([]byte("x"))
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "write" {
		t.Fatalf("Write to a reset connection = %v, want a write *net.OpError", err)
	}
}

func TestWrapOther(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := rawconn.Wrap(a); got != a {
		t.Fatalf("Wrap(pipe) = %T, want the pipe itself", got)
	}
}
