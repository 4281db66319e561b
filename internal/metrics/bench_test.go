package metrics

import (
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func benchMetrics(b *testing.B) *Metrics {
	b.Helper()
	return New(prometheus.NewRegistry(), &fakeSource{})
}

func BenchmarkObserveRequest(b *testing.B) {
	m := benchMetrics(b)
	be, r := m.Backend("default", "10.0.0.1:8080"), m.Route("api")
	be.ObserveRequest(r, "GET", 200, time.Millisecond) // warm-up
	b.ReportAllocs()
	for b.Loop() {
		be.ObserveRequest(r, "GET", 200, time.Millisecond)
	}
}

// BenchmarkObserveRequestRoutes spreads one backend's requests over eight
// routes (the lookup by route id).
func BenchmarkObserveRequestRoutes(b *testing.B) {
	m := benchMetrics(b)
	be := m.Backend("default", "10.0.0.1:8080")
	routes := make([]*Route, 8)
	for i := range routes {
		routes[i] = m.Route("r" + strconv.Itoa(i))
		be.ObserveRequest(routes[i], "GET", 200, time.Millisecond)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		be.ObserveRequest(routes[i%len(routes)], "GET", 200, time.Millisecond)
		i++
	}
}

// BenchmarkObserveRequestMixed cycles through methods and statuses, so the
// table lookups are not always the same slot.
func BenchmarkObserveRequestMixed(b *testing.B) {
	m := benchMetrics(b)
	be, r := m.Backend("default", "10.0.0.1:8080"), m.Route("api")
	methods := []string{"GET", "POST", "PUT", "DELETE", "get", "PROPFIND"}
	statuses := []int{200, 201, 204, 301, 404, 500, 502, 503}
	for _, meth := range methods {
		for _, s := range statuses {
			be.ObserveRequest(r, meth, s, time.Millisecond)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		be.ObserveRequest(r, methods[i%len(methods)], statuses[i%len(statuses)], time.Millisecond)
		i++
	}
}

// BenchmarkObserveRequestParallel has every P hammer the same backend, the
// worst case for cache-line contention on the shared counters.
func BenchmarkObserveRequestParallel(b *testing.B) {
	m := benchMetrics(b)
	be, r := m.Backend("default", "10.0.0.1:8080"), m.Route("api")
	be.ObserveRequest(r, "GET", 200, time.Millisecond)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			be.ObserveRequest(r, "GET", 200, time.Millisecond)
		}
	})
}

func BenchmarkObserveResponse(b *testing.B) {
	be := benchMetrics(b).Backend("default", "10.0.0.1:8080")
	b.ReportAllocs()
	for b.Loop() {
		be.ObserveResponse(time.Millisecond)
	}
}

func BenchmarkError(b *testing.B) {
	be := benchMetrics(b).Backend("default", "10.0.0.1:8080")
	b.ReportAllocs()
	for b.Loop() {
		be.Error(ErrHTTP5xx)
	}
}

func BenchmarkSticky(b *testing.B) {
	m := benchMetrics(b)
	b.ReportAllocs()
	for b.Loop() {
		m.Sticky(StickyHit)
	}
}

func BenchmarkRejected(b *testing.B) {
	m := benchMetrics(b)
	b.ReportAllocs()
	for b.Loop() {
		m.Rejected(RejectRateLimited)
	}
}

// BenchmarkBackendLookup is the cached path of Metrics.Backend with 1,000
// backends present.
func BenchmarkBackendLookup(b *testing.B) {
	m := benchMetrics(b)
	hosts := make([]string, 1000)
	for i := range hosts {
		hosts[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256) + ":8080"
		m.Backend("default", hosts[i])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = m.Backend("default", hosts[i%len(hosts)])
		i++
	}
}

// BenchmarkScrape gathers a registry with 100 active backends: the cost moved
// off the request path.
func BenchmarkScrape(b *testing.B) {
	src := &fakeSource{}
	reg := prometheus.NewRegistry()
	m := New(reg, src)
	var samples []BackendSample
	for i := range 100 {
		h := "10.0.0." + strconv.Itoa(i) + ":8080"
		samples = append(samples, BackendSample{Pool: "default", Backend: h, Up: true, Active: int64(i)})
		m.Backend("default", h).ObserveRequest(nil, "GET", 200, time.Millisecond)
	}
	src.set(samples...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkForget removes one backend (with two routes' request series) from
// a registry holding 10,000 others, then adds it back: the reload cost per
// changed backend, which must not grow with the others.
func BenchmarkForget(b *testing.B) {
	m := benchMetrics(b)
	r1, r2 := m.Route("a"), m.Route("b")
	for i := range 10000 {
		m.Backend("default", "10.1."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256)+":80").ObserveRequest(r1, "GET", 200, 0)
	}
	b.ReportAllocs()
	for b.Loop() {
		be := m.Backend("default", "10.0.0.1:80")
		be.ObserveRequest(r1, "GET", 200, 0)
		be.ObserveRequest(r2, "POST", 503, 0)
		m.Forget("default", "10.0.0.1:80")
	}
}
