package proxy_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/pool"
	"fulcrum/internal/proxy"
	"fulcrum/internal/testutil"
)

func TestShutdownBeforeServe(t *testing.T) {
	cfg := config.Pool{
		Strategy: "round_robin",
		Backends: []config.Backend{{URL: "http://127.0.0.1:1", Scheme: "http", Host: "127.0.0.1:1", Weight: 1}},
		HealthCheck: config.HealthCheck{Type: "tcp", Interval: time.Hour, Timeout: time.Second,
			HealthyThreshold: 1, UnhealthyThreshold: 3},
		Retries: 2, RetryBuffer: 64 << 10, ConnectTimeout: time.Second, ResponseHeaderTimeout: 2 * time.Second,
	}
	p := pool.New(&cfg, time.Minute, nil, pool.Options{Logger: slog.New(slog.DiscardHandler)})
	srv := proxy.New(&proxy.Settings{Limits: config.Limits{ReadHeaderTimeout: time.Second}}, proxy.SinglePool("default", proxy.NewUpstream("default", p), nil), proxy.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after Shutdown: %v", err)
		}
	case <-time.After(3 * time.Second):
		ln.Close()
		<-done
		t.Fatal("Serve after Shutdown kept accepting")
	}
	p.Stop()
}

func TestGracefulShutdown(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(arrived)
			select {
			case <-release:
			case <-time.After(5 * time.Second):
			}
		}
		io.WriteString(w, "done")
	}))
	tp := startProxy(t, []string{hostPort(be.URL)}, nil)

	idle := dialProxy(t, tp.Addr)
	if resp, _ := idle.get("/"); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	busy := dialProxy(t, tp.Addr)
	busy.write("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	<-arrived

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- tp.Srv.Shutdown(ctx)
	}()
	// The idle connection is closed at once; new connections are refused.
	if !idle.closed(2 * time.Second) {
		t.Error("idle connection not closed by Shutdown")
	}
	waitFor(t, 2*time.Second, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", tp.Addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	// The request in flight completes, then its connection closes.
	close(release)
	resp, body := busy.read("GET")
	if resp.StatusCode != 200 || string(body) != "done" || !resp.Close {
		t.Errorf("in-flight request: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if !busy.closed(2 * time.Second) {
		t.Error("connection kept open after Shutdown")
	}
}

func TestAccessLogClientAddress(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(echoHandler))
	for _, tc := range []struct {
		name    string
		trusted []string
		want    string
	}{
		{"untrusted peer: the TCP peer", nil, "127.0.0.1"},
		{"trusted peer: the forwarded client", []string{"127.0.0.0/8"}, "203.0.113.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := map[string]any{"access_log": true, "access_log_format": "json"}
			if tc.trusted != nil {
				extra["trusted_proxies"] = tc.trusted
			}
			var alog testutil.LogBuffer
			tp := startProxyWith(t, proxySetup{Backends: []string{hostPort(be.URL)}, Extra: extra, AccessLog: &alog})
			c := dialProxy(t, tp.Addr)
			c.do("GET", "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n")
			lines := waitAccessLines(t, &alog, 1)
			if got := jsonLine(t, lines[0])["client"]; len(lines) != 1 || got != tc.want {
				t.Errorf("access log client %q in %q, want %s", got, lines, tc.want)
			}
		})
	}
}
