package testutil

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Counter reads the counter name{label=value} from g (0 if absent).
func Counter(tb testing.TB, g prometheus.Gatherer, name, label, value string) float64 {
	tb.Helper()
	return find(tb, g, name, label, value).GetCounter().GetValue()
}

// Gauge reads the gauge name{label=value} from g (0 if absent).
func Gauge(tb testing.TB, g prometheus.Gatherer, name, label, value string) float64 {
	tb.Helper()
	return find(tb, g, name, label, value).GetGauge().GetValue()
}

// find returns the first series of name with label=value, or nil.
func find(tb testing.TB, g prometheus.Gatherer, name, label, value string) *dto.Metric {
	tb.Helper()
	mfs, err := g.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m
				}
			}
		}
	}
	return nil
}
