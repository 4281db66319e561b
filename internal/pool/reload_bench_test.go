package pool

import (
	"context"
	"fmt"
	"testing"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/health/healthtest"
)

// BenchmarkReload measures Pool.Update against pool size: an unchanged
// reload, and a reload that replaces 10% of the backends (alternating between
// two configs, so every iteration removes and adds n/10). The pool is
// started (one checker goroutine per backend, on a fake clock so no check
// runs) and records metrics, as in production.
func BenchmarkReload(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		a := benchHosts(0, n)
		// c replaces the first n/10 hosts of a with n/10 new ones.
		c := append(benchHosts(n, n/10), a[n/10:]...)
		cfgA := testCfg(a, func(c *config.Pool) { c.Name = "default"; c.Strategy = "least_connections" })
		cfgC := testCfg(c, func(c *config.Pool) { c.Name = "default"; c.Strategy = "least_connections" })
		b.Run(fmt.Sprintf("unchanged/n=%d", n), func(b *testing.B) {
			p := benchPool(b, cfgA)
			b.ReportAllocs()
			for b.Loop() {
				p.Update(cfgA, time.Minute, nil)
			}
		})
		b.Run(fmt.Sprintf("replace10pct/n=%d", n), func(b *testing.B) {
			p := benchPool(b, cfgA)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%2 == 0 {
					p.Update(cfgC, time.Minute, nil)
				} else {
					p.Update(cfgA, time.Minute, nil)
				}
				i++
			}
		})
	}
}

// benchHosts returns n addresses from 10.x.y.z:80, starting at index from.
func benchHosts(from, n int) []string {
	out := make([]string, n)
	for i := range out {
		k := from + i
		out[i] = fmt.Sprintf("10.%d.%d.%d:80", k>>16&255, k>>8&255, k&255)
	}
	return out
}

func benchPool(b *testing.B, cfg *config.Pool) *Pool {
	b.Helper()
	m, _ := newMetrics()
	p := New(cfg, time.Minute, nil, Options{Logger: quiet, Metrics: m, Rand: fixedRand{}, Clock: healthtest.NewClock(epoch)})
	ctx, cancel := context.WithCancel(context.Background())
	p.Start(ctx)
	b.Cleanup(func() { cancel(); p.Stop() })
	return p
}
