// Package metrics holds fulcrum's Prometheus collectors.
//
// Everything lives on a *Metrics value built by New from a registry that the
// caller owns (STYLE P15, A2): nothing is registered on the global registry
// and the package has no mutable package-level state, so two Metrics values
// on two registries never see each other's series.
//
// The request path goes through *Backend handles. After a handle has seen a
// label combination once, recording it is a few atomic operations: no locks,
// no allocations, no label hashing. Backend health and in-flight counts are
// not pushed at all; they are read from a BackendSource when Prometheus
// scrapes, so they are always exact and cost nothing per request.
//
// This package imports no other fulcrum package.
package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Values of the sticky result label. Sticky accepts any string, but these are
// the ones pre-created at zero.
const (
	StickyHit      = "hit"      // the pinned backend was available and used
	StickyMiss     = "miss"     // no usable pin; a backend was picked normally
	StickyRepinned = "repinned" // the pinned backend was unusable; pinned to a new one
)

// Values of the rejected reason label. Rejected accepts any string, but these
// are the ones pre-created at zero.
const (
	RejectBadRequest     = "bad_request"
	RejectHeaderTooLarge = "header_too_large"
	RejectBodyTooLarge   = "body_too_large"
	RejectRateLimited    = "rate_limited"
	RejectConnLimit      = "conn_limit"
	RejectConnLimitIP    = "conn_limit_ip"
	RejectBackendsBusy   = "backends_busy"
	RejectTimeout        = "timeout"
	RejectNoRoute        = "no_route"
)

// NoBackendLabel is the pool and backend label value used by NoBackend, and
// the route label value of requests recorded with a nil *Route.
const NoBackendLabel = "none"

// Label names.
const (
	labelRoute     = "route"
	labelPool      = "pool"
	labelBackend   = "backend"
	labelStatus    = "status"
	labelMethod    = "method"
	labelErrorType = "error_type"
	labelResult    = "result"
	labelReason    = "reason"
	labelAction    = "action"
)

// Values of the admin action label, pre-created at zero.
const (
	ActionDrain   = "drain"
	ActionDisable = "disable"
	ActionEnable  = "enable"
	ActionWeight  = "weight"
)

