package proxy

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"time"

	"fulcrum/internal/balance"
	"fulcrum/internal/forward"
	"fulcrum/internal/h1"
	"fulcrum/internal/metrics"
	"fulcrum/internal/pool"
	"fulcrum/internal/upstream"
)

// forwarding is the HTTP/1.1 front's state for the request being forwarded,
// which Attempt, Refuse and Fail (the forward.Wire of a clientConn) read
// with the request itself in c.ri.
type forwarding struct {
	set     *Settings
	bodyLen int64 // length of the buffered body, -1 when the body is streamed or absent
	start   time.Time
}

// forward sends the request to a backend of u through the forwarding core,
// with retries, and relays the answer. The request head is still in c.br;
// ri describes it.
func (c *clientConn) forward(set *Settings, u *Upstream, ri *reqInfo, start time.Time) (keep bool) {
	req := &c.req
	call := &c.call
	call.Begin(u.Pool, c.srv.metrics)
	if c.tr.span != nil {
		call.Observer = c
	}
	snap := call.Snap
	cfg := snap.Cfg
	clientIP := ri.client
	switch cfg.Strategy {
	case "ip_hash":
		call.Pick.Hash, call.Pick.HasHash = hashAddr(clientIP), true
	case "consistent_hash":
		if key, ok := hashKeyValue(req, cfg.HashKey); ok {
			call.Pick.Hash, call.Pick.HasHash = balance.Hash64(key), true
		}
	}
	if st := u.sticky.Load(); st != nil {
		ri.sticky = st
		ri.stickyIdx, ri.stickyRes = st.lookup(c, snap, clientIP)
		if st.cfg.Type == "app_cookie" {
			if v := CookieValue(req.Headers, st.cfg.CookieName); len(v) > 0 {
				c.appCookie = append(c.appCookie[:0], v...)
				ri.appCookie = c.appCookie
			}
		}
	}
	call.Pinned = ri.stickyIdx
	call.Idempotent, call.Upgrade = ri.idempotent, ri.upgrade

	// Build the outbound head while the request head is still in the buffer.
	c.out = c.appendRequestHead(c.out[:0], set, ri.entry.rt)
	if ops := ri.entry.rt.RequestHeaders(); !ops.Empty() {
		c.out = c.applyOps(c.out, ops)
	}
	c.br.Discard(req.HeadLen)

	// Buffer a small body so that the request can be replayed on another backend.
	call.Replayable = ri.cl <= 0 && !ri.chunked
	c.fw = forwarding{set: set, bodyLen: -1, start: start}
	if ri.cl > 0 && ri.cl <= cfg.RetryBuffer {
		if ri.expect && ri.minor == 1 {
			c.tc.Write(continueResponse)
		}
		c.tc.ArmRead(set.Limits.ReadTimeout)
		c.body = c.body[:0]
		n, err := h1.CopyLength((*appendWriter)(&c.body), &c.br, ri.cl)
		c.acc.bodyIn = n
		if err != nil {
			c.srv.finish(c, nil, *ri, c.clientBodyFailed(err), start, err)
			return false
		}
		call.Replayable = true
		c.fw.bodyLen = ri.cl
	}
	keep = call.Run(c, start)
	c.fw = forwarding{}
	return keep
}

var errCodingHTTP10 = errors.New("response transfer coding cannot be relayed to an HTTP/1.0 client")

// Refuse answers 503 when no backend could be tried (forward.Wire).
func (c *clientConn) Refuse(call *forward.Call, busy bool, usable int) bool {
	msg := "no backend available"
	if busy {
		c.srv.countRejected(metrics.RejectBackendsBusy)
		msg = "all backends are busy"
	} else {
		c.srv.warnLimited(msg, "pool_usable", usable)
	}
	return c.unavailable(&c.ri, c.fw.start, msg, call.Replayable)
}

