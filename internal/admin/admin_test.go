package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fulcrum/internal/admin"
	"fulcrum/internal/pool"
	"fulcrum/internal/testutil"
)

// TestMain fails the package if a goroutine started by a test (test servers,
// Serve's shutdown watcher) outlives it (STYLE.md P14).
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m, http.DefaultClient.CloseIdleConnections) }

// fakeCtl is a scripted admin.Controller.
type fakeCtl struct {
	mu       sync.Mutex
	summary  string
	err      error
	backends []pool.Status
	reloads  int
}

func (f *fakeCtl) Reload(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	return f.summary, f.err
}

func (f *fakeCtl) Backends() []pool.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.backends
}

func (f *fakeCtl) reloadCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reloads
}

var _ admin.Controller = (*fakeCtl)(nil)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// setup serves an admin.Server over a real loopback listener.
func setup(t *testing.T, ctl *fakeCtl, token string) (*admin.Server, *httptest.Server) {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "fulcrum_test_total", Help: "test counter"})
	c.Add(3)
	reg.MustRegister(c)
	s := admin.New(ctl, reg, token, quiet)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

// do sends method path with an optional Authorization header value.
func do(t *testing.T, ts *httptest.Server, method, path, auth string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// protected lists every endpoint behind the token, with a request that
// succeeds when authorised.
var protected = []struct{ method, path string }{
	{"GET", "/metrics"},
	{"GET", "/admin/backends"},
	{"POST", "/admin/reload"},
	{"GET", "/debug/pprof/"},
	{"GET", "/debug/pprof/symbol"},
}

func TestHealthzOpen(t *testing.T) {
	t.Parallel()
	for _, token := range []string{"", "s3cret"} {
		_, ts := setup(t, &fakeCtl{}, token)
		for _, auth := range []string{"", "Bearer wrong", "Basic Zm9vOmJhcg=="} {
			resp, body := do(t, ts, "GET", "/healthz", auth)
			if resp.StatusCode != 200 || body != "ok\n" {
				t.Errorf("token %q, auth %q: /healthz = %d %q, want 200 ok", token, auth, resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("/healthz Content-Type = %q", ct)
			}
		}
	}
}

func TestTokenRequired(t *testing.T) {
	t.Parallel()
	const token = "s3cret-Token_1"
	ctl := &fakeCtl{summary: "reloaded"}
	_, ts := setup(t, ctl, token)
	bad := []struct{ name, auth string }{
		{"no header", ""},
		{"wrong token", "Bearer nope"},
		{"token prefix", "Bearer " + token[:len(token)-1]},
		{"token with suffix", "Bearer " + token + "x"},
		{"token without scheme", token},
		{"basic scheme", "Basic " + token},
		{"empty bearer", "Bearer "},
		{"other case of the token", "Bearer " + strings.ToUpper(token)},
	}
	for _, ep := range protected {
		for _, b := range bad {
			resp, body := do(t, ts, ep.method, ep.path, b.auth)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: status %d, want 401", ep.method, ep.path, b.name, resp.StatusCode)
				continue
			}
			if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
				t.Errorf("%s %s with %s: WWW-Authenticate = %q, want a Bearer challenge", ep.method, ep.path, b.name, got)
			}
			if strings.Contains(body, "fulcrum_test_total") || strings.Contains(body, "reloaded") {
				t.Errorf("%s %s with %s: 401 body leaks content: %q", ep.method, ep.path, b.name, body)
			}
		}
		resp, _ := do(t, ts, ep.method, ep.path, "Bearer "+token)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s with the token: status %d, want 200", ep.method, ep.path, resp.StatusCode)
		}
		if resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s %s with the token: WWW-Authenticate set", ep.method, ep.path)
		}
	}
	// Only the one authorised POST reached the controller.
	if n := ctl.reloadCount(); n != 1 {
		t.Fatalf("controller saw %d reloads, want 1 (unauthorised ones must not reach it)", n)
	}
	// Unknown paths and wrong methods are hidden behind the token too.
	for _, r := range []struct{ method, path string }{{"GET", "/nope"}, {"GET", "/admin/reload"}, {"GET", "/healthz/"}} {
		if resp, _ := do(t, ts, r.method, r.path, ""); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s without token: %d, want 401", r.method, r.path, resp.StatusCode)
		}
	}
	if resp, _ := do(t, ts, "GET", "/nope", "Bearer "+token); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope with token: %d, want 404", resp.StatusCode)
	}
}