// latencyBuckets covers a cache hit on the same host (0.5 ms) up to a slow
// upstream hitting a typical 30 s timeout; roughly 1-2.5-5 per decade.
var latencyBuckets = []float64{
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// BackendSample is the scrape-time state of one backend in one pool.
type BackendSample struct {
	Pool    string // the pool's name, the pool label value
	Backend string // host:port, the backend label value
	Up      bool   // currently considered healthy
	Active  int64  // requests or connections in flight right now
}

// BackendSource reports the current backends when Prometheus scrapes.
//
// BackendSamples is called from the scrape goroutine, possibly from several
// scrapes at once, and must not block for long. It appends one sample per
// backend to dst and returns the extended slice, which the metrics package
// then owns and may reorder. Each (Pool, Backend) pair is one series; one
// address in two pools gives two. If the same pair appears more than once
// (one address under two schemes in one pool), those samples are merged: up
// if any of them is up, Active summed.
type BackendSource interface {
	BackendSamples(dst []BackendSample) []BackendSample
}

// Metrics owns every fulcrum collector registered on one registry.
// All methods are safe for concurrent use.
type Metrics struct {
	requests *prometheus.CounterVec   // loadbalancer_request_count_total{route,pool,backend,status,method}
	duration *prometheus.HistogramVec // loadbalancer_request_duration_seconds{route,pool,backend}
	response *prometheus.HistogramVec // loadbalancer_backend_response_seconds{pool,backend}
	errors   *prometheus.CounterVec   // loadbalancer_backend_errors_total{pool,backend,error_type}

	sticky   counterCache
	rejected counterCache
	admin    counterCache // fulcrum_admin_actions_total{action}
	tls      *tlsMetrics

	reloadOK, reloadFailed prometheus.Counter
	panics                 prometheus.Counter
	retries                prometheus.Counter
	budgetExhausted        prometheus.Counter
	panicMode              *prometheus.GaugeVec // fulcrum_panic_mode{pool}

	// discard and discardHist receive observations from handles of
	// forgotten backends and routes, so a request still in flight during
	// Forget or ForgetRoute cannot re-create their series. Never registered.
	discard     prometheus.Counter
	discardHist prometheus.Histogram
	dead        *routeCells // shared cells of forgotten handles; never stored in a table

	none    *Backend // NoBackend handle; never forgotten
	noRoute *Route   // the route of a nil *Route; never forgotten

	// backends maps backendKey to *Backend. Reads are lock-free and do not
	// allocate; inserts and deletes hold mu.
	backends sync.Map

	// mu serialises the slow paths: creating a Backend or Route handle,
	// lazily creating a request child, Forget and ForgetRoute. Holding it
	// across all of them is what makes the forgets exact (see Forget).
	mu sync.Mutex

	// Guarded by mu.
	routes  map[string]*Route
	freeIDs []int // route ids released by ForgetRoute, for reuse
	nextID  int   // next never-used route id
}

// New builds the collectors and registers them, together with the Go runtime
// and process collectors, on reg. src supplies loadbalancer_backend_up and
// loadbalancer_backend_connections_active at scrape time; if src is nil those
// two metrics are not exported.
//
// New panics if any collector is already registered on reg (for example a Go
// collector the caller added itself, or a second New on the same registry),
// like prometheus.MustRegister; that is a wiring bug, not a runtime condition.
func New(reg prometheus.Registerer, src BackendSource) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadbalancer_request_count_total",
			Help: "Requests handled, by route, pool and backend (host:port; pool and backend are \"none\" if no backend was used), response status code and request method.",
		}, []string{labelRoute, labelPool, labelBackend, labelStatus, labelMethod}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loadbalancer_request_duration_seconds",
			Help:    "Total time to handle a request, from receiving it to finishing the response, by route, pool and backend.",
			Buckets: latencyBuckets,
		}, []string{labelRoute, labelPool, labelBackend}),
		response: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loadbalancer_backend_response_seconds",
			Help:    "Time from sending a request to a backend until its response headers arrived, by pool and backend.",
			Buckets: latencyBuckets,
		}, []string{labelPool, labelBackend}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loadbalancer_backend_errors_total",
			Help: "Backend errors, by pool, backend and error type (connect, timeout, transport, http_5xx, health_check, ejected).",
		}, []string{labelPool, labelBackend, labelErrorType}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fulcrum_panics_total",
			Help: "Panics recovered while handling requests.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fulcrum_retries_total",
			Help: "Request retry attempts sent to a backend.",
		}),
		budgetExhausted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fulcrum_retry_budget_exhausted_total",
			Help: "Retries skipped because the retry budget was exhausted.",
		}),
		panicMode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fulcrum_panic_mode",
			Help: "1 while the pool is in panic mode, else 0, by pool.",
		}, []string{labelPool}),
		discard: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "fulcrum_discarded",
			Help: "Not registered.",
		}),
		discardHist: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "fulcrum_discarded_seconds",
			Help:    "Not registered.",
			Buckets: []float64{1},
		}),
		routes: map[string]*Route{},
	}
	m.dead = &routeCells{m: m, dead: true, duration: m.discardHist}
	stickyVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loadbalancer_sticky_total",
		Help: "Sticky-session lookups, by result (hit, miss, repinned).",
	}, []string{labelResult})
	m.sticky.init(stickyVec, StickyHit, StickyMiss, StickyRepinned)

	rejectedVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fulcrum_rejected_requests_total",
		Help: "Requests rejected before reaching a backend, by reason.",
	}, []string{labelReason})
	m.rejected.init(rejectedVec, RejectBadRequest, RejectHeaderTooLarge,
		RejectBodyTooLarge, RejectRateLimited, RejectConnLimit, RejectConnLimitIP, RejectBackendsBusy, RejectTimeout, RejectNoRoute)

	adminVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fulcrum_admin_actions_total",
		Help: "Runtime backend actions of the admin API, by action (drain, disable, enable, weight).",
	}, []string{labelAction})
	m.admin.init(adminVec, ActionDrain, ActionDisable, ActionEnable, ActionWeight)

	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fulcrum_reloads_total",
		Help: "Configuration reloads, by result (success, failure).",
	}, []string{labelResult})
	m.reloadOK = reloads.WithLabelValues("success")
	m.reloadFailed = reloads.WithLabelValues("failure")

	m.tls = newTLSMetrics()
	cs := []prometheus.Collector{
		m.tls.handshakes, m.tls.notAfter, m.tls.reloadFailed, m.tls.acmeOrders,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.response, m.errors,
		stickyVec, rejectedVec, reloads, adminVec,
		m.panics, m.retries, m.budgetExhausted, m.panicMode,
	}
	if src != nil {
		cs = append(cs, newStateCollector(src))
	}
	reg.MustRegister(cs...)

	m.none = &Backend{m: m, pool: NoBackendLabel, host: NoBackendLabel, none: true}
	m.noRoute = m.newRouteLocked(NoBackendLabel)
	return m
}

