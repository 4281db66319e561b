package health_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"fulcrum/internal/backend"
	"fulcrum/internal/config"
	"fulcrum/internal/health"
	"fulcrum/internal/testutil"
)

// grpcBackend is a real gRPC server with the standard health service on a
// loopback port. It counts accepted connections and records the authority
// and metadata of the last health call.
type grpcBackend struct {
	addr     string
	health   *grpchealth.Server
	srv      *grpc.Server
	accepted atomic.Int32
	live     atomic.Int32 // connections open on the server side

	mu        sync.Mutex
	authority string
	md        metadata.MD
}

type countingListener struct {
	net.Listener
	n, live *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.n.Add(1)
	l.live.Add(1)
	return &liveConn{Conn: c, live: l.live}, nil
}

// liveConn counts itself out of live when closed (the server closes its side
// once the client's connection goes).
type liveConn struct {
	net.Conn
	live *atomic.Int32
	once sync.Once
}

func (c *liveConn) Close() error {
	c.once.Do(func() { c.live.Add(-1) })
	return c.Conn.Close()
}

// startGRPC serves on addr ("" = a free port); withHealth false leaves the
// health service out.
func startGRPC(t *testing.T, addr string, withHealth bool, opts ...grpc.ServerOption) *grpcBackend {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ { // restarting on the same port: it may still be held briefly
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	b := &grpcBackend{addr: l.Addr().String()}
	opts = append(opts, grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		b.mu.Lock()
		b.md = md
		if a := md.Get(":authority"); len(a) > 0 {
			b.authority = a[0]
		}
		b.mu.Unlock()
		return h(ctx, req)
	}))
	b.srv = grpc.NewServer(opts...)
	if withHealth {
		b.health = grpchealth.NewServer()
		healthpb.RegisterHealthServer(b.srv, b.health)
	}
	go b.srv.Serve(countingListener{l, &b.accepted, &b.live})
	t.Cleanup(b.srv.Stop)
	return b
}

// startGRPCTLS is startGRPC over TLS, with a certificate for names from a
// fresh test CA (returned, for the client's roots).
func startGRPCTLS(t *testing.T, names ...string) (*grpcBackend, *testutil.CA) {
	t.Helper()
	ca := testutil.NewCA(t)
	leaf := ca.Issue("grpc", names, time.Now().Add(time.Hour), false)
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return startGRPC(t, "", true, grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}}))), ca
}

func grpcCfg(service string) config.HealthCheck {
	return config.HealthCheck{Type: "grpc", Interval: time.Second, Timeout: 2 * time.Second,
		HealthyThreshold: 1, UnhealthyThreshold: 1, Service: service}
}

// checker is a checker whose prober the test reuses across probes.
func grpcChecker(t *testing.T, cfg config.HealthCheck, opts health.Options) *health.Checker {
	t.Helper()
	opts.Logger = testLogger(t, nil)
	c := health.NewChecker(cfg, newRecorder(t), opts)
	t.Cleanup(c.Stop)
	return c
}

func TestGRPCCheckStatuses(t *testing.T) {
	b := startGRPC(t, "", true)
	tg := health.Target{Key: "b", Host: b.addr, Scheme: "http", State: backend.NewState(epoch)}
	c := grpcChecker(t, grpcCfg(""), health.Options{})

	if msg, err := c.ProbeOnce(t.Context(), grpcCfg(""), &tg); err != nil || msg != "gRPC health SERVING" {
		t.Fatalf("serving: msg=%q err=%v", msg, err)
	}
	b.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	_, err := c.ProbeOnce(t.Context(), grpcCfg(""), &tg)
	var ns *health.NotServingError
	if !errors.As(err, &ns) || err.Error() != "gRPC health NOT_SERVING" {
		t.Fatalf("not serving: err=%v", err)
	}
	// A named service: unknown until the server registers it.
	if _, err := c.ProbeOnce(t.Context(), grpcCfg("shop.Cart"), &tg); err == nil || !strings.HasPrefix(err.Error(), "gRPC NotFound: ") {
		t.Fatalf("unknown service: err=%v, want gRPC NotFound", err)
	}
	b.health.SetServingStatus("shop.Cart", healthpb.HealthCheckResponse_SERVING)
	if msg, err := c.ProbeOnce(t.Context(), grpcCfg("shop.Cart"), &tg); err != nil || msg != "gRPC health SERVING" {
		t.Fatalf("named service serving: msg=%q err=%v", msg, err)
	}
	// All of it over one connection.
	if n := b.accepted.Load(); n != 1 {
		t.Errorf("%d connections for 4 checks, want 1", n)
	}
}

