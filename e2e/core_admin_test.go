package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestCoreMetricsExact: /metrics on the admin listener counts every request
// exactly, by backend (host:port), status and method; the traffic port never
// serves admin paths.
func TestCoreMetricsExact(t *testing.T) {
	t.Parallel()
	handler := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("X-Backend", name)
			if r.URL.Path == "/missing" {
				w.WriteHeader(http.StatusNotFound)
			}
			io.WriteString(w, name)
		}
	}
	a := StartBackend(t, "a", 0, handler("a"))
	b := StartBackend(t, "b", 0, handler("b"))
	c := StartBackend(t, "c", 0, handler("c"))
	bs := []*Backend{a, b, c}
	f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "round_robin", "backends": %s}`, coreBackendList(bs, nil)))
	cl := coreClient(t)
	send := func(method, path string, n int, want int) {
		t.Helper()
		for i := 0; i < n; i++ {
			var body io.Reader
			if method == "POST" {
				body = strings.NewReader("payload")
			}
			req, _ := http.NewRequest(method, f.URL(path), body)
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Fatalf("%s %s: status %d, want %d", method, path, resp.StatusCode, want)
			}
		}
	}
	// Every group is a multiple of 3, so round robin splits it evenly.
	send("GET", "/", 9, 200)
	send("POST", "/submit", 6, 200)
	send("GET", "/missing", 3, 404)
	send("DELETE", "/thing", 3, 200)
	send("HEAD", "/", 3, 200)
	const total = 24

	var m coreMetrics
	WaitFor(t, 10*time.Second, "request counters to reach 24", func() bool {
		m = coreScrape(t, f)
		return m.sum("loadbalancer_request_count_total") >= total
	})
	// Let any (wrong) extra increments land before asserting exactness.
	m = coreScrape(t, f)
	if got := m.sum("loadbalancer_request_count_total"); got != total {
		t.Fatalf("total request count %v, want %d", got, total)
	}
	const rc = "loadbalancer_request_count_total"
	for _, be := range bs {
		host := be.Addr()
		want := map[[2]string]float64{
			{"GET", "200"}: 3, {"POST", "200"}: 2, {"GET", "404"}: 1, {"DELETE", "200"}: 1, {"HEAD", "200"}: 1,
		}
		for k, w := range want {
			if got := m.val(rc, "route", "default/0", "pool", "default", "backend", host, "method", k[0], "status", k[1]); got != w {
				t.Errorf("%s{backend=%q,method=%q,status=%q} = %v, want %v", rc, host, k[0], k[1], got, w)
			}
		}
		if got := m.sum(rc, "backend", host); got != 8 {
			t.Errorf("%s for %s sums to %v, want 8", rc, host, got)
		}
		if got := m.val("loadbalancer_request_duration_seconds_count", "route", "default/0", "pool", "default", "backend", host); got != 8 {
			t.Errorf("request_duration_seconds_count{%s} = %v, want 8", host, got)
		}
		if got := m.val("loadbalancer_backend_response_seconds_count", "pool", "default", "backend", host); got != 8 {
			t.Errorf("backend_response_seconds_count{%s} = %v, want 8", host, got)
		}
		if v, ok := m.get("loadbalancer_backend_up", "pool", "default", "backend", host); !ok || v != 1 {
			t.Errorf("backend_up{%s} = %v (present %v), want 1", host, v, ok)
		}
		if v, ok := m.get("loadbalancer_backend_connections_active", "pool", "default", "backend", host); !ok || v != 0 {
			t.Errorf("connections_active{%s} = %v (present %v), want 0", host, v, ok)
		}
		if got := m.sum("loadbalancer_backend_errors_total", "backend", host); got != 0 {
			t.Errorf("backend_errors_total{%s} = %v, want 0", host, got)
		}
	}
	for _, p := range []string{"go_goroutines", "go_memstats_", "process_cpu_seconds_total", "process_open_fds"} {
		if !m.hasPrefix(p) {
			t.Errorf("/metrics has no %s series", p)
		}
	}
	if !m.hasPrefix("loadbalancer_request_duration_seconds_bucket") || !m.hasPrefix("loadbalancer_backend_response_seconds_bucket") {
		t.Error("histogram buckets missing")
	}
	// /admin/backends agrees.
	for _, s := range coreAdminBackends(t, f) {
		if s.Requests != 8 || s.Failures != 0 || !s.Up || s.Active != 0 || s.Weight != 1 {
			t.Errorf("/admin/backends %+v, want requests 8, failures 0, up, active 0, weight 1", s)
		}
	}
	if code, body := Get(t, cl, f.AdminURL("/healthz")); code != 200 {
		t.Errorf("GET /healthz: %d %q", code, body)
	}

	// Admin paths on the traffic port are proxied like any other path.
	for _, p := range []string{"/metrics", "/admin/backends", "/healthz"} {
		code, body := Get(t, cl, f.URL(p))
		if code != 200 || (body != "a" && body != "b" && body != "c") {
			t.Errorf("GET %s on the traffic port: %d %q, want a backend's answer", p, code, body)
		}
	}
	resp, err := cl.Post(f.URL("/admin/reload"), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if s := string(got); s != "a" && s != "b" && s != "c" {
		t.Errorf("POST /admin/reload on the traffic port: %q, want a backend's answer", s)
	}
	WaitFor(t, 10*time.Second, "counts to include the proxied admin paths", func() bool {
		return coreScrape(t, f).sum(rc) == total+4
	})
}

// TestCoreNoBackend503: with every backend down the answer is 503 with a
// short plain-text body.
func TestCoreNoBackend503(t *testing.T) {
	t.Parallel()
	dead := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	f := StartFulcrum(t, fmt.Sprintf(`{"health_check_interval": "200ms", "max_fail_count": 1, "backends": [%q]}`, dead))
	WaitFor(t, 15*time.Second, "backend marked down", func() bool { return !coreAdminBackends(t, f)[0].Up })
	resp, err := coreClient(t).Get(f.URL("/x"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	if len(body) == 0 || len(body) > 200 || strings.Contains(string(body), "<") {
		t.Errorf("body %q, want a short plain-text message", body)
	}
	m := coreScrape(t, f)
	if v := m.val("loadbalancer_backend_up", "pool", "default", "backend", strings.TrimPrefix(dead, "http://")); v != 0 {
		t.Errorf("backend_up = %v, want 0", v)
	}
	// The request is counted once its answer is written: the scrape may
	// come first.
	WaitFor(t, 5*time.Second, "the 503 to be counted", func() bool {
		m = coreScrape(t, f)
		return m.sum("loadbalancer_request_count_total", "status", "503") >= 1
	})
	if v := m.sum("loadbalancer_request_count_total", "status", "503"); v != 1 {
		t.Errorf("503 count %v, want 1", v)
	}
}

// TestCoreUnreachable502: a backend that refuses connections gives 502.
func TestCoreUnreachable502(t *testing.T) {
	t.Parallel()
	host := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	f := StartFulcrum(t, fmt.Sprintf(`{"retries": 0, "backends": ["http://%s"]}`, host))
	code, body := Get(t, coreClient(t), f.URL("/"))
	if code != http.StatusBadGateway {
		t.Fatalf("status %d %q, want 502", code, body)
	}
	var m coreMetrics
	WaitFor(t, 10*time.Second, "502 counted", func() bool {
		m = coreScrape(t, f)
		return m.val("loadbalancer_request_count_total", "route", "default/0", "pool", "default", "backend", host, "method", "GET", "status", "502") == 1
	})
	if v := m.val("loadbalancer_backend_errors_total", "pool", "default", "backend", host, "error_type", "connect"); v != 1 {
		t.Errorf("errors_total{connect} = %v, want 1", v)
	}
}

// TestCoreSlow504: a backend slower than response_header_timeout gives 504.
func TestCoreSlow504(t *testing.T) {
	t.Parallel()
	h := newCoreHold(t)
	slow := StartBackend(t, "slow", 0, h.handler("slow"))
	f := StartFulcrum(t, fmt.Sprintf(`{"retries": 0, "response_header_timeout": "300ms", "backends": [%q]}`, slow.URL))
	start := time.Now()
	code, body := Get(t, coreClient(t), f.URL("/hold"))
	if code != http.StatusGatewayTimeout {
		t.Fatalf("status %d %q, want 504", code, body)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("504 took %v", d)
	}
	var m coreMetrics
	WaitFor(t, 10*time.Second, "504 counted", func() bool {
		m = coreScrape(t, f)
		return m.val("loadbalancer_request_count_total", "route", "default/0", "pool", "default", "backend", slow.Addr(), "method", "GET", "status", "504") == 1
	})
	if v := m.val("loadbalancer_backend_errors_total", "pool", "default", "backend", slow.Addr(), "error_type", "timeout"); v != 1 {
		t.Errorf("errors_total{timeout} = %v, want 1", v)
	}
}

// TestCoreReloadAdmin: POST /admin/reload applies a valid file to the next
// request, keeps the state of unchanged backends and answers one line; an
// invalid file gets 400 with the problems and changes nothing.
func TestCoreReloadAdmin(t *testing.T) {
	t.Parallel()
	bs := coreStartBackends(t, "a", "b", "c")
	a, b, c := bs[0], bs[1], bs[2]
	f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "round_robin", "backends": %s}`, coreBackendList(bs[:2], nil)))
	cl := coreClient(t)
	if got := strings.Join(coreSeq(t, cl, f.URL("/"), 10), ""); got != "ababababab" {
		t.Fatalf("before reload: %q", got)
	}

	f.WriteConfig(fmt.Sprintf(`{"strategy": "weighted_round_robin", "backends": %s}`, coreBackendList(bs, []int{1, 1, 2})))
	code, body := coreReload(t, f)
	if code != http.StatusOK || strings.Count(strings.TrimSpace(body), "\n") != 0 ||
		!strings.Contains(body, "3 backends") || !strings.Contains(body, "weighted_round_robin") {
		t.Fatalf("valid reload: %d %q, want 200 and a one-line summary", code, body)
	}
	// nginx smooth WRR over 1,1,2 is "c a b c"; it applies from the next request.
	if got := strings.Join(coreSeq(t, cl, f.URL("/"), 8), ""); got != "cabccabc" {
		t.Fatalf("after reload: %q, want cabccabc", got)
	}
	st := coreByURL(coreAdminBackends(t, f))
	if st[a.URL].Requests != 7 || st[b.URL].Requests != 7 || st[c.URL].Requests != 4 {
		t.Fatalf("requests after reload a=%d b=%d c=%d, want 7/7/4 (kept backends keep their counts)",
			st[a.URL].Requests, st[b.URL].Requests, st[c.URL].Requests)
	}
	if st[a.URL].Weight != 1 || st[c.URL].Weight != 2 {
		t.Fatalf("weights after reload: %+v", st)
	}

	// Invalid files: 400, every problem listed, nothing changes.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	invalid := []struct{ cfg, want string }{
		{fmt.Sprintf(`{"strategy": "fastest", "backends": [{"url": %q, "weight": 0}], "colour": 1}`, a.URL),
			"backends[0].weight|strategy|colour"},
		{`{"backends": [`, "parse"},
		// A listen_addr that cannot be bound refuses the whole reload.
		{fmt.Sprintf(`{"listen_addr": %q, "backends": [%q]}`, busy.Addr().String(), a.URL), "listen_addr|address already in use"},
	}
	for _, inv := range invalid {
		f.WriteConfig(inv.cfg)
		code, body = coreReload(t, f)
		if code != http.StatusBadRequest {
			t.Fatalf("invalid reload (%s): status %d %q, want 400", inv.cfg, code, body)
		}
		for _, w := range strings.Split(inv.want, "|") {
			if !strings.Contains(body, w) {
				t.Errorf("invalid reload body lacks %q:\n%s", w, body)
			}
		}
		if got := strings.Join(coreSeq(t, cl, f.URL("/"), 4), ""); got != "cabc" {
			t.Fatalf("after rejected reload: %q, want the running config's cabc", got)
		}
	}
	st2 := coreAdminBackends(t, f)
	if len(st2) != 3 || st2[2].Weight != 2 {
		t.Fatalf("backends after rejected reloads: %+v", st2)
	}
	m := coreScrape(t, f)
	if ok, fail := m.val("fulcrum_reloads_total", "result", "success"), m.val("fulcrum_reloads_total", "result", "failure"); ok != 1 || fail != 3 {
		t.Errorf("reloads success=%v failure=%v, want 1 and 3", ok, fail)
	}

	// Removing a backend: it disappears; the others keep their counts.
	f.WriteConfig(fmt.Sprintf(`{"strategy": "round_robin", "backends": %s}`, coreBackendList(bs[1:], nil)))
	if code, body = coreReload(t, f); code != http.StatusOK {
		t.Fatalf("reload: %d %q", code, body)
	}
	st = coreByURL(coreAdminBackends(t, f))
	if _, ok := st[a.URL]; ok || len(st) != 2 || st[b.URL].Requests != 10 || st[c.URL].Requests != 10 {
		t.Fatalf("after removing a: %+v, want b and c with 10 requests each", st)
	}
	if got := strings.Join(coreSeq(t, cl, f.URL("/"), 4), ""); got != "bcbc" {
		t.Fatalf("after removing a: %q, want bcbc", got)
	}
}

