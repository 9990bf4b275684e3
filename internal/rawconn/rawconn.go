// Package rawconn reads and writes TCP sockets without telling the Go
// scheduler that the thread enters a system call.
//
// Every socket the net package makes is non-blocking, so read(2) and
// write(2) on it return at once: with data, with what fitted in the send
// buffer, or with EAGAIN. Go still wraps each in entersyscall/exitsyscall,
// and sysmon, which polls every 20 µs while a program makes system calls,
// takes the P away from a thread that is "in a system call" for more than
// one of its ticks and hands it to another thread. On loopback a write does
// the receiving side's TCP work too, so a proxy's writes often last that
// long: the handoffs, the extra threads' wake-ups and sysmon's own busy
// polling (golang/go#18236) cost a relay such as Bastion's database front
// ends more CPU than the reads and writes themselves.
//
// Conn makes the same non-blocking calls as raw system calls, which keep
// the P, as a C event loop would, and waits for readiness through the
// runtime's poller (syscall.RawConn) when a call would block, so that
// deadlines, Close and the poller behave as for any net.Conn.
package rawconn

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// maxWrite bounds one write(2), so that a large write does not hold the P
// for long; the kernel takes at most the send buffer's room anyway.
const maxWrite = 1 << 20

// Conn is a TCP connection whose reads and writes are raw system calls.
type Conn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// Wrap returns nc as a *Conn when it is a TCP connection, else nc itself.
func Wrap(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	return &Conn{TCPConn: tc, rc: rc}
}

// Read reads like net.Conn's Read.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait until the socket is readable
			}
			n, errno = int(r), e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes like net.Conn's Write: all of p, or an error.
func (c *Conn) Write(p []byte) (int, error) {
	var done int
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for done < len(p) {
			chunk := p[done:min(len(p), done+maxWrite)]
			r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&chunk[0])), uintptr(len(chunk)))
			switch e {
			case 0:
				done += int(r)
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait until the socket is writable
			default:
				errno = e
				return true
			}
		}
		return true
	})
	switch {
	case err != nil:
		return done, c.opError("write", err)
	case errno != 0:
		return done, c.opError("write", os.NewSyscallError("write", errno))
	}
	return done, nil
}

// opError wraps err as the net package does, so that callers' checks for
// net.ErrClosed, timeouts and the like work unchanged.
func (c *Conn) opError(op string, err error) error {
	if _, ok := err.(*net.OpError); ok {
		return err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