// Sticky counts one sticky-session lookup. result should be StickyHit,
// StickyMiss or StickyRepinned; other values get their own series, so pass
// only constants. Allocation-free for the three standard values.
func (m *Metrics) Sticky(result string) { m.sticky.get(result).Inc() }

// Reload counts one configuration reload attempt.
func (m *Metrics) Reload(ok bool) {
	if ok {
		m.reloadOK.Inc()
	} else {
		m.reloadFailed.Inc()
	}
}

// AdminAction counts one runtime action of the admin API. action should be
// one of the Action* constants.
func (m *Metrics) AdminAction(action string) { m.admin.get(action).Inc() }

// Panic counts one recovered panic.
func (m *Metrics) Panic() { m.panics.Inc() }

// Rejected counts one request rejected before reaching a backend. reason
// should be one of the Reject* constants; other values get their own series,
// so pass only constants (a label value must be valid UTF-8).
func (m *Metrics) Rejected(reason string) { m.rejected.get(reason).Inc() }

// RetryAttempt counts one retry sent to a backend.
func (m *Metrics) RetryAttempt() { m.retries.Inc() }

// RetryBudgetExhausted counts one retry skipped because the budget ran out.
func (m *Metrics) RetryBudgetExhausted() { m.budgetExhausted.Inc() }

// PanicMode sets fulcrum_panic_mode{pool} to 1 (active) or 0. Call it from
// the code that decides it, at least on every transition.
func (m *Metrics) PanicMode(pool string, active bool) {
	v := 0.0
	if active {
		v = 1
	}
	m.panicMode.WithLabelValues(pool).Set(v)
}

// ForgetPool deletes fulcrum_panic_mode{pool}; call it when a reload removes
// the pool (its backends are forgotten one by one with Forget).
func (m *Metrics) ForgetPool(pool string) { m.panicMode.DeleteLabelValues(pool) }

// counterCache maps one label value to its counter child. Lookups are
// lock-free and allocation-free once the value has been seen; the values
// pre-created by init are found by a short scan, without hashing.
type counterCache struct {
	vec      *prometheus.CounterVec
	fixed    []labeledCounter // pre-created at init, read-only afterwards
	children sync.Map         // string -> prometheus.Counter, for other values
}

type labeledCounter struct {
	value string
	c     prometheus.Counter
}

// init pre-creates children for values, so they are exported at 0 from the
// start and never take the slow path.
func (c *counterCache) init(vec *prometheus.CounterVec, values ...string) {
	c.vec = vec
	for _, v := range values {
		c.fixed = append(c.fixed, labeledCounter{value: v, c: vec.WithLabelValues(v)})
	}
}

func (c *counterCache) get(v string) prometheus.Counter {
	for i := range c.fixed {
		if c.fixed[i].value == v {
			return c.fixed[i].c
		}
	}
	if ch, ok := c.children.Load(v); ok {
		return ch.(prometheus.Counter)
	}
	// WithLabelValues returns the same child for the same value, so racing
	// callers store equal values; no lock is needed.
	ch, _ := c.children.LoadOrStore(v, c.vec.WithLabelValues(v))
	return ch.(prometheus.Counter)
}
