package metrics

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// stateCollector exports backend health and in-flight counts read from a
// BackendSource at scrape time, so the values are exact at that instant and
// the request path never touches them.
type stateCollector struct {
	src    BackendSource
	up     *prometheus.Desc
	active *prometheus.Desc
}

var _ prometheus.Collector = (*stateCollector)(nil)

func newStateCollector(src BackendSource) *stateCollector {
	return &stateCollector{
		src: src,
		up: prometheus.NewDesc("loadbalancer_backend_up",
			"Whether the backend is currently considered healthy (1) or not (0).",
			[]string{labelPool, labelBackend}, nil),
		active: prometheus.NewDesc("loadbalancer_backend_connections_active",
			"Requests or connections currently in flight to the backend.",
			[]string{labelPool, labelBackend}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.up
	ch <- c.active
}

// Collect implements prometheus.Collector. It may run concurrently for
// concurrent scrapes, so it keeps no buffer between calls.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	samples := mergeSamples(c.src.BackendSamples(nil))
	for _, s := range samples {
		up := 0.0
		if s.Up {
			up = 1
		}
		ch <- constGauge(c.up, up, s.Pool, s.Backend)
		ch <- constGauge(c.active, float64(s.Active), s.Pool, s.Backend)
	}
}

// mergeSamples sorts s by Pool and Backend and folds duplicates into one
// sample (up if any is up, Active summed). Without it, one address under two
// schemes in one pool would make the registry reject the whole scrape for
// duplicate series. The same address in two pools stays two samples.
func mergeSamples(s []BackendSample) []BackendSample {
	slices.SortFunc(s, func(a, b BackendSample) int {
		if c := strings.Compare(a.Pool, b.Pool); c != 0 {
			return c
		}
		return strings.Compare(a.Backend, b.Backend)
	})
	out := s[:0]
	for _, x := range s {
		if n := len(out); n > 0 && out[n-1].Pool == x.Pool && out[n-1].Backend == x.Backend {
			out[n-1].Up = out[n-1].Up || x.Up
			out[n-1].Active += x.Active
			continue
		}
		out = append(out, x)
	}
	return out
}

// constGauge turns a bad label value (invalid UTF-8) into a scrape error for
// that one series instead of a panic in the scrape goroutine.
func constGauge(d *prometheus.Desc, v float64, pool, backend string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v, pool, backend)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}
