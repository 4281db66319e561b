package proxy

import (
	"time"

	"fulcrum/internal/accesslog"
	"fulcrum/internal/h1"
	"fulcrum/internal/pool"
	"fulcrum/internal/requestid"
)

// accessState is what the access log and the request ID need from one
// request, in the request's scratch. Counting costs a few stores per
// request; the fields are copied, and the line is built, only with
// access_log on, into buffers the scratch keeps, so a line costs no
// allocation and one Write.
type accessState struct {
	set      *Settings // the listener's settings as the request started
	id       []byte    // the request's ID (in idBuf); nil with request_id off
	idBuf    []byte
	fields   []byte // copies of the request's fields below (the head's buffer is reused)
	method   span
	target   span
	host     span
	referer  span
	agent    span
	clientID span // the client's X-Request-Id, logged when request_id is off
	line     []byte
	headLen  int
	bodyIn   int64         // request body bytes read from the client
	outStart int64         // c.tc.Written when the request started
	bodyFrom int64         // c.tc.Written where the final response's body starts; -1 until then
	upstream time.Duration // time to the answering backend's response head; -1 if none
}

type span struct{ off, n int }

// maxPooledLog bounds the copy of a request's fields kept with a pooled
// scratch, so that one request with huge fields does not pin its copy.
const maxPooledLog = 16 << 10

// release drops what a pooled scratch must not keep: the settings (a
// reload may retire them) and an oversized copy of fields.
func (a *accessState) release() {
	a.set = nil
	if cap(a.fields) > maxPooledLog {
		a.fields = nil
	}
}

func (a *accessState) keep(b []byte) span {
	s := span{len(a.fields), len(b)}
	a.fields = append(a.fields, b...)
	return s
}

func (a *accessState) get(s span) []byte { return a.fields[s.off : s.off+s.n] }

// beginAccess prepares the request's ID and access log state; the request
// head is in c.req.
func (c *clientConn) beginAccess(set *Settings) {
	a := &c.acc
	req := &c.req
	a.headLen, a.bodyIn, a.upstream = req.HeadLen, 0, -1
	a.outStart, a.bodyFrom = c.tc.Written, -1
	a.set, a.id = set, nil
	if set.RequestID {
		a.id = c.requestID(set)
	}
	if !set.AccessLog {
		return
	}
	a.fields = a.fields[:0]
	a.method = a.keep(req.Method)
	a.target = a.keep(req.Target)
	a.host = a.keep(authority(req))
	a.referer = a.keep(h1.Get(req.Headers, "Referer"))
	a.agent = a.keep(h1.Get(req.Headers, "User-Agent"))
	if !set.RequestID {
		a.clientID = a.keep(h1.Get(req.Headers, requestid.Header))
	}
}

// requestID returns the request's ID: the one a trusted proxy sent, when it
// sent exactly one X-Request-Id field and the value is acceptable
// (requestid.Valid), else a new one.
func (c *clientConn) requestID(set *Settings) []byte {
	a := &c.acc
	if len(set.TrustedProxies) > 0 && c.peerTrusted(set) {
		var v []byte
		n := 0
		for i := range c.req.Headers {
			if h := &c.req.Headers[i]; isRequestID(h.Name) {
				v = h.Value
				n++
			}
		}
		if n == 1 && requestid.Valid(v) {
			a.idBuf = append(a.idBuf[:0], v...)
			return a.idBuf
		}
	}
	a.idBuf = c.srv.ids.Append(a.idBuf[:0])
	return a.idBuf
}

func isRequestID(name []byte) bool {
	return len(name) == len(requestid.Header) && h1.EqualFold(name, requestid.Header)
}

// appendRequestID appends the X-Request-Id field of the request to the
// backend, when request_id is on.
func (c *clientConn) appendRequestID(dst []byte) []byte {
	if c.acc.id == nil {
		return dst
	}
	dst = append(dst, requestid.Header+": "...)
	dst = append(dst, c.acc.id...)
	return append(dst, '\r', '\n')
}

// markBody records that the final response head, of headLen bytes, is about
// to be written: what follows it is the response body (combined's %b).
func (c *clientConn) markBody(headLen int) {
	c.acc.bodyFrom = c.tc.Written + int64(headLen)
}

// writeAccess writes the request's access log line.
func (s *Server) writeAccess(c *clientConn, mem *pool.Member, ri *reqInfo, status int, start time.Time, d time.Duration) {
	a := &c.acc
	set := a.set
	e := accesslog.Entry{
		Time: start, RequestID: a.id, Client: ri.client,
		Method: a.get(a.method), Host: a.get(a.host), URI: a.get(a.target),
		Protocol: "HTTP/1.1", Status: status,
		BytesIn: int64(a.headLen) + a.bodyIn, BytesOut: c.tc.Written - a.outStart,
		Duration: d, Upstream: a.upstream, Listener: set.Listener,
		Referer: a.get(a.referer), UserAgent: a.get(a.agent),
		TLS: tlsVersionName(c.tlsVersion), SNI: c.tlsSNI,
	}
	if ri.minor == 0 {
		e.Protocol = "HTTP/1.0"
	}
	if a.id == nil {
		e.RequestID = a.get(a.clientID)
	}
	if a.bodyFrom >= 0 && c.tc.Written > a.bodyFrom {
		e.BodyOut = c.tc.Written - a.bodyFrom
	}
	if ri.entry != nil {
		e.Route = ri.entry.Label
	}
	if ri.up != nil {
		e.Pool = ri.up.Name
		e.Retries = c.call.Retries
	}
	if mem != nil {
		e.Backend = mem.Backend.Host
	}
	a.line = set.AccessLogFormat.Append(a.line[:0], &e)
	s.accessLog.Write(a.line)
}
