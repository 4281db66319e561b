package proxy

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"runtime"
	"strconv"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/balance"
	"fulcrum/internal/config"
	"fulcrum/internal/h1"
	"fulcrum/internal/metrics"
	"fulcrum/internal/pool"
	"fulcrum/internal/upstream"
)

// failure classes of one attempt.
type failKind uint8

const (
	failNone     failKind = iota
	failConnect           // never reached the backend
	failTimeout           // no response head within response_header_timeout
	failReset             // connection reset/closed before any response byte
	failBadResp           // malformed response head
	failClient            // the client went away or sent a bad body
	failTooLarge          // request body over max_body_bytes
	// failStale: a reused connection was closed by the backend before any
	// response byte (it had closed the idle connection, or restarted). Not
	// the backend's fault: no passive failure is counted.
	failStale
)

// forward sends the request to a backend of u, with retries, and relays
// the answer. The request head is still in c.br; ri describes it.
func (c *clientConn) forward(set *Settings, u *Upstream, ri *reqInfo, start time.Time) (keep bool) {
	req := &c.req
	p := u.Pool
	snap := p.Snapshot()
	cfg := snap.Cfg
	clientIP := ri.client
	c.breq = balance.Request{}
	switch cfg.Strategy {
	case "ip_hash":
		c.breq.Hash, c.breq.HasHash = hashAddr(clientIP), true
	case "consistent_hash":
		if key, ok := hashKeyValue(req, cfg.HashKey); ok {
			c.breq.Hash, c.breq.HasHash = balance.Hash64(key), true
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

	// Build the outbound head while the request head is still in the buffer.
	c.out = c.appendRequestHead(c.out[:0], set, ri.entry.rt)
	if ops := ri.entry.rt.RequestHeaders(); !ops.Empty() {
		c.out = c.applyOps(c.out, ops)
	}
	c.br.Discard(req.HeadLen)

	// Buffer a small body so that the request can be replayed on another backend.
	replayable := ri.cl <= 0 && !ri.chunked
	var bodyLen int64 = -1
	if ri.cl > 0 && ri.cl <= cfg.RetryBuffer {
		if ri.expect && ri.minor == 1 {
			c.tc.Write(continueResponse)
		}
		c.tc.ArmRead(set.Limits.ReadTimeout)
		c.body = c.body[:0]
		if _, err := h1.CopyLength((*appendWriter)(&c.body), &c.br, ri.cl); err != nil {
			c.srv.finish(c, nil, *ri, c.clientBodyFailed(err), start, err)
			return false
		}
		replayable = true
		bodyLen = ri.cl
	}

	var (
		lastKind failKind
		lastErr  error
		lastMem  *pool.Member
		tried    *backend.Backend
		attempt  int
		status   int
	)
	budget := p.Budget()
	budget.Request(start)
	bodyStarted := false
	var triedList [4]*backend.State // backends of earlier attempts
	var sameAgain *pool.Member      // retry on this backend with a fresh connection
	staleRetried := false
	for {
		c.breq.Exclude = tried
		var b *backend.Backend
		var err error
		if sameAgain != nil {
			b = sameAgain.Backend
		} else if ri.stickyIdx >= 0 && attempt == 0 {
			b = snap.Members[ri.stickyIdx].Backend
		} else {
			b, err = snap.Picker.Pick(&c.breq)
			// Avoid every backend already tried, not only the last one,
			// while another is available.
			for k := 0; err == nil && k < len(snap.Members) && k < 4 && triedBefore(&triedList, attempt, b); k++ {
				c.breq.Exclude = b
				b, err = snap.Picker.Pick(&c.breq)
			}
		}
		if err != nil {
			if lastKind == failNone {
				c.srv.warnLimited("no backend available", "pool_usable", snap.Usable)
				return c.unavailable(ri, start, "no backend available", replayable)
			}
			break
		}
		mem := c.acquire(p, snap, cfg, b)
		if mem == nil {
			if lastKind == failNone {
				c.srv.countRejected(metrics.RejectBackendsBusy)
				return c.unavailable(ri, start, "all backends are busy", replayable)
			}
			break
		}
		b = mem.Backend
		lastMem = mem
		if attempt > 0 && c.srv.metrics != nil {
			c.srv.metrics.RetryAttempt()
		}
		fresh := sameAgain != nil
		sameAgain = nil
		kind, err, st, keepClient := c.attempt(set, cfg, p, snap, mem, ri, bodyLen, &bodyStarted, start, fresh)
		if kind == failNone || kind == failClient || kind == failTooLarge {
			status = st
			c.srv.finish(c, mem, *ri, st, start, err)
			return keepClient
		}
		if kind == failStale {
			// Other idle connections to this backend are likely stale too.
			mem.Conns.CloseIdle()
			if !staleRetried && replayable && ri.idempotent && !ri.upgrade {
				// Like net/http's Transport: repeat once on a fresh
				// connection to the same backend, outside retries and budget.
				staleRetried = true
				sameAgain = mem
				continue
			}
			kind = failReset
		}
		lastKind, lastErr = kind, err
		if !c.canRetry(kind, *ri, replayable, bodyStarted, attempt, cfg) {
			break
		}
		// A connect failure never reached a backend, so retrying it adds no
		// load to one: only retries of requests that may have been
		// processed draw on the budget.
		if kind != failConnect && !budget.TryRetry(time.Now()) {
			if c.srv.metrics != nil {
				c.srv.metrics.RetryBudgetExhausted()
			}
			break
		}
		tried = b
		if attempt < len(triedList) {
			triedList[attempt] = b.State
		}
		attempt++
	}
	switch lastKind {
	case failTimeout:
		status = 504
		c.writeError(504, "gateway timeout", false)
	default:
		status = 502
		c.writeError(502, "bad gateway", false)
	}
	c.srv.finish(c, lastMem, *ri, status, start, lastErr)
	return false
}

var errCodingHTTP10 = errors.New("response transfer coding cannot be relayed to an HTTP/1.0 client")

// triedBefore reports whether b served one of the first n attempts.
func triedBefore(list *[4]*backend.State, n int, b *backend.Backend) bool {
	for i := 0; i < n && i < len(list); i++ {
		if list[i] == b.State {
			return true
		}
	}
	return false
}

// canRetry decides whether a failed attempt may be repeated on another
// backend: only before any response byte arrived, only with a replayable body,
// and for non-idempotent requests only if the request never reached a backend.
func (c *clientConn) canRetry(kind failKind, ri reqInfo, replayable, bodyStarted bool, attempt int, cfg *config.Pool) bool {
	if attempt >= cfg.Retries || ri.upgrade {
		return false
	}
	switch kind {
	case failConnect:
		return replayable || !bodyStarted
	case failTimeout, failReset:
		return replayable && ri.idempotent
	}
	return false
}

// acquire takes a request slot on b's member or, when b is at
// max_connections, on another backend; when every backend is full it waits in
// the pool's bounded queue for up to queue_timeout. nil means no slot.
func (c *clientConn) acquire(p *pool.Pool, snap *pool.Snapshot, cfg *config.Pool, b *backend.Backend) *pool.Member {
	limit := int64(cfg.MaxConnections)
	mem := snap.Member(b)
	if mem.State.TryAcquire(limit) {
		return mem
	}
	if m := c.acquireOther(snap, limit, b); m != nil {
		return m
	}
	if cfg.QueueTimeout <= 0 || !p.EnterQueue(cfg.MaxConnections) {
		return nil
	}
	defer p.LeaveQueue()
	timer := time.NewTimer(cfg.QueueTimeout)
	defer timer.Stop()
	for {
		// Take the wake-up channel before looking, so a slot freed between
		// the look and the wait is not missed.
		freed := p.Freed()
		if m := c.acquireOther(snap, limit, nil); m != nil {
			return m
		}
		select {
		case <-freed:
		case <-timer.C:
			return nil
		}
	}
}

// acquireOther tries the strategy's next choices, then any usable backend.
func (c *clientConn) acquireOther(snap *pool.Snapshot, limit int64, skip *backend.Backend) *pool.Member {
	saved := c.breq.Exclude
	defer func() { c.breq.Exclude = saved }()
	c.breq.Exclude = skip
	for i := 0; i < len(snap.Members) && i < 4; i++ {
		b, err := snap.Picker.Pick(&c.breq)
		if err != nil {
			return nil
		}
		if m := snap.Member(b); m.State.TryAcquire(limit) {
			return m
		}
		c.breq.Exclude = b
	}
	now := time.Now()
	for _, m := range snap.Members {
		if m.Backend != skip && (snap.Panic || m.State.Usable(now)) && m.State.TryAcquire(limit) {
			return m
		}
	}
	return nil
}

var continueResponse = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// attempt sends the request to one backend and, if a response head arrives,
// relays the whole response. It returns failNone once the response has been
// relayed (even partially: then keepClient is false).
func (c *clientConn) attempt(set *Settings, cfg *config.Pool, p *pool.Pool, snap *pool.Snapshot,
	mem *pool.Member, ri *reqInfo, bodyLen int64, bodyStarted *bool, start time.Time, fresh bool) (kind failKind, err error, status int, keepClient bool) {
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
	if fresh {
		uc, err = mem.Conns.Dial(context.Background())
	} else {
		uc, err = mem.Conns.Get(context.Background())
	}
	if err != nil {
		p.Observe(mem, true)
		c.backendError(mem, metrics.ErrConnect, err)
		return failConnect, err, 0, false
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
			return failStale, err, 0, false
		}
		p.Observe(mem, true)
		c.backendError(mem, metrics.ErrTransport, err)
		return failReset, err, 0, false
	}
	// Keep the request head in c.out (and any capacity grown): a retry on
	// another backend must send the same head again.
	c.out = out[:len(c.out)]
	// Stream a body that was not buffered.
	if bodyLen < 0 && (ri.chunked || ri.cl > 0) {
		*bodyStarted = true
		if ri.expect && ri.minor == 1 {
			c.tc.Write(continueResponse)
		}
		c.tc.ArmRead(set.Limits.ReadTimeout)
		var berr error
		if ri.chunked {
			c.chunk = h1.ChunkedCopier{Reencode: true, Limit: set.Limits.MaxBodyBytes, MaxLine: 4096}
			_, berr = c.chunk.Copy(&uc.T, &c.br)
		} else {
			_, berr = h1.CopyLength(&uc.T, &c.br, ri.cl)
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
					return failTooLarge, berr, 413, false
				}
				if errors.Is(berr, h1.ErrBadChunk) {
					c.srv.countRejected(metrics.RejectBadRequest)
					c.writeError(400, "malformed chunked body", false)
					return failClient, berr, 400, false
				}
				return failClient, berr, c.clientBodyFailed(berr), false
			}
			// The backend stopped reading; it may still have answered (e.g.
			// 413). The rest of the client's body is unread, so the client
			// connection must close after the answer: its remaining bytes
			// must never be taken for a next request.
			uc.Broken = true
			ri.keepAlive = false
		}
	}

	if *bodyStarted {
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
				p.Observe(mem, true)
				c.backendError(mem, metrics.ErrTimeout, err)
				return failTimeout, err, 0, false
			}
			if errors.Is(err, h1.ErrBadStatusLine) || errors.Is(err, h1.ErrBadRespHeader) ||
				errors.Is(err, h1.ErrBadRespLength) || errors.Is(err, h1.ErrRespTooLarge) {
				p.Observe(mem, true)
				c.backendError(mem, metrics.ErrTransport, err)
				return failBadResp, err, 0, false
			}
			if uc.Reused && uc.R.W == 0 && !*bodyStarted {
				release(false)
				return failStale, err, 0, false
			}
			p.Observe(mem, true)
			c.backendError(mem, metrics.ErrTransport, err)
			return failReset, err, 0, false
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
	if mem.Metrics != nil {
		mem.Metrics.ObserveResponse(ttfb)
	}
	if cfg.Strategy == "least_response_time" {
		st.ObserveLatency(ttfb, t0.Add(ttfb))
	}
	status = resp.Status
	failed := resp.Status >= 500 && cfg.Passive.Consider5xx
	if resp.Status >= 500 && mem.Metrics != nil {
		mem.Metrics.Error(metrics.ErrHTTP5xx)
	}
	p.Observe(mem, failed)
	if resp.Codings && ri.minor == 0 && !ri.isHead && !h1.BodylessStatus(resp.Status) {
		// A transfer coding other than chunked (gzip, ...) cannot reach an
		// HTTP/1.0 client, which knows no Transfer-Encoding: dropping the
		// coding would hand it a corrupted body. (Backends are asked in
		// HTTP/1.1 without TE, so a compliant one never does this.)
		mem.Conns.Discard(uc)
		release(false)
		c.logBackendFailure(mem, errCodingHTTP10) // not the backend's error: no metric
		c.writeError(502, "bad gateway", false)
		return failNone, errCodingHTTP10, 502, false
	}

	// The request keeps its slot on the backend until the response's last
	// byte is written (or the relay fails): max_connections, the
	// least-load strategies, connections_active and draining count
	// responses still streaming. A tunnel counts as one request while it
	// is open.
	if resp.Status == 101 {
		c.tunnel(uc, resp, set)
		release(failed)
		return failNone, nil, 101, false
	}
	keepClient = c.relayResponse(set, snap, mem, uc, resp, ri)
	release(failed)
	return failNone, nil, status, keepClient
}

