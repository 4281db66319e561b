// Package proxy is fulcrum's HTTP/1.1 data path: it accepts client
// connections, parses requests strictly (internal/h1), picks a backend from
// the pool's current snapshot, forwards over pooled upstream connections with
// retries, and streams the response back.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"fulcrum/internal/accesslog"
	"fulcrum/internal/config"
	"fulcrum/internal/metrics"
	"fulcrum/internal/rawio"
	"fulcrum/internal/requestid"
	"fulcrum/internal/tracing"
)

// Settings are the listener-level settings; they can change on reload.
type Settings struct {
	// Listener is the listener's name, for the access log.
	Listener        string
	Limits          config.Limits
	TrustedProxies  []netip.Prefix
	AccessLog       bool
	AccessLogFormat accesslog.Format
	// RequestID: send X-Request-Id to backends, keeping a client's own only
	// from TrustedProxies.
	RequestID bool
	RateLimit *config.RateLimit
	// Tracer records a span per request; nil = tracing off, and then the
	// request path does not touch OpenTelemetry. SettingsOf leaves it nil:
	// the engine, which owns the tracing pipeline, sets it.
	Tracer *tracing.Tracer
	// TLS terminates TLS on this listener; nil = plain HTTP. The engine
	// sets it (it owns the certificates across reloads).
	TLS *TLS
	// ACME answers a CA's http-01 challenge (method, Host, target) with its
	// key authorization, before routing; nil = no ACME http-01 configured.
	// The engine sets it on plain listeners.
	ACME func(method, host, target string) (string, bool)
}

// SettingsOf returns the settings of listener lc of cfg.
func SettingsOf(cfg *config.Config, lc *config.Listener) *Settings {
	// config accepts only the formats accesslog knows.
	f, _ := accesslog.ParseFormat(cfg.AccessLogFormat)
	return &Settings{
		Listener: lc.Name, Limits: lc.Limits, TrustedProxies: lc.TrustedProxies,
		AccessLog: cfg.AccessLog, AccessLogFormat: f, RequestID: lc.RequestID, RateLimit: lc.RateLimit,
	}
}

// Server serves one listener. Create with New; Serve until Shutdown.
type Server struct {
	log       *slog.Logger
	metrics   *metrics.Metrics
	accessLog io.Writer
	ids       *requestid.Generator

	settings atomic.Pointer[Settings]
	routing  atomic.Pointer[Routing]
	limiter  atomic.Pointer[rateLimiter]

	mu       sync.Mutex
	conns    map[*clientConn]struct{}
	perIP    map[netip.Addr]int
	ln       net.Listener
	acc      *rawio.Acceptor // accepts from ln as bare sockets (Linux), or nil
	shutting atomic.Bool
	active   sync.WaitGroup
	nconns   atomic.Int64

	errLog logLimiter
	bufs   sync.Pool
	// workers are goroutines waiting to serve the next connection.
	workers *workers
	// lot holds idle keep-alive connections without a goroutine each; nil
	// where the platform has no epoll. Created by Serve, closed by Shutdown.
	lot *lot
}

// Options configure a Server.
type Options struct {
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// AccessLog receives the access log lines (with access_log on), each in
	// one Write call from the request's goroutine, so it must be safe for
	// concurrent use (an *os.File is). Default os.Stderr.
	AccessLog io.Writer
}

// New returns a server for the routes r with settings s.
func New(s *Settings, r *Routing, opt Options) *Server {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.AccessLog == nil {
		opt.AccessLog = os.Stderr
	}
	srv := &Server{log: opt.Logger, metrics: opt.Metrics, accessLog: opt.AccessLog, ids: requestid.New(),
		conns: map[*clientConn]struct{}{}, perIP: map[netip.Addr]int{}, workers: newWorkers()}
	srv.Update(s, r)
	srv.bufs.New = func() any { b := make([]byte, readBufSize); return &b }
	return srv
}

// Update swaps settings and routes for the next requests (hot reload).
func (s *Server) Update(set *Settings, r *Routing) {
	s.settings.Store(set)
	s.routing.Store(r)
	if set.RateLimit != nil {
		old := s.limiter.Load()
		if old == nil || !old.sameConfig(set.RateLimit) {
			s.limiter.Store(newRateLimiter(set.RateLimit))
		}
	} else {
		s.limiter.Store(nil)
	}
}

const readBufSize = 4096

