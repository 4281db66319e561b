package proxy

import (
	"bytes"
	"net/http"
	"net/netip"
	"strconv"

	"fulcrum/internal/config"
	"fulcrum/internal/h1"
	"fulcrum/internal/route"
)

// hop-by-hop fields (RFC 9110 7.6.1) plus the framing and forwarding fields
// that fulcrum always rewrites itself.
func isHopOrRewritten(name []byte) bool {
	switch len(name) {
	case 2:
		return h1.EqualFold(name, "TE")
	case 4:
		return h1.EqualFold(name, "Host")
	case 6:
		return h1.EqualFold(name, "Expect")
	case 7:
		return h1.EqualFold(name, "Upgrade") || h1.EqualFold(name, "Trailer")
	case 10:
		return h1.EqualFold(name, "Connection") || h1.EqualFold(name, "Keep-Alive")
	case 14:
		return h1.EqualFold(name, "Content-Length")
	case 15:
		return h1.EqualFold(name, "X-Forwarded-For")
	case 16:
		return h1.EqualFold(name, "Proxy-Connection") || h1.EqualFold(name, "X-Forwarded-Host")
	case 17:
		return h1.EqualFold(name, "Transfer-Encoding") || h1.EqualFold(name, "X-Forwarded-Proto")
	case 18:
		return h1.EqualFold(name, "Proxy-Authenticate")
	case 19:
		return h1.EqualFold(name, "Proxy-Authorization")
	}
	return false
}

// connTokens collects the field names listed in Connection headers.
type connTokens struct {
	n    int
	toks [8][]byte
	more bool
}

func (t *connTokens) collect(hs []h1.Header) {
	t.n, t.more = 0, false
	for i := range hs {
		if !h1.EqualFold(hs[i].Name, "Connection") {
			continue
		}
		h1.ForEachToken(hs[i].Value, func(tok []byte) {
			if h1.EqualFold(tok, "close") || h1.EqualFold(tok, "keep-alive") || h1.EqualFold(tok, "upgrade") {
				return
			}
			if t.n < len(t.toks) {
				t.toks[t.n] = tok
				t.n++
			} else {
				t.more = true
			}
		})
	}
}

func (t *connTokens) has(name []byte) bool {
	for i := 0; i < t.n; i++ {
		if bytes.EqualFold(t.toks[i], name) {
			return true
		}
	}
	return false
}

// hasIn is has, falling back to a scan of the Connection fields when they
// listed more names than connTokens keeps.
func (t *connTokens) hasIn(hs []h1.Header, name []byte) bool {
	if t.has(name) {
		return true
	}
	if !t.more {
		return false
	}
	found := false
	for i := range hs {
		if h1.EqualFold(hs[i].Name, "Connection") {
			h1.ForEachToken(hs[i].Value, func(tok []byte) {
				if bytes.EqualFold(tok, name) {
					found = true
				}
			})
		}
	}
	return found
}

// isClientIdentity reports fields that claim a client identity; they are
// passed on only from trusted proxies.
func isClientIdentity(name []byte) bool {
	return h1.EqualFold(name, "Forwarded") || h1.EqualFold(name, "X-Real-IP")
}

