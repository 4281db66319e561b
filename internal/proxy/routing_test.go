package proxy_test

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/proxy"
	"fulcrum/internal/route"
)

// routed is a server whose routes lead to the pools of the given test
// proxies (one pool each, named by the map key); each pool's backend
// answers its pool name.
type routed struct {
	addr  string
	srv   *proxy.Server
	bends map[string]*rawBackend
	tps   map[string]*testProxy
}

func startRouted(t *testing.T, pools []string, extra map[string]map[string]any, specs []route.Spec, set *proxy.Settings) *routed {
	t.Helper()
	r := &routed{bends: map[string]*rawBackend{}, tps: map[string]*testProxy{}}
	ups := map[string]*proxy.Upstream{}
	for _, name := range pools {
		body := name
		b := newRawBackend(t, func([]byte) ([]byte, bool) { return okResponse(body), false })
		tp := startProxy(t, []string{b.Addr()}, extra[name])
		r.bends[name], r.tps[name] = b, tp
		ups[name] = proxy.NewUpstream(name, tp.Pool)
	}
	rt, err := proxy.NewRouting("public", specs, ups, nil)
	if err != nil {
		t.Fatal(err)
	}
	if set == nil {
		set = &proxy.Settings{Limits: config.Limits{ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}}
	}
	r.srv = proxy.New(set, rt, proxy.Options{Logger: slog.New(slog.DiscardHandler), Metrics: r.tps[pools[0]].Metrics})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r.srv.Shutdown(ctx)
		<-done
	})
	r.addr = ln.Addr().String()
	return r
}