// Serve accepts connections on ln until Shutdown. It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	if s.shutting.Load() {
		s.mu.Unlock()
		// Shutdown ran before ln was stored, so it could not close it.
		ln.Close()
		return nil
	}
	if s.lot == nil {
		s.lot = newLot(s)
	}
	deferAccept(ln, 1)
	acc := rawio.NewAcceptor(ln)
	s.acc = acc
	s.mu.Unlock()
	var backoff time.Duration
	for {
		var nc net.Conn
		var peer netip.AddrPort
		var err error
		if acc != nil {
			// A bare descriptor (see rawio.Sock): no poller registration
			// unless the connection has to wait.
			var sk *rawio.Sock
			if sk, err = acc.Accept(); err == nil {
				nc, peer = sk, sk.Peer()
			}
		} else if nc, err = ln.Accept(); err == nil {
			if ta, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
				peer = ta.AddrPort()
				peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
			}
		}
		if err != nil {
			if s.shutting.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// EMFILE and friends: back off instead of spinning.
				if backoff == 0 {
					backoff = 5 * time.Millisecond
				} else if backoff < time.Second {
					backoff *= 2
				}
				s.log.Warn("accept failed; backing off", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		t := s.settings.Load().TLS
		if t != nil {
			tc, err := wrapTLS(nc, t)
			if err != nil {
				nc.Close()
				continue
			}
			nc = tc
		}
		c := s.newConn(nc, peer)
		if c == nil {
			continue
		}
		c.tls = t
		s.workers.serve(c)
	}
}

func isTemporary(err error) bool {
	type temp interface{ Temporary() bool }
	var t temp
	return errors.As(err, &t) && t.Temporary()
}

func (s *Server) newConn(nc net.Conn, peer netip.AddrPort) *clientConn {
	set := s.settings.Load()
	lim := set.Limits
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		nc.Close()
		return nil
	}
	if lim.MaxConns > 0 && len(s.conns) >= lim.MaxConns {
		s.mu.Unlock()
		s.reject(nc, metrics.RejectConnLimit)
		return nil
	}
	if lim.MaxConnsPerIP > 0 && s.perIP[peer.Addr()] >= lim.MaxConnsPerIP {
		s.mu.Unlock()
		s.reject(nc, metrics.RejectConnLimitIP)
		return nil
	}
	c := &clientConn{srv: s, nc: nc, peer: peer}
	s.conns[c] = struct{}{}
	s.perIP[peer.Addr()]++
	s.active.Add(1)
	s.mu.Unlock()
	s.nconns.Add(1)
	c.init()
	return c
}

// reject answers a connection over a limit with 503 and closes it.
func (s *Server) reject(nc net.Conn, reason string) {
	if s.metrics != nil {
		s.metrics.Rejected(reason)
	}
	if _, isTLS := nc.(*tls.Conn); !isTLS {
		// (A TLS client would read the answer as a broken record.)
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write(connLimitResponse)
	}
	nc.Close()
}

var connLimitResponse = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 20\r\nRetry-After: 1\r\nConnection: close\r\n\r\ntoo many connections\n")

func (s *Server) removeConn(c *clientConn) {
	s.mu.Lock()
	delete(s.conns, c)
	if n := s.perIP[c.peer.Addr()]; n <= 1 {
		delete(s.perIP, c.peer.Addr())
	} else {
		s.perIP[c.peer.Addr()] = n - 1
	}
	s.mu.Unlock()
	s.nconns.Add(-1)
	s.active.Done()
}

// Conns is the number of open client connections.
func (s *Server) Conns() int64 { return s.nconns.Load() }

// Shutdown stops accepting, closes idle connections at once, lets requests in
// flight finish (their connections close after the response), and returns when
// all connections are gone or ctx ends; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	if s.acc != nil {
		s.acc.Close() // its duplicate descriptor keeps the socket listening
	}
	s.mu.Unlock()
	s.workers.stop()
	s.mu.Lock()
	lot := s.lot
	s.mu.Unlock()
	if lot != nil {
		defer lot.close()
	}
	done := make(chan struct{})
	go func() { s.active.Wait(); close(done) }()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.closeIdle()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.conns {
				c.kick()
			}
			s.mu.Unlock()
			s.closeIdle()
			// A request waiting for a backend's response head notices its
			// closed client only when the backend answers or
			// response_header_timeout ends: do not wait that long.
			select {
			case <-done:
			case <-time.After(time.Second):
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	for c := range s.conns {
		if c.state.CompareAndSwap(stateIdle, stateClosed) {
			c.kick()
		}
	}
	lot := s.lot
	s.mu.Unlock()
	if lot != nil {
		// Parked connections have no goroutine to notice a close: close
		// them here (outside mu, which closing them takes).
		lot.closeAll()
	}
}

// logLimiter bounds error log lines to about 20 per second so that an outage
// at full traffic does not turn into a logging storm.
type logLimiter struct {
	sec        atomic.Int64
	n          atomic.Int64
	suppressed atomic.Int64
}

func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int64) {
	sec := now.Unix()
	if l.sec.Load() != sec {
		l.sec.Store(sec)
		l.n.Store(0)
		suppressed = l.suppressed.Swap(0)
	}
	if l.n.Add(1) > 20 {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, suppressed
}

// warnLimited logs a warning within the error-log budget. Callers on the
// request path pass only values that need no allocation to box.
func (s *Server) warnLimited(msg, key string, val int) {
	ok, sup := s.errLog.allow(time.Now())
	if !ok {
		return
	}
	s.log.Warn(msg, slog.Int(key, val), slog.Int64("suppressed_since_last", sup))
}

func (s *Server) recovered(c *clientConn, v any) {
	if s.metrics != nil {
		s.metrics.Panic()
	}
	s.log.Error("panic serving request", "client", c.peer.String(), "panic", v, "stack", string(debug.Stack()))
}
