package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fulcrum/internal/config"
	"fulcrum/internal/metrics"
	"fulcrum/internal/pool"
	"fulcrum/internal/proxy"
	"fulcrum/internal/testutil"
	"fulcrum/internal/tracing"
)

// TestMain fails the package when a goroutine running fulcrum code (the
// server, its connections, pools, health checkers, or the tests' own
// backends) outlives the tests (STYLE.md P14).
func TestMain(m *testing.M) { testutil.VerifyNoFulcrumLeaks(m) }

// testProxy is a fulcrum server wired as internal/engine wires it, listening
// on 127.0.0.1, in front of the given backends.
type testProxy struct {
	Addr    string
	Srv     *proxy.Server
	Pool    *pool.Pool
	Reg     *prometheus.Registry
	Metrics *metrics.Metrics
	Cfg     *config.Config
}

// proxySetup describes a test proxy. Extra is merged over the base JSON
// configuration (top-level keys replace the base's).
type proxySetup struct {
	Backends []string // host:port
	Extra    map[string]any
	Logger   *slog.Logger
	// AccessLog receives access log lines; nil discards them.
	AccessLog io.Writer
	Tracer    *tracing.Tracer // nil = tracing off
}

// startProxy builds the configuration through config.Parse (so defaults are
// the real ones), starts pool and server, and stops both at cleanup.
func startProxy(tb testing.TB, backends []string, extra map[string]any) *testProxy {
	tb.Helper()
	return startProxyWith(tb, proxySetup{Backends: backends, Extra: extra})
}

func startProxyWith(tb testing.TB, s proxySetup) *testProxy {
	tb.Helper()
	urls := make([]string, len(s.Backends))
	for i, b := range s.Backends {
		urls[i] = "http://" + b
	}
	doc := map[string]any{
		"listen_addr": "127.0.0.1:0",
		"admin_addr":  "",
		"backends":    urls,
		"health_check": map[string]any{
			"type": "tcp", "interval": "1h", "timeout": "1s",
			"healthy_threshold": 1, "unhealthy_threshold": 3,
		},
		"passive":                 map[string]any{"max_fails": 0},
		"panic_threshold":         0,
		"retries":                 2,
		"retry_buffer":            65536,
		"connect_timeout":         "1s",
		"response_header_timeout": "2s",
		"read_header_timeout":     "2s",
		"idle_timeout":            "30s",
		"max_conns":               0,
	}
	for k, v := range s.Extra {
		doc[k] = v
	}
	js, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Parse(js, "json", nil)
	if err != nil {
		tb.Fatalf("config: %v\n%s", err, js)
	}
	sc := &cfg.Listeners[0]
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, nil)
	p := pool.New(&cfg.Pools[0], cfg.Pools[0].IdleTimeout, nil, pool.Options{Metrics: m, Logger: logger})
	ctx, cancel := context.WithCancel(context.Background())
	p.Start(ctx)
	alog := s.AccessLog
	if alog == nil {
		alog = io.Discard
	}
	set := proxy.SettingsOf(cfg, sc)
	set.Tracer = s.Tracer
	srv := proxy.New(set, proxy.SinglePool("default", proxy.NewUpstream("default", p), m),
		proxy.Options{Metrics: m, Logger: logger, AccessLog: alog})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			tb.Errorf("shutdown: %v", err)
		}
		ln.Close()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			tb.Errorf("Serve did not return after Shutdown")
		}
		p.Stop()
		cancel()
	})
	return &testProxy{Addr: ln.Addr().String(), Srv: srv, Pool: p, Reg: reg, Metrics: m, Cfg: cfg}
}