// readResponseHead reads the backend's response head into resp, waiting at
// most wait (response_header_timeout) for each read.
//
// The backend has just been sent the request: a read now would almost always
// find nothing. Letting the other runnable connections go first (one yield)
// gives the answer time to arrive, so that the next read usually finds it.
// Under light load nothing else is runnable and the yield returns at once.
//
// If the answer is not there, the wait happens in the lot, not in Go's poller:
// under load Go polls the network only when it runs out of runnable
// goroutines, so a goroutine waiting there can be passed over for
// milliseconds by connections that keep finding their data, while the lot is
// also polled by the serving goroutines, like an event loop. (TLS backends,
// and platforms without the lot, wait in Go's poller.)
func (c *clientConn) readResponseHead(uc *upstream.Conn, resp *h1.Response, wait time.Duration) error {
	// Reads that bypass uc.T (TryFill) still honour its read deadline: keep
	// it fresh (a lazy re-arm, usually one clock read), or a deadline armed on
	// an earlier exchange would fail this one.
	uc.T.ArmRead(wait)
	lot := c.srv.lot
	if wait <= 0 || uc.Fd() < 0 {
		lot = nil
	}
	yielded := false
	for {
		if uc.R.W > uc.R.R {
			err := h1.ParseResponse(uc.R.Buf[uc.R.R:uc.R.W], upstream.BufSize, resp)
			if err == nil {
				return nil
			}
			if err != h1.ErrNeedMore {
				return err
			}
		}
		var err error
		if !yielded {
			yielded = true
			runtime.Gosched()
			if lot != nil {
				lot.poll()
			} else if n, err := uc.TryFill(); err != nil {
				return responseReadError(err)
			} else if n > 0 {
				continue
			}
		}
		if lot != nil {
			var ok bool
			if _, err, ok = lot.awaitUpstream(&c.up, uc, wait); !ok {
				lot = nil
				continue
			}
		} else {
			_, err = uc.R.Fill(upstream.BufSize)
		}
		if err != nil {
			return responseReadError(err)
		}
	}
}

