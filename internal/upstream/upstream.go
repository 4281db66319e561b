// Package upstream keeps pooled, reused connections to one backend. Taking
// and returning a connection is lock-free: idle connections sit in a fixed
// array of atomic slots.
package upstream

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"time"

	"fulcrum/internal/h1"
	"fulcrum/internal/rawio"
)

// BufSize is the read buffer of each upstream connection.
const BufSize = 32 << 10

// MaxIdle is the most idle connections kept per backend.
const MaxIdle = 256

// probeAfter is how long a connection may sit idle before it is checked for a
// close by the backend before reuse.
const probeAfter = 500 * time.Millisecond

// Conn is one connection to a backend.
type Conn struct {
	// T is the connection with inactivity timeouts; use it for all I/O.
	T   h1.TimedConn
	R   h1.Reader
	raw syscall.RawConn
	// idleAt is when the connection went idle (unix nanos). Atomic: Reap
	// reads it on connections it does not own, which Get and Put may be
	// taking and returning meanwhile.
	idleAt atomic.Int64
	// Reused is set when the connection served an earlier request.
	Reused bool
	// Broken marks a connection that must not be returned to the pool.
	Broken bool

	// Watcher is set by the user of the connection that registered it for
	// readiness events elsewhere (the proxy's idle-connection set), so that
	// it registers only once.
	Watcher any
	fd      int

	// TryFill's callback and result (built once: a call allocates nothing).
	tryFn func(uintptr) bool
	tn    int
	terr  error
}

// Fd is the connection's descriptor, -1 if it has none to use directly (TLS).
func (c *Conn) Fd() int {
	if c.raw == nil {
		return -1
	}
	return c.fd
}

// Control runs f with the descriptor, which stays open meanwhile.
func (c *Conn) Control(f func(fd uintptr)) error {
	if c.raw == nil {
		return net.ErrClosed
	}
	return c.raw.Control(f)
}

// TryFill reads what the backend has already sent into R, without waiting. It
// returns the bytes read: 0 with a nil error means nothing has arrived yet (or
// the connection cannot be read this way, TLS, or R has no room).
func (c *Conn) TryFill() (int, error) {
	if c.raw == nil || c.R.Err != nil || c.R.W == len(c.R.Buf) {
		return 0, nil
	}
	if c.tryFn == nil {
		c.tryFn = c.tryRead
	}
	c.tn, c.terr = 0, nil
	if err := c.raw.Read(c.tryFn); err != nil {
		return 0, err
	}
	if c.terr != nil {
		return 0, c.terr
	}
	if c.tn == 0 {
		c.R.Err = io.EOF
		return 0, io.EOF
	}
	if c.tn < 0 {
		return 0, nil
	}
	c.R.W += c.tn
	return c.tn, nil
}

// Options configure a Pool.
type Options struct {
	Addr           string      // host:port
	TLS            *tls.Config // nil for plain HTTP
	ConnectTimeout time.Duration
	IdleTimeout    time.Duration
}

// Pool holds idle connections to one backend. It must not be copied.
type Pool struct {
	opt    Options
	dialer net.Dialer
	slots  [MaxIdle]atomic.Pointer[Conn]
	idle   atomic.Int32
	top    atomic.Uint32
	closed atomic.Bool
	// Dials counts new connections (for tests and metrics).
	Dials atomic.Uint64
}

// New returns a pool for one backend.
func New(opt Options) *Pool {
	p := &Pool{opt: opt}
	p.dialer = net.Dialer{Timeout: opt.ConnectTimeout, KeepAlive: 30 * time.Second}
	return p
}

// ErrDial wraps a failure to connect (the request never reached the backend).
type ErrDial struct{ Err error }

func (e *ErrDial) Error() string { return "connect: " + e.Err.Error() }
func (e *ErrDial) Unwrap() error { return e.Err }

// Get returns an idle connection or dials a new one. Idle connections that the
// backend closed meanwhile are discarded.
func (p *Pool) Get(ctx context.Context) (*Conn, error) {
	if p.idle.Load() > 0 {
		now := time.Now().UnixNano()
		n := uint32(MaxIdle)
		top := p.top.Load()
		for k := uint32(0); k < n && p.idle.Load() > 0; k++ {
			i := (top + n - 1 - k) % n
			c := p.slots[i].Load()
			if c == nil || !p.slots[i].CompareAndSwap(c, nil) {
				continue
			}
			p.idle.Add(-1)
			p.top.Store(i)
			age := now - c.idleAt.Load()
			if p.opt.IdleTimeout > 0 && age > int64(p.opt.IdleTimeout) {
				c.T.Conn.Close()
				continue
			}
			if age > int64(probeAfter) && !c.aliveAfterIdle() {
				c.T.Conn.Close()
				continue
			}
			c.Reused = true
			return c, nil
		}
	}
	return p.dial(ctx)
}

