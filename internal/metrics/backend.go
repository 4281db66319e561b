package metrics

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrorType is the error_type label of loadbalancer_backend_errors_total.
// The zero value is not a valid type; Error ignores it.
type ErrorType uint8

const (
	ErrConnect     ErrorType = iota + 1 // "connect": dialing the backend failed
	ErrTimeout                          // "timeout": the backend did not answer in time
	ErrTransport                        // "transport": the connection failed mid-request
	ErrHTTP5xx                          // "http_5xx": the backend answered with a 5xx status
	ErrHealthCheck                      // "health_check": an active health probe failed
	ErrEjected                          // "ejected": passive checks took the backend out of rotation
	errorTypeEnd
)

var errorTypeNames = [errorTypeEnd]string{
	ErrConnect:     "connect",
	ErrTimeout:     "timeout",
	ErrTransport:   "transport",
	ErrHTTP5xx:     "http_5xx",
	ErrHealthCheck: "health_check",
	ErrEjected:     "ejected",
}

// String returns the error_type label value, or "" for an invalid type.
func (t ErrorType) String() string {
	if t >= errorTypeEnd {
		return ""
	}
	return errorTypeNames[t]
}

// Method label values. Anything else is counted as "OTHER", so a client
// cannot create series by inventing methods.
const methodOther = "OTHER"

var methodNames = [...]string{
	"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE",
	methodOther,
}

const methodOtherIndex = len(methodNames) - 1

// methodIndex maps a request method to its index in methodNames. Methods are
// case-sensitive (RFC 9110 section 9.1), but a lower-case "get" is the same
// verb to every operator reading a dashboard, so ASCII case is folded.
func methodIndex(method string) int {
	switch method { // fast path: compiles to length + compare, no loop
	case "GET":
		return 0
	case "HEAD":
		return 1
	case "POST":
		return 2
	case "PUT":
		return 3
	case "PATCH":
		return 4
	case "DELETE":
		return 5
	case "CONNECT":
		return 6
	case "OPTIONS":
		return 7
	case "TRACE":
		return 8
	}
	for i, name := range methodNames[:methodOtherIndex] {
		if asciiEqualFold(method, name) {
			return i
		}
	}
	return methodOtherIndex
}