// Fail answers 502 or 504 after the last failed attempt (forward.Wire).
func (c *clientConn) Fail(status int, mem *pool.Member, err error) {
	if status == 504 {
		c.writeError(504, "gateway timeout", false)
	} else {
		c.writeError(502, "bad gateway", false)
	}
	c.srv.finish(c, mem, c.ri, status, c.fw.start, err)
}

// Attempt tries the request once on mem and finishes the request when it
// is answered (forward.Wire).
func (c *clientConn) Attempt(call *forward.Call, mem *pool.Member, fresh bool) forward.Result {
	fw := &c.fw
	r := c.attempt(fw.set, call, mem, &c.ri, fw.bodyLen, fresh)
	if r.Kind == forward.None || r.Kind == forward.Client || r.Kind == forward.TooLarge {
		c.srv.finish(c, mem, c.ri, r.Status, fw.start, r.Err)
	}
	return r
}

var continueResponse = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// attempt sends the request to one backend and, if a response head arrives,
// relays the whole response. Once a response has been relayed (even
// partially) its Kind is None; Keep says whether the client connection stays.
func (c *clientConn) attempt(set *Settings, call *forward.Call, mem *pool.Member, ri *reqInfo, bodyLen int64, fresh bool) forward.Result {
	p, snap := call.Pool, call.Snap
	cfg := snap.Cfg
	// The caller acquired a slot on mem; release it exactly once.
	st := mem.State
	released := false
	release := func(failed bool) {
		if !released {
			released = true
			st.Release(failed)
			p.Released()
		}
	}
	defer release(true)

	var uc *upstream.Conn
	var err error
	if fresh {
		uc, err = mem.Conns.Dial(context.Background())
	} else {
		uc, err = mem.Conns.Get(context.Background())
	}
	if err != nil {
		c.attemptFailed(p, mem, metrics.ErrConnect, err)
		return forward.Result{Kind: forward.Connect, Err: err}
	}
	t0 := time.Now() // reset below once a streamed body has been sent
	uc.T.WriteTimeout = cfg.ResponseHeaderTimeout
	uc.T.ReadTimeout = cfg.ResponseHeaderTimeout

	// Framing towards the backend: always re-framed by fulcrum.
	out := c.out
	switch {
	case bodyLen >= 0:
		out = appendContentLength(out, bodyLen)
		out = append(out, '\r', '\n')
		out = append(out, c.body...)
	case ri.chunked:
		out = append(out, "Transfer-Encoding: chunked\r\n\r\n"...)
	case ri.cl > 0:
		out = appendContentLength(out, ri.cl)
		out = append(out, '\r', '\n')
	default:
		out = append(out, '\r', '\n')
	}
	if _, err := uc.T.Write(out); err != nil {
		mem.Conns.Discard(uc)
		if uc.Reused {
			release(false)
			return forward.Result{Kind: forward.Stale, Err: err}
		}
		c.attemptFailed(p, mem, metrics.ErrTransport, err)
		return forward.Result{Kind: forward.Reset, Err: err}
	}
	// Keep the request head in c.out (and any capacity grown): a retry on
	// another backend must send the same head again.
	c.out = out[:len(c.out)]
	// Stream a body that was not buffered.
	if bodyLen < 0 && (ri.chunked || ri.cl > 0) {
		call.BodyStarted = true
		if ri.expect && ri.minor == 1 {
			c.tc.Write(continueResponse)
		}
		c.tc.ArmRead(set.Limits.ReadTimeout)
		var berr error
		if ri.chunked {
			c.chunk = h1.ChunkedCopier{Reencode: true, Limit: set.Limits.MaxBodyBytes, MaxLine: 4096}
			c.acc.bodyIn, berr = c.chunk.Copy(&uc.T, &c.br)
		} else {
			c.acc.bodyIn, berr = h1.CopyLength(&uc.T, &c.br, ri.cl)
		}
		if berr != nil {
			var be *h1.BodyError
			if errors.As(berr, &be) && !be.Write {
				// The client failed: bad chunk framing, too large, or gone.
				mem.Conns.Discard(uc)
				release(false)
				if errors.Is(berr, h1.ErrBodyTooLarge) {
					c.srv.countRejected(metrics.RejectBodyTooLarge)
					c.writeError(413, "request body too large", false)
					return forward.Result{Kind: forward.TooLarge, Err: berr, Status: 413}
				}
				if errors.Is(berr, h1.ErrBadChunk) {
					c.srv.countRejected(metrics.RejectBadRequest)
					c.writeError(400, "malformed chunked body", false)
					return forward.Result{Kind: forward.Client, Err: berr, Status: 400}
				}
				return forward.Result{Kind: forward.Client, Err: berr, Status: c.clientBodyFailed(berr)}
			}
			// The backend stopped reading; it may still have answered (e.g.
			// 413). The rest of the client's body is unread, so the client
			// connection must close after the answer: its remaining bytes
			// must never be taken for a next request.
			uc.Broken = true
			ri.keepAlive = false
		}
	}

	if call.BodyStarted {
		// Time to first byte counts from the end of the upload: a slow
		// client must not make the backend look slow.
		t0 = time.Now()
	}
	// Response head, skipping (and relaying) interim 1xx responses.
	// The response head must start within response_header_timeout; uc.T
	// reads keep the deadline armed (inactivity), without a timer update per request.
	resp := &c.resp
	for {
		if err := c.readResponseHead(uc, resp, cfg.ResponseHeaderTimeout); err != nil {
			mem.Conns.Discard(uc)
			if isTimeout(err) {
				c.attemptFailed(p, mem, metrics.ErrTimeout, err)
				return forward.Result{Kind: forward.Timeout, Err: err}
			}
			if errors.Is(err, h1.ErrBadStatusLine) || errors.Is(err, h1.ErrBadRespHeader) ||
				errors.Is(err, h1.ErrBadRespLength) || errors.Is(err, h1.ErrRespTooLarge) {
				c.attemptFailed(p, mem, metrics.ErrTransport, err)
				return forward.Result{Kind: forward.BadResponse, Err: err}
			}
			if uc.Reused && uc.R.W == 0 && !call.BodyStarted {
				release(false)
				return forward.Result{Kind: forward.Stale, Err: err}
			}
			c.attemptFailed(p, mem, metrics.ErrTransport, err)
			return forward.Result{Kind: forward.Reset, Err: err}
		}
		if resp.Status == 101 && ri.upgrade {
			break
		}
		if resp.Status >= 100 && resp.Status < 200 {
			// Relay 1xx (e.g. 103 Early Hints) to HTTP/1.1 clients; drop 100 (already handled).
			// An unsolicited 101 is not relayed. A fresh buffer keeps c.out's
			// request head intact for a retry (1xx responses are rare).
			if resp.Status != 100 && resp.Status != 101 && ri.minor == 1 {
				c.tc.Write(appendResponseHead(nil, resp, -2, false, nil))
			}
			uc.R.Discard(resp.HeadLen)
			continue
		}
		break
	}
	ttfb := time.Since(t0)
	c.acc.upstream = ttfb
	if mem.Metrics != nil {
		mem.Metrics.ObserveResponse(ttfb)
	}
	if cfg.Strategy == "least_response_time" {
		st.ObserveLatency(ttfb, t0.Add(ttfb))
	}
	mem.Window.Record(t0.Add(ttfb), ttfb, resp.Status >= 500)
	failed := resp.Status >= 500 && cfg.Passive.Consider5xx
	if resp.Status >= 500 && mem.Metrics != nil {
		mem.Metrics.Error(metrics.ErrHTTP5xx)
	}
	p.ObserveResponse(mem, resp.Status, failed)
	if resp.Codings && ri.minor == 0 && !ri.isHead && !h1.BodylessStatus(resp.Status) {
		// A transfer coding other than chunked (gzip, ...) cannot reach an
		// HTTP/1.0 client, which knows no Transfer-Encoding: dropping the
		// coding would hand it a corrupted body. (Backends are asked in
		// HTTP/1.1 without TE, so a compliant one never does this.)
		mem.Conns.Discard(uc)
		release(false)
		c.logBackendFailure(mem, errCodingHTTP10) // not the backend's error: no metric
		c.writeError(502, "bad gateway", false)
		return forward.Result{Kind: forward.None, Err: errCodingHTTP10, Status: 502}
	}

	// The request keeps its slot on the backend until the response's last
	// byte is written (or the relay fails): max_connections, the
	// least-load strategies, connections_active and draining count
	// responses still streaming. A tunnel counts as one request while it
	// is open.
	if resp.Status == 101 {
		c.tunnel(uc, resp, set)
		release(failed)
		return forward.Result{Kind: forward.None, Status: 101}
	}
	keep := c.relayResponse(set, snap, mem, uc, resp, ri)
	release(failed)
	return forward.Result{Kind: forward.None, Status: resp.Status, Keep: keep}
}

