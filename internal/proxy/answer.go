package proxy

import (
	"net/http"
	"strconv"
	"time"

	"fulcrum/internal/h1"
	"fulcrum/internal/metrics"
	"fulcrum/internal/route"
)

// allowMethods is the Allow field of fulcrum's 405 for CONNECT (RFC 9110
// 15.5.6 requires one): every method is forwarded except CONNECT.
const allowMethods = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE"

// writeError sends one of fulcrum's own short plain-text answers. It never
// echoes internal details (backend addresses, errors) to the client.
func (c *clientConn) writeError(status int, msg string, keep bool) bool {
	return c.writeAnswer(status, msg, keep, nil)
}

// writeAnswer is the one writer of the answers fulcrum gives itself (400,
// 405, 408, 413, 429, 431, 502, 503, 504, ...). It frames the connection's
// fate as relayed responses do: "Connection: close" when the connection
// ends after it, "Connection: keep-alive" when an HTTP/1.0 client's
// connection stays open (HTTP/1.0 closes by default, so without it the
// client would wait for EOF). extra holds complete header lines
// ("Name: value\r\n"). It returns whether the connection stays open: keep,
// unless the server is shutting down.
func (c *clientConn) writeAnswer(status int, msg string, keep bool, extra []byte) bool {
	keep = keep && !c.srv.shutting.Load()
	b := appendOwnHead(c.out[:0], status, route.DefaultContentType)
	b = append(b, extra...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(msg)+1), 10)
	switch {
	case !keep:
		b = append(b, "\r\nConnection: close"...)
		// The client may still be sending (a body fulcrum refused to read):
		// close gently so the answer is not lost to a reset.
		c.linger = true
	case c.req.Minor == 0:
		b = append(b, "\r\nConnection: keep-alive"...)
	}
	b = append(b, "\r\n\r\n"...)
	c.markBody(len(b))
	b = append(b, msg...)
	b = append(b, '\n')
	c.tc.Write(b)
	c.out = b[:0]
	return keep
}

// refuse answers a request that failed to parse and closes the connection.
func (c *clientConn) refuse(e *h1.Error) {
	reason := metrics.RejectBadRequest
	switch e.Status {
	case 431:
		reason = metrics.RejectHeaderTooLarge
	case 408:
		reason = metrics.RejectTimeout
	}
	if c.srv.metrics != nil {
		c.srv.metrics.Rejected(reason)
	}
	var extra []byte
	if e.Status == 405 {
		extra = allowField
	}
	c.writeAnswer(e.Status, e.Msg, false, extra)
}

// appendOwnHead appends the status line and Content-Type of one of
// fulcrum's own answers.
func appendOwnHead(b []byte, status int, ctype string) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, ctype...)
	return append(b, '\r', '\n')
}

var allowField = []byte("Allow: " + allowMethods + "\r\n")

// clientBodyFailed answers a request whose body the client stopped sending
// and returns the status for metrics and the access log: 408 when the body
// stalled past read_timeout, 499 (nginx's "client closed request") when the
// client went away and nothing could be answered.
func (c *clientConn) clientBodyFailed(err error) int {
	if isTimeout(err) {
		c.srv.countRejected(metrics.RejectTimeout)
		c.writeError(408, "request body timeout", false)
		return 408
	}
	return 499
}

// unavailable answers 503 when no backend could be tried. The connection is
// kept only if no unread request body is left behind (replayable: none, or
// buffered).
func (c *clientConn) unavailable(ri *reqInfo, start time.Time, msg string, replayable bool) bool {
	keep := c.writeError(503, msg, ri.keepAlive && replayable)
	c.srv.finish(c, nil, *ri, 503, start, nil)
	return keep
}
