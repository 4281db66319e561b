package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"fulcrum/internal/forward"
	"fulcrum/internal/h1"
	"fulcrum/internal/rawio"
	"fulcrum/internal/route"
)

const (
	stateIdle int32 = iota
	stateActive
	stateClosed
	// stateParked: idle in the server's lot, with no goroutine.
	stateParked
	// stateParking: being registered in the lot by its goroutine;
	// stateWoken: readable before that finished.
	stateParking
	stateWoken
)

var procStart = time.Now()

// nanotime is a monotonic clock reading in nanoseconds.
func nanotime() int64 { return int64(time.Since(procStart)) }

// clientConn is one client connection. Its goroutine owns every field except
// state, which Shutdown flips from idle to closed, and parkedAt; while the
// connection is parked (no goroutine), the lot owns it.
type clientConn struct {
	srv   *Server
	nc    net.Conn
	raw   syscall.RawConn
	peer  netip.AddrPort
	state atomic.Int32

	// Parking (see lot): the descriptor, whether it is registered in the
	// lot's epoll set, when it parked, and the registration callback.
	fd       int
	inLot    bool
	parkErr  error
	parkedAt atomic.Int64
	armFn    func(uintptr)

	tc     h1.TimedConn
	br     h1.Reader
	bufp   *[]byte
	readFn func(uintptr) bool
	tryFn  func(uintptr) bool
	rn     int
	rerr   error
	// tlsVersion and tlsSNI describe a TLS connection after its handshake
	// (tlsVersion 0: plain HTTP).
	tlsVersion uint16
	tlsSNI     string
	// tls is the TLS side the connection was accepted with (nil: plain);
	// a reload that adds or removes a listener's TLS leaves it alone.
	tls *TLS
	// served counts requests on this connection.
	served int
	// relaying is set once the current request's response started.
	relaying bool
	// linger asks close to drain the client's input before closing, so a
	// refusal written while the client still sends is not lost to a reset.
	linger bool

	// *scratch holds the per-request working state. It is taken from a pool
	// when a request arrives and given back when the connection goes idle,
	// so an idle connection costs only the fields above.
	*scratch
}

// scratch is the working state of one request; its fields are promoted into
// clientConn and valid only while a request is being handled.
type scratch struct {
	req       h1.Request
	resp      h1.Response
	call      forward.Call
	fw        forwarding // the request being forwarded (Attempt, Refuse, Fail)
	ri        reqInfo    // the request being handled; here so that pointers to it do not escape
	acc       accessState
	tr        requestTrace
	out       []byte // outbound head buffer, reused
	out2      []byte // a second head buffer (a redirect's Location)
	opsBuf    []byte // spare head buffer for header modifiers (applyOps)
	rreq      route.Request
	body      []byte // replay buffer for request bodies, reused
	chunk     h1.ChunkedCopier
	keyBuf    []byte
	cookieBuf []byte
	appCookie []byte
	num       [32]byte
	up        upWaiter // waiting for a backend's answer in the lot
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{
		req:  h1.Request{Headers: make([]h1.Header, 0, 16)},
		resp: h1.Response{Headers: make([]h1.Header, 0, 16)},
		out:  make([]byte, 0, 512),
	}
}}

// maxPooledBody bounds replay buffers kept in the pool.
const maxPooledBody = 1 << 20

func (c *clientConn) getScratch() {
	if c.scratch == nil {
		c.scratch = scratchPool.Get().(*scratch)
	}
}

func (c *clientConn) putScratch() {
	s := c.scratch
	if s == nil {
		return
	}
	c.scratch = nil
	s.req.Reset()
	s.resp.Reset()
	s.call = forward.Call{}
	s.fw = forwarding{}
	s.ri = reqInfo{} // drop its pointers to routes and pools a reload may retire
	s.acc.release()
	s.tr = requestTrace{}
	s.out = s.out[:0]
	if cap(s.body) > maxPooledBody {
		s.body = nil
	}
	s.body = s.body[:0]
	scratchPool.Put(s)
}

