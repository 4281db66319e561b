//go:build linux

package proxy

import (
	"net"
	"syscall"
	"testing"
)

// The listener asks the kernel to hold a new connection until its first
// bytes arrive.
func TestDeferAcceptSetOnListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deferAccept(ln, 1)
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT)
	})
	if gerr != nil || v <= 0 {
		t.Fatalf("TCP_DEFER_ACCEPT = %d, %v; want > 0", v, gerr)
	}
}
