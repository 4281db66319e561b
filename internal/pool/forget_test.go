package pool

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fulcrum/internal/config"
)

// requestSeries counts loadbalancer_request_count_total series of host in
// pool "default".
func requestSeries(t *testing.T, reg *prometheus.Registry, host string) int {
	t.Helper()
	return poolSeries(t, reg, "loadbalancer_request_count_total", "default", host)
}

// poolSeries counts the series of family name with labels pool and backend.
func poolSeries(t *testing.T, reg *prometheus.Registry, name, pool, host string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			lb := map[string]string{}
			for _, l := range m.GetLabel() {
				lb[l.GetName()] = l.GetValue()
			}
			if lb["pool"] == pool && lb["backend"] == host {
				n++
			}
		}
	}
	return n
}

// A reload that moves a host from http to https keeps recording its metrics:
// metrics are per host, so removing the http member must not forget the host
// the https member still serves.
func TestReloadSameHostOtherSchemeKeepsMetrics(t *testing.T) {
	m, reg := newMetrics()
	host := hostsN(1)[0]
	p, _ := testPool(t, testCfg([]string{host}, nil), m)
	member(p, 0).Metrics.ObserveRequest(nil, "GET", 200, time.Millisecond)
	if n := requestSeries(t, reg, host); n != 1 {
		t.Fatalf("before reload: %d series, want 1", n)
	}

	cfg := testCfg([]string{host}, nil)
	cfg.Backends[0].URL, cfg.Backends[0].Scheme = "https://"+host, "https"
	p.Update(cfg, time.Minute, nil)
	member(p, 0).Metrics.ObserveRequest(nil, "GET", 200, time.Millisecond)
	if n := requestSeries(t, reg, host); n != 1 {
		t.Fatalf("after reload to https: %d series for %s, want 1 (the live backend's metrics were forgotten)", n, host)
	}

	// Removing the host altogether does forget it.
	p.Update(testCfg(hostsN(2)[1:], nil), time.Minute, nil)
	if n := requestSeries(t, reg, host); n != 0 {
		t.Fatalf("after removing %s: %d series, want 0", host, n)
	}
}

// One host in two pools has two sets of series; a reload that removes it from
// one pool forgets only that pool's.
func TestReloadForgetsOnlyThatPool(t *testing.T) {
	m, reg := newMetrics()
	hosts := hostsN(2)
	a, _ := testPool(t, testCfg(hosts, nil), m)
	b, _ := testPool(t, testCfg(hosts[:1], func(c *config.Pool) { c.Name = "other" }), m)
	if member(a, 0).Metrics == member(b, 0).Metrics {
		t.Fatal("one host in two pools shares a metrics handle")
	}
	member(a, 0).Metrics.ObserveRequest(nil, "GET", 200, time.Millisecond)
	member(b, 0).Metrics.ObserveRequest(nil, "GET", 200, time.Millisecond)
	a.Update(testCfg(hosts[1:], nil), time.Minute, nil)
	if n := requestSeries(t, reg, hosts[0]); n != 0 {
		t.Errorf("pool default still has %d request series of the removed %s", n, hosts[0])
	}
	if n := poolSeries(t, reg, "loadbalancer_backend_errors_total", "default", hosts[0]); n != 0 {
		t.Errorf("pool default still has %d error series of the removed %s", n, hosts[0])
	}
	if n := poolSeries(t, reg, "loadbalancer_request_count_total", "other", hosts[0]); n != 1 {
		t.Errorf("pool other: %d request series of %s, want 1", n, hosts[0])
	}
	if n := poolSeries(t, reg, "loadbalancer_backend_errors_total", "other", hosts[0]); n != 6 {
		t.Errorf("pool other: %d error series of %s, want 6", n, hosts[0])
	}
	st := b.Statuses()
	if len(st) != 1 || st[0].Pool != "other" {
		t.Errorf("Statuses = %+v, want one entry with pool other", st)
	}
	if s := a.BackendSamples(nil); len(s) != 1 || s[0].Pool != "default" || s[0].Backend != hosts[1] {
		t.Errorf("BackendSamples = %+v", s)
	}
}

// A reload that renames the pool moves every backend's series to the new
// name.
func TestReloadRenamedPool(t *testing.T) {
	m, reg := newMetrics()
	hosts := hostsN(2)
	p, _ := testPool(t, testCfg(hosts, nil), m)
	member(p, 0).Metrics.ObserveRequest(nil, "GET", 200, time.Millisecond)
	p.Update(testCfg(hosts, func(c *config.Pool) { c.Name = "renamed" }), time.Minute, nil)
	member(p, 0).Metrics.ObserveRequest(nil, "GET", 200, time.Millisecond)
	for _, h := range hosts {
		if n := poolSeries(t, reg, "loadbalancer_backend_errors_total", "default", h); n != 0 {
			t.Errorf("%s: %d series under the old name", h, n)
		}
		if n := poolSeries(t, reg, "loadbalancer_backend_errors_total", "renamed", h); n != 6 {
			t.Errorf("%s: %d error series under the new name, want 6", h, n)
		}
	}
	if n := poolSeries(t, reg, "loadbalancer_request_count_total", "renamed", hosts[0]); n != 1 {
		t.Errorf("request series under the new name: %d, want 1", n)
	}
}
