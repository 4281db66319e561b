//go:build linux

package rawio

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Sock is an accepted TCP connection held as a bare non-blocking descriptor.
//
// A connection that is answered at once (its request is there when it is
// accepted, the answer fits the socket buffer) never needs Go's poller, yet
// net.Conn registers every accepted socket there and removes it at close: two
// epoll_ctl calls, a getsockname, a finalizer and a timer per deadline, for
// every connection. A Sock makes its reads and writes with raw system calls
// and registers with the poller (as an *os.File, which keeps the descriptor's
// number) only the first time it must wait; deadlines set before then are
// kept and applied at that moment, when they start to matter.
//
// Until it is registered a Sock belongs to one goroutine; afterwards it is as
// safe for concurrent use as an *os.File. Kick may be called at any time from
// any goroutine.
type Sock struct {
	fd int
	// ref is closedBit once Close has started, plus the number of Kick
	// calls using the descriptor, so that Close never frees the number
	// under a Kick (which could then shut down an unrelated connection).
	ref  atomic.Int32
	f    *os.File // set by register
	rc   syscall.RawConn
	peer netip.AddrPort

	rdl, wdl time.Time // deadlines set before register
}

const closedBit = 1 << 30

// FD is the descriptor, for epoll sets of the caller's own (it stays valid
// until Close).
func (s *Sock) FD() int { return s.fd }

// Peer is the client's address.
func (s *Sock) Peer() netip.AddrPort { return s.peer }

// Registered reports whether the socket has entered Go's poller.
func (s *Sock) Registered() bool { return s.f != nil }

// register hands the descriptor to Go's poller. os.NewFile keeps the number
// (net.FileConn would duplicate it) and sees that it is non-blocking.
func (s *Sock) register() error {
	if s.f != nil {
		return nil
	}
	f := os.NewFile(uintptr(s.fd), "tcp")
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	s.f, s.rc = f, rc
	if !s.rdl.IsZero() {
		f.SetReadDeadline(s.rdl)
	}
	if !s.wdl.IsZero() {
		f.SetWriteDeadline(s.wdl)
	}
	return nil
}

// Register enters the poller now, for a connection that will be used from
// more than one goroutine (a tunnel).
func (s *Sock) Register() error { return s.register() }

// Read implements net.Conn.
func (s *Sock) Read(b []byte) (int, error) {
	if s.f == nil {
		n, err := Read(uintptr(s.fd), b)
		switch {
		case err == nil:
			if n == 0 && len(b) > 0 {
				return 0, io.EOF
			}
			return n, nil
		case err != syscall.EAGAIN:
			return 0, s.opErr("read", err)
		}
		if err := s.register(); err != nil {
			return 0, err
		}
	}
	return s.f.Read(b)
}

// Write implements net.Conn: it writes all of b.
func (s *Sock) Write(b []byte) (int, error) {
	n := 0
	if s.f == nil {
		var e syscall.Errno
		if n, e = writeAll(uintptr(s.fd), b); e == 0 {
			return n, nil
		} else if e != syscall.EAGAIN {
			return n, s.opErr("write", e)
		}
		if err := s.register(); err != nil {
			return n, err
		}
	}
	m, err := s.f.Write(b[n:])
	return n + m, err
}

// The syscall.RawConn methods: f runs on the bare descriptor; if it asks to
// wait (returns false), the socket enters the poller and waits there.

// raw runs f for syscall.RawConn's Read (Write, with write set).
func (s *Sock) raw(f func(uintptr) bool, write bool) error {
	if s.f == nil {
		if f(uintptr(s.fd)) {
			return nil
		}
		if err := s.register(); err != nil {
			return err
		}
	}
	if write {
		return s.rc.Write(f)
	}
	return s.rc.Read(f)
}

// RawConn returns the socket as a syscall.RawConn.
func (s *Sock) RawConn() syscall.RawConn { return (*sockRaw)(s) }

type sockRaw Sock

func (r *sockRaw) Control(f func(uintptr)) error    { f(uintptr(r.fd)); return nil }
func (r *sockRaw) Read(f func(uintptr) bool) error  { return (*Sock)(r).raw(f, false) }
func (r *sockRaw) Write(f func(uintptr) bool) error { return (*Sock)(r).raw(f, true) }

// Kick shuts the connection down in both directions, from any goroutine: its
// owner's waits end (reads see the end of the stream) and the owner closes
// it. Unlike Close it never frees the descriptor under the owner's feet.
func (s *Sock) Kick() {
	for {
		v := s.ref.Load()
		if v&closedBit != 0 {
			return
		}
		if s.ref.CompareAndSwap(v, v+1) {
			break
		}
	}
	syscall.Shutdown(s.fd, syscall.SHUT_RDWR)
	s.ref.Add(-1)
}

// Close closes the socket (once; later calls return net.ErrClosed).
func (s *Sock) Close() error {
	for {
		v := s.ref.Load()
		if v&closedBit != 0 {
			return net.ErrClosed
		}
		if s.ref.CompareAndSwap(v, v|closedBit) {
			break
		}
	}
	for s.ref.Load() != closedBit {
		runtime.Gosched() // a Kick is in its shutdown(2): a moment
	}
	if s.f != nil {
		return s.f.Close()
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(s.fd), 0, 0); e != 0 {
		return s.opErr("close", e)
	}
	return nil
}

