package proxy

import (
	"bytes"
	"net/netip"
	"time"

	"fulcrum/internal/h1"
	"fulcrum/internal/metrics"
	"fulcrum/internal/route"
)

// reqInfo holds what the request path still needs after the head's buffer
// has been released.
type reqInfo struct {
	method     string
	minor      int
	keepAlive  bool
	isHead     bool
	idempotent bool
	upgrade    bool
	chunked    bool
	cl         int64
	expect     bool
	accessLog  bool       // access_log as the request started (a reload meanwhile does not change it)
	client     netip.Addr // the client address (resolved behind trusted proxies), for the access log
	entry      *entry     // the route; nil when none matched
	up         *Upstream  // the pool the route chose; nil for fulcrum's own answers
	splitSet   uint64     // FULCRUM_SPLIT value to set, 0 for none
	sticky     *sticky    // the pool's session persistence as the request started; nil if none
	stickyIdx  int        // member index pinned by session persistence, -1 if none
	stickyRes  stickyResult
	https      bool   // a TLS listener, or a trusted proxy reported X-Forwarded-Proto: https
	appCookie  []byte // app_cookie value seen in the request (aliases c.appCookie)
}

// acmeChallengePath is where ACME CAs ask for http-01 answers.
var acmeChallengePath = []byte("/.well-known/acme-challenge/")

// handle serves the request whose head is in c.req: listener-level checks,
// then the route, then its action.
func (c *clientConn) handle(set *Settings) (keep bool) {
	start := time.Now()
	req := &c.req
	// Everything written to the client, including fulcrum's own answers,
	// is bounded by write_timeout.
	c.tc.WriteTimeout = set.Limits.WriteTimeout
	clientIP := c.clientIP(set)

	ri := &c.ri
	*ri = reqInfo{
		method: methodName(req.Method), minor: req.Minor, keepAlive: req.KeepAlive,
		upgrade: req.Upgrade, chunked: req.Chunked, cl: req.ContentLength, expect: req.ExpectContinue,
		stickyIdx: -1, client: clientIP,
	}
	ri.isHead = ri.method == "HEAD"
	ri.idempotent = ri.method == "GET" || ri.method == "HEAD" || ri.method == "OPTIONS" ||
		h1.Get(req.Headers, "Idempotency-Key") != nil
	if c.tlsVersion != 0 {
		ri.https = true
	} else if len(set.TrustedProxies) > 0 && c.peerTrusted(set) {
		ri.https = h1.EqualFold(h1.Get(req.Headers, "X-Forwarded-Proto"), "https")
	}
	if tr := set.Tracer; tr != nil {
		c.startTrace(tr, ri)
	} else {
		c.tr.span = nil
	}
	ri.accessLog = set.AccessLog
	c.beginAccess(set)

	if set.ACME != nil && bytes.HasPrefix(req.Target, acmeChallengePath) {
		if key, ok := set.ACME(ri.method, string(authority(req)), string(req.Target)); ok {
			return c.respond(ri, start, 200, "text/plain", key, nil)
		}
	}
	// Rate limiting happens before anything else touches a backend.
	if lim := c.srv.limiter.Load(); lim != nil {
		if ok, retry := lim.allow(c.rateKey(lim, clientIP), start); !ok {
			c.srv.countRejected(metrics.RejectRateLimited)
			c.br.Discard(req.HeadLen)
			return c.writeRateLimited(retry, *ri, start)
		}
	}
	if max := set.Limits.MaxBodyBytes; max > 0 && req.ContentLength > max {
		c.srv.countRejected(metrics.RejectBodyTooLarge)
		c.writeError(413, "request body too large", false)
		c.srv.finish(c, nil, *ri, 413, start, nil)
		return false
	}
	// A chunked body is streamed, so its head reaches a backend before the
	// body is read; refuse at least what already arrived malformed with
	// the head (the usual shape of a smuggling attempt) before forwarding.
	if req.Chunked && h1.ScanChunked(c.br.Buffered()[req.HeadLen:], 4096) != nil {
		c.srv.countRejected(metrics.RejectBadRequest)
		c.writeError(400, "malformed chunked body", false)
		c.srv.finish(c, nil, *ri, 400, start, nil)
		return false
	}

	e := c.srv.routing.Load().lookup(c, ri)
	if e == nil {
		c.srv.countRejected(metrics.RejectNoRoute)
		return c.ownAnswer(ri, start, 404, "no route for this request", nil)
	}
	ri.entry = e
	switch e.rt.Action() {
	case route.ActionRespond:
		rs := e.rt.Respond()
		return c.respond(ri, start, rs.Status, rs.ContentType, rs.Body, nil)
	case route.ActionRedirect:
		c.out2 = append(c.out2[:0], "Location: "...)
		c.out2 = e.rt.AppendLocation(c.out2, c.routeRequest(ri))
		c.out2 = append(c.out2, '\r', '\n')
		st := e.rt.Redirect().Status
		return c.respond(ri, start, st, route.DefaultContentType, "", c.out2)
	}
	ri.up, ri.splitSet = e.pickUpstream(c)
	return c.forward(set, ri.up, ri, start)
}

