package health_test

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/config"
	"fulcrum/internal/health"
	"fulcrum/internal/testutil"
)

// probe runs one check through a throwaway checker.
func probe(t *testing.T, cfg config.HealthCheck, tg health.Target, opts health.Options) (string, error) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t, nil)
	}
	c := health.NewChecker(cfg, newRecorder(t), opts)
	defer c.Stop()
	return c.ProbeOnce(t.Context(), cfg, &tg)
}

func TestTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	cfg := config.HealthCheck{Type: "tcp", Interval: time.Second, Timeout: time.Second}
	st := backend.NewState(epoch)

	msg, err := probe(t, cfg, health.Target{Key: "up", Host: l.Addr().String(), State: st}, health.Options{})
	if err != nil || msg != "TCP connect ok" {
		t.Fatalf("listening port: msg=%q err=%v", msg, err)
	}
	<-accepted

	_, err = probe(t, cfg, health.Target{Key: "down", Host: testutil.ClosedAddr(t), State: st}, health.Options{})
	var op *net.OpError
	if !errors.As(err, &op) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("closed port: err=%v, want a dial error saying connection refused", err)
	}
}

func TestHTTPCheckExpectedStatus(t *testing.T) {
	tests := []struct {
		name     string
		code     int
		expected []config.StatusRange
		ok       bool
	}{
		{"200 in default 200-399", 200, nil, true},
		{"302 in default 200-399", 302, nil, true},
		{"503 outside 200-399", 503, []config.StatusRange{{Lo: 200, Hi: 399}}, false},
		{"404 outside 200-399", 404, []config.StatusRange{{Lo: 200, Hi: 399}}, false},
		{"204 as a single code", 204, []config.StatusRange{{Lo: 200, Hi: 200}, {Lo: 204, Hi: 204}}, true},
		{"201 between single codes", 201, []config.StatusRange{{Lo: 200, Hi: 200}, {Lo: 204, Hi: 204}}, false},
		{"503 when expected", 503, []config.StatusRange{{Lo: 500, Hi: 503}}, true},
		{"302 when only 2xx", 302, []config.StatusRange{{Lo: 200, Hi: 299}}, false},
	}
	srv := newScripted(t, 200)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.set(tc.code)
			cfg := httpCfg(time.Second, 1, 1)
			cfg.ExpectedStatus = tc.expected
			msg, err := probe(t, cfg, srv.target("b"), health.Options{})
			if tc.ok {
				if err != nil || msg != "HTTP "+strconv.Itoa(tc.code) {
					t.Fatalf("msg=%q err=%v, want pass", msg, err)
				}
				return
			}
			var se *health.StatusError
			if !errors.As(err, &se) || se.Code != tc.code || err.Error() != "HTTP "+strconv.Itoa(tc.code) {
				t.Fatalf("err=%v, want *StatusError %d", err, tc.code)
			}
		})
	}
}

func TestHTTPCheckRedirectNotFollowed(t *testing.T) {
	var followed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Store(true)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	tg := health.Target{Key: "b", Host: srv.Listener.Addr().String(), Scheme: "http", State: backend.NewState(epoch)}
	cfg := httpCfg(time.Second, 1, 1)
	cfg.ExpectedStatus = []config.StatusRange{{Lo: 200, Hi: 299}}
	_, err := probe(t, cfg, tg, health.Options{})
	var se *health.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusFound {
		t.Fatalf("err=%v, want HTTP 302", err)
	}
	if followed.Load() {
		t.Fatal("the redirect was followed")
	}
}

func TestHTTPCheckRequest(t *testing.T) {
	srv := newScripted(t, 200)
	cfg := httpCfg(time.Second, 1, 1)
	cfg.Path = "/status?full=1"
	cfg.Host = "app.example"
	cfg.Headers = map[string]string{"X-Probe": "yes", "Authorization": "Bearer t"}
	if _, err := probe(t, cfg, srv.target("b"), health.Options{}); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	r := srv.last
	srv.mu.Unlock()
	if r.Method != http.MethodGet || r.URL.Path != "/status" || r.URL.RawQuery != "full=1" {
		t.Errorf("request %s %s", r.Method, r.URL)
	}
	if r.Host != "app.example" {
		t.Errorf("Host=%q, want app.example", r.Host)
	}
	if got := r.Header.Get("User-Agent"); got != "fulcrum-health/1" {
		t.Errorf("User-Agent=%q", got)
	}
	if r.Header.Get("X-Probe") != "yes" || r.Header.Get("Authorization") != "Bearer t" {
		t.Errorf("extra headers missing: %v", r.Header)
	}

	// Without cfg.Host the Host header is the backend's host:port.
	cfg.Host = ""
	if _, err := probe(t, cfg, srv.target("b"), health.Options{}); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	r = srv.last
	srv.mu.Unlock()
	if want := srv.Listener.Addr().String(); r.Host != want {
		t.Errorf("Host=%q, want %q", r.Host, want)
	}
}

