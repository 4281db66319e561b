package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsPoolAndRouteLabels: backend metrics carry the pool label, the
// request metrics the route and pool labels, /admin/backends names the pool,
// and no backend series exists for the pseudo-backend "none" (which belongs
// only on the request metrics of requests no backend served), neither on a
// fresh process nor after such a request.
func TestMetricsPoolAndRouteLabels(t *testing.T) {
	t.Parallel()
	a := StartBackend(t, "a", 0, nil)
	f := StartFulcrum(t, `{"backends": ["`+a.URL+`"], "rate_limit": {"requests_per_second": 0.01, "burst": 1}}`)

	noNone := func(when string) {
		t.Helper()
		_, body := Get(t, coreAdminClient, f.AdminURL("/metrics"))
		for _, line := range strings.Split(body, "\n") {
			if (strings.HasPrefix(line, "loadbalancer_backend_errors_total") ||
				strings.HasPrefix(line, "loadbalancer_backend_response_seconds")) &&
				strings.Contains(line, `backend="none"`) {
				t.Errorf("%s: /metrics has a series for the pseudo-backend none: %s", when, line)
			}
		}
	}
	noNone("fresh process")

	cl := coreClient(t)
	codes := map[int]int{}
	for range 3 { // the second and third are rate limited: no backend
		resp, err := cl.Get(f.URL("/"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[http.StatusOK] != 1 || codes[http.StatusTooManyRequests] != 2 {
		t.Fatalf("statuses %v, want one 200 and two 429", codes)
	}
	var m coreMetrics
	WaitFor(t, 10*time.Second, "request counters to reach 3", func() bool {
		m = coreScrape(t, f)
		return m.sum("loadbalancer_request_count_total") >= 3
	})
	if v := m.val("loadbalancer_request_count_total", "route", "default/0", "pool", "default", "backend", a.Addr(), "method", "GET", "status", "200"); v != 1 {
		t.Errorf("request_count{pool=default,backend=%s,status=200} = %v, want 1", a.Addr(), v)
	}
	if v := m.val("loadbalancer_request_count_total", "route", "none", "pool", "none", "backend", "none", "method", "GET", "status", "429"); v != 2 {
		t.Errorf("request_count{pool=none,backend=none,status=429} = %v, want 2", v)
	}
	if _, ok := m.get("loadbalancer_backend_up", "pool", "default", "backend", a.Addr()); !ok {
		t.Errorf("loadbalancer_backend_up{pool=default,backend=%s} missing", a.Addr())
	}
	if v, ok := m.get("fulcrum_panic_mode", "pool", "default"); !ok || v != 0 {
		t.Errorf("fulcrum_panic_mode{pool=default} = %v (present %v), want 0", v, ok)
	}
	noNone("after requests no backend served")

	for _, st := range coreAdminBackends(t, f) {
		if st.Pool != "default" {
			t.Errorf("/admin/backends entry %s: pool %q, want default", st.URL, st.Pool)
		}
	}
}
