//go:build unix

package upstream

import (
	"syscall"

	"fulcrum/internal/rawio"
)

// alive peeks at the socket without blocking: a readable EOF or unexpected
// bytes mean the connection cannot be reused.
func (c *Conn) alive() bool {
	if c.raw == nil {
		return true
	}
	var buf [1]byte
	ok := true
	err := c.raw.Read(func(fd uintptr) bool {
		// Only "nothing to read" (EAGAIN) means alive: EOF, bytes or an
		// error all mean the connection cannot be reused.
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && ok
}

func (c *Conn) tryRead(fd uintptr) bool {
	n, err := rawio.Read(fd, c.R.Buf[c.R.W:])
	switch err {
	case nil:
		c.tn = n
	case syscall.EAGAIN:
		c.tn = -1
	default:
		c.terr = err
	}
	return true
}
