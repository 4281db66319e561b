package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// routingConfig is a two-listener, three-pool configuration in the full
// form. extra is appended to the public listener's routes.
func routingConfig(public, internal string, web, api, canary *Backend, moreListeners string) string {
	return fmt.Sprintf(`{
 "health_check_interval": "1h", "retries": 0,
 "pools": {
  "web": {"backends": [%q]},
  "api": {"strategy": "least_connections", "backends": [%q]},
  "canary": {"backends": [%q], "sticky": {"type": "cookie"}}
 },
 "listeners": [
  {"name": "public", "listen_addr": %q, "routes": [
    {"name": "api-v1", "match": {"host": ["api.example.com"], "path_prefix": "/v1/"}, "strip_prefix": "/v1", "pool": "api",
     "request_headers": {"set": {"X-Route": "api-v1"}, "remove": ["X-Internal"]},
     "response_headers": {"add": {"X-Served-By": "fulcrum"}}},
    {"match": {"host": "api.example.com", "headers": {"X-Canary": "1"}}, "pool": "canary"},
    {"match": {"cookies": {"beta": "yes"}}, "pool": "canary"},
    {"match": {"query": {"debug": "*"}}, "pool": "api"},
    {"match": {"method": ["DELETE"]}, "respond": {"status": 403, "body": "no deletes\n"}},
    {"match": {"host": ["split.example.com"]}, "split": [{"pool": "web", "weight": 3}, {"pool": "api", "weight": 1}]},
    {"match": {"path_prefix": "/old/"}, "redirect": {"path": "/new/", "status": 308}},
    {"match": {"path": "/ping"}, "respond": {"body": "pong\n"}},
    {"match": {"client_ip": ["127.0.0.0/8"]}, "pool": "web"}
  ]},
  {"name": "internal", "listen_addr": %q, "routes": [{"pool": "api"}]}%s
 ]
}`, web.URL, api.URL, canary.URL, public, internal, moreListeners)
}

