//go:build linux

package proxy

import (
	"syscall"
	"unsafe"
)

// peekReady reports whether the socket has data, EOF or an error pending,
// without consuming anything (recv with MSG_PEEK|MSG_DONTWAIT).
func peekReady(fd uintptr, b []byte) bool {
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno != syscall.EAGAIN && errno != syscall.EWOULDBLOCK
}
