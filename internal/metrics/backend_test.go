package metrics

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestObserveRequestConcurrentExact(t *testing.T) {
	t.Parallel()
	m, reg, _ := newTest(t)

	const goroutines, perG = 32, 500
	hosts := []string{"10.0.0.1:80", "10.0.0.2:80"}
	methods := []string{"GET", "POST", "get", "BREW"}
	statuses := []int{200, 404, 503}

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				// Each goroutine looks the handle up itself, so creation
				// and lazy child creation race too.
				b := m.Backend("p", hosts[(g+i)%len(hosts)])
				b.ObserveRequest(nil, methods[i%len(methods)], statuses[i%len(statuses)], time.Millisecond)
				b.ObserveResponse(time.Millisecond)
			}
		})
	}
	wg.Wait()

	// Recompute the expected counts sequentially.
	want := map[string]float64{}
	perHost := map[string]float64{}
	perRoute := map[string]float64{}
	for g := range goroutines {
		for i := range perG {
			h := hosts[(g+i)%len(hosts)]
			meth := map[string]string{"GET": "GET", "POST": "POST", "get": "GET", "BREW": "OTHER"}[methods[i%len(methods)]]
			want[fmt.Sprintf("backend=%s,method=%s,pool=p,route=none,status=%d", h, meth, statuses[i%len(statuses)])]++
			perHost["backend="+h+",pool=p"]++
			perRoute["backend="+h+",pool=p,route=none"]++
		}
	}
	wantSeries(t, reg, "loadbalancer_request_count_total", want)
	wantSeries(t, reg, "loadbalancer_request_duration_seconds", perRoute)
	wantSeries(t, reg, "loadbalancer_backend_response_seconds", perHost)

	// The observed durations land in the right bucket with an exact sum.
	mf := gather(t, reg)["loadbalancer_request_duration_seconds"]
	h := mf.GetMetric()[0].GetHistogram()
	for _, bk := range h.GetBucket() {
		wantCum := uint64(0)
		if bk.GetUpperBound() >= 0.001 {
			wantCum = h.GetSampleCount()
		}
		if bk.GetCumulativeCount() != wantCum {
			t.Errorf("bucket le=%v: %d, want %d", bk.GetUpperBound(), bk.GetCumulativeCount(), wantCum)
		}
	}
	if diff := h.GetSampleSum() - float64(h.GetSampleCount())*0.001; diff > 1e-9 || diff < -1e-9 {
		t.Errorf("sum = %v, want %v", h.GetSampleSum(), float64(h.GetSampleCount())*0.001)
	}
}

func TestMethodLabel(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{"GET", "GET"}, {"HEAD", "HEAD"}, {"POST", "POST"}, {"PUT", "PUT"},
		{"PATCH", "PATCH"}, {"DELETE", "DELETE"}, {"CONNECT", "CONNECT"},
		{"OPTIONS", "OPTIONS"}, {"TRACE", "TRACE"},
		{"get", "GET"}, {"pAtCh", "PATCH"},
		{"PROPFIND", "OTHER"}, {"BREW", "OTHER"}, {"", "OTHER"}, {"GETX", "OTHER"},
		{"OTHER", "OTHER"}, {"po\u017ft", "OTHER"}, {"G\xffT", "OTHER"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			t.Parallel()
			m, reg, _ := newTest(t)
			m.Backend("p", "b:1").ObserveRequest(nil, c.in, 200, 0)
			wantSeries(t, reg, "loadbalancer_request_count_total",
				map[string]float64{"backend=b:1,method=" + c.want + ",pool=p,route=none,status=200": 1})
		})
	}
}

func TestStatusLabel(t *testing.T) {
	t.Parallel()
	m, reg, _ := newTest(t)
	b := m.Backend("p", "b:1")
	for _, code := range []int{100, 101, 200, 204, 301, 404, 499, 500, 599, 600, 999, 0, -1, 99, 1000} {
		b.ObserveRequest(nil, "GET", code, 0)
	}
	wantSeries(t, reg, "loadbalancer_request_count_total", map[string]float64{
		"backend=b:1,method=GET,pool=p,route=none,status=100":   1,
		"backend=b:1,method=GET,pool=p,route=none,status=101":   1,
		"backend=b:1,method=GET,pool=p,route=none,status=200":   1,
		"backend=b:1,method=GET,pool=p,route=none,status=204":   1,
		"backend=b:1,method=GET,pool=p,route=none,status=301":   1,
		"backend=b:1,method=GET,pool=p,route=none,status=404":   1,
		"backend=b:1,method=GET,pool=p,route=none,status=499":   1,
		"backend=b:1,method=GET,pool=p,route=none,status=500":   1,
		"backend=b:1,method=GET,pool=p,route=none,status=599":   1,
		"backend=b:1,method=GET,pool=p,route=none,status=600":   1,
		"backend=b:1,method=GET,pool=p,route=none,status=999":   1,
		"backend=b:1,method=GET,pool=p,route=none,status=other": 4,
	})
}