// asciiEqualFold reports whether s equals upper, an upper-case ASCII string,
// ignoring ASCII case only (unlike strings.EqualFold, which also folds e.g.
// U+017F to 's').
func asciiEqualFold(s, upper string) bool {
	if len(s) != len(upper) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// Status codes are kept in pages of 100 (page = code/100). Page 0 slot 0 is
// the single "other" bucket for codes outside 100-999, which net/http can
// never send or parse but a caller could pass (e.g. 0 for "no response").
const (
	statusPages      = 10
	statusOtherLabel = "other"
)

func statusSlot(code int) (page, slot int) {
	if code < 100 || code > 999 {
		return 0, 0
	}
	return code / 100, code % 100
}

func statusLabel(page, slot int) string {
	if page == 0 {
		return statusOtherLabel
	}
	return strconv.Itoa(page*100 + slot)
}

// counterCell boxes a counter child so it can sit behind an atomic.Pointer.
type counterCell struct{ c prometheus.Counter }

// statusPage holds the counters for one method and one hundred status codes.
type statusPage [100]atomic.Pointer[counterCell]

// Backend is the metrics handle for one backend, shared by every request to
// it. Get it from Metrics.Backend once (e.g. when building a snapshot) and
// keep it; all methods are safe for concurrent use, and after a label
// combination has been seen once they take no lock and allocate nothing.
//
// A Backend must not be copied.
type Backend struct {
	m    *Metrics
	host string

	duration prometheus.Observer
	response prometheus.Observer
	errors   [errorTypeEnd]prometheus.Counter // index 0 unused

	// requests[method][page] is allocated on first use, so a backend that
	// only ever sees GET 200 holds one 800-byte page, not 9,000 pointers.
	requests [len(methodNames)][statusPages]atomic.Pointer[statusPage]

	// forgotten is set by Forget. Guarded by m.mu.
	forgotten bool
}

func (m *Metrics) newBackend(host string) *Backend {
	b := &Backend{
		m:        m,
		host:     host,
		duration: m.duration.WithLabelValues(host),
		response: m.response.WithLabelValues(host),
	}
	// The six error series are created at 0 so that rate() and increase()
	// see the first error of each type.
	for t := ErrConnect; t < errorTypeEnd; t++ {
		b.errors[t] = m.errors.WithLabelValues(host, errorTypeNames[t])
	}
	return b
}

// Backend returns the handle for the backend at host (host:port). The same
// host always yields the same pointer until Forget(host); the first call for
// a host takes a lock and creates its histogram and error series, later calls
// are a lock-free map lookup. An empty host, or "none", yields NoBackend.
func (m *Metrics) Backend(host string) *Backend {
	if host == "" || host == NoBackendLabel {
		return m.none
	}
	if b, ok := m.backends.Load(host); ok {
		return b.(*Backend)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.backends.Load(host); ok {
		return b.(*Backend)
	}
	b := m.newBackend(host)
	m.backends.Store(host, b)
	return b
}

// NoBackend returns the handle for requests answered without a backend (no
// route, no healthy backend, rejected); its backend label is "none".
func (m *Metrics) NoBackend() *Backend { return m.none }

// Forget deletes every series of the backend at host: request counts, both
// histograms and errors. Call it after a reload has removed the address from
// every pool (the backend label is the address alone, so the series are shared
// by all pools that use it). Forget("none") and Forget("") do nothing.
//
// Handles obtained before Forget stay usable: requests still in flight record
// into detached children and never re-create the deleted series. A later
// Backend(host) returns a new handle whose series start from zero.
func (m *Metrics) Forget(host string) {
	if host == "" || host == NoBackendLabel {
		return
	}
	// Holding mu across the whole operation orders Forget against the slow
	// paths: no new handle for host can be created, and no lazily created
	// counter of the old handle can be added, between the map delete and
	// the series delete.
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.backends.LoadAndDelete(host); ok {
		b.(*Backend).forgotten = true
	}
	match := prometheus.Labels{labelBackend: host}
	m.requests.DeletePartialMatch(match)
	m.duration.DeletePartialMatch(match)
	m.response.DeletePartialMatch(match)
	m.errors.DeletePartialMatch(match)
}

// ObserveRequest records one finished request: it adds 1 to
// loadbalancer_request_count_total{backend,status,method} and observes d, the
// total request time, in loadbalancer_request_duration_seconds. Call it once
// per request, after the response is finished. Methods other than the nine of
// RFC 9110/5789 are counted as "OTHER"; status codes outside 100-999 as
// "other".
func (b *Backend) ObserveRequest(method string, status int, d time.Duration) {
	b.counter(methodIndex(method), status).Inc()
	b.duration.Observe(d.Seconds())
}

// ObserveResponse observes d, the time from sending the request to the
// backend until its response headers arrived, in
// loadbalancer_backend_response_seconds.
func (b *Backend) ObserveResponse(d time.Duration) {
	b.response.Observe(d.Seconds())
}

// Error adds 1 to loadbalancer_backend_errors_total{backend,error_type}.
// Invalid types (including the zero value) are ignored.
func (b *Backend) Error(t ErrorType) {
	if t == 0 || t >= errorTypeEnd {
		return
	}
	b.errors[t].Inc()
}

// counter returns the request counter child for (method index, status code).
func (b *Backend) counter(mi, status int) prometheus.Counter {
	page, slot := statusSlot(status)
	if p := b.requests[mi][page].Load(); p != nil {
		if c := p[slot].Load(); c != nil {
			return c.c
		}
	}
	return b.counterSlow(mi, page, slot)
}

// counterSlow creates the page and child on first use, under m.mu.
func (b *Backend) counterSlow(mi, page, slot int) prometheus.Counter {
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	p := b.requests[mi][page].Load()
	if p == nil {
		p = new(statusPage)
		b.requests[mi][page].Store(p)
	}
	if c := p[slot].Load(); c != nil {
		return c.c
	}
	c := b.m.discard
	if !b.forgotten {
		c = b.m.requests.WithLabelValues(b.host, statusLabel(page, slot), methodNames[mi])
	}
	p[slot].Store(&counterCell{c: c})
	return c
}
