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

// backendKey identifies a Backend handle.
type backendKey struct{ pool, host string }

// Backend is the metrics handle for one backend in one pool, shared by every
// request to it. Get it from Metrics.Backend once (e.g. when building a
// snapshot) and keep it; all methods are safe for concurrent use, and after a
// label combination has been seen once they take no lock and allocate
// nothing.
//
// A Backend must not be copied.
type Backend struct {
	m          *Metrics
	pool, host string
	none       bool // the NoBackend handle: request metrics only

	response prometheus.Observer
	errors   [errorTypeEnd]prometheus.Counter // index 0 unused

	// routes is indexed by Route.id: the cells of each route this backend
	// has served. Replaced (copy on write) under m.mu when a larger id
	// appears; slots are written under m.mu and read lock-free.
	routes atomic.Pointer[routeTable]

	// forgotten is set by Forget. Guarded by m.mu.
	forgotten bool
}

type routeTable struct{ cells []atomic.Pointer[routeCells] }

// newBackendLocked creates the handle and its response and error series.
func (m *Metrics) newBackendLocked(pool, host string) *Backend {
	b := &Backend{m: m, pool: pool, host: host, response: m.response.WithLabelValues(pool, host)}
	// The six error series are created at 0 so that rate() and increase()
	// see the first error of each type.
	for t := ErrConnect; t < errorTypeEnd; t++ {
		b.errors[t] = m.errors.WithLabelValues(pool, host, errorTypeNames[t])
	}
	return b
}

// Backend returns the handle for the backend at host (host:port) in pool. The
// same pool and host always yield the same pointer until Forget(pool, host);
// the first call takes a lock and creates the backend's response histogram
// and error series, later calls are a lock-free map lookup. An empty host, or
// "none", yields NoBackend.
func (m *Metrics) Backend(pool, host string) *Backend {
	if host == "" || host == NoBackendLabel {
		return m.none
	}
	k := backendKey{pool, host}
	if b, ok := m.backends.Load(k); ok {
		return b.(*Backend)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.backends.Load(k); ok {
		return b.(*Backend)
	}
	b := m.newBackendLocked(pool, host)
	m.backends.Store(k, b)
	return b
}

// NoBackend returns the handle for requests answered without a backend (no
// route, no healthy backend, rejected); its pool and backend labels are
// "none". It carries request metrics only: Error and ObserveResponse on it
// do nothing, so no backend series ever has backend="none".
func (m *Metrics) NoBackend() *Backend { return m.none }

// Forget deletes every series of the backend at host in pool: its request
// counts and durations on every route, its response histogram and its
// errors. The same host in another pool keeps its series. Call it after a
// reload has removed the backend from the pool. Forget of NoBackend's labels,
// or of an unknown backend, does nothing.
//
// The cost is proportional to the backend's own series: the handle knows
// which label values it created and deletes exactly those.
//
// Handles obtained before Forget stay usable: requests still in flight record
// into detached children and never re-create the deleted series. A later
// Backend(pool, host) returns a new handle whose series start from zero.
func (m *Metrics) Forget(pool, host string) {
	if host == "" || host == NoBackendLabel {
		return
	}
	// Holding mu across the whole operation orders Forget against the slow
	// paths: no new handle for the backend can be created, and no lazily
	// created child of the old handle can be added, between the map delete
	// and the series deletes.
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.backends.LoadAndDelete(backendKey{pool, host})
	if !ok {
		return
	}
	b := v.(*Backend)
	b.forgotten = true
	m.response.DeleteLabelValues(pool, host)
	for t := ErrConnect; t < errorTypeEnd; t++ {
		m.errors.DeleteLabelValues(pool, host, errorTypeNames[t])
	}
	if t := b.routes.Load(); t != nil {
		for i := range t.cells {
			if c := t.cells[i].Load(); c != nil {
				c.deleteSeriesLocked()
				delete(c.r.cells, c)
			}
		}
	}
}

// ObserveRequest records one finished request on route r: it adds 1 to
// loadbalancer_request_count_total{route,pool,backend,status,method} and
// observes d, the total request time, in
// loadbalancer_request_duration_seconds{route,pool,backend}. Call it once per
// request, after the response is finished. A nil r records route="none".
// Methods other than the nine of RFC 9110/5789 are counted as "OTHER";
// status codes outside 100-999 as "other".
func (b *Backend) ObserveRequest(r *Route, method string, status int, d time.Duration) {
	if r == nil {
		r = b.m.noRoute
	}
	c := b.cells(r)
	c.counter(methodIndex(method), status).Inc()
	c.duration.Observe(d.Seconds())
}

// ObserveResponse observes d, the time from sending the request to the
// backend until its response headers arrived, in
// loadbalancer_backend_response_seconds. No-op on NoBackend.
func (b *Backend) ObserveResponse(d time.Duration) {
	if b.none {
		return
	}
	b.response.Observe(d.Seconds())
}

// Error adds 1 to loadbalancer_backend_errors_total{pool,backend,error_type}.
// Invalid types (including the zero value) are ignored, and so is every
// error on NoBackend.
func (b *Backend) Error(t ErrorType) {
	if t == 0 || t >= errorTypeEnd || b.none {
		return
	}
	b.errors[t].Inc()
}

// cells returns b's cells for route r: two atomic loads on the fast path.
func (b *Backend) cells(r *Route) *routeCells {
	if t := b.routes.Load(); t != nil && r.id < len(t.cells) {
		if c := t.cells[r.id].Load(); c != nil && c.r == r {
			return c
		}
	}
	return b.cellsSlow(r)
}

// cellsSlow creates b's cells for r under m.mu, growing the table if r's id
// is new to it. A forgotten backend or route gets the shared dead cells.
func (b *Backend) cellsSlow(r *Route) *routeCells {
	m := b.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if b.forgotten || r.forgotten {
		return m.dead
	}
	t := b.routes.Load()
	if t == nil || r.id >= len(t.cells) {
		nt := &routeTable{cells: make([]atomic.Pointer[routeCells], max(r.id+1, m.nextID))}
		if t != nil {
			for i := range t.cells {
				nt.cells[i].Store(t.cells[i].Load())
			}
		}
		b.routes.Store(nt)
		t = nt
	}
	if c := t.cells[r.id].Load(); c != nil && c.r == r {
		return c
	}
	// The slot is empty, or holds the cells of a forgotten route whose id
	// r reuses (ForgetRoute clears its slots, so only a race leaves one).
	c := &routeCells{m: m, b: b, r: r, duration: m.duration.WithLabelValues(r.name, b.pool, b.host)}
	t.cells[r.id].Store(c)
	r.cells[c] = struct{}{}
	return c
}
