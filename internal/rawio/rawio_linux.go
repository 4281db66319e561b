//go:build linux

package rawio

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// state is the per-connection state of the raw calls: the RawConn, the
// callbacks (built once, so a call allocates nothing) and their arguments.
type state struct {
	rc  syscall.RawConn
	p   []byte
	n   int
	err syscall.Errno
	rf  func(uintptr) bool
	wf  func(uintptr) bool
}

func wrap(c net.Conn) *Conn {
	var rc syscall.RawConn
	switch t := c.(type) {
	case *net.TCPConn:
		var err error
		if rc, err = t.SyscallConn(); err != nil {
			return nil
		}
	case *Sock:
		rc = t.RawConn()
	default:
		return nil
	}
	w := &Conn{Conn: c}
	w.rc = rc
	w.rf = w.read
	w.wf = w.write
	return w
}

// Read reads like net.Conn.Read: it waits (in Go's poller, honouring the read
// deadline) until the socket has bytes, then returns what one read(2) gives.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.run(b, false)
	if err == nil && n == 0 && len(b) > 0 {
		return 0, io.EOF
	}
	return n, err
}

// run makes the read or write of b through the RawConn, which waits for
// readiness between attempts.
func (c *Conn) run(b []byte, write bool) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.p, c.n, c.err = b, 0, 0
	var err error
	if write {
		err = c.rc.Write(c.wf)
	} else {
		err = c.rc.Read(c.rf)
	}
	n := c.n
	c.p = nil
	if err != nil {
		return n, err
	}
	if c.err != 0 {
		op := "read"
		if write {
			op = "write"
		}
		return n, &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: c.err}
	}
	return n, nil
}

func (c *Conn) read(fd uintptr) bool {
	n, err := Read(fd, c.p)
	switch err {
	case nil:
		c.n = n
		return true
	case syscall.EAGAIN:
		return false
	}
	c.err = err.(syscall.Errno)
	return true
}

// Write writes all of b, waiting in Go's poller (honouring the write
// deadline) while the socket's buffer is full.
func (c *Conn) Write(b []byte) (int, error) { return c.run(b, true) }

func (c *Conn) write(fd uintptr) bool {
	n, e := writeAll(fd, c.p[c.n:])
	c.n += n
	if e == syscall.EAGAIN {
		return false
	}
	c.err = e
	return true
}

// writeAll writes b to the non-blocking descriptor fd by RawSyscall until it
// is all written (0), the socket's buffer is full (EAGAIN) or an error.
func writeAll(fd uintptr, b []byte) (int, syscall.Errno) {
	n := 0
	for n < len(b) {
		m, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
		switch e {
		case 0:
			n += int(m)
		case syscall.EINTR:
		default:
			return n, e
		}
	}
	return n, 0
}

// CloseWrite half-closes the connection.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Read is read(2) on the non-blocking descriptor fd, by RawSyscall, retried
// when interrupted; for syscall.RawConn callbacks. Errors are syscall.Errno
// values (EAGAIN when nothing is there).
func Read(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
		switch e {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		}
		return 0, e
	}
}