func (c *clientConn) init() {
	c.state.Store(stateIdle)
	c.fd = -1
	switch nc := c.nc.(type) {
	case *net.TCPConn:
		if rawReadSupported {
			c.raw, _ = nc.SyscallConn()
		}
		if c.raw != nil && c.srv.lot != nil {
			c.raw.Control(func(fd uintptr) { c.fd = int(fd) })
			c.armFn = c.arm
		}
	case bareSock:
		c.raw = nc.RawConn()
		if c.srv.lot != nil {
			c.fd = nc.FD()
			c.armFn = c.arm
		}
	}
	c.readFn = c.readIdle
	c.tryFn = c.tryRead
	c.tc.Conn = rawio.Wrap(c.nc)
	c.br.Conn = &c.tc
}

// readIdle is the RawConn.Read callback that reads the next request without
// holding a buffer while the connection idles: the buffer is taken from the
// pool only when the kernel has bytes for it, and given back on EAGAIN before
// the goroutine parks. When data is already there this costs one read(2),
// the same as a plain Read.
func (c *clientConn) readIdle(fd uintptr) bool {
	c.getBuf()
	n, err := rawRead(fd, c.br.Buf[c.br.W:])
	if err == errAgain {
		c.putBuf()
		return false
	}
	c.rn, c.rerr = n, err
	return true
}

// tryRead is the RawConn.Read callback for one non-blocking read into the
// buffer: rn is the byte count, -1 when nothing is there yet.
func (c *clientConn) tryRead(fd uintptr) bool {
	n, err := rawRead(fd, c.br.Buf[c.br.W:])
	if err == errAgain {
		c.rn = -1
		return true
	}
	c.rn, c.rerr = n, err
	return true
}

// waitAndRead blocks until the client sends bytes (read into the buffer),
// closes, or the armed deadline passes.
func (c *clientConn) waitAndRead() error {
	if c.raw == nil {
		c.getBuf()
		_, err := c.br.Fill(len(c.br.Buf))
		return err
	}
	c.rn, c.rerr = 0, nil
	if err := c.raw.Read(c.readFn); err != nil {
		return err
	}
	if c.rerr != nil {
		return c.rerr
	}
	if c.rn <= 0 {
		return io.EOF
	}
	c.br.W += c.rn
	return nil
}

func (c *clientConn) getBuf() {
	if c.br.Buf == nil {
		c.bufp = c.srv.bufs.Get().(*[]byte)
		c.br.Buf = *c.bufp
	}
}

// putBuf returns the read buffer to the pool while the connection idles.
func (c *clientConn) putBuf() {
	if c.br.Buf == nil || c.br.R != c.br.W {
		return
	}
	if len(c.br.Buf) == readBufSize && c.bufp != nil {
		*c.bufp = c.br.Buf
		c.srv.bufs.Put(c.bufp)
	}
	c.br.Buf, c.bufp = nil, nil
	c.br.R, c.br.W = 0, 0
}

// lingerTime and lingerBytes bound the drain of a refused client's input.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

func (c *clientConn) close() {
	c.state.Store(stateClosed)
	if c.linger {
		// Half-close, then read (and drop) what the client still sends,
		// briefly: closing with unread input would send a reset that can
		// destroy the error response before the client reads it.
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
			c.nc.SetReadDeadline(time.Now().Add(lingerTime))
			io.Copy(io.Discard, io.LimitReader(c.nc, lingerBytes))
		}
	}
	c.nc.Close()
	c.br.R, c.br.W = 0, 0
	c.putBuf()
	c.putScratch()
	c.srv.removeConn(c)
}