// TestCoreReloadSIGHUP: SIGHUP does what POST /admin/reload does.
func TestCoreReloadSIGHUP(t *testing.T) {
	t.Parallel()
	bs := coreStartBackends(t, "a", "b", "c")
	f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "round_robin", "backends": %s}`, coreBackendList(bs[:2], nil)))
	cl := coreClient(t)
	coreSeq(t, cl, f.URL("/"), 4)
	f.WriteConfig(fmt.Sprintf(`{"strategy": "weighted_round_robin", "backends": %s}`, coreBackendList(bs, []int{1, 1, 2})))
	f.Signal(syscall.SIGHUP)
	WaitFor(t, 10*time.Second, "SIGHUP reload applied", func() bool { return len(coreAdminBackends(t, f)) == 3 })
	if got := strings.Join(coreSeq(t, cl, f.URL("/"), 8), ""); got != "cabccabc" {
		t.Fatalf("after SIGHUP reload: %q, want cabccabc", got)
	}
	st := coreByURL(coreAdminBackends(t, f))
	if st[bs[0].URL].Requests != 4 || st[bs[2].URL].Requests != 4 {
		t.Fatalf("requests after SIGHUP: %+v, want a=4 (2 kept + 2 new) c=4", st)
	}

	f.WriteConfig(`{"strategy": "round_robin", "backends": [{"url": "http://127.0.0.1:1", "weight": 0}]}`)
	f.Signal(syscall.SIGHUP)
	WaitFor(t, 10*time.Second, "SIGHUP reload rejected", func() bool {
		return coreScrape(t, f).val("fulcrum_reloads_total", "result", "failure") == 1
	})
	if !strings.Contains(f.Logs.String(), "backends[0].weight") {
		t.Errorf("log does not show the validation error:\n%s", f.Logs.String())
	}
	if got := strings.Join(coreSeq(t, cl, f.URL("/"), 4), ""); got != "cabc" {
		t.Fatalf("after rejected SIGHUP reload: %q, want cabc", got)
	}
	if !coreAlive(f) {
		t.Fatal("fulcrum exited after a rejected SIGHUP reload")
	}
}

// coreLoad runs workers concurrent clients sending GETs until stop is closed
// (or a bound is hit). Each error is passed to classify, which returns true
// if the error is acceptable (and the worker should stop).
type coreLoad struct {
	ok, accepted atomic.Int64
	mu           sync.Mutex
	failures     []string
	wg           sync.WaitGroup
	stop         chan struct{}
}

func startCoreLoad(t testing.TB, url string, workers int, classify func(err error, reused bool) bool) *coreLoad {
	l := &coreLoad{stop: make(chan struct{})}
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	cl := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	deadline := time.Now().Add(60 * time.Second)
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < 100000 && time.Now().Before(deadline); i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				var reused bool
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
				req, _ := http.NewRequest("GET", url, nil)
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
				resp, err := cl.Do(req)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err == nil {
					l.ok.Add(1)
					continue
				}
				if classify != nil && classify(err, reused) {
					l.accepted.Add(1)
					return
				}
				l.mu.Lock()
				l.failures = append(l.failures, fmt.Sprintf("reused=%v: %v", reused, err))
				l.mu.Unlock()
				return
			}
		}()
	}
	t.Cleanup(l.Stop)
	return l
}

func (l *coreLoad) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// waitMore waits until n more requests have succeeded.
func (l *coreLoad) waitMore(t testing.TB, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	WaitFor(t, 20*time.Second, fmt.Sprintf("%d more successful requests", n), func() bool {
		l.mu.Lock()
		failed := len(l.failures) > 0
		l.mu.Unlock()
		return failed || l.ok.Load() >= target
	})
}

func (l *coreLoad) Failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.failures...)
}

// TestCoreReloadUnderLoad: reloads (admin and SIGHUP) that add, remove and
// re-weight backends and change the strategy fail no request.
func TestCoreReloadUnderLoad(t *testing.T) {
	t.Parallel()
	h := newCoreHold(t)
	h.delay = 2 * time.Millisecond // keep some requests in flight at every moment
	bs := []*Backend{StartBackend(t, "a", 0, h.handler("a")), StartBackend(t, "b", 0, h.handler("b")), StartBackend(t, "c", 0, h.handler("c"))}
	cfgs := []string{
		fmt.Sprintf(`{"strategy": "round_robin", "backends": %s}`, coreBackendList(bs, nil)),
		fmt.Sprintf(`{"strategy": "weighted_round_robin", "backends": %s}`, coreBackendList(bs[:2], []int{3, 1})),
		fmt.Sprintf(`{"strategy": "least_connections", "backends": %s}`, coreBackendList(bs[1:], nil)),
		fmt.Sprintf(`{"strategy": "random", "backends": %s}`, coreBackendList([]*Backend{bs[2], bs[0]}, []int{1, 5})),
		fmt.Sprintf(`{"strategy": "power_of_two", "max_fail_count": 2, "backends": %s}`, coreBackendList(bs, nil)),
		`{"strategy": "round_robin", "backends": ["http://127.0.0.1:1"], "oops": true}`, // invalid: must change nothing
	}
	f := StartFulcrum(t, cfgs[0])
	load := startCoreLoad(t, f.URL("/"), 8, nil)
	load.waitMore(t, 100)
	for round := 0; round < 2; round++ {
		for i := 1; i < len(cfgs)+1; i++ {
			cfg := cfgs[i%len(cfgs)]
			f.WriteConfig(cfg)
			invalid := strings.Contains(cfg, "oops")
			if (i+round)%2 == 0 {
				code, body := coreReload(t, f)
				if invalid != (code == http.StatusBadRequest) || (!invalid && code != 200) {
					t.Fatalf("reload %d: %d %q", i, code, body)
				}
			} else {
				want := float64(i + round*len(cfgs))
				f.Signal(syscall.SIGHUP)
				WaitFor(t, 10*time.Second, "SIGHUP handled", func() bool {
					m := coreScrape(t, f)
					return m.sum("fulcrum_reloads_total") >= want
				})
			}
			load.waitMore(t, 50)
		}
	}
	load.Stop()
	if fs := load.Failures(); len(fs) > 0 {
		t.Fatalf("%d requests failed during reloads (of %d ok), first: %v", len(fs), load.ok.Load(), fs[0])
	}
	t.Logf("%d requests during %d reloads, none failed", load.ok.Load(), 2*len(cfgs))
	for _, b := range bs {
		if b.Hits.Load() == 0 {
			t.Errorf("backend %s got no traffic", b.Name)
		}
	}
}

// TestCoreShutdownInFlight: on SIGTERM fulcrum stops accepting at once, lets
// requests in flight finish with 200, then exits 0.
func TestCoreShutdownInFlight(t *testing.T) {
	t.Parallel()
	h := newCoreHold(t)
	be := StartBackend(t, "a", 0, h.handler("a"))
	f := StartFulcrum(t, fmt.Sprintf(`{"shutdown_timeout": "20s", "backends": [%q]}`, be.URL))
	cl := coreClient(t)
	var results []<-chan coreResult
	for i := 0; i < 4; i++ {
		_, res := coreGoHold(t, h, cl, f)
		results = append(results, res)
	}
	f.Signal(syscall.SIGTERM)
	WaitFor(t, 10*time.Second, "traffic listener closed", func() bool {
		_, err := net.DialTimeout("tcp", f.Addr, time.Second)
		return err != nil
	})
	if !coreAlive(f) {
		t.Fatalf("fulcrum exited with requests in flight\n%s", f.Logs.String())
	}
	h.Release()
	for i, ch := range results {
		if r := coreWaitResult(t, ch); r.err != nil || r.code != 200 || r.body != "a" {
			t.Errorf("in-flight request %d: %+v, want 200 a", i, r)
		}
	}
	if code := f.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0\n%s", code, f.Logs.String())
	}
	coreNoPanic(t, f.Logs.String())
	if coreListening(f.Admin) {
		t.Error("admin listener still open after exit")
	}
}

// TestCoreShutdownTimeout: requests still running at shutdown_timeout are cut
// and fulcrum still exits 0, on time.
func TestCoreShutdownTimeout(t *testing.T) {
	t.Parallel()
	h := newCoreHold(t)
	be := StartBackend(t, "a", 0, h.handler("a"))
	f := StartFulcrum(t, fmt.Sprintf(`{"shutdown_timeout": "500ms", "backends": [%q]}`, be.URL))
	_, res := coreGoHold(t, h, coreClient(t), f)
	start := time.Now()
	f.Signal(syscall.SIGINT)
	if code := f.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0\n%s", code, f.Logs.String())
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("exited after %v, before shutdown_timeout with a request in flight", d)
	}
	if r := coreWaitResult(t, res); r.err == nil && r.code == 200 {
		t.Errorf("request held past shutdown_timeout completed: %+v", r)
	}
}

// TestCoreShutdownUnderLoad: SIGTERM under steady concurrent load fails no
// request that fulcrum accepted; only new connections are refused.
func TestCoreShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	h := newCoreHold(t)
	h.delay = 5 * time.Millisecond
	bs := []*Backend{StartBackend(t, "a", 0, h.handler("a")), StartBackend(t, "b", 0, h.handler("b"))}
	f := StartFulcrum(t, fmt.Sprintf(`{"shutdown_timeout": "20s", "backends": %s}`, coreBackendList(bs, nil)))
	var refused, backlog atomic.Int64
	load := startCoreLoad(t, f.URL("/"), 8, func(err error, reused bool) bool {
		if coreRefused(err) {
			refused.Add(1)
			return true
		}
		// A connection the kernel queued but fulcrum never accepted is
		// reset when the listener closes: that request never started.
		if !reused && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
			backlog.Add(1)
			return true
		}
		return false
	})
	load.waitMore(t, 200)
	f.Signal(syscall.SIGTERM)
	if code := f.Wait(30 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0\n%s", code, f.Logs.String())
	}
	load.Stop()
	if fs := load.Failures(); len(fs) > 0 {
		t.Fatalf("%d requests failed during shutdown (%d ok), e.g. %v", len(fs), load.ok.Load(), fs)
	}
	t.Logf("%d ok, %d workers stopped by refused connections, %d by never-accepted connections",
		load.ok.Load(), refused.Load(), backlog.Load())
}

// TestCoreHealthTCP: the flat form's TCP check marks a backend down after
// max_fail_count failures and up again after a success; traffic,
// /admin/backends and loadbalancer_backend_up follow.
func TestCoreHealthTCP(t *testing.T) {
	t.Parallel()
	bs := coreStartBackends(t, "a", "b", "c")
	f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "round_robin", "health_check_interval": "200ms", "max_fail_count": 3, "backends": %s}`,
		coreBackendList(bs, nil)))
	c := bs[2]
	host := c.Addr()
	port := c.Ln.Addr().(*net.TCPAddr).Port
	m := coreScrape(t, f)
	for _, b := range bs {
		if v, ok := m.get("loadbalancer_backend_up", "pool", "default", "backend", b.Addr()); !ok || v != 1 {
			t.Fatalf("backend_up{%s} = %v (present %v) at start, want 1", b.Addr(), v, ok)
		}
	}

	c.Close()
	start := time.Now()
	WaitFor(t, 15*time.Second, "c marked down", func() bool { return !coreByURL(coreAdminBackends(t, f))[c.URL].Up })
	// Only after max_fail_count consecutive failed checks.
	if n := coreScrape(t, f).val("loadbalancer_backend_errors_total", "pool", "default", "backend", host, "error_type", "health_check"); n < 3 {
		t.Errorf("marked down after %v failed checks, want >= 3 (max_fail_count)", n)
	}
	t.Logf("c down after %v", time.Since(start))
	WaitFor(t, 5*time.Second, "backend_up 0", func() bool {
		return coreScrape(t, f).val("loadbalancer_backend_up", "pool", "default", "backend", host) == 0
	})
	cl := coreClient(t)
	if cnt := coreCount(coreSeq(t, cl, f.URL("/"), 6)); cnt["a"] != 3 || cnt["b"] != 3 {
		t.Fatalf("with c down: %v, want a:3 b:3", cnt)
	}
	if s := coreByURL(coreAdminBackends(t, f))[c.URL]; s.Requests != 0 {
		t.Errorf("c got %d requests while down", s.Requests)
	}

	StartBackend(t, "c", port, nil)
	WaitFor(t, 15*time.Second, "c marked up", func() bool { return coreByURL(coreAdminBackends(t, f))[c.URL].Up })
	WaitFor(t, 5*time.Second, "backend_up 1", func() bool {
		return coreScrape(t, f).val("loadbalancer_backend_up", "pool", "default", "backend", host) == 1
	})
	if cnt := coreCount(coreSeq(t, cl, f.URL("/"), 6)); cnt["a"] != 2 || cnt["b"] != 2 || cnt["c"] != 2 {
		t.Fatalf("after c recovered: %v, want 2/2/2", cnt)
	}
}

