//go:build !unix

package proxy

import "errors"

const rawReadSupported = false

var errAgain = errors.New("again")

// rawRead is not available here: report EAGAIN so the caller waits and the
// ordinary Read path is used.
func rawRead(fd uintptr, b []byte) (int, error) { return 0, errAgain }