func TestRoutingActions(t *testing.T) {
	t.Parallel()
	specs := []route.Spec{
		{Name: "api-v1", Match: route.Match{Host: []string{"api.example.com"}, PathPrefix: "/v1/"}, StripPrefix: "/v1", Pool: "api",
			RequestHeaders:  route.HeaderOps{Set: map[string]string{"X-Route": "v1"}, Remove: []string{"X-Secret"}},
			ResponseHeaders: route.HeaderOps{Add: map[string]string{"X-Served-By": "fulcrum"}}},
		{Match: route.Match{Host: []string{"*.example.com"}}, Pool: "api", HostRewrite: "internal.api:8080", AddPrefix: "/w"},
		{Match: route.Match{PathPrefix: "/old/"}, Redirect: &route.Redirect{Path: "/new/"}},
		{Match: route.Match{Path: "/ping"}, Respond: &route.Respond{Body: "pong\n"}},
		{Match: route.Match{Headers: map[string]string{"X-Canary": "1"}}, Pool: "canary"},
		{Match: route.Match{Method: []string{"GET"}, ClientIP: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, Pool: "web"},
	}
	r := startRouted(t, []string{"web", "api", "canary"}, nil, specs, nil)
	c := dialProxy(t, r.addr)

	resp, body := c.do("GET", "GET /v1/users?id=7 HTTP/1.1\r\nHost: API.example.com:8080\r\nX-Secret: s\r\n\r\n")
	if string(body) != "api" || resp.Header.Get("X-Served-By") != "fulcrum" {
		t.Fatalf("api-v1: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	heads := r.bends["api"].Heads()
	h := string(heads[len(heads)-1])
	if !strings.HasPrefix(h, "GET /users?id=7 HTTP/1.1\r\n") || headerValue(heads[len(heads)-1], "X-Route") != "v1" ||
		headerValue(heads[len(heads)-1], "X-Secret") != "" || headerValue(heads[len(heads)-1], "Host") != "API.example.com:8080" {
		t.Fatalf("api-v1 forwarded head:\n%s", h)
	}

	_, body = c.do("GET", "GET /a HTTP/1.1\r\nHost: www.example.com\r\n\r\n")
	heads = r.bends["api"].Heads()
	last := heads[len(heads)-1]
	if string(body) != "api" || !strings.HasPrefix(string(last), "GET /w/a HTTP/1.1\r\n") ||
		headerValue(last, "Host") != "internal.api:8080" || headerValue(last, "X-Forwarded-Host") != "www.example.com" {
		t.Fatalf("wildcard route: %q, forwarded:\n%s", body, last)
	}

	resp, _ = c.do("GET", "GET /old/page?q=1 HTTP/1.1\r\nHost: site.test\r\n\r\n")
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "http://site.test/new/?q=1" {
		t.Fatalf("redirect: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = c.do("GET", "GET /ping HTTP/1.1\r\nHost: site.test\r\n\r\n")
	if resp.StatusCode != 200 || string(body) != "pong\n" || resp.Header.Get("Content-Type") != route.DefaultContentType {
		t.Fatalf("respond: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	// A path that normalises onto /ping is answered like /ping.
	if resp, body = c.do("GET", "GET /x/../ping HTTP/1.1\r\nHost: site.test\r\n\r\n"); string(body) != "pong\n" {
		t.Fatalf("normalised respond: %d %q", resp.StatusCode, body)
	}
	if _, body = c.do("GET", "GET / HTTP/1.1\r\nHost: site.test\r\nX-Canary: 1\r\n\r\n"); string(body) != "canary" {
		t.Fatalf("header route: %q", body)
	}
	if _, body = c.get("/"); string(body) != "web" {
		t.Fatalf("method+client_ip route: %q", body)
	}
	// POST matches no route: 404, counted, the connection stays.
	resp, body = c.do("POST", "POST / HTTP/1.1\r\nHost: site.test\r\nContent-Length: 0\r\n\r\n")
	if resp.StatusCode != 404 || !strings.Contains(string(body), "no route") {
		t.Fatalf("no route: %d %q", resp.StatusCode, body)
	}
	if n := r.tps["web"].counter(t, "fulcrum_rejected_requests_total", map[string]string{"reason": "no_route"}); n != 1 {
		t.Fatalf("no_route counted %v times, want 1", n)
	}
	if _, body = c.get("/"); string(body) != "web" {
		t.Fatalf("after the 404 on the same connection: %q", body)
	}
	// A body on a request fulcrum answers itself closes the connection
	// rather than leave it unread.
	resp, _ = c.do("POST", "POST /ping HTTP/1.1\r\nHost: site.test\r\nContent-Length: 3\r\n\r\nabc")
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("respond with a request body: %d close=%v", resp.StatusCode, resp.Close)
	}
}

func TestRoutingSplit(t *testing.T) {
	t.Parallel()
	specs := []route.Spec{{Split: []route.SplitTarget{{Pool: "stable", Weight: 3}, {Pool: "canary", Weight: 1}}}}
	r := startRouted(t, []string{"stable", "canary"}, nil, specs, nil)
	c := dialProxy(t, r.addr)
	got := map[string]int{}
	for range 100 {
		resp, body := c.get("/")
		if resp.Header.Get("Set-Cookie") != "" {
			t.Fatalf("split without sticky set a cookie: %q", resp.Header.Get("Set-Cookie"))
		}
		got[string(body)]++
	}
	if got["stable"] != 75 || got["canary"] != 25 {
		t.Fatalf("3:1 split over 100 requests: %v, want exactly 75/25", got)
	}
}

func TestRoutingSplitSticky(t *testing.T) {
	t.Parallel()
	sticky := map[string]any{"sticky": map[string]any{"type": "cookie"}}
	specs := []route.Spec{{Split: []route.SplitTarget{{Pool: "stable", Weight: 1}, {Pool: "canary", Weight: 1}}}}
	r := startRouted(t, []string{"stable", "canary"}, map[string]map[string]any{"stable": sticky, "canary": sticky}, specs, nil)
	c := dialProxy(t, r.addr)
	resp, first := c.get("/")
	var split string
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, proxy.SplitCookie+"=") {
			split = strings.SplitN(sc, ";", 2)[0]
		}
	}
	if split == "" || !strings.Contains(resp.Header.Get("Set-Cookie")+strings.Join(resp.Header.Values("Set-Cookie"), ""), "Path=/") {
		t.Fatalf("no %s cookie: %v", proxy.SplitCookie, resp.Header.Values("Set-Cookie"))
	}
	for range 6 {
		_, body := c.do("GET", "GET / HTTP/1.1\r\nHost: t\r\nCookie: "+split+"\r\n\r\n")
		if string(body) != string(first) {
			t.Fatalf("with %s the client moved from %q to %q", split, first, body)
		}
	}
	// A forged value is ignored: the split chooses again.
	seen := map[string]bool{}
	for range 4 {
		_, body := c.do("GET", "GET / HTTP/1.1\r\nHost: t\r\nCookie: "+proxy.SplitCookie+"=0123456789abcdef\r\n\r\n")
		seen[string(body)] = true
	}
	if len(seen) != 2 {
		t.Fatalf("a forged %s pinned the client: %v", proxy.SplitCookie, seen)
	}
}
