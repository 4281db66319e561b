package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"time"

	"fulcrum/internal/h1"
	"fulcrum/internal/rawio"
	"fulcrum/internal/upstream"
)

// tunnelSock is a bare client socket (rawio.Sock) as a tunnel uses it.
type tunnelSock interface {
	Register() error
	SetKeepAlive(idle, interval time.Duration, count int) error
}

// tunnel relays an upgraded connection (WebSocket) in both directions until
// either side closes.
func (c *clientConn) tunnel(uc *upstream.Conn, resp *h1.Response, set *Settings) {
	c.relaying = true
	c.out = appendResponseHead(c.out[:0], resp, -2, false, nil)
	uc.R.Discard(resp.HeadLen)
	c.tc.ArmRead(0)
	c.tc.ArmWrite(0)
	uc.T.ArmRead(0)
	uc.T.ArmWrite(0)
	// A tunnel may idle for hours, so it has no inactivity deadline; TCP
	// keep-alive probes find a client that vanished without a FIN.
	under := c.nc
	if tc, ok := under.(*tls.Conn); ok {
		under = tc.NetConn() // in the poller since accept (wrapTLS)
	}
	switch nc := under.(type) {
	case *net.TCPConn:
		nc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 60 * time.Second, Interval: 15 * time.Second, Count: 4})
	case tunnelSock:
		// Two goroutines use it from here on: it must be in the poller.
		if nc.Register() != nil {
			uc.Close()
			return
		}
		nc.SetKeepAlive(60*time.Second, 15*time.Second, 4)
	}
	c.markBody(len(c.out))
	if _, err := c.tc.Write(c.out); err != nil {
		uc.Close()
		return
	}
	if b := uc.R.Buffered(); len(b) > 0 {
		c.tc.Write(b)
		uc.R.Discard(len(b))
	}
	done := make(chan struct{}, 2)
	var upBytes int64 // client to backend; read only after done
	go func() {
		if b := c.br.Buffered(); len(b) > 0 {
			n, _ := uc.T.Write(b)
			upBytes += int64(n)
			c.br.Discard(len(b))
		}
		n, _ := io.Copy(rawio.Unwrap(uc.T.Conn), c.nc)
		upBytes += n
		closeWrite(rawio.Unwrap(uc.T.Conn))
		done <- struct{}{}
	}()
	n, _ := io.Copy(c.nc, rawio.Unwrap(uc.T.Conn))
	c.tc.Written += n // the access log's bytes out
	closeWrite(c.nc)
	// Give the other direction a moment to finish, then tear down both.
	// The other direction sends on done exactly once: wait for it again only
	// if the select did not already receive it (else the tunnel never ends).
	finished := false
	select {
	case <-done:
		finished = true
	case <-time.After(5 * time.Second):
	}
	uc.Close()
	c.nc.Close()
	if !finished {
		<-done
	}
	c.acc.bodyIn += upBytes
}

type closeWriter interface{ CloseWrite() error }

func closeWrite(c any) {
	if cw, ok := c.(closeWriter); ok {
		cw.CloseWrite()
	}
}
