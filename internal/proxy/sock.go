package proxy

import (
	"crypto/tls"
	"syscall"
)

// bareSock is a client connection accepted as a bare descriptor
// (rawio.Sock, Linux): it enters Go's poller only when it has to wait.
type bareSock interface {
	RawConn() syscall.RawConn
	FD() int
	Kick()
}

// kick ends the connection from another goroutine (shutdown): a bare socket
// is shut down, so that its owner wakes and closes it (closing it here
// could free its number under the owner); other connections are closed.
func (c *clientConn) kick() {
	if tc, ok := c.nc.(*tls.Conn); ok {
		if k, ok := tc.NetConn().(bareSock); ok {
			k.Kick()
			return
		}
	}
	if k, ok := c.nc.(bareSock); ok {
		k.Kick()
		return
	}
	c.nc.Close()
}
