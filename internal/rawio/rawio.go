// Package rawio makes reads and writes on TCP sockets with raw system calls.
//
// Go's net package enters every read(2) and write(2) through the scheduler
// (entersyscall/exitsyscall). When such a call takes a little longer, as a
// write on loopback often does (the kernel delivers the data to the peer in
// the same call), the runtime's monitor hands the processor to another thread,
// and with GOMAXPROCS=1 on one core the threads then take turns: thousands of
// context switches a second and latency spikes of milliseconds. The sockets
// are non-blocking, so a read or write never waits in the kernel; making it
// with RawSyscall keeps the goroutine on its thread for those microseconds.
// Waiting for readiness still happens in Go's poller, with its deadlines, via
// syscall.RawConn.
//
// Accepted client connections can go further (Sock, Acceptor): a bare
// descriptor that enters Go's poller only when it first has to wait.
package rawio

import "net"

// Conn is a net.Conn whose Read and Write use raw system calls. Everything
// else (deadlines, Close, addresses) is the wrapped connection's.
type Conn struct {
	net.Conn
	state
}

// Wrap returns c with raw-syscall I/O where the platform allows it (a
// *net.TCPConn or a *Sock on Linux), else c itself.
func Wrap(c net.Conn) net.Conn {
	if w := wrap(c); w != nil {
		return w
	}
	return c
}

// Unwrap returns the connection that Wrap wrapped (c itself if it is not a
// *Conn), for io.Copy's splice path and CloseWrite.
func Unwrap(c net.Conn) net.Conn {
	if w, ok := c.(*Conn); ok {
		return w.Conn
	}
	return c
}