// hangServer answers only after release is closed or the client goes away;
// arrived receives a value per request.
func hangServer(t *testing.T) (srv *httptest.Server, arrived chan struct{}, release func()) {
	t.Helper()
	arrived = make(chan struct{}, 100)
	rel := make(chan struct{})
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-rel:
		case <-r.Context().Done():
		}
	}))
	var once atomic.Bool
	release = func() {
		if once.CompareAndSwap(false, true) {
			close(rel)
		}
	}
	t.Cleanup(srv.Close)
	t.Cleanup(release) // runs before srv.Close
	return srv, arrived, release
}

func TestHTTPCheckTimeout(t *testing.T) {
	srv, _, _ := hangServer(t)
	cfg := httpCfg(time.Second, 1, 1)
	cfg.Timeout = 100 * time.Millisecond
	tg := health.Target{Key: "b", Host: srv.Listener.Addr().String(), Scheme: "http", State: backend.NewState(epoch)}
	start := time.Now()
	_, err := probe(t, cfg, tg, health.Options{})
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("check took %v despite a 100ms timeout", el)
	}
	var te *health.TimeoutError
	if !errors.As(err, &te) || err.Error() != "timeout after 100ms" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err=%v, want timeout after 100ms", err)
	}
}

func TestTCPCheckTimeout(t *testing.T) {
	// Loopback connects complete at once, so give the check a deadline that
	// has passed before the dial: it must read as a timeout, not as an error.
	cfg := config.HealthCheck{Type: "tcp", Interval: time.Second, Timeout: time.Nanosecond}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = probe(t, cfg, health.Target{Key: "b", Host: l.Addr().String(), State: backend.NewState(epoch)}, health.Options{})
	var te *health.TimeoutError
	if !errors.As(err, &te) || err.Error() != "timeout after 1ns" {
		t.Fatalf("err=%v, want timeout after 1ns", err)
	}
}

func TestUnknownCheckType(t *testing.T) {
	cfg := config.HealthCheck{Type: "udp", Interval: time.Second, Timeout: time.Second}
	_, err := probe(t, cfg, health.Target{Key: "b", Host: "127.0.0.1:1", State: backend.NewState(epoch)}, health.Options{})
	if err == nil || !strings.Contains(err.Error(), "unknown health check type") {
		t.Fatalf("err=%v", err)
	}
}

func TestHTTPCheckReusesConnection(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     int
		maxConns int
		minConns int
	}{
		{"short body: one connection", 1000, 1, 1},
		{"body over 4 KiB: not drained, not reused", 64 << 10, 5, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var conns atomic.Int32
			body := strings.Repeat("x", tc.body)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(body))
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()
			cfg := httpCfg(time.Second, 1, 1)
			c := health.NewChecker(cfg, newRecorder(t), health.Options{})
			defer c.Stop()
			tg := health.Target{Key: "b", Host: srv.Listener.Addr().String(), Scheme: "http", State: backend.NewState(epoch)}
			for i := 0; i < 5; i++ {
				if _, err := c.ProbeOnce(t.Context(), cfg, &tg); err != nil {
					t.Fatal(err)
				}
			}
			if n := int(conns.Load()); n < tc.minConns || n > tc.maxConns {
				t.Fatalf("%d connections for 5 checks, want %d..%d", n, tc.minConns, tc.maxConns)
			}
		})
	}
}

func TestHTTPSCheck(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(t.Output(), "", 0) // the untrusted handshake below fails on purpose
	srv.StartTLS()
	defer srv.Close()
	tg := health.Target{Key: "b", Host: srv.Listener.Addr().String(), Scheme: "https", State: backend.NewState(epoch)}
	cfg := httpCfg(time.Second, 1, 1)

	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	if msg, err := probe(t, cfg, tg, health.Options{TLSClientConfig: &tls.Config{RootCAs: roots}}); err != nil || msg != "HTTP 200" {
		t.Fatalf("trusted: msg=%q err=%v", msg, err)
	}
	// With the system roots the test certificate is not trusted.
	if _, err := probe(t, cfg, tg, health.Options{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted: err=%v, want a certificate error", err)
	}
}

// A target's own TLS configuration (the pool's) wins over the checker's.
func TestHTTPSCheckTargetTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ErrorLog = log.New(t.Output(), "", 0) // the untrusted handshake below fails on purpose
	srv.StartTLS()
	defer srv.Close()
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	tg := health.Target{Key: "b", Host: srv.Listener.Addr().String(), Scheme: "https", State: backend.NewState(epoch),
		TLS: &tls.Config{RootCAs: roots}}
	cfg := httpCfg(time.Second, 1, 1)
	if msg, err := probe(t, cfg, tg, health.Options{}); err != nil || msg != "HTTP 200" {
		t.Fatalf("target TLS trusted: msg=%q err=%v", msg, err)
	}
	tg.TLS = &tls.Config{}
	if _, err := probe(t, cfg, tg, health.Options{TLSClientConfig: &tls.Config{RootCAs: roots}}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("target TLS with system roots: err=%v, want a certificate error", err)
	}
}
