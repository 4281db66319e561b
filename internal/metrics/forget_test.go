package metrics

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// seriesWith lists "family{labels}" of every series whose labels contain all
// of parts (each "k=v").
func seriesWith(t *testing.T, reg prometheus.Gatherer, parts ...string) []string {
	t.Helper()
	var out []string
	for name, f := range gather(t, reg) {
	metric:
		for _, mt := range f.GetMetric() {
			ls := "," + labelsOf(mt) + ","
			for _, p := range parts {
				if !strings.Contains(ls, ","+p+",") {
					continue metric
				}
			}
			out = append(out, name+"{"+labelsOf(mt)+"}")
		}
	}
	return out
}

func TestForget(t *testing.T) {
	t.Parallel()
	m, reg, _ := newTest(t)
	r := m.Route("api")
	gone, kept, other := m.Backend("p", "10.0.0.1:80"), m.Backend("p", "10.0.0.2:80"), m.Backend("q", "10.0.0.1:80")
	for _, b := range []*Backend{gone, kept, other} {
		b.ObserveRequest(nil, "GET", 200, time.Millisecond)
		b.ObserveRequest(r, "POST", 201, time.Millisecond)
		b.ObserveResponse(time.Millisecond)
		b.Error(ErrTimeout)
	}
	m.NoBackend().ObserveRequest(nil, "GET", 404, 0)

	m.Forget("p", "10.0.0.1:80")
	m.Forget("p", NoBackendLabel) // no-op
	m.Forget("p", "")             // no-op
	m.Forget("p", "never:1")      // no-op

	if s := seriesWith(t, reg, "pool=p", "backend=10.0.0.1:80"); len(s) != 0 {
		t.Errorf("survived Forget: %v", s)
	}
	// The same host in pool q keeps all its series: 2 requests, 2
	// durations, 1 response, 6 errors.
	if n := len(seriesWith(t, reg, "pool=q", "backend=10.0.0.1:80")); n != 11 {
		t.Errorf("pool q's series of the host: %d, want 11", n)
	}
	wantSeries(t, reg, "loadbalancer_request_count_total", map[string]float64{
		"backend=10.0.0.2:80,method=GET,pool=p,route=none,status=200": 1,
		"backend=10.0.0.2:80,method=POST,pool=p,route=api,status=201": 1,
		"backend=10.0.0.1:80,method=GET,pool=q,route=none,status=200": 1,
		"backend=10.0.0.1:80,method=POST,pool=q,route=api,status=201": 1,
		"backend=none,method=GET,pool=none,route=none,status=404":     1,
	})

	// A request still in flight on the old handle must not resurrect the
	// series, even for a label combination that handle never saw.
	gone.ObserveRequest(nil, "GET", 200, 0)
	gone.ObserveRequest(nil, "POST", 502, 0)
	gone.ObserveRequest(m.Route("new"), "GET", 200, 0)
	gone.ObserveResponse(0)
	gone.Error(ErrConnect)
	if s := seriesWith(t, reg, "pool=p", "backend=10.0.0.1:80"); len(s) != 0 {
		t.Errorf("re-created by a forgotten handle: %v", s)
	}

	// Re-adding the backend yields a new handle that starts from zero.
	again := m.Backend("p", "10.0.0.1:80")
	if again == gone {
		t.Fatal("Backend after Forget returned the forgotten handle")
	}
	again.ObserveRequest(nil, "GET", 200, 0)
	if v := series(t, reg, "loadbalancer_request_count_total")["backend=10.0.0.1:80,method=GET,pool=p,route=none,status=200"]; v != 1 {
		t.Errorf("re-added backend count = %v, want 1", v)
	}
}

func TestForgetConcurrentWithRequests(t *testing.T) {
	t.Parallel()
	m, reg, _ := newTest(t)
	const host = "10.0.0.1:80"
	routes := []*Route{nil, m.Route("a"), m.Route("b")}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		handles = map[*Backend]bool{}
	)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				b := m.Backend("p", host)
				b.ObserveRequest(routes[i%len(routes)], "GET", 200+(g*200+i)%300, 0)
				mu.Lock()
				handles[b] = true
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			m.Forget("p", host)
		}
	})
	wg.Wait()
	// Whatever the interleaving, a final Forget removes every series of
	// the backend, and no handle handed out during the race can bring one back.
	m.Forget("p", host)
	for b := range handles {
		b.ObserveRequest(routes[1], "PUT", 201, 0)
		b.Error(ErrEjected)
	}
	if s := seriesWith(t, reg, "backend="+host); len(s) != 0 {
		t.Errorf("survived the final Forget: %v", s)
	}
}

