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
	be := m.Backend("10.0.0.1:8080")
	be.ObserveRequest("GET", 200, time.Millisecond) // warm-up
	b.ReportAllocs()
	for b.Loop() {
		be.ObserveRequest("GET", 200, time.Millisecond)
	}
}

// BenchmarkObserveRequestMixed cycles through methods and statuses, so the
// table lookups are not always the same slot.
func BenchmarkObserveRequestMixed(b *testing.B) {
	m := benchMetrics(b)
	be := m.Backend("10.0.0.1:8080")
	methods := []string{"GET", "POST", "PUT", "DELETE", "get", "PROPFIND"}
	statuses := []int{200, 201, 204, 301, 404, 500, 502, 503}
	for _, meth := range methods {
		for _, s := range statuses {
			be.ObserveRequest(meth, s, time.Millisecond)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		be.ObserveRequest(methods[i%len(methods)], statuses[i%len(statuses)], time.Millisecond)
		i++
	}
}

// BenchmarkObserveRequestParallel has every P hammer the same backend, the
// worst case for cache-line contention on the shared counters.
func BenchmarkObserveRequestParallel(b *testing.B) {
	m := benchMetrics(b)
	be := m.Backend("10.0.0.1:8080")
	be.ObserveRequest("GET", 200, time.Millisecond)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			be.ObserveRequest("GET", 200, time.Millisecond)
		}
	})
}

func BenchmarkObserveResponse(b *testing.B) {
	be := benchMetrics(b).Backend("10.0.0.1:8080")
	b.ReportAllocs()
	for b.Loop() {
		be.ObserveResponse(time.Millisecond)
	}
}

func BenchmarkError(b *testing.B) {
	be := benchMetrics(b).Backend("10.0.0.1:8080")
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
		m.Backend(hosts[i])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = m.Backend(hosts[i%len(hosts)])
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
		samples = append(samples, BackendSample{Backend: h, Up: true, Active: int64(i)})
		m.Backend(h).ObserveRequest("GET", 200, time.Millisecond)
	}
	src.set(samples...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