// TestBearerSchemeCaseInsensitive: the auth scheme is case-insensitive
// (RFC 9110 section 11.1); the token itself is not.
func TestBearerSchemeCaseInsensitive(t *testing.T) {
	t.Parallel()
	_, ts := setup(t, &fakeCtl{}, "tok")
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		if resp, _ := do(t, ts, "GET", "/admin/backends", scheme+" tok"); resp.StatusCode != 200 {
			t.Errorf("scheme %q: %d, want 200", scheme, resp.StatusCode)
		}
	}
}

func TestNoToken(t *testing.T) {
	t.Parallel()
	_, ts := setup(t, &fakeCtl{summary: "ok"}, "")
	for _, ep := range protected {
		if resp, _ := do(t, ts, ep.method, ep.path, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s without a configured token: %d, want 200", ep.method, ep.path, resp.StatusCode)
		}
		// A stray header does not matter when no token is configured.
		if resp, _ := do(t, ts, ep.method, ep.path, "Bearer whatever"); resp.StatusCode != http.StatusOK {
			t.Errorf("%s %s with a stray header: %d, want 200", ep.method, ep.path, resp.StatusCode)
		}
	}
}

func TestSetToken(t *testing.T) {
	t.Parallel()
	s, ts := setup(t, &fakeCtl{}, "old")
	if resp, _ := do(t, ts, "GET", "/admin/backends", "Bearer old"); resp.StatusCode != 200 {
		t.Fatalf("old token: %d", resp.StatusCode)
	}
	s.SetToken("new")
	if resp, _ := do(t, ts, "GET", "/admin/backends", "Bearer old"); resp.StatusCode != 401 {
		t.Fatalf("old token after SetToken: %d, want 401", resp.StatusCode)
	}
	if resp, _ := do(t, ts, "GET", "/admin/backends", "Bearer new"); resp.StatusCode != 200 {
		t.Fatalf("new token: %d, want 200", resp.StatusCode)
	}
	s.SetToken("")
	if resp, _ := do(t, ts, "GET", "/admin/backends", ""); resp.StatusCode != 200 {
		t.Fatalf("after SetToken(\"\"): %d, want 200 (no authentication)", resp.StatusCode)
	}
}

// TestSetTokenConcurrent swaps the token while requests are checked.
func TestSetTokenConcurrent(t *testing.T) {
	t.Parallel()
	s := admin.New(&fakeCtl{}, prometheus.NewRegistry(), "a", quiet)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 200 {
			s.SetToken([]string{"a", "b"}[i%2])
		}
	}()
	go func() {
		defer wg.Done()
		for range 200 {
			req := httptest.NewRequest("GET", "/admin/backends", nil)
			req.Header.Set("Authorization", "Bearer a")
			w := httptest.NewRecorder()
			s.ServeHTTP(w, req)
			if w.Code != 200 && w.Code != 401 {
				t.Errorf("status %d", w.Code)
				return
			}
		}
	}()
	wg.Wait()
}

func TestReload(t *testing.T) {
	t.Parallel()
	ctl := &fakeCtl{summary: "reloaded: 3 backends, strategy round_robin"}
	_, ts := setup(t, ctl, "tok")
	resp, body := do(t, ts, "POST", "/admin/reload", "Bearer tok")
	if resp.StatusCode != 200 || body != ctl.summary+"\n" {
		t.Fatalf("reload: %d %q, want 200 and the summary", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("reload Content-Type = %q", ct)
	}

	ctl.mu.Lock()
	ctl.err = errors.New("config: backends[0].weight: must be >= 1, got 0\nconfig: strategy: unknown strategy \"fastest\"")
	ctl.mu.Unlock()
	resp, body = do(t, ts, "POST", "/admin/reload", "Bearer tok")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("failed reload: status %d, want 400", resp.StatusCode)
	}
	for _, want := range []string{"backends[0].weight: must be >= 1, got 0", "unknown strategy \"fastest\"", "unchanged"} {
		if !strings.Contains(body, want) {
			t.Errorf("failed reload body lacks %q:\n%s", want, body)
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("failed reload Content-Type = %q", ct)
	}

	resp, _ = do(t, ts, "GET", "/admin/reload", "Bearer tok")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /admin/reload: %d, want 405", resp.StatusCode)
	}
	if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "POST") {
		t.Errorf("405 Allow = %q, want POST", allow)
	}
	if n := ctl.reloadCount(); n != 2 {
		t.Fatalf("controller saw %d reloads, want 2 (GET must not reload)", n)
	}
}

func TestBackendsJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ctl := &fakeCtl{backends: []pool.Status{
		{URL: "http://127.0.0.1:8081", Weight: 3, Up: true, Active: 2, Requests: 10, Failures: 1, Healthy: true, EffWeight: 3,
			LastCheck: &pool.Check{OK: true, At: at, Info: "200 OK"}},
		{URL: "http://127.0.0.1:8082", Weight: 1, Up: false, Active: 0, Requests: 5, Failures: 5, Ejected: true, EffWeight: 1},
	}}
	_, ts := setup(t, ctl, "")
	resp, body := do(t, ts, "GET", "/admin/backends", "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("body is not a JSON array of objects: %v\n%s", err, body)
	}
	want := []map[string]any{
		{"url": "http://127.0.0.1:8081", "weight": 3.0, "up": true, "active": 2.0, "requests": 10.0, "failures": 1.0},
		{"url": "http://127.0.0.1:8082", "weight": 1.0, "up": false, "active": 0.0, "requests": 5.0, "failures": 5.0},
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d:\n%s", len(got), len(want), body)
	}
	for i := range want {
		for k, v := range want[i] {
			if got[i][k] != v {
				t.Errorf("entry %d: %s = %#v, want %#v", i, k, got[i][k], v)
			}
		}
	}
	if _, ok := got[1]["last_check"]; ok {
		t.Error("last_check present for a backend never checked; want it omitted")
	}
	if lc, ok := got[0]["last_check"].(map[string]any); !ok || lc["ok"] != true || lc["info"] != "200 OK" {
		t.Errorf("last_check = %#v", got[0]["last_check"])
	}
	if _, ok := got[0]["Since"]; ok {
		t.Error("internal field Since is exposed")
	}
}

func TestBackendsEmpty(t *testing.T) {
	t.Parallel()
	for _, bs := range [][]pool.Status{nil, {}} {
		_, ts := setup(t, &fakeCtl{backends: bs}, "")
		resp, body := do(t, ts, "GET", "/admin/backends", "")
		if resp.StatusCode != 200 || strings.TrimSpace(body) != "[]" {
			t.Errorf("backends %#v: %d %q, want 200 []", bs, resp.StatusCode, body)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	_, ts := setup(t, &fakeCtl{}, "tok")
	resp, body := do(t, ts, "GET", "/metrics", "Bearer tok")
	if resp.StatusCode != 200 || !strings.Contains(body, "fulcrum_test_total 3") {
		t.Fatalf("/metrics: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := do(t, ts, "POST", "/metrics", "Bearer tok"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d, want 405", resp.StatusCode)
	}
}

// tokenCtl is a fakeCtl whose reload changes the admin token.
type tokenCtl struct {
	fakeCtl
	token string
}

func (c *tokenCtl) AdminToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

var _ admin.TokenSource = (*tokenCtl)(nil)

// TestReloadRotatesToken: a successful POST /admin/reload takes the token
// from the controller; a failed one keeps the running token.
func TestReloadRotatesToken(t *testing.T) {
	t.Parallel()
	ctl := &tokenCtl{fakeCtl: fakeCtl{summary: "ok"}, token: "old"}
	ts2 := httptest.NewServer(admin.New(ctl, prometheus.NewRegistry(), "old", quiet))
	t.Cleanup(ts2.Close)

	ctl.mu.Lock()
	ctl.token, ctl.err = "new", errors.New("bad file")
	ctl.mu.Unlock()
	if resp, _ := do(t, ts2, "POST", "/admin/reload", "Bearer old"); resp.StatusCode != 400 {
		t.Fatalf("failed reload: %d", resp.StatusCode)
	}
	if resp, _ := do(t, ts2, "GET", "/admin/backends", "Bearer old"); resp.StatusCode != 200 {
		t.Fatalf("old token after a failed reload: %d, want 200", resp.StatusCode)
	}

	ctl.mu.Lock()
	ctl.err = nil
	ctl.mu.Unlock()
	if resp, body := do(t, ts2, "POST", "/admin/reload", "Bearer old"); resp.StatusCode != 200 {
		t.Fatalf("reload: %d %q", resp.StatusCode, body)
	}
	if resp, _ := do(t, ts2, "GET", "/admin/backends", "Bearer old"); resp.StatusCode != 401 {
		t.Fatalf("old token after rotation: %d, want 401", resp.StatusCode)
	}
	if resp, _ := do(t, ts2, "GET", "/admin/backends", "Bearer new"); resp.StatusCode != 200 {
		t.Fatalf("new token after rotation: %d, want 200", resp.StatusCode)
	}
}
