//go:build unix && !linux

package rawio

import "syscall"

// Read is read(2) on the non-blocking descriptor fd, retried when
// interrupted. Errors are syscall.Errno values (EAGAIN when nothing is there).
func Read(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
}