// counter returns the value of a counter family (summed over the series
// whose labels contain all of match).
func (tp *testProxy) counter(tb testing.TB, name string, match map[string]string) float64 {
	tb.Helper()
	mfs, err := tp.Reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, v := range match {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// hostPort strips the scheme of an httptest URL.
func hostPort(url string) string { return strings.TrimPrefix(url, "http://") }

// client is a raw keep-alive connection to the proxy.
type client struct {
	tb testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialProxy(tb testing.TB, addr string) *client {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	return newClient(tb, c)
}

// dialFrom connects from a specific loopback source address (127.0.0.2, ...).
func dialFrom(tb testing.TB, addr, local string) *client {
	tb.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return newClient(tb, c)
}

func newClient(tb testing.TB, c net.Conn) *client {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	tb.Cleanup(func() { c.Close() })
	return &client{tb: tb, c: c, br: bufio.NewReader(c)}
}

func (c *client) write(s string) {
	c.tb.Helper()
	if _, err := io.WriteString(c.c, s); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

// read reads one response to a request with the given method, body included.
func (c *client) read(method string) (*http.Response, []byte) {
	c.tb.Helper()
	resp, body, err := c.tryRead(method)
	if err != nil {
		c.tb.Fatalf("read response: %v", err)
	}
	return resp, body
}

func (c *client) tryRead(method string) (*http.Response, []byte, error) {
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body, err
}

// do writes raw and reads the response.
func (c *client) do(method, raw string) (*http.Response, []byte) {
	c.tb.Helper()
	c.write(raw)
	return c.read(method)
}

// get sends a keep-alive GET for path.
func (c *client) get(path string) (*http.Response, []byte) {
	c.tb.Helper()
	return c.do("GET", "GET "+path+" HTTP/1.1\r\nHost: test.local\r\n\r\n")
}

// closed reports whether the server closed the connection: reading returns
// EOF (or a reset) before the deadline, with no further bytes.
func (c *client) closed(within time.Duration) bool {
	c.c.SetReadDeadline(time.Now().Add(within))
	n, err := io.Copy(io.Discard, c.br)
	return n == 0 && err == nil || (err != nil && !isTimeout(err))
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// rawBackend is an HTTP/1.1 origin on raw TCP: it records each request head
// byte for byte and answers with whatever respond returns. Requests must
// carry no body unless they have a Content-Length (which is read).
type rawBackend struct {
	ln      net.Listener
	respond func(head []byte) (resp []byte, closeAfter bool)
	wg      sync.WaitGroup

	mu    sync.Mutex
	heads [][]byte
	conns map[net.Conn]struct{}
	// accepted counts connections.
	accepted atomic.Int64
}

func newRawBackend(tb testing.TB, respond func(head []byte) ([]byte, bool)) *rawBackend {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	b := &rawBackend{ln: ln, respond: respond, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.accept()
	tb.Cleanup(b.close)
	return b
}

func (b *rawBackend) Addr() string { return b.ln.Addr().String() }

func (b *rawBackend) Heads() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]byte(nil), b.heads...)
}

func (b *rawBackend) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.accepted.Add(1)
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go b.serve(c)
	}
}

func (b *rawBackend) serve(c net.Conn) {
	defer b.wg.Done()
	defer func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		c.Close()
	}()
	br := bufio.NewReader(c)
	for {
		head, err := readHead(br)
		if err != nil {
			return
		}
		if string(head) == "\r\n" {
			// Not a request: record it and answer like a strict origin.
			b.mu.Lock()
			b.heads = append(b.heads, head)
			b.mu.Unlock()
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			return
		}
		if cl := headerValue(head, "Content-Length"); cl != "" {
			n, _ := strconv.Atoi(cl)
			if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
				return
			}
		}
		b.mu.Lock()
		b.heads = append(b.heads, head)
		b.mu.Unlock()
		resp, closeAfter := b.respond(head)
		if len(resp) > 0 {
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
		if closeAfter {
			return
		}
	}
}

func (b *rawBackend) close() {
	b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// readHead reads through the blank line ending a head.
func readHead(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		head = append(head, line...)
		if string(line) == "\r\n" || string(line) == "\n" {
			return head, nil
		}
		if len(head) > 1<<20 {
			return nil, fmt.Errorf("head too large")
		}
	}
}

// headerValue returns the first value of the named field in a raw head.
func headerValue(head []byte, name string) string {
	for _, l := range strings.Split(string(head), "\r\n")[1:] {
		k, v, ok := strings.Cut(l, ":")
		if ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// headerNames lists the field names of a raw head, in order.
func headerNames(head []byte) []string {
	var out []string
	for _, l := range strings.Split(string(head), "\r\n")[1:] {
		if k, _, ok := strings.Cut(l, ":"); ok {
			out = append(out, k)
		}
	}
	return out
}

func okResponse(body string) []byte {
	return []byte("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// waitFor polls cond until it holds or d passes.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	testutil.WaitFor(tb, d, what, cond)
}
