package pool

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// requestSeries counts loadbalancer_request_count_total series of host.
func requestSeries(t *testing.T, reg *prometheus.Registry, host string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != "loadbalancer_request_count_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "backend" && l.GetValue() == host {
					n++
				}
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
	member(p, 0).Metrics.ObserveRequest("GET", 200, time.Millisecond)
	if n := requestSeries(t, reg, host); n != 1 {
		t.Fatalf("before reload: %d series, want 1", n)
	}

	cfg := testCfg([]string{host}, nil)
	cfg.Backends[0].URL, cfg.Backends[0].Scheme = "https://"+host, "https"
	p.Update(cfg, time.Minute)
	member(p, 0).Metrics.ObserveRequest("GET", 200, time.Millisecond)
	if n := requestSeries(t, reg, host); n != 1 {
		t.Fatalf("after reload to https: %d series for %s, want 1 (the live backend's metrics were forgotten)", n, host)
	}

	// Removing the host altogether does forget it.
	p.Update(testCfg(hostsN(2)[1:], nil), time.Minute)
	if n := requestSeries(t, reg, host); n != 0 {
		t.Fatalf("after removing %s: %d series, want 0", host, n)
	}
}