func TestRoute(t *testing.T) {
	t.Parallel()
	m, reg, _ := newTest(t)
	if m.Route("api") != m.Route("api") {
		t.Fatal("Route returned different handles for one name")
	}
	if m.Route("api") == m.Route("main/0") {
		t.Fatal("two names share a handle")
	}
	if m.Route("") != m.Route(NoBackendLabel) {
		t.Fatal(`Route("") and Route("none") differ`)
	}
	if n := len(gather(t, reg)["loadbalancer_request_count_total"].GetMetric()); n != 0 {
		t.Fatalf("Route created %d series before any request", n)
	}
	b := m.Backend("p", "b:1")
	b.ObserveRequest(m.Route("api"), "GET", 200, time.Millisecond)
	b.ObserveRequest(m.Route("main/0"), "GET", 200, time.Millisecond)
	b.ObserveRequest(m.Route("main/0"), "GET", 200, time.Millisecond)
	b.ObserveRequest(m.Route(""), "GET", 200, time.Millisecond)
	m.NoBackend().ObserveRequest(m.Route("api"), "GET", 503, 0)
	wantSeries(t, reg, "loadbalancer_request_count_total", map[string]float64{
		"backend=b:1,method=GET,pool=p,route=api,status=200":     1,
		"backend=b:1,method=GET,pool=p,route=main/0,status=200":  2,
		"backend=b:1,method=GET,pool=p,route=none,status=200":    1,
		"backend=none,method=GET,pool=none,route=api,status=503": 1,
	})
	wantSeries(t, reg, "loadbalancer_request_duration_seconds", map[string]float64{
		"backend=b:1,pool=p,route=api":     1,
		"backend=b:1,pool=p,route=main/0":  2,
		"backend=b:1,pool=p,route=none":    1,
		"backend=none,pool=none,route=api": 1,
	})
}

func TestForgetRoute(t *testing.T) {
	t.Parallel()
	m, reg, _ := newTest(t)
	old, kept := m.Route("old"), m.Route("kept")
	b1, b2 := m.Backend("p", "b:1"), m.Backend("q", "b:2")
	for _, b := range []*Backend{b1, b2, m.NoBackend()} {
		b.ObserveRequest(old, "GET", 200, 0)
		b.ObserveRequest(old, "POST", 500, 0)
		b.ObserveRequest(kept, "GET", 200, 0)
	}
	m.ForgetRoute("old")
	m.ForgetRoute("never")        // no-op
	m.ForgetRoute(NoBackendLabel) // no-op
	if s := seriesWith(t, reg, "route=old"); len(s) != 0 {
		t.Errorf("survived ForgetRoute: %v", s)
	}
	if n := len(seriesWith(t, reg, "route=kept")); n != 6 {
		t.Errorf("kept route: %d series, want 6", n)
	}
	// Backend series are not request series: untouched.
	if n := len(seriesWith(t, reg, "pool=p", "backend=b:1")); n != 2+7 {
		t.Errorf("b:1 has %d series, want 9 (kept route's 2, response, 6 errors)", n)
	}

	// A request in flight with the old handle records nowhere; a new route
	// (which reuses the freed id) and a new handle of the old name start at zero.
	b1.ObserveRequest(old, "GET", 200, 0)
	b1.ObserveRequest(old, "PUT", 204, 0)
	if s := seriesWith(t, reg, "route=old"); len(s) != 0 {
		t.Errorf("re-created by a forgotten route: %v", s)
	}
	reuse := m.Route("reuse")
	b1.ObserveRequest(reuse, "GET", 200, 0)
	b1.ObserveRequest(old, "GET", 200, 0) // same id, other route: still nowhere
	again := m.Route("old")
	if again == old {
		t.Fatal("Route after ForgetRoute returned the forgotten handle")
	}
	b1.ObserveRequest(again, "GET", 200, 0)
	cnt := series(t, reg, "loadbalancer_request_count_total")
	if v := cnt["backend=b:1,method=GET,pool=p,route=reuse,status=200"]; v != 1 {
		t.Errorf("route reusing the id: %v, want 1", v)
	}
	if v := cnt["backend=b:1,method=GET,pool=p,route=old,status=200"]; v != 1 {
		t.Errorf("re-added route: %v, want 1", v)
	}

	// Forgetting a backend after its route was forgotten, and the reverse,
	// leave nothing behind.
	m.Forget("p", "b:1")
	m.ForgetRoute("kept")
	m.ForgetRoute("reuse")
	m.ForgetRoute("old")
	if s := seriesWith(t, reg, "backend=b:1"); len(s) != 0 {
		t.Errorf("left behind: %v", s)
	}
	if s := seriesWith(t, reg, "route=kept"); len(s) != 0 {
		t.Errorf("left behind: %v", s)
	}
}

func TestForgetRouteConcurrentWithRequests(t *testing.T) {
	t.Parallel()
	m, reg, _ := newTest(t)
	b := m.Backend("p", "b:1")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				m.Backend("p", "b:1").ObserveRequest(m.Route("r"), "GET", 200+(g+i)%5, 0)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			m.ForgetRoute("r")
		}
	})
	wg.Wait()
	r := m.Route("r")
	m.ForgetRoute("r")
	b.ObserveRequest(r, "GET", 200, 0)
	if s := seriesWith(t, reg, "route=r"); len(s) != 0 {
		t.Errorf("survived the final ForgetRoute: %v", s)
	}
}
