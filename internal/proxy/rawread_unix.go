//go:build unix

package proxy

import (
	"syscall"

	"fulcrum/internal/rawio"
)

// rawReadSupported says whether idle connections can wait without a buffer.
const rawReadSupported = true

var errAgain error = syscall.EAGAIN

// rawRead is read(2) on a non-blocking socket (made without entering the
// scheduler where the platform allows, see internal/rawio); errors are
// returned as syscall.Errno values so the caller can compare them with
// errAgain.
func rawRead(fd uintptr, b []byte) (int, error) {
	n, err := rawio.Read(fd, b)
	if err != nil {
		if err == syscall.EWOULDBLOCK {
			err = errAgain
		}
		return 0, err
	}
	return n, nil
}
