package proxy_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fulcrum/internal/h1"
	"fulcrum/internal/proxy"
	"fulcrum/internal/testutil"
)

// checkErrorBody: short plain text, no internal details.
func checkErrorBody(t *testing.T, resp *http.Response, body []byte, backends ...string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	if len(body) == 0 || len(body) > 64 {
		t.Errorf("error body %q: want a short text", body)
	}
	for _, b := range backends {
		host, port, _ := net.SplitHostPort(b)
		if strings.Contains(string(body), host) || strings.Contains(string(body), port) {
			t.Errorf("error body %q reveals backend %s", body, b)
		}
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			for _, b := range backends {
				if strings.Contains(v, b) {
					t.Errorf("header %s: %q reveals backend %s", k, v, b)
				}
			}
		}
	}
}

func TestNoUsableBackendIs503(t *testing.T) {
	dead := testutil.ClosedAddr(t)
	tp := startProxy(t, []string{dead}, map[string]any{
		"health_check": map[string]any{"type": "tcp", "interval": "1h", "timeout": "1s",
			"healthy_threshold": 1, "unhealthy_threshold": 1},
	})
	// The first active check runs within a second of Start and marks it down.
	waitFor(t, 5*time.Second, "backend marked down", func() bool { return tp.Pool.Snapshot().Usable == 0 })
	c := dialProxy(t, tp.Addr)
	for i := 0; i < 2; i++ { // 503 without a body to drain keeps the connection
		resp, body := c.get("/")
		if resp.StatusCode != 503 {
			t.Fatalf("status %d, want 503", resp.StatusCode)
		}
		checkErrorBody(t, resp, body, dead)
	}
	// A buffered body (within retry_buffer) has been read: the connection
	// stays. A streamed body was not read: the connection closes after the
	// 503, so the body's bytes are never taken for a next request.
	resp, _ := c.do("POST", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
	if resp.StatusCode != 503 || resp.Close {
		t.Fatalf("buffered body: status %d close=%v, want 503 and keep-alive", resp.StatusCode, resp.Close)
	}
	resp, _ = c.do("POST", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	if resp.StatusCode != 503 || !resp.Close {
		t.Fatalf("streamed body: status %d close=%v, want 503 and close", resp.StatusCode, resp.Close)
	}
	if !c.closed(2 * time.Second) {
		t.Fatal("connection kept after a 503 that left a body unread")
	}
}

func TestUnreachableBackendIs502(t *testing.T) {
	dead := testutil.ClosedAddr(t)
	tp := startProxy(t, []string{dead}, nil)
	c := dialProxy(t, tp.Addr)
	resp, body := c.get("/")
	if resp.StatusCode != 502 {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	checkErrorBody(t, resp, body, dead)
}

// slowBackend answers only when released (or when the proxy gives up and
// closes the connection); count says how many requests it received.
func slowBackend(t *testing.T, count *atomic.Int64) string {
	release := make(chan struct{})
	be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		count.Add(1)
		io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release) })
	return hostPort(be.URL)
}

func TestSlowBackendIs504(t *testing.T) {
	var n atomic.Int64
	slow := slowBackend(t, &n)
	tp := startProxy(t, []string{slow}, map[string]any{"response_header_timeout": "300ms", "retries": 0})
	c := dialProxy(t, tp.Addr)
	start := time.Now()
	resp, body := c.get("/")
	if resp.StatusCode != 504 {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
		t.Errorf("504 after %v, want about 300ms", d)
	}
	checkErrorBody(t, resp, body, slow)
}

