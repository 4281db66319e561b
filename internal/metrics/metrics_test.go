package metrics

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// TestMain fails the package if a test leaves a goroutine running code from
// this package behind. The package starts no goroutines of its own, so any
// such goroutine is a test that forgot to wait.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

func leakedGoroutines() string {
	var stacks string
	// A goroutine that has just called wg.Done may not have returned yet;
	// give such goroutines a bounded number of chances to be scheduled.
	for range 1000 {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		stacks = ""
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "fulcrum/internal/metrics.") && !strings.Contains(g, "metrics.TestMain") &&
				!strings.Contains(g, "metrics.leakedGoroutines") {
				stacks += g + "\n\n"
			}
		}
		if stacks == "" {
			return ""
		}
		runtime.Gosched()
	}
	return stacks
}

// fakeSource is a BackendSource whose samples a test sets directly.
type fakeSource struct {
	mu      sync.Mutex
	samples []BackendSample
}

func (f *fakeSource) set(s ...BackendSample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.samples = s
}

func (f *fakeSource) BackendSamples(dst []BackendSample) []BackendSample {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append(dst, f.samples...)
}

func newTest(t *testing.T) (*Metrics, *prometheus.Registry, *fakeSource) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	src := &fakeSource{}
	return New(reg, src), reg, src
}

// gather returns the registry's families by name, failing the test on any
// gather error.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// labelsOf renders a metric's labels as "k=v,k=v" in the registry's order.
func labelsOf(m *dto.Metric) string {
	parts := make([]string, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+"="+l.GetValue())
	}
	return strings.Join(parts, ",")
}

// series maps each series of family name to its value: the counter or gauge
// value, or the sample count for a histogram.
func series(t *testing.T, reg prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	mf := gather(t, reg)[name]
	if mf == nil {
		return out
	}
	for _, m := range mf.GetMetric() {
		var v float64
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			v = m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			v = m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			v = float64(m.GetHistogram().GetSampleCount())
		default:
			t.Fatalf("%s: unexpected type %v", name, mf.GetType())
		}
		out[labelsOf(m)] = v
	}
	return out
}

func wantSeries(t *testing.T, reg prometheus.Gatherer, name string, want map[string]float64) {
	t.Helper()
	got := series(t, reg, name)
	if len(got) != len(want) {
		t.Errorf("%s: got %d series %v, want %d %v", name, len(got), got, len(want), want)
		return
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			t.Errorf("%s{%s} = %v (present %v), want %v", name, k, g, ok, w)
		}
	}
}

func TestProductMetrics(t *testing.T) {
	t.Parallel()
	m, reg, _ := newTest(t)

	wantSeries(t, reg, "loadbalancer_sticky_total", map[string]float64{
		"result=hit": 0, "result=miss": 0, "result=repinned": 0,
	})
	m.Sticky(StickyHit)
	m.Sticky(StickyHit)
	m.Sticky(StickyMiss)
	m.Sticky(StickyRepinned)
	wantSeries(t, reg, "loadbalancer_sticky_total", map[string]float64{
		"result=hit": 2, "result=miss": 1, "result=repinned": 1,
	})

	m.Reload(true)
	m.Reload(false)
	m.Reload(false)
	wantSeries(t, reg, "fulcrum_reloads_total", map[string]float64{
		"result=success": 1, "result=failure": 2,
	})

	m.Rejected(RejectBadRequest)
	m.Rejected(RejectRateLimited)
	m.Rejected(RejectRateLimited)
	m.Rejected("tls_required") // not pre-created: gets its own series
	wantSeries(t, reg, "fulcrum_rejected_requests_total", map[string]float64{
		"reason=bad_request": 1, "reason=header_too_large": 0, "reason=body_too_large": 0, "reason=no_route": 0,
		"reason=rate_limited": 2, "reason=conn_limit": 0, "reason=tls_required": 1,
		"reason=conn_limit_ip": 0, "reason=backends_busy": 0, "reason=timeout": 0,
	})

	m.Panic()
	m.RetryAttempt()
	m.RetryAttempt()
	m.RetryBudgetExhausted()
	wantSeries(t, reg, "fulcrum_panics_total", map[string]float64{"": 1})
	wantSeries(t, reg, "fulcrum_retries_total", map[string]float64{"": 2})
	wantSeries(t, reg, "fulcrum_retry_budget_exhausted_total", map[string]float64{"": 1})

	wantSeries(t, reg, "fulcrum_panic_mode", map[string]float64{})
	m.PanicMode("a", true)
	m.PanicMode("b", false)
	wantSeries(t, reg, "fulcrum_panic_mode", map[string]float64{"pool=a": 1, "pool=b": 0})
	m.PanicMode("a", false)
	wantSeries(t, reg, "fulcrum_panic_mode", map[string]float64{"pool=a": 0, "pool=b": 0})
	m.ForgetPool("a")
	wantSeries(t, reg, "fulcrum_panic_mode", map[string]float64{"pool=b": 0})
}