// Dial opens a new connection, bypassing idle ones.
func (p *Pool) Dial(ctx context.Context) (*Conn, error) { return p.dial(ctx) }

func (p *Pool) dial(ctx context.Context) (*Conn, error) {
	nc, err := p.dialer.DialContext(ctx, "tcp", p.opt.Addr)
	if err != nil {
		return nil, &ErrDial{err}
	}
	p.Dials.Add(1)
	c := &Conn{fd: -1}
	if tc, ok := nc.(*net.TCPConn); ok {
		c.raw, _ = tc.SyscallConn()
	}
	if p.opt.TLS != nil {
		tlsConn := tls.Client(nc, p.opt.TLS)
		// The handshake is bounded by connect_timeout too: a backend that
		// accepts TCP but never completes TLS must not hold the request.
		hctx, cancel := ctx, context.CancelFunc(func() {})
		if p.opt.ConnectTimeout > 0 {
			hctx, cancel = context.WithTimeout(ctx, p.opt.ConnectTimeout)
		}
		err := tlsConn.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, &ErrDial{err}
		}
		nc = tlsConn
		c.raw = nil
	} else {
		nc = rawio.Wrap(nc)
		if c.raw != nil {
			c.raw.Control(func(fd uintptr) { c.fd = int(fd) })
		}
	}
	c.T.Conn = nc
	c.R = h1.Reader{Conn: &c.T, Buf: make([]byte, BufSize)}
	return c, nil
}

// aliveAfterIdle clears deadlines that may have expired while the
// connection sat idle, then checks it.
func (c *Conn) aliveAfterIdle() bool {
	c.T.ArmRead(0)
	c.T.ArmWrite(0)
	return c.alive()
}

// Put returns a connection after a complete exchange. Broken connections,
// connections with unread bytes and overflow are closed.
func (p *Pool) Put(c *Conn) {
	if c.Broken || p.closed.Load() || c.R.R != c.R.W || c.R.Err != nil {
		c.T.Conn.Close()
		return
	}
	c.R.R, c.R.W = 0, 0
	// Deadlines stay armed while idle (re-armed lazily on next use); clearing
	// them would cost two timer updates per request.
	c.idleAt.Store(time.Now().UnixNano())
	n := uint32(MaxIdle)
	top := p.top.Load()
	for k := uint32(0); k < n; k++ {
		i := (top + k) % n
		if p.slots[i].CompareAndSwap(nil, c) {
			p.idle.Add(1)
			p.top.Store((i + 1) % n)
			if p.closed.Load() {
				// Raced with Close: make sure it is not left behind.
				p.drain()
			}
			return
		}
	}
	c.T.Conn.Close()
}

// Discard closes a connection that is not reusable.
func (p *Pool) Discard(c *Conn) { c.T.Conn.Close() }

// Close closes the connection.
func (c *Conn) Close() error { return c.T.Conn.Close() }

// Idle is the number of idle connections.
func (p *Pool) Idle() int { return int(p.idle.Load()) }

// Reap closes idle connections older than the idle timeout. Call it from a
// ticker; it runs beside the request path.
func (p *Pool) Reap(now time.Time) {
	if p.opt.IdleTimeout <= 0 {
		return
	}
	limit := now.UnixNano() - int64(p.opt.IdleTimeout)
	for i := range p.slots {
		c := p.slots[i].Load()
		if c != nil && c.idleAt.Load() < limit && p.slots[i].CompareAndSwap(c, nil) {
			p.idle.Add(-1)
			c.T.Conn.Close()
		}
	}
}

// Close closes all idle connections; connections in use are closed when put back.
func (p *Pool) Close() {
	p.closed.Store(true)
	p.drain()
}

// CloseIdle closes the idle connections; unlike Close, the pool stays usable.
// The pool calls it when a backend's health changes: connections kept from
// before a backend went down are likely dead.
func (p *Pool) CloseIdle() { p.drain() }

func (p *Pool) drain() {
	for i := range p.slots {
		if c := p.slots[i].Swap(nil); c != nil {
			p.idle.Add(-1)
			c.T.Conn.Close()
		}
	}
}