// appendRequestHead writes the request line and fields for the backend,
// without the framing field and the final CRLF.
//
// rt's rewrites apply: strip_prefix and add_prefix change the target (always
// sent in origin form then), host_rewrite the Host field; X-Forwarded-Host
// keeps the client's host.
func (c *clientConn) appendRequestHead(dst []byte, set *Settings, rt *route.Route) []byte {
	req := &c.req
	target := req.Target
	host := req.Host
	if rt.Rewrites() {
		host = authority(req)
		dst = append(dst, req.Method...)
		dst = append(dst, ' ')
		dst = rt.AppendTarget(dst, target)
		goto version
	}
	if target[0] != '/' && target[0] != '*' {
		// absolute-form: the authority replaces Host (RFC 9112 3.2.2).
		rest := target[bytes.Index(target, []byte("://"))+3:]
		slash := bytes.IndexAny(rest, "/?")
		if slash < 0 {
			host, target = rest, []byte("/")
		} else {
			host, target = rest[:slash], rest[slash:]
			if target[0] == '?' {
				dst = append(dst, req.Method...)
				dst = append(dst, " /"...)
				dst = append(dst, target...)
				goto version
			}
		}
	}
	dst = append(dst, req.Method...)
	dst = append(dst, ' ')
	dst = append(dst, target...)
version:
	dst = append(dst, " HTTP/1.1\r\n"...)
	// HTTP/1.1 requires a Host field; an HTTP/1.0 request without one is
	// sent with an empty Host, as RFC 9112 3.2 prescribes.
	dst = append(dst, "Host: "...)
	if hr := rt.HostRewrite(); hr != "" {
		dst = append(dst, hr...)
	} else {
		dst = append(dst, host...)
	}
	dst = append(dst, '\r', '\n')
	var ct connTokens
	ct.collect(req.Headers)
	trusted := c.peerTrusted(set)
	traced := c.tr.span != nil
	for i := range req.Headers {
		h := &req.Headers[i]
		if isHopOrRewritten(h.Name) || ((ct.n > 0 || ct.more) && ct.hasIn(req.Headers, h.Name)) ||
			(!trusted && isClientIdentity(h.Name)) || (set.RequestID && isRequestID(h.Name)) ||
			(traced && isTraceField(h.Name)) {
			continue
		}
		dst = append(dst, h.Name...)
		dst = append(dst, ':', ' ')
		dst = append(dst, h.Value...)
		dst = append(dst, '\r', '\n')
	}
	// X-Forwarded-*: a trusted peer's values are kept and extended; anyone
	// else's are replaced, so a spoofed header changes nothing.
	dst = append(dst, "X-Forwarded-For: "...)
	if trusted {
		for i := range req.Headers {
			if h1.EqualFold(req.Headers[i].Name, "X-Forwarded-For") && len(req.Headers[i].Value) > 0 {
				dst = append(dst, req.Headers[i].Value...)
				dst = append(dst, ',', ' ')
			}
		}
	}
	dst = c.peer.Addr().AppendTo(dst)
	dst = append(dst, "\r\nX-Forwarded-Proto: "...)
	if v := h1.Get(req.Headers, "X-Forwarded-Proto"); trusted && len(v) > 0 {
		dst = append(dst, v...)
	} else if c.tlsVersion != 0 {
		dst = append(dst, "https"...)
	} else {
		dst = append(dst, "http"...)
	}
	dst = append(dst, "\r\nX-Forwarded-Host: "...)
	if v := h1.Get(req.Headers, "X-Forwarded-Host"); trusted && len(v) > 0 {
		dst = append(dst, v...)
	} else {
		dst = append(dst, host...)
	}
	dst = append(dst, '\r', '\n')
	dst = c.appendRequestID(dst)
	if traced {
		dst = c.appendTraceContext(dst)
	}
	if req.Upgrade {
		if up := h1.Get(req.Headers, "Upgrade"); up != nil {
			dst = append(dst, "Connection: Upgrade\r\nUpgrade: "...)
			dst = append(dst, up...)
			dst = append(dst, '\r', '\n')
		}
	}
	return dst
}

// appendResponseHead writes the response head for the client. frame is the
// Content-Length to send, -1 for chunked, -2 to keep the backend's
// Content-Length untouched (no body follows) and -3 for close-delimited.
func appendResponseHead(dst []byte, resp *h1.Response, frame int64, closeConn bool, cookie []byte) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(resp.Status), 10)
	dst = append(dst, ' ')
	if len(resp.Reason) > 0 {
		dst = append(dst, resp.Reason...)
	} else {
		dst = append(dst, http.StatusText(resp.Status)...)
	}
	dst = append(dst, '\r', '\n')
	var ct connTokens
	ct.collect(resp.Headers)
	for i := range resp.Headers {
		h := &resp.Headers[i]
		if h1.EqualFold(h.Name, "Content-Length") {
			if frame == -2 {
				dst = appendField(dst, h)
			}
			continue
		}
		if isHopOrRewrittenResp(h.Name) || ((ct.n > 0 || ct.more) && ct.hasIn(resp.Headers, h.Name)) {
			continue
		}
		dst = appendField(dst, h)
	}
	switch {
	case frame >= 0:
		dst = appendContentLength(dst, frame)
	case frame == -1:
		dst = append(dst, "Transfer-Encoding: "...)
		if resp.Codings {
			// Keep every coding but the final chunked (gzip, ...): the
			// body's bytes are relayed in those codings.
			dst = resp.AppendCodings(dst)
		}
		dst = append(dst, "chunked\r\n"...)
	}
	if resp.Status == 101 {
		dst = append(dst, "Connection: Upgrade\r\n"...)
		if up := h1.Get(resp.Headers, "Upgrade"); up != nil {
			dst = append(dst, "Upgrade: "...)
			dst = append(dst, up...)
			dst = append(dst, '\r', '\n')
		}
	} else if closeConn {
		dst = append(dst, "Connection: close\r\n"...)
	}
	if len(cookie) > 0 {
		dst = append(dst, "Set-Cookie: "...)
		dst = append(dst, cookie...)
		dst = append(dst, '\r', '\n')
	}
	return append(dst, '\r', '\n')
}

func appendField(dst []byte, h *h1.Header) []byte {
	dst = append(dst, h.Name...)
	dst = append(dst, ':', ' ')
	dst = append(dst, h.Value...)
	return append(dst, '\r', '\n')
}