func TestProductMetricsConcurrent(t *testing.T) {
	t.Parallel()
	m, reg, _ := newTest(t)
	const goroutines, perG = 16, 300
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range perG {
				m.Sticky(StickyMiss)
				m.Rejected("custom") // every goroutine races on first use
				m.RetryAttempt()
			}
		})
	}
	wg.Wait()
	const n = goroutines * perG
	if v := series(t, reg, "loadbalancer_sticky_total")["result=miss"]; v != n {
		t.Errorf("sticky miss = %v, want %v", v, n)
	}
	if v := series(t, reg, "fulcrum_rejected_requests_total")["reason=custom"]; v != n {
		t.Errorf("rejected custom = %v, want %v", v, n)
	}
	if v := series(t, reg, "fulcrum_retries_total")[""]; v != n {
		t.Errorf("retries = %v, want %v", v, n)
	}
}

// TestExposition pins names, types, help text and label names exactly, as a
// black-box scraper sees them.
func TestExposition(t *testing.T) {
	t.Parallel()
	m, reg, src := newTest(t)
	src.set(BackendSample{Pool: "default", Backend: "10.0.0.1:80", Up: true, Active: 2})
	b := m.Backend("default", "10.0.0.1:80")
	b.ObserveRequest(m.Route("api"), "GET", 200, 3*time.Millisecond)
	b.Error(ErrHTTP5xx)
	m.PanicMode("default", false)

	const want = `
# HELP loadbalancer_backend_connections_active Requests or connections currently in flight to the backend.
# TYPE loadbalancer_backend_connections_active gauge
loadbalancer_backend_connections_active{backend="10.0.0.1:80",pool="default"} 2
# HELP loadbalancer_backend_up Whether the backend is currently considered healthy (1) or not (0).
# TYPE loadbalancer_backend_up gauge
loadbalancer_backend_up{backend="10.0.0.1:80",pool="default"} 1
# HELP loadbalancer_request_count_total Requests handled, by route, pool and backend (host:port; pool and backend are "none" if no backend was used), response status code and request method.
# TYPE loadbalancer_request_count_total counter
loadbalancer_request_count_total{backend="10.0.0.1:80",method="GET",pool="default",route="api",status="200"} 1
# HELP loadbalancer_request_duration_seconds Total time to handle a request, from receiving it to finishing the response, by route, pool and backend.
# TYPE loadbalancer_request_duration_seconds histogram
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="0.0005"} 0
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="0.001"} 0
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="0.0025"} 0
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="0.005"} 1
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="0.01"} 1
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="0.025"} 1
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="0.05"} 1
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="0.1"} 1
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="0.25"} 1
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="0.5"} 1
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="1"} 1
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="2.5"} 1
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="5"} 1
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="10"} 1
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="30"} 1
loadbalancer_request_duration_seconds_bucket{backend="10.0.0.1:80",pool="default",route="api",le="+Inf"} 1
loadbalancer_request_duration_seconds_sum{backend="10.0.0.1:80",pool="default",route="api"} 0.003
loadbalancer_request_duration_seconds_count{backend="10.0.0.1:80",pool="default",route="api"} 1
`
	mfs := gather(t, reg)
	var got strings.Builder
	got.WriteString("\n")
	enc := expfmt.NewEncoder(&got, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, name := range []string{
		"loadbalancer_backend_connections_active", "loadbalancer_backend_up",
		"loadbalancer_request_count_total", "loadbalancer_request_duration_seconds",
	} {
		if err := enc.Encode(mfs[name]); err != nil {
			t.Fatal(err)
		}
	}
	if got.String() != want {
		t.Errorf("exposition mismatch\ngot:%s\nwant:%s", got.String(), want)
	}

	// The remaining families: present, right type, expected label names.
	for name, c := range map[string]struct {
		typ    dto.MetricType
		labels []string
	}{
		"loadbalancer_backend_response_seconds": {dto.MetricType_HISTOGRAM, []string{"backend", "pool"}},
		"loadbalancer_backend_errors_total":     {dto.MetricType_COUNTER, []string{"backend", "error_type", "pool"}},
		"loadbalancer_sticky_total":             {dto.MetricType_COUNTER, []string{"result"}},
		"fulcrum_reloads_total":                 {dto.MetricType_COUNTER, []string{"result"}},
		"fulcrum_admin_actions_total":           {dto.MetricType_COUNTER, []string{"action"}},
		"fulcrum_rejected_requests_total":       {dto.MetricType_COUNTER, []string{"reason"}},
		"fulcrum_panics_total":                  {dto.MetricType_COUNTER, nil},
		"fulcrum_retries_total":                 {dto.MetricType_COUNTER, nil},
		"fulcrum_retry_budget_exhausted_total":  {dto.MetricType_COUNTER, nil},
		"fulcrum_panic_mode":                    {dto.MetricType_GAUGE, []string{"pool"}},
	} {
		mf := mfs[name]
		if mf == nil {
			t.Errorf("%s missing", name)
			continue
		}
		if mf.GetType() != c.typ {
			t.Errorf("%s type %v, want %v", name, mf.GetType(), c.typ)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
		var got []string
		for _, l := range mf.GetMetric()[0].GetLabel() {
			got = append(got, l.GetName())
		}
		if !slices.Equal(got, c.labels) {
			t.Errorf("%s labels %v, want %v", name, got, c.labels)
		}
	}

	// promlint: naming and help conventions.
	all := make([]*dto.MetricFamily, 0, len(mfs))
	for _, mf := range mfs {
		all = append(all, mf)
	}
	problems, err := promlint.NewWithMetricFamilies(all).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "loadbalancer_") || strings.HasPrefix(p.Metric, "fulcrum_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestRuntimeCollectors(t *testing.T) {
	t.Parallel()
	_, reg, _ := newTest(t)
	mfs := gather(t, reg)
	if mfs["go_goroutines"] == nil || mfs["go_memstats_alloc_bytes"] == nil {
		t.Error("Go runtime metrics missing")
	}
	switch runtime.GOOS {
	case "linux", "windows", "darwin":
		found := false
		for name := range mfs {
			if strings.HasPrefix(name, "process_") {
				found = true
			}
		}
		if !found {
			t.Error("process_* metrics missing")
		}
		if runtime.GOOS == "linux" && mfs["process_cpu_seconds_total"] == nil {
			t.Error("process_cpu_seconds_total missing")
		}
	}
}

func TestRegistriesAreIndependent(t *testing.T) {
	t.Parallel()
	m1, reg1, _ := newTest(t)
	_, reg2, _ := newTest(t)
	m1.Backend("p", "b:1").ObserveRequest(nil, "GET", 200, 0)
	m1.Panic()
	if n := len(series(t, reg2, "loadbalancer_request_count_total")); n != 0 {
		t.Errorf("second registry sees %d request series", n)
	}
	wantSeries(t, reg2, "fulcrum_panics_total", map[string]float64{"": 0})
	wantSeries(t, reg1, "fulcrum_panics_total", map[string]float64{"": 1})
}

func TestNewTwiceOnOneRegistryPanics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	New(reg, nil)
	defer func() {
		if recover() == nil {
			t.Error("second New on the same registry did not panic")
		}
	}()
	New(reg, nil)
}

// TestZeroAllocs checks the request-path contract directly; the benchmarks
// report the same numbers.
func TestZeroAllocs(t *testing.T) {
	m, _, _ := newTest(t)
	b := m.Backend("p", "10.0.0.1:80")
	r := m.Route("api")
	m.Rejected("custom")
	for name, f := range map[string]func(){
		"ObserveRequest":  func() { b.ObserveRequest(nil, "GET", 200, time.Millisecond) },
		"ObserveRoute":    func() { b.ObserveRequest(r, "GET", 200, time.Millisecond) },
		"ObserveFolded":   func() { b.ObserveRequest(r, "get", 200, time.Millisecond) },
		"ObserveResponse": func() { b.ObserveResponse(time.Millisecond) },
		"Error":           func() { b.Error(ErrTimeout) },
		"Sticky":          func() { m.Sticky(StickyHit) },
		"Rejected":        func() { m.Rejected(RejectConnLimit) },
		"RejectedCustom":  func() { m.Rejected("custom") },
		"Backend":         func() { _ = m.Backend("p", "10.0.0.1:80") },
		"NoBackend":       func() { m.NoBackend().ObserveRequest(nil, "GET", 503, 0) },
		"NoBackendRoute":  func() { m.NoBackend().ObserveRequest(r, "GET", 503, 0) },
		"Retry":           func() { m.RetryAttempt() },
		"PanicMode":       func() { m.PanicMode("p", true) },
	} {
		f() // warm-up
		if a := testing.AllocsPerRun(100, f); a != 0 {
			t.Errorf("%s: %v allocs/op, want 0", name, a)
		}
	}
}