// serve is the body of a connection goroutine. It waits for a request
// (holding no buffer), then handles requests while bytes are buffered. When
// the connection goes idle again it hands the wait to a fresh goroutine and
// exits: a fresh goroutine has a minimal stack, so an idle connection does not
// keep the stack that handling a request grew. This costs one goroutine start
// per request, well under a microsecond.
func (c *clientConn) serve() {
	handedOff := false
	defer func() {
		if v := recover(); v != nil {
			c.srv.recovered(c, v)
			if c.state.Load() == stateActive && !c.relaying {
				// Only when no response has started: a second status line
				// in the middle of a body would corrupt the stream.
				c.nc.SetWriteDeadline(time.Now().Add(time.Second))
				c.nc.Write(internalErrorResponse)
			}
			handedOff = false
		}
		if !handedOff {
			c.close()
		}
	}()
	set := c.srv.settings.Load()
	if c.br.R == c.br.W {
		if c.srv.shutting.Load() {
			return
		}
		if c.served == 0 {
			var deadline time.Time
			if set.Limits.ReadHeaderTimeout > 0 {
				deadline = time.Now().Add(set.Limits.ReadHeaderTimeout)
			}
			if t := c.tls; t != nil && c.tlsVersion == 0 {
				if !c.handshake(t, deadline) {
					return
				}
			}
			if !deadline.IsZero() {
				// A new connection must finish its TLS handshake and send its
				// first request head within read_header_timeout, counted from
				// the accept.
				c.tc.SetReadDeadline(deadline)
			}
			if err := c.waitAndRead(); err != nil {
				return
			}
		} else {
			// Woken from the lot, or handed off to this fresh goroutine.
			switch c.awaitNext(set, false, true) {
			case nextGone:
				return
			case nextParked:
				handedOff = true
				return
			}
		}
	}
	for {
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return
		}
		c.getBuf()
		c.getScratch()
		if err := c.readHead(set); err != nil {
			var he *h1.Error
			if errors.As(err, &he) {
				c.refuse(he)
			}
			return
		}
		c.served++
		c.relaying = false
		keep := c.handle(set)
		if !keep || !c.state.CompareAndSwap(stateActive, stateIdle) {
			return
		}
		set = c.srv.settings.Load()
		if c.br.R == c.br.W {
			switch c.awaitNext(set, true, false) {
			case nextGone:
				return
			case nextParked:
				handedOff = true
				return
			case nextHandOff:
				handedOff = true
				go c.serve()
				return
			}
		}
	}
}

type nextResult int

const (
	nextReady   nextResult = iota // bytes of the next request are buffered
	nextGone                      // closed, timed out or failed: close c
	nextParked                    // c is in the lot: do not touch it again
	nextHandOff                   // wait in a fresh goroutine (no lot)
)

// awaitNext waits, between requests, for the next request's first bytes.
//
// Under load the next request is usually on its way: with busy set, the other
// connections run first (Gosched), then one read without blocking looks for
// it, so a busy connection keeps its goroutine and costs no wake-up. If
// nothing is there, the connection parks in the lot (Linux) and the goroutine
// ends. The lot's registration is edge-triggered and permanent, so parking
// costs no system call: the state is set to parking before the read, and any
// bytes that arrive after the read raise an event that wakes the connection.
//
// Without a lot, the wait happens in a fresh goroutine (fresh false: hand
// off), whose minimal stack is what an idle connection then keeps.
func (c *clientConn) awaitNext(set *Settings, busy, fresh bool) nextResult {
	if c.raw == nil {
		c.getBuf()
		c.tc.ArmRead(set.Limits.IdleTimeout)
		if _, err := c.br.Fill(len(c.br.Buf)); err != nil {
			return nextGone
		}
		return nextReady
	}
	// Between requests the read deadline is the idle timeout (a lazy re-arm:
	// usually one clock read). A deadline left from the request (a body's
	// read_timeout) must not cut a connection that never waits again.
	c.tc.ArmRead(set.Limits.IdleTimeout)
	lot := c.srv.lot
	if busy {
		runtime.Gosched()
		if lot != nil {
			lot.poll()
		}
	}
	c.br.R, c.br.W = 0, 0
	parking := c.armFn != nil && lot.beginPark(c)
	c.getBuf()
	c.rn, c.rerr = 0, nil
	err := c.raw.Read(c.tryFn)
	if c.rn >= 0 || err != nil {
		if parking {
			lot.cancelPark(c)
		}
		if err != nil || c.rerr != nil || c.rn == 0 {
			return nextGone // EOF or error
		}
		c.br.W += c.rn
		return nextReady
	}
	// Nothing yet: give back the buffers, which an idle connection does not
	// hold, and park, or wait.
	c.putBuf()
	c.putScratch()
	if parking && lot.finishPark(c) {
		return nextParked
	}
	if !fresh && !parking {
		return nextHandOff
	}
	c.tc.ArmRead(set.Limits.IdleTimeout)
	if c.waitAndRead() != nil {
		return nextGone
	}
	return nextReady
}

var internalErrorResponse = []byte("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 22\r\nConnection: close\r\n\r\ninternal server error\n")