// attemptFailed counts an attempt that got no response head from mem's
// backend (the client gets a 502 or 504 for it unless a retry succeeds):
// passive health, the backend's last minute (as a failed request), metrics
// and the log.
func (c *clientConn) attemptFailed(p *pool.Pool, mem *pool.Member, t metrics.ErrorType, err error) {
	p.ObserveFailure(mem, err)
	mem.Window.Record(time.Now(), -1, true)
	c.backendError(mem, t, err)
}

// backendError counts a failed exchange with mem's backend and logs it. A
// response that breaks after its head comes here too: its request is already
// in the backend's last minute (recorded with the head).
func (c *clientConn) backendError(mem *pool.Member, t metrics.ErrorType, err error) {
	if mem.Metrics != nil {
		mem.Metrics.Error(t)
	}
	c.logBackendFailure(mem, err)
}

// logBackendFailure logs a failed exchange with a backend within the
// error-log budget.
func (c *clientConn) logBackendFailure(mem *pool.Member, err error) {
	// Check the log budget before building the line: during an outage this
	// runs for every request, and most lines are suppressed.
	ok, sup := c.srv.errLog.allow(time.Now())
	if !ok {
		return
	}
	if sup > 0 {
		c.srv.log.Warn("backend request failed", "backend", mem.Backend.Host, "cause", err, "suppressed_since_last", sup)
		return
	}
	c.srv.log.Warn("backend request failed", "backend", mem.Backend.Host, "cause", err)
}