// An HTTP/1.1 server: the failure says what is wrong in words.
func TestGRPCCheckHTTP1Backend(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	tg := health.Target{Key: "b", Host: srv.Listener.Addr().String(), Scheme: "http", State: backend.NewState(epoch)}
	_, err := probe(t, grpcCfg(""), tg, health.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "gRPC Unavailable: ") || !strings.Contains(err.Error(), "does not speak HTTP/2") {
		t.Fatalf("err=%v, want gRPC Unavailable saying the backend does not speak HTTP/2", err)
	}
}

func TestGRPCCheckNoHealthService(t *testing.T) {
	b := startGRPC(t, "", false)
	tg := health.Target{Key: "b", Host: b.addr, Scheme: "http", State: backend.NewState(epoch)}
	_, err := probe(t, grpcCfg(""), tg, health.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "gRPC Unimplemented: ") {
		t.Fatalf("err=%v, want gRPC Unimplemented", err)
	}
}

// A backend that goes away fails at once; one that comes back on the same
// address passes at the next check, without waiting out gRPC's reconnect
// back-off.
func TestGRPCCheckDownAndBack(t *testing.T) {
	b := startGRPC(t, "", true)
	addr := b.addr
	tg := health.Target{Key: "b", Host: addr, Scheme: "http", State: backend.NewState(epoch)}
	c := grpcChecker(t, grpcCfg(""), health.Options{})
	if _, err := c.ProbeOnce(t.Context(), grpcCfg(""), &tg); err != nil {
		t.Fatal(err)
	}
	b.srv.Stop()
	for i := 0; i < 3; i++ {
		start := time.Now()
		_, err := c.ProbeOnce(t.Context(), grpcCfg(""), &tg)
		if err == nil || !strings.HasPrefix(err.Error(), "gRPC Unavailable: ") {
			t.Fatalf("stopped, check %d: err=%v, want gRPC Unavailable", i, err)
		}
		if el := time.Since(start); el > time.Second {
			t.Fatalf("stopped, check %d took %v: a refused connection must fail at once", i, el)
		}
	}
	b2 := startGRPC(t, addr, true)
	start := time.Now()
	if msg, err := c.ProbeOnce(t.Context(), grpcCfg(""), &tg); err != nil || msg != "gRPC health SERVING" {
		t.Fatalf("restarted: msg=%q err=%v", msg, err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("restarted: the check took %v", el)
	}
	if n := b2.accepted.Load(); n != 1 {
		t.Errorf("restarted server saw %d connections, want 1", n)
	}
}

func TestGRPCCheckTimeout(t *testing.T) {
	// Accepts and never speaks HTTP/2; the connections are held until the end.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []net.Conn)
	go func() {
		var conns []net.Conn
		for {
			conn, err := l.Accept()
			if err != nil {
				done <- conns
				return
			}
			conns = append(conns, conn)
		}
	}()
	defer func() {
		l.Close()
		for _, c := range <-done {
			c.Close()
		}
	}()
	cfg := grpcCfg("")
	cfg.Timeout = 200 * time.Millisecond
	tg := health.Target{Key: "b", Host: l.Addr().String(), Scheme: "http", State: backend.NewState(epoch)}
	start := time.Now()
	_, err = probe(t, cfg, tg, health.Options{})
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("check took %v despite a 200ms timeout", el)
	}
	var te *health.TimeoutError
	if !errors.As(err, &te) || err.Error() != "timeout after 200ms" {
		t.Fatalf("err=%v, want timeout after 200ms", err)
	}
}