func TestRetries(t *testing.T) {
	t.Run("GET to a dead and a live backend always succeeds", func(t *testing.T) {
		var n atomic.Int64
		live := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			io.WriteString(w, "live")
		}))
		tp := startProxy(t, []string{testutil.ClosedAddr(t), hostPort(live.URL)}, nil)
		// Three requests: the pool's retry budget allows at least three
		// retries in any 10 s window (more only at 20% of the traffic).
		for i := 0; i < 3; i++ {
			c := dialProxy(t, tp.Addr)
			resp, body := c.get("/")
			if resp.StatusCode != 200 || string(body) != "live" {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
			}
		}
		if n.Load() != 3 {
			t.Errorf("live backend got %d requests, want 3", n.Load())
		}
		if r := tp.counter(t, "fulcrum_retries_total", nil); r < 1 {
			t.Errorf("fulcrum_retries_total = %v, want >= 1", r)
		}
	})

	t.Run("GET retried after the backend dropped the connection", func(t *testing.T) {
		// The dropper reads the whole request, then closes without a
		// response: the request reached a backend, but GET is idempotent.
		dropper := newRawBackend(t, func([]byte) ([]byte, bool) { return nil, true })
		live := newRawBackend(t, func([]byte) ([]byte, bool) { return okResponse("live"), false })
		tp := startProxy(t, []string{dropper.Addr(), live.Addr()}, nil)
		for i := 0; i < 3; i++ {
			c := dialProxy(t, tp.Addr)
			resp, body := c.get("/r/" + strconv.Itoa(i))
			if resp.StatusCode != 200 || string(body) != "live" {
				t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
			}
		}
		if len(dropper.Heads()) == 0 {
			t.Fatal("the dropping backend was never tried")
		}
		// The retried request is the same request, byte for byte.
		for _, h := range live.Heads() {
			if !strings.HasPrefix(string(h), "GET /r/") || headerValue(h, "Host") != "test.local" {
				t.Errorf("retried request reached the live backend as:\n%q", h)
			}
		}
	})

	t.Run("POST that timed out is not retried", func(t *testing.T) {
		var a, b atomic.Int64
		tp := startProxy(t, []string{slowBackend(t, &a), slowBackend(t, &b)},
			map[string]any{"response_header_timeout": "300ms"})
		c := dialProxy(t, tp.Addr)
		resp, _ := c.do("POST", "POST /pay HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
		if resp.StatusCode != 504 {
			t.Fatalf("status %d, want 504", resp.StatusCode)
		}
		if got := a.Load() + b.Load(); got != 1 {
			t.Errorf("backends received the POST %d times, want exactly once", got)
		}
	})

	t.Run("GET that timed out is retried", func(t *testing.T) {
		var a, b atomic.Int64
		tp := startProxy(t, []string{slowBackend(t, &a), slowBackend(t, &b)},
			map[string]any{"response_header_timeout": "200ms", "retries": 1})
		c := dialProxy(t, tp.Addr)
		resp, _ := c.get("/")
		if resp.StatusCode != 504 {
			t.Fatalf("status %d, want 504", resp.StatusCode)
		}
		if a.Load() != 1 || b.Load() != 1 {
			t.Errorf("backends received %d and %d requests, want one each", a.Load(), b.Load())
		}
	})

	t.Run("POST to a refused backend is retried", func(t *testing.T) {
		var n atomic.Int64
		live := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			echoHandler(w, r)
		}))
		dead := testutil.ClosedAddr(t)
		// A short body is buffered for replay; a long one (over
		// retry_buffer) is streamed, and still retried since the connect
		// failed before any of it was sent.
		for i, body := range []string{"short", strings.Repeat("streamed-body ", 100)} {
			tp := startProxy(t, []string{dead, hostPort(live.URL)}, map[string]any{"retry_buffer": 16})
			for j := 0; j < 2; j++ { // round robin: one of the two starts at the dead backend
				c := dialProxy(t, tp.Addr)
				resp, _ := c.do("POST", fmt.Sprintf("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
				if resp.StatusCode != 200 || resp.Header.Get("X-Len") != strconv.Itoa(len(body)) {
					t.Fatalf("body %d attempt %d: %d, backend saw %s bytes", i, j, resp.StatusCode, resp.Header.Get("X-Len"))
				}
			}
			if r := tp.counter(t, "fulcrum_retries_total", nil); r < 1 {
				t.Errorf("body %d: fulcrum_retries_total = %v, want >= 1", i, r)
			}
		}
		if n.Load() != 4 {
			t.Errorf("live backend got %d POSTs, want 4", n.Load())
		}
	})
}