// ownAnswer writes one of fulcrum's plain answers for a request that no
// backend sees, and finishes it.
func (c *clientConn) ownAnswer(ri *reqInfo, start time.Time, status int, msg string, extra []byte) bool {
	return c.respond(ri, start, status, route.DefaultContentType, msg+"\n", extra)
}

// respond writes a complete answer of fulcrum's own (a respond or redirect
// route, or the 404 of no route) and finishes the request. The connection
// is kept only when no unread request body is left behind; the client's
// request head is consumed.
func (c *clientConn) respond(ri *reqInfo, start time.Time, status int, ctype, body string, extra []byte) bool {
	c.br.Discard(c.req.HeadLen)
	keep := ri.keepAlive && ri.cl <= 0 && !ri.chunked && !ri.upgrade && !c.srv.shutting.Load()
	b := appendOwnHead(c.out[:0], status, ctype)
	b = append(b, extra...)
	b = appendContentLength(b, int64(len(body)))
	switch {
	case !keep:
		b = append(b, "Connection: close\r\n"...)
		c.linger = true
	case ri.minor == 0:
		b = append(b, "Connection: keep-alive\r\n"...)
	}
	if ri.entry != nil {
		if ops := ri.entry.rt.ResponseHeaders(); !ops.Empty() {
			b = c.applyOps(b, ops)
		}
	}
	b = append(b, '\r', '\n')
	c.markBody(len(b))
	if !ri.isHead {
		b = append(b, body...)
	}
	c.tc.Write(b)
	c.out = b[:0]
	c.srv.finish(c, nil, *ri, status, start, nil)
	return keep
}

// routeRequest is the request as the route package sees it.
func (c *clientConn) routeRequest(ri *reqInfo) *route.Request {
	rq := &c.rreq
	*rq = route.Request{Method: c.req.Method, Host: authority(&c.req), Target: c.req.Target, ClientIP: ri.client, Fields: (*reqFields)(&c.req)}
	if ri.https {
		rq.Scheme = schemeHTTPS
	}
	return rq
}

// applyOps applies a route's header modifiers to head, which holds a start
// line and field lines, each ending in CRLF, without the final empty line:
// fields named in Remove or Set are dropped, then Set and Add fields are
// appended. The modifiers never name a hop-by-hop or framing field (route
// refuses them), so fulcrum's own framing is untouched. It returns the new
// head, built in the connection's spare buffer, and keeps head's storage as
// the next spare.
func (c *clientConn) applyOps(head []byte, ops *route.Ops) []byte {
	out := c.opsBuf[:0]
	i := bytes.Index(head, crlf) + 2
	out = append(out, head[:i]...)
	for i < len(head) {
		j := bytes.Index(head[i:], crlf)
		if j < 0 {
			break
		}
		line := head[i : i+j+2]
		i += j + 2
		if colon := bytes.IndexByte(line, ':'); colon > 0 && ops.Drops(line[:colon]) {
			continue
		}
		out = append(out, line...)
	}
	for _, f := range ops.Set {
		out = appendOpField(out, &f)
	}
	for _, f := range ops.Add {
		out = appendOpField(out, &f)
	}
	c.opsBuf = head[:0]
	return out
}

var crlf = []byte("\r\n")

func appendOpField(dst []byte, f *route.Field) []byte {
	dst = append(dst, f.Name...)
	dst = append(dst, ':', ' ')
	dst = append(dst, f.Value...)
	return append(dst, '\r', '\n')
}

// finishResponseHead adds what the route asks of a relayed response's head
// (which ends with its empty line): the FULCRUM_SPLIT cookie of a split,
// then the response header modifiers.
func (c *clientConn) finishResponseHead(head []byte, ri *reqInfo) []byte {
	head = head[:len(head)-2]
	if ri.splitSet != 0 {
		if st := ri.up.sticky.Load(); st != nil {
			head = append(head, "Set-Cookie: "...)
			head = appendSplitCookie(head, ri.splitSet, &st.cfg, ri.https)
			head = append(head, '\r', '\n')
		}
	}
	if ops := ri.entry.rt.ResponseHeaders(); !ops.Empty() {
		head = c.applyOps(head, ops)
	}
	return append(head, '\r', '\n')
}