// Response fields never relayed as is: hop-by-hop and framing.
func isHopOrRewrittenResp(name []byte) bool {
	switch len(name) {
	case 2:
		return h1.EqualFold(name, "TE")
	case 7:
		return h1.EqualFold(name, "Upgrade") || h1.EqualFold(name, "Trailer")
	case 10:
		return h1.EqualFold(name, "Connection") || h1.EqualFold(name, "Keep-Alive")
	case 16:
		return h1.EqualFold(name, "Proxy-Connection")
	case 17:
		return h1.EqualFold(name, "Transfer-Encoding")
	case 18:
		return h1.EqualFold(name, "Proxy-Authenticate")
	}
	return false
}

// methodName maps a method to a constant string without allocating; unknown
// methods become "OTHER" (bounded metric cardinality).
func methodName(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "PATCH":
		return "PATCH"
	case "OPTIONS":
		return "OPTIONS"
	case "TRACE":
		return "TRACE"
	case "CONNECT":
		return "CONNECT"
	}
	return "OTHER"
}

// hashKeyValue extracts the consistent-hash key from a request.
func hashKeyValue(req *h1.Request, k config.HashKey) ([]byte, bool) {
	switch k.Kind {
	case config.KindHeader:
		v := h1.Get(req.Headers, k.Name)
		return v, len(v) > 0
	case config.KindCookie:
		v := CookieValue(req.Headers, k.Name)
		return v, len(v) > 0
	case config.KindQuery:
		v := QueryValue(req.Target, k.Name)
		return v, len(v) > 0
	case config.KindPath:
		t := req.Target
		if i := bytes.IndexByte(t, '?'); i >= 0 {
			t = t[:i]
		}
		return t, len(t) > 0
	}
	return nil, false
}

// CookieValue returns the value of the named cookie from the Cookie fields.
func CookieValue(hs []h1.Header, name string) []byte {
	for i := range hs {
		if !h1.EqualFold(hs[i].Name, "Cookie") {
			continue
		}
		v := hs[i].Value
		for len(v) > 0 {
			j := bytes.IndexByte(v, ';')
			var pair []byte
			if j < 0 {
				pair, v = v, nil
			} else {
				pair, v = v[:j], v[j+1:]
			}
			pair = bytes.TrimLeft(pair, " \t")
			if len(pair) > len(name) && pair[len(name)] == '=' && string(pair[:len(name)]) == name {
				val := bytes.TrimRight(pair[len(name)+1:], " \t")
				if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
					val = val[1 : len(val)-1]
				}
				return val
			}
		}
	}
	return nil
}

// QueryValue returns the raw (not unescaped) value of a query parameter.
func QueryValue(target []byte, name string) []byte {
	i := bytes.IndexByte(target, '?')
	if i < 0 {
		return nil
	}
	q := target[i+1:]
	for len(q) > 0 {
		j := bytes.IndexByte(q, '&')
		var kv []byte
		if j < 0 {
			kv, q = q, nil
		} else {
			kv, q = q[:j], q[j+1:]
		}
		if len(kv) > len(name) && kv[len(name)] == '=' && string(kv[:len(name)]) == name {
			return kv[len(name)+1:]
		}
	}
	return nil
}

// peerTrusted reports whether the TCP peer is a trusted proxy.
func (c *clientConn) peerTrusted(set *Settings) bool {
	if len(set.TrustedProxies) == 0 {
		return false
	}
	a := c.peer.Addr()
	for _, p := range set.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the address used for hashing, rate limits and logs.
func (c *clientConn) clientIP(set *Settings) netip.Addr {
	if !c.peerTrusted(set) {
		return c.peer.Addr()
	}
	return ClientIP(c.peer.Addr(), c.req.Headers, set.TrustedProxies)
}

// ClientIP resolves the client address behind trusted proxies: it walks the
// X-Forwarded-For chain from the right, skipping trusted addresses, and
// returns the first untrusted one. A malformed entry stops the walk: the last
// address verified so far is used, so a forged entry can never be chosen over
// what a trusted hop reported.
func ClientIP(peer netip.Addr, hs []h1.Header, trusted []netip.Prefix) netip.Addr {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	if !isTrusted(peer) {
		return peer
	}
	cur := peer
	// Walk fields from last to first, entries right to left.
	for i := len(hs) - 1; i >= 0; i-- {
		if !h1.EqualFold(hs[i].Name, "X-Forwarded-For") {
			continue
		}
		v := hs[i].Value
		for len(v) > 0 {
			j := bytes.LastIndexByte(v, ',')
			var ent []byte
			if j < 0 {
				ent, v = v, nil
			} else {
				ent, v = v[j+1:], v[:j]
			}
			ent = bytes.Trim(ent, " \t")
			if len(ent) == 0 {
				continue
			}
			a, err := parseXFFEntry(ent)
			if err != nil {
				return cur
			}
			cur = a
			if !isTrusted(a) {
				return a
			}
		}
	}
	return cur
}

func parseXFFEntry(b []byte) (netip.Addr, error) {
	s := string(b)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), nil
	}
	// "1.2.3.4:5678" or "[::1]:80"
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return ap.Addr().Unmap(), nil
}
