package proxy

import (
	"bytes"
	"context"

	"go.opentelemetry.io/otel/trace"

	"fulcrum/internal/forward"
	"fulcrum/internal/h1"
	"fulcrum/internal/pool"
	"fulcrum/internal/tracing"
)

// requestTrace is the tracing state of the request being handled. Its
// span is nil when the request is not traced (tracing off): every use on
// the request path is behind that one nil check.
type requestTrace struct {
	span trace.Span
	ctx  context.Context // holds span, for injection
	head headCarrier
}

// startTrace starts the request's span, continuing the client's trace
// when its traceparent is valid.
func (c *clientConn) startTrace(tr *tracing.Tracer, ri *reqInfo) {
	path := c.req.Target
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	c.tr.ctx, c.tr.span = tr.Start((*traceCarrier)(&c.req), ri.method, path)
}

// endTrace ends the request's span (called from finish).
func (c *clientConn) endTrace(mem *pool.Member, ri *reqInfo, status int) {
	o := tracing.Outcome{Method: ri.method, Status: status}
	if ri.entry != nil {
		o.Route = ri.entry.Label
	}
	if ri.up != nil { // forwarded: c.call is this request's
		o.Pool = ri.up.Name
		o.Retries = c.call.Retries
	}
	if mem != nil {
		o.Backend = mem.Backend.Host
	}
	tracing.End(c.tr.span, &o)
	c.tr.span, c.tr.ctx = nil, nil
}

// Retrying records a retry on the span (forward.Observer; set only when
// the request is traced).
func (c *clientConn) Retrying(attempt int, mem *pool.Member, kind forward.Kind, _ error) {
	tracing.Retry(c.tr.span, attempt, mem.Backend.Host, kind.String())
}

// appendTraceContext appends the span's traceparent and tracestate fields
// to a request head for the backend.
func (c *clientConn) appendTraceContext(dst []byte) []byte {
	c.tr.head.b = dst
	tracing.Inject(c.tr.ctx, &c.tr.head)
	dst = c.tr.head.b
	c.tr.head.b = nil
	return dst
}

// isTraceField reports the W3C trace context fields, which a traced
// request's head carries from fulcrum's span instead of the client.
func isTraceField(name []byte) bool {
	return len(name) == 11 && h1.EqualFold(name, "traceparent") || len(name) == 10 && h1.EqualFold(name, "tracestate")
}

// traceCarrier reads a request's fields for the propagator.
type traceCarrier h1.Request

func (t *traceCarrier) Get(key string) string { return string(h1.Get(t.Headers, key)) }
func (t *traceCarrier) Set(string, string)    {}
func (t *traceCarrier) Keys() []string {
	keys := make([]string, len(t.Headers))
	for i := range t.Headers {
		keys[i] = string(t.Headers[i].Name)
	}
	return keys
}

// headCarrier appends the fields the propagator sets to a request head.
type headCarrier struct{ b []byte }

func (h *headCarrier) Get(string) string { return "" }
func (h *headCarrier) Keys() []string    { return nil }
func (h *headCarrier) Set(key, value string) {
	h.b = append(h.b, key...)
	h.b = append(h.b, ':', ' ')
	h.b = append(h.b, value...)
	h.b = append(h.b, '\r', '\n')
}