func responseReadError(err error) error {
	switch err {
	case h1.ErrBufferFull:
		return h1.ErrRespTooLarge
	case io.EOF:
		return io.ErrUnexpectedEOF
	}
	return err
}

// relayResponse writes the response head and body to the client and returns
// whether the client connection may be kept.
func (c *clientConn) relayResponse(set *Settings, snap *pool.Snapshot, mem *pool.Member, uc *upstream.Conn, resp *h1.Response, ri *reqInfo) bool {
	keep := ri.keepAlive && !c.srv.shutting.Load()
	noBody := ri.isHead || h1.BodylessStatus(resp.Status)
	// framing: -1 chunked to client, -3 close-delimited, >= 0 content length, -2 none.
	var frame int64
	switch {
	case noBody:
		frame = -2
	case resp.Chunked || resp.ContentLength < 0:
		if ri.minor == 1 {
			frame = -1
		} else {
			frame = -3
			keep = false
		}
	default:
		frame = resp.ContentLength
	}
	var cookie []byte
	if st := ri.sticky; st != nil && ri.stickyRes != stickyNone {
		used := mem.Backend.Index
		res := ri.stickyRes
		if res == stickyHit && used != ri.stickyIdx {
			res = stickyRepinned
		}
		cookie = st.setCookie(c.cookieBuf[:0], res, used, ri.stickyIdx, snap, resp, ri.appCookie, ri.https)
		c.cookieBuf = cookie[:0]
		if c.srv.metrics != nil {
			c.srv.metrics.Sticky(stickyLabels[res])
		}
	}
	c.relaying = true
	c.out = appendResponseHead(c.out[:0], resp, frame, !keep, cookie)
	if keep && ri.minor == 0 {
		// HTTP/1.0 closes by default: say that this connection stays open.
		c.out = append(c.out[:len(c.out)-2], "Connection: keep-alive\r\n\r\n"...)
	}
	if ri.splitSet != 0 || !ri.entry.rt.ResponseHeaders().Empty() {
		c.out = c.finishResponseHead(c.out, ri)
	}
	uc.R.Discard(resp.HeadLen)
	c.tc.WriteTimeout = set.Limits.WriteTimeout

	var err error
	upKeep := !resp.Close
	switch {
	case frame == -2:
		// HEAD, 1xx, 204, 304: no body follows, whatever the headers say.
		_, err = c.tc.Write(c.out)
	case frame >= 0:
		// Coalesce head and a small, fully buffered body into one write.
		if buf := uc.R.Buffered(); int64(len(buf)) >= frame && frame <= 32<<10 {
			c.out = append(c.out, buf[:frame]...)
			uc.R.Discard(int(frame))
			_, err = c.tc.Write(c.out)
		} else if _, err = c.tc.Write(c.out); err == nil {
			_, err = h1.CopyLength(&c.tc, &uc.R, frame)
		}
	case frame == -1:
		if _, err = c.tc.Write(c.out); err == nil {
			if resp.Chunked {
				c.chunk = h1.ChunkedCopier{Reencode: true, MaxLine: 4096}
				_, err = c.chunk.Copy(&c.tc, &uc.R)
			} else {
				_, err = h1.CopyUntilEOF(&c.tc, &uc.R, true, c.num[:])
				upKeep = false
			}
		}
	case frame == -3:
		if _, err = c.tc.Write(c.out); err == nil {
			if resp.Chunked {
				c.chunk = h1.ChunkedCopier{Reencode: false, MaxLine: 4096}
				_, err = c.chunk.Copy(&c.tc, &uc.R)
			} else {
				_, err = h1.CopyUntilEOF(&c.tc, &uc.R, false, c.num[:])
				upKeep = false
			}
		}
	}
	c.out = c.out[:0]
	if err != nil {
		var be *h1.BodyError
		if errors.As(err, &be) && !be.Write {
			// The backend broke mid-body: the client's response is cut short.
			c.backendError(mem, metrics.ErrTransport, err)
		}
		mem.Conns.Discard(uc)
		return false
	}
	if upKeep {
		mem.Conns.Put(uc)
	} else {
		mem.Conns.Discard(uc)
	}
	return keep
}

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
	if ri.accessLog {
		be := ""
		if mem != nil {
			be = mem.Backend.Host
		}
		s.log.Info("access", "client", ri.client.String(), "method", ri.method, "host", ri.host,
			"path", ri.path, "status", status, "duration_ms", float64(d.Microseconds())/1000, "backend", be)
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
