//go:build linux

package proxy

import (
	"net"
	"syscall"
)

// deferAccept sets TCP_DEFER_ACCEPT on a TCP listener: the kernel completes
// the accept only once the client's first bytes have arrived (or after about
// secs seconds without them), so the first read of a new connection finds
// its request instead of waiting in the poller. A client that connects and
// sends nothing is held by the kernel (as a half-open connection, without a
// socket of ours) until then; read_header_timeout counts from the accept.
func deferAccept(ln net.Listener, secs int) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, secs)
	})
}