// CloseWrite half-closes the connection.
func (s *Sock) CloseWrite() error {
	if err := syscall.Shutdown(s.fd, syscall.SHUT_WR); err != nil {
		return s.opErr("shutdown", err)
	}
	return nil
}

// SetKeepAlive turns on TCP keep-alive probes (for tunnels that may idle).
func (s *Sock) SetKeepAlive(idle, interval time.Duration, count int) error {
	for _, o := range [...]struct{ level, opt, v int }{
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(idle / time.Second)},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, int(interval / time.Second)},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, count},
	} {
		if err := syscall.SetsockoptInt(s.fd, o.level, o.opt, o.v); err != nil {
			return s.opErr("setsockopt", err)
		}
	}
	return nil
}

// LocalAddr implements net.Conn (a getsockname call: not for the request path).
func (s *Sock) LocalAddr() net.Addr {
	sa, err := syscall.Getsockname(s.fd)
	if err != nil {
		return &net.TCPAddr{}
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: a.Addr[:], Port: a.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: a.Addr[:], Port: a.Port}
	}
	return &net.TCPAddr{}
}

// RemoteAddr implements net.Conn.
func (s *Sock) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(s.peer) }

// SetDeadline implements net.Conn.
func (s *Sock) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn. Before the socket is registered it
// costs nothing: no operation can wait until then.
func (s *Sock) SetReadDeadline(t time.Time) error {
	if s.f != nil {
		return s.f.SetReadDeadline(t)
	}
	s.rdl = t
	return nil
}

// SetWriteDeadline implements net.Conn.
func (s *Sock) SetWriteDeadline(t time.Time) error {
	if s.f != nil {
		return s.f.SetWriteDeadline(t)
	}
	s.wdl = t
	return nil
}

func (s *Sock) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: s.RemoteAddr(), Err: os.NewSyscallError(op, err)}
}

// Acceptor accepts connections from a TCP listener as Socks: accept4 with
// SOCK_NONBLOCK by a raw system call, waiting for the listener in Go's
// poller, and TCP_NODELAY set as Go's net package would.
//
// A listener's own syscall.RawConn cannot wait (its Read is EINVAL), so the
// acceptor waits on a duplicate of the listening descriptor, an *os.File in
// the poller. The duplicate keeps the socket listening: Close it together
// with the listener.
type Acceptor struct {
	f     *os.File
	rc    syscall.RawConn
	fn    func(uintptr) bool
	nfd   int
	errno syscall.Errno
	rsa   syscall.RawSockaddrAny
}

// NewAcceptor returns an acceptor for ln, or nil if ln is not a
// *net.TCPListener.
func NewAcceptor(ln net.Listener) *Acceptor {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	f, err := tl.File()
	if err != nil {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil
	}
	a := &Acceptor{f: f, rc: rc}
	a.fn = a.accept
	return a
}

// Close closes the acceptor's descriptor; a waiting Accept returns an error.
func (a *Acceptor) Close() error { return a.f.Close() }

// ErrUnsupportedAddr is returned (and the connection closed) when an
// accepted socket's peer is neither IPv4 nor IPv6.
var ErrUnsupportedAddr = errors.New("rawio: accepted a socket of an unknown address family")

// Accept waits for and returns the next connection. Its errors are those of
// accept(2) as syscall.Errno values (EMFILE and the like are Temporary), or
// the listener's error once it is closed.
func (a *Acceptor) Accept() (*Sock, error) {
	if err := a.rc.Read(a.fn); err != nil {
		return nil, err
	}
	if a.errno != 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", a.errno)}
	}
	s := &Sock{fd: a.nfd}
	switch a.rsa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&a.rsa))
		s.peer = netip.AddrPortFrom(netip.AddrFrom4(p.Addr), ntohs(&p.Port))
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&a.rsa))
		s.peer = netip.AddrPortFrom(netip.AddrFrom16(p.Addr).Unmap(), ntohs(&p.Port))
	default:
		syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(a.nfd), 0, 0)
		return nil, ErrUnsupportedAddr
	}
	one := int32(1)
	syscall.RawSyscall6(syscall.SYS_SETSOCKOPT, uintptr(a.nfd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY,
		uintptr(unsafe.Pointer(&one)), 4, 0)
	return s, nil
}

func (a *Acceptor) accept(fd uintptr) bool {
	for {
		l := uint32(syscall.SizeofSockaddrAny)
		r, _, e := syscall.RawSyscall6(syscall.SYS_ACCEPT4, fd, uintptr(unsafe.Pointer(&a.rsa)),
			uintptr(unsafe.Pointer(&l)), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0, 0)
		switch e {
		case 0:
			a.nfd, a.errno = int(r), 0
			return true
		case syscall.EINTR, syscall.ECONNABORTED:
			continue
		case syscall.EAGAIN:
			return false
		}
		a.errno = e
		return true
	}
}

// ntohs reads a port stored in network byte order.
func ntohs(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}