func TestBackendHandleIdentity(t *testing.T) {
	t.Parallel()
	m, _, _ := newTest(t)
	const n = 16
	got := make([]*Backend, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { got[i] = m.Backend("p", "10.0.0.9:8080") })
	}
	wg.Wait()
	for i := range got {
		if got[i] != got[0] {
			t.Fatalf("Backend returned different handles for the same pool and host")
		}
	}
	if m.Backend("p", "10.0.0.10:8080") == got[0] {
		t.Fatalf("different hosts share a handle")
	}
	if m.Backend("q", "10.0.0.9:8080") == got[0] {
		t.Fatalf("one host in two pools shares a handle")
	}
	if m.Backend("p", "") != m.NoBackend() || m.Backend("p", NoBackendLabel) != m.NoBackend() {
		t.Fatalf(`Backend(pool, "") and Backend(pool, "none") must return NoBackend`)
	}
}

// NoBackend carries request metrics only: no backend series with
// backend="none" exists, before or after errors and responses on it.
func TestNoBackend(t *testing.T) {
	t.Parallel()
	m, reg, _ := newTest(t)
	for _, name := range []string{"loadbalancer_backend_errors_total", "loadbalancer_backend_response_seconds",
		"loadbalancer_request_count_total", "loadbalancer_request_duration_seconds"} {
		wantSeries(t, reg, name, map[string]float64{}) // a fresh registry has none
	}
	m.NoBackend().ObserveRequest(nil, "GET", 503, 2*time.Millisecond)
	m.NoBackend().Error(ErrConnect)
	m.NoBackend().ObserveResponse(time.Millisecond)
	wantSeries(t, reg, "loadbalancer_request_count_total",
		map[string]float64{"backend=none,method=GET,pool=none,route=none,status=503": 1})
	wantSeries(t, reg, "loadbalancer_request_duration_seconds",
		map[string]float64{"backend=none,pool=none,route=none": 1})
	wantSeries(t, reg, "loadbalancer_backend_errors_total", map[string]float64{})
	wantSeries(t, reg, "loadbalancer_backend_response_seconds", map[string]float64{})
}

func TestErrors(t *testing.T) {
	t.Parallel()
	m, reg, _ := newTest(t)
	b := m.Backend("p", "b:1")
	want := map[string]float64{}
	for i, tc := range []struct {
		t    ErrorType
		name string
	}{
		{ErrConnect, "connect"}, {ErrTimeout, "timeout"}, {ErrTransport, "transport"},
		{ErrHTTP5xx, "http_5xx"}, {ErrHealthCheck, "health_check"}, {ErrEjected, "ejected"},
	} {
		if tc.t.String() != tc.name {
			t.Errorf("%d.String() = %q, want %q", tc.t, tc.t.String(), tc.name)
		}
		for range i + 1 {
			b.Error(tc.t)
		}
		want["backend=b:1,error_type="+tc.name+",pool=p"] = float64(i + 1)
	}
	b.Error(0)            // zero value: ignored
	b.Error(errorTypeEnd) // out of range: ignored
	b.Error(255)
	wantSeries(t, reg, "loadbalancer_backend_errors_total", want)
}

func TestBackendState(t *testing.T) {
	t.Parallel()
	_, reg, src := newTest(t)

	src.set(
		BackendSample{Pool: "p", Backend: "10.0.0.1:80", Up: true, Active: 3},
		BackendSample{Pool: "p", Backend: "10.0.0.2:80", Up: false, Active: 0},
	)
	wantSeries(t, reg, "loadbalancer_backend_up", map[string]float64{
		"backend=10.0.0.1:80,pool=p": 1, "backend=10.0.0.2:80,pool=p": 0,
	})
	wantSeries(t, reg, "loadbalancer_backend_connections_active", map[string]float64{
		"backend=10.0.0.1:80,pool=p": 3, "backend=10.0.0.2:80,pool=p": 0,
	})

	// The next scrape sees the new state; a removed backend disappears; the
	// same address in two pools is two series; the same address twice in
	// one pool (two schemes) is merged instead of failing the scrape.
	src.set(
		BackendSample{Pool: "p", Backend: "10.0.0.2:80", Up: true, Active: 7},
		BackendSample{Pool: "p", Backend: "10.0.0.3:80", Up: false, Active: 1},
		BackendSample{Pool: "q", Backend: "10.0.0.2:80", Up: false, Active: 4},
		BackendSample{Pool: "p", Backend: "10.0.0.2:80", Up: false, Active: 2},
	)
	wantSeries(t, reg, "loadbalancer_backend_up", map[string]float64{
		"backend=10.0.0.2:80,pool=p": 1, "backend=10.0.0.3:80,pool=p": 0, "backend=10.0.0.2:80,pool=q": 0,
	})
	wantSeries(t, reg, "loadbalancer_backend_connections_active", map[string]float64{
		"backend=10.0.0.2:80,pool=p": 9, "backend=10.0.0.3:80,pool=p": 1, "backend=10.0.0.2:80,pool=q": 4,
	})

	src.set()
	wantSeries(t, reg, "loadbalancer_backend_up", map[string]float64{})
}

func TestBackendStateBadLabelFailsScrapeNotProcess(t *testing.T) {
	t.Parallel()
	_, reg, src := newTest(t)
	src.set(BackendSample{Pool: "p", Backend: "\xff", Up: true}, BackendSample{Pool: "p", Backend: "ok:1", Up: true})
	if _, err := reg.Gather(); err == nil {
		t.Fatal("Gather with an invalid label value: want error")
	}
}

func TestNilSource(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	New(reg, nil)
	mfs := gather(t, reg)
	for _, name := range []string{"loadbalancer_backend_up", "loadbalancer_backend_connections_active"} {
		if mfs[name] != nil {
			t.Errorf("%s exported without a source", name)
		}
	}
}