// TestCoreRecoveredBackendServes: a backend that went down and came back
// serves the next requests normally. Regression: fulcrum kept its idle
// connections to the old process; the first request after recovery reused a
// dead one (the liveness peek is skipped for connections idle < 500ms), got
// EOF, counted it as a failure and, with max_fail_count 1, ejected the
// recovered backend for 30s.
func TestCoreRecoveredBackendServes(t *testing.T) {
	t.Parallel()
	bs := coreStartBackends(t, "a", "b")
	f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "round_robin", "health_check_interval": "200ms", "max_fail_count": 1, "backends": %s}`,
		coreBackendList(bs, nil)))
	cl := coreClient(t)
	coreSeq(t, cl, f.URL("/"), 4) // leaves an idle upstream connection to b
	port := bs[1].Ln.Addr().(*net.TCPAddr).Port
	bs[1].Close()
	WaitFor(t, 15*time.Second, "b marked down", func() bool { return !coreAdminBackends(t, f)[1].Up })
	b2 := StartBackend(t, "b", port, nil)
	WaitFor(t, 15*time.Second, "b marked up", func() bool { return coreAdminBackends(t, f)[1].Up })
	// The snapshot that routes to b is published just after the state flips.
	WaitFor(t, 10*time.Second, "b reached", func() bool {
		_, body, err := coreFetch(cl, f.URL("/"))
		return err == nil && body == "b"
	})
	got := coreCount(coreSeq(t, cl, f.URL("/"), 6))
	st := coreAdminBackends(t, f)[1]
	if got["b"] != 3 || !st.Up || st.Failures != 0 || strings.Contains(f.Logs.String(), "ejected") {
		t.Fatalf("after recovery: distribution %v, b %+v (want 3 of 6, up, no failures)\n%s", got, st, f.Logs.String())
	}
	if b2.Hits.Load() < 4 {
		t.Fatalf("recovered b served %d requests, want >= 4", b2.Hits.Load())
	}
}

// TestCoreSignalsRightAfterStart: SIGHUP and SIGTERM sent as soon as the
// traffic port accepts connections are handled, not fatal. Regression: the
// signal handlers were installed only after the listeners were bound and
// serving, so an early SIGHUP or SIGTERM killed the process (exit by signal).
func TestCoreSignalsRightAfterStart(t *testing.T) {
	t.Parallel()
	be := StartBackend(t, "a", 0, nil)
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		listen, admin := coreFreeAddr(t), coreFreeAddr(t)
		path := coreWriteFile(t, "f.json", fmt.Sprintf(`{"listen_addr": %q, "admin_addr": %q, "backends": [%q]}`, listen, admin, be.URL))
		f := coreProc(t, "-config", path)
		f.Addr, f.Admin = listen, admin
		deadline := time.Now().Add(15 * time.Second)
		for {
			if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
				c.Close()
				break
			}
			if !coreAlive(f) || time.Now().After(deadline) {
				t.Fatalf("fulcrum did not start listening:\n%s", f.Logs.String())
			}
			time.Sleep(time.Millisecond)
		}
		f.Signal(sig)
		if sig == syscall.SIGTERM {
			if code := f.Wait(15 * time.Second); code != 0 {
				t.Fatalf("SIGTERM right after start: exit code %d (%v), want 0\n%s", code, f.Cmd.ProcessState, f.Logs.String())
			}
			continue
		}
		f.waitListening(t)
		if code, body := Get(t, coreClient(t), f.URL("/")); code != 200 || body != "a" {
			t.Fatalf("after an early SIGHUP: %d %q", code, body)
		}
		if !coreAlive(f) {
			t.Fatalf("SIGHUP right after start killed fulcrum:\n%s", f.Logs.String())
		}
		f.Stop()
	}
}