func TestGRPCCheckTLS(t *testing.T) {
	b, ca := startGRPCTLS(t, "backend.test", "127.0.0.1")
	tg := health.Target{Key: "b", Host: b.addr, Scheme: "https", State: backend.NewState(epoch),
		TLS: &tls.Config{RootCAs: ca.Pool}}
	if msg, err := probe(t, grpcCfg(""), tg, health.Options{}); err != nil || msg != "gRPC health SERVING" {
		t.Fatalf("trusted: msg=%q err=%v", msg, err)
	}
	// The checker's own TLS settings serve targets without the pool's.
	tg.TLS = nil
	if msg, err := probe(t, grpcCfg(""), tg, health.Options{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}); err != nil || msg != "gRPC health SERVING" {
		t.Fatalf("checker roots: msg=%q err=%v", msg, err)
	}
	// With the system roots the test CA is not trusted.
	if _, err := probe(t, grpcCfg(""), tg, health.Options{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted: err=%v, want a certificate error", err)
	}
	// A plain-text check of a TLS server fails.
	tg.Scheme = "http"
	if _, err := probe(t, grpcCfg(""), tg, health.Options{}); err == nil {
		t.Fatal("h2c check of a TLS server passed")
	}
}

// With the pool's TLS settings (which name the server), host still sets
// the :authority, per call; gRPC checks it against the certificate.
func TestGRPCCheckTLSAuthority(t *testing.T) {
	b, ca := startGRPCTLS(t, "backend.test", "api.test")
	tg := health.Target{Key: "b", Host: b.addr, Scheme: "https", State: backend.NewState(epoch),
		TLS: &tls.Config{RootCAs: ca.Pool, ServerName: "backend.test"}}
	cfg := grpcCfg("")
	cfg.Host = "api.test:443"
	if msg, err := probe(t, cfg, tg, health.Options{}); err != nil || msg != "gRPC health SERVING" {
		t.Fatalf("host covered by the certificate: msg=%q err=%v", msg, err)
	}
	b.mu.Lock()
	got := b.authority
	b.mu.Unlock()
	if got != "api.test:443" {
		t.Errorf(":authority %q, want api.test:443", got)
	}
	cfg.Host = "other.test"
	if _, err := probe(t, cfg, tg, health.Options{}); err == nil {
		t.Fatal("a host the certificate does not cover passed")
	}
}

// A reload that gives a target new TLS settings, or removes another target,
// closes only the connections no target needs.
func TestGRPCCheckReloadConnections(t *testing.T) {
	b, ca := startGRPCTLS(t, "127.0.0.1")
	other := startGRPC(t, "", true)
	cfg := grpcCfg("")
	tg := health.Target{Key: "b", Host: b.addr, Scheme: "https", State: backend.NewState(epoch), TLS: &tls.Config{RootCAs: ca.Pool}}
	og := health.Target{Key: "o", Host: other.addr, Scheme: "http", State: backend.NewState(epoch)}
	c := grpcChecker(t, cfg, health.Options{})
	c.Update(cfg, []health.Target{tg, og})
	for _, x := range []*health.Target{&tg, &og} {
		if _, err := c.ProbeOnce(t.Context(), cfg, x); err != nil {
			t.Fatal(err)
		}
	}
	// New TLS settings for b (a reload): its old connection goes, other's stays.
	tg.TLS = &tls.Config{RootCAs: ca.Pool}
	c.Update(cfg, []health.Target{tg, og})
	testutil.WaitFor(t, 5*time.Second, "b's old connection closed", func() bool { return b.live.Load() == 0 })
	if _, err := c.ProbeOnce(t.Context(), cfg, &tg); err != nil {
		t.Fatal(err)
	}
	if n := b.accepted.Load(); n != 2 {
		t.Errorf("b: %d connections, want 2 (one per TLS settings)", n)
	}
	// Removing b closes its connection; other's is kept and keeps working.
	c.Update(cfg, []health.Target{og})
	testutil.WaitFor(t, 5*time.Second, "b's connection closed", func() bool { return b.live.Load() == 0 })
	if _, err := c.ProbeOnce(t.Context(), cfg, &og); err != nil {
		t.Fatalf("other after b's removal: %v", err)
	}
	if n, l := other.accepted.Load(), other.live.Load(); n != 1 || l != 1 {
		t.Errorf("other: %d connections, %d open, want 1 and 1", n, l)
	}
}

func TestGRPCCheckAuthorityAndMetadata(t *testing.T) {
	b := startGRPC(t, "", true)
	cfg := grpcCfg("")
	cfg.Host = "api.internal:8443"
	cfg.Headers = map[string]string{"X-Check-Token": "s3cret"}
	tg := health.Target{Key: "b", Host: b.addr, Scheme: "http", State: backend.NewState(epoch)}
	if _, err := probe(t, cfg, tg, health.Options{}); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.authority != "api.internal:8443" {
		t.Errorf(":authority %q, want api.internal:8443", b.authority)
	}
	if v := b.md.Get("x-check-token"); len(v) != 1 || v[0] != "s3cret" {
		t.Errorf("metadata x-check-token %v, want [s3cret]", v)
	}
	if ua := b.md.Get("user-agent"); len(ua) != 1 || !strings.HasPrefix(ua[0], "fulcrum-health/1") {
		t.Errorf("user-agent %v, want fulcrum-health/1 first", ua)
	}
}
