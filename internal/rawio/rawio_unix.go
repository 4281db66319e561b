//go:build unix && !linux

package rawio

import "syscall"

// Read is one read(2) on the non-blocking descriptor fd.
func Read(fd uintptr, b []byte) (int, error) { return syscall.Read(int(fd), b) }