// finish records metrics and the access log line for one request.
func (s *Server) finish(c *clientConn, mem *pool.Member, ri reqInfo, status int, start time.Time, err error) {
	d := time.Since(start)
	if s.metrics != nil && status > 0 {
		var mb *metrics.Backend
		if mem != nil && mem.Metrics != nil {
			mb = mem.Metrics
		} else {
			mb = s.metrics.NoBackend()
		}
		var rt *metrics.Route // route="none": no route matched
		if ri.entry != nil {
			rt = ri.entry.metric
		}
		mb.ObserveRequest(rt, ri.method, status, d)
	}
	if c.tr.span != nil {
		c.endTrace(mem, &ri, status)
	}
	if ri.accessLog {
		s.writeAccess(c, mem, &ri, status, start, d)
	}
}

func (s *Server) countRejected(reason string) {
	if s.metrics != nil {
		s.metrics.Rejected(reason)
	}
}

// appendWriter appends to a byte slice.
type appendWriter []byte

func (w *appendWriter) Write(b []byte) (int, error) { *w = append(*w, b...); return len(b), nil }

func appendContentLength(b []byte, n int64) []byte {
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, '\r', '\n')
}

// hashAddr hashes a client address for ip_hash and source_ip stickiness.
func hashAddr(a netip.Addr) uint64 {
	b := a.As16()
	return balance.Hash64(b[:])
}