func do(t *testing.T, method, url, host string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	cl := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRoutingEndToEnd(t *testing.T) {
	t.Parallel()
	var seenPath, seenRoute, seenInternal string
	web := StartBackend(t, "web", 0, nil)
	api := StartBackend(t, "api", 0, func(w http.ResponseWriter, r *http.Request) {
		seenPath, seenRoute, seenInternal = r.URL.RequestURI(), r.Header.Get("X-Route"), r.Header.Get("X-Internal")
		io.WriteString(w, "api")
	})
	canary := StartBackend(t, "canary", 0, nil)
	public := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	internal := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	f := StartFulcrum(t, routingConfig(public, internal, web, api, canary, ""))
	f.Addr = public
	f.waitListening(t)
	pub := "http://" + public

	resp, body := do(t, "GET", pub+"/v1/users?id=7", "api.example.com", map[string]string{"X-Internal": "secret"})
	if body != "api" || seenPath != "/users?id=7" || seenRoute != "api-v1" || seenInternal != "" || resp.Header.Get("X-Served-By") != "fulcrum" {
		t.Fatalf("api-v1: %q, backend saw %q route=%q internal=%q, X-Served-By %q", body, seenPath, seenRoute, seenInternal, resp.Header.Get("X-Served-By"))
	}
	cases := []struct {
		name, method, path, host string
		hdr                      map[string]string
		status                   int
		body                     string
	}{
		{"header", "GET", "/", "api.example.com:80", map[string]string{"X-Canary": "1"}, 200, "canary"},
		{"cookie", "GET", "/", "x.test", map[string]string{"Cookie": "a=b; beta=yes"}, 200, "canary"},
		{"query", "GET", "/?debug", "x.test", nil, 200, "api"},
		{"method", "DELETE", "/thing", "x.test", nil, 403, "no deletes\n"},
		{"respond", "GET", "/ping", "x.test", nil, 200, "pong\n"},
		{"dot segments", "GET", "/old/../ping", "x.test", nil, 200, "pong\n"},
		{"client ip", "GET", "/anything", "x.test", nil, 200, "web"},
	}
	for _, c := range cases {
		resp, body := do(t, c.method, pub+c.path, c.host, c.hdr)
		if resp.StatusCode != c.status || body != c.body {
			t.Errorf("%s: %d %q, want %d %q", c.name, resp.StatusCode, body, c.status, c.body)
		}
	}
	resp, _ = do(t, "GET", pub+"/old/a?x=1", "site.test", nil)
	if resp.StatusCode != 308 || resp.Header.Get("Location") != "http://site.test/new/?x=1" {
		t.Errorf("redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	got := map[string]int{}
	for range 8 {
		_, body := do(t, "GET", pub+"/", "split.example.com", nil)
		got[body]++
	}
	if got["web"] != 6 || got["api"] != 2 {
		t.Errorf("3:1 split over 8 requests: %v, want 6/2", got)
	}
	if _, body := do(t, "GET", "http://"+internal+"/", "", nil); body != "api" {
		t.Errorf("internal listener: %q", body)
	}

	// /admin/routes lists both listeners' routes in order; metrics carry
	// the route label.
	_, routes := do(t, "GET", f.AdminURL("/admin/routes"), "", nil)
	var ls []struct {
		Name   string
		Routes []struct {
			Label, Action, Pool string
		}
	}
	if err := json.Unmarshal([]byte(routes), &ls); err != nil || len(ls) != 2 || ls[0].Routes[0].Label != "api-v1" ||
		ls[0].Routes[1].Label != "public/1" || ls[0].Routes[5].Action != "split" || ls[1].Routes[0].Pool != "api" {
		t.Fatalf("/admin/routes: %v\n%s", err, routes)
	}

	_, metrics := do(t, "GET", f.AdminURL("/metrics"), "", nil)
	for _, want := range []string{
		`loadbalancer_request_count_total{backend="` + api.Addr() + `",method="GET",pool="api",route="api-v1",status="200"} 1`,
		`loadbalancer_request_count_total{backend="none",method="GET",pool="none",route="public/7",status="200"}`,
		`loadbalancer_backend_up{backend="` + canary.Addr() + `",pool="canary"} 1`,
		`fulcrum_rejected_requests_total{reason="no_route"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Reload: add a listener, move /ping to a pool, remove pool canary
	// (its routes go with it).
	third := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	next := strings.Replace(routingConfig(public, internal, web, api, canary, fmt.Sprintf(`,
  {"name": "third", "listen_addr": %q, "routes": [{"pool": "web"}]}`, third)), `{"match": {"path": "/ping"}, "respond": {"body": "pong\n"}},`, `{"match": {"path": "/ping"}, "pool": "api"},`, 1)
	next = strings.NewReplacer(
		`"canary": {"backends": [`+fmt.Sprintf("%q", canary.URL)+`], "sticky": {"type": "cookie"}}`, `"spare": {"backends": [`+fmt.Sprintf("%q", canary.URL)+`]}`,
		`"pool": "canary"}`, `"pool": "spare"}`).Replace(next)
	f.WriteConfig(next)
	code, _, out := adminDo(t, "POST", f.AdminURL("/admin/reload"), "")
	if code != 200 {
		t.Fatalf("reload: %d\n%s", code, out)
	}
	if _, body := do(t, "GET", "http://"+third+"/", "", nil); body != "web" {
		t.Errorf("new listener: %q", body)
	}
	if _, body := do(t, "GET", pub+"/ping", "x.test", nil); body != "api" {
		t.Errorf("moved /ping: %q, want api", body)
	}
	// The removed pool's series go once it has drained.
	WaitFor(t, 5*time.Second, `the removed pool's series to leave /metrics`, func() bool {
		_, m := do(t, "GET", f.AdminURL("/metrics"), "", nil)
		return !strings.Contains(m, `pool="canary"`) && strings.Contains(m, `pool="spare"`)
	})

	// A reload naming a busy address is refused and changes nothing.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	f.WriteConfig(strings.Replace(next, third, busy.Addr().String(), 1))
	code, _, out = adminDo(t, "POST", f.AdminURL("/admin/reload"), "")
	if code != 400 || !strings.Contains(out, "listeners[2] (third)") || !strings.Contains(out, "address already in use") {
		t.Fatalf("reload onto a busy port: %d\n%s", code, out)
	}
	if _, body := do(t, "GET", "http://"+third+"/", "", nil); body != "web" {
		t.Errorf("after the refused reload: %q", body)
	}
}