func TestExpectContinue(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(echoHandler))
	tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"retry_buffer": 1024})
	for _, size := range []int{11, 100000} { // buffered for retries, and streamed
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			body := strings.Repeat("b", size)
			c := dialProxy(t, tp.Addr)
			c.write(fmt.Sprintf("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", size))
			// Like curl: wait for the interim response before sending the body.
			c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if head := c.readRawHead(); head != "HTTP/1.1 100 Continue\r\n\r\n" {
				t.Fatalf("interim response %q", head)
			}
			c.write(body)
			resp, _ := c.read("POST")
			if resp.StatusCode != 200 || resp.Header.Get("X-Len") != strconv.Itoa(size) {
				t.Fatalf("status %d, backend saw %s bytes", resp.StatusCode, resp.Header.Get("X-Len"))
			}
			// The connection stays usable.
			if resp, _ := c.get("/after"); resp.StatusCode != 200 {
				t.Fatalf("next request: %d", resp.StatusCode)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	xff := func(vs ...string) []h1.Header {
		hs := []h1.Header{{Name: []byte("Host"), Value: []byte("h")}}
		for _, v := range vs {
			hs = append(hs, h1.Header{Name: []byte("X-Forwarded-For"), Value: []byte(v)})
		}
		return hs
	}
	lb := pfx("127.0.0.0/8")
	cases := []struct {
		name    string
		peer    string
		hs      []h1.Header
		trusted []netip.Prefix
		want    string
	}{
		{"untrusted peer ignores header", "198.51.100.1", xff("1.2.3.4"), lb, "198.51.100.1"},
		{"no trusted proxies", "127.0.0.1", xff("1.2.3.4"), nil, "127.0.0.1"},
		{"trusted peer without header", "127.0.0.1", xff(), lb, "127.0.0.1"},
		{"one hop", "127.0.0.1", xff("1.2.3.4"), lb, "1.2.3.4"},
		{"rightmost untrusted wins over a spoofed left entry", "127.0.0.1", xff("6.6.6.6, 1.2.3.4"), lb, "1.2.3.4"},
		{"trusted entries are skipped", "127.0.0.1", xff("1.2.3.4, 10.0.0.2"), pfx("127.0.0.0/8", "10.0.0.0/8"), "1.2.3.4"},
		{"fields walked last to first", "127.0.0.1", xff("1.2.3.4", "10.0.0.2, 5.6.7.8"), lb, "5.6.7.8"},
		{"fields walked into earlier fields", "127.0.0.1", xff("1.2.3.4", "10.0.0.2"), pfx("127.0.0.0/8", "10.0.0.0/8"), "1.2.3.4"},
		{"all trusted: leftmost", "127.0.0.1", xff("10.0.0.3, 10.0.0.2"), pfx("127.0.0.0/8", "10.0.0.0/8"), "10.0.0.3"},
		{"malformed entry stops the walk", "127.0.0.1", xff("1.2.3.4, garbage, 10.0.0.2"), pfx("127.0.0.0/8", "10.0.0.0/8"), "10.0.0.2"},
		{"malformed rightmost entry: peer", "127.0.0.1", xff("1.2.3.4, unknown"), lb, "127.0.0.1"},
		{"with port", "127.0.0.1", xff("1.2.3.4:5678"), lb, "1.2.3.4"},
		{"IPv6 with port", "127.0.0.1", xff("[2001:db8::1]:443"), lb, "2001:db8::1"},
		{"IPv6", "::1", xff("2001:db8::7"), pfx("::1/128"), "2001:db8::7"},
		{"v4-mapped is unmapped", "127.0.0.1", xff("::ffff:1.2.3.4"), lb, "1.2.3.4"},
		{"empty elements skipped", "127.0.0.1", xff(" , ,1.2.3.4, ,"), lb, "1.2.3.4"},
		{"case-insensitive field name", "127.0.0.1", []h1.Header{{Name: []byte("x-forwarded-for"), Value: []byte("1.2.3.4")}}, lb, "1.2.3.4"},
		{"other fields ignored", "127.0.0.1", []h1.Header{{Name: []byte("X-Real-IP"), Value: []byte("1.2.3.4")}}, lb, "127.0.0.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := proxy.ClientIP(netip.MustParseAddr(tc.peer), tc.hs, tc.trusted)
			if got.String() != tc.want {
				t.Errorf("ClientIP = %v, want %s", got, tc.want)
			}
		})
	}
}

func TestMalformedBackendResponseIs502(t *testing.T) {
	for _, tc := range []struct{ name, resp string }{
		{"empty line", "\r\n\r\n"},
		{"not HTTP", "hello world\r\n\r\n"},
		{"differing lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"},
		{"NUL in a field", "HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
		{"closed before a response", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := newRawBackend(t, func([]byte) ([]byte, bool) { return []byte(tc.resp), true })
			tp := startProxy(t, []string{be.Addr()}, map[string]any{"retries": 0})
			c := dialProxy(t, tp.Addr)
			resp, body := c.get("/")
			if resp.StatusCode != 502 {
				t.Fatalf("status %d, want 502", resp.StatusCode)
			}
			checkErrorBody(t, resp, body, be.Addr())
		})
	}
}
