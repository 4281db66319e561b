package pool

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fulcrum/internal/balance"
	"fulcrum/internal/config"
	"fulcrum/internal/health"
	"fulcrum/internal/health/healthtest"
	"fulcrum/internal/metrics"
	"fulcrum/internal/testutil"
)

// TestMain fails the package if any goroutine started by the tests (pool
// loops, checker goroutines, listeners) outlives them.
func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m, nil) }

// epoch is the fake clock's start.
var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// quiet discards pool logs.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testCfg is a pool config as the loader would produce it, over hosts, with
// every field the pool reads filled in; mut adjusts it.
func testCfg(hosts []string, mut func(*config.Pool)) *config.Pool {
	c := &config.Pool{
		Name:     "default",
		Strategy: "round_robin",
		HealthCheck: config.HealthCheck{
			Type: "tcp", Path: "/", Interval: time.Second, Timeout: 500 * time.Millisecond,
			ExpectedStatus:   []config.StatusRange{{Lo: 200, Hi: 399}},
			HealthyThreshold: 1, UnhealthyThreshold: 1,
		},
		Passive: config.Passive{
			MaxFails: 3, FailWindow: 10 * time.Second, EjectFor: 30 * time.Second,
			MaxEjectFor: 5 * time.Minute, Consider5xx: true,
		},
		PanicThreshold:        50,
		Retries:               2,
		RetryBuffer:           64 << 10,
		ConnectTimeout:        time.Second,
		ResponseHeaderTimeout: time.Second,
	}
	for _, h := range hosts {
		c.Backends = append(c.Backends, config.Backend{URL: "http://" + h, Scheme: "http", Host: h, Weight: 1})
	}
	if mut != nil {
		mut(c)
	}
	return c
}

// hostsN returns n distinct addresses nothing is expected to dial.
func hostsN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.1:%d", 1+i)
	}
	return out
}

// fixedRand is a deterministic balance.Rand.
type fixedRand struct{}

func (fixedRand) Uint64() uint64 { return 0x9e3779b97f4a7c15 }

var _ balance.Rand = fixedRand{}

// testPool builds a pool on a fake clock (not started); Stop runs at cleanup.
func testPool(t *testing.T, cfg *config.Pool, m *metrics.Metrics) (*Pool, *healthtest.Clock) {
	t.Helper()
	clk := healthtest.NewClock(epoch)
	p := New(cfg, time.Minute, nil, Options{Logger: quiet, Metrics: m, Rand: fixedRand{}, Clock: clk})
	t.Cleanup(p.Stop)
	return p, clk
}

// member returns the pool's current member for the i-th configured backend.
func member(p *Pool, i int) *Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.order[i]
}

// setHealth applies an active-check verdict the way the checker does:
// State.SetHealthy, then Reporter.Transition (which republishes the snapshot).
func setHealth(p *Pool, i int, up bool) {
	m := member(p, i)
	if m.State.SetHealthy(up, p.opt.Clock.Now()) {
		(*reporter)(p).Transition(m.target, health.Change{Up: up, Reason: "test"})
	}
}

// picks draws n picks from the current snapshot and counts them by host.
func picks(t *testing.T, p *Pool, n int) map[string]int {
	t.Helper()
	snap := p.Snapshot()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		b, err := snap.Picker.Pick(&balance.Request{})
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		got[b.Host]++
	}
	return got
}

// newMetrics returns metrics on a fresh registry.
func newMetrics() (*metrics.Metrics, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return metrics.New(reg, nil), reg
}

// gauge reads an unlabelled gauge (-1 if absent).
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// backendErrors reads loadbalancer_backend_errors_total{pool="default",backend,error_type} (0 if absent).
func backendErrors(t *testing.T, reg *prometheus.Registry, host, typ string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "loadbalancer_backend_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			lb := map[string]string{}
			for _, l := range m.GetLabel() {
				lb[l.GetName()] = l.GetValue()
			}
			if lb["pool"] == "default" && lb["backend"] == host && lb["error_type"] == typ {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// listener is a real loopback TCP listener that accepts and closes
// connections (enough for TCP health checks); closed at cleanup.
func listener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// eventually polls cond (real time) until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, d, what, cond)
}

// usableHosts lists the hosts a snapshot counts as usable at now.
func usableHosts(snap *Snapshot, now time.Time) []string {
	var out []string
	for _, m := range snap.Members {
		if m.State.Usable(now) {
			out = append(out, m.Backend.Host)
		}
	}
	return out
}
