package pool

import (
	"context"
	"time"
)

// Drain waits until no request is in flight on any backend of the pool, or
// until ctx ends. It is for a pool a reload removed: no route leads to it
// any more, so the requests it still serves only finish.
func (p *Pool) Drain(ctx context.Context) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		busy := false
		for _, m := range p.snap.Load().Members {
			if m.State.Inflight() > 0 {
				busy = true
				break
			}
		}
		if !busy {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ForgetMetrics deletes the metric series of every backend of the pool, and
// its panic-mode series: for a pool a reload removed, once it has drained.
func (p *Pool) ForgetMetrics() {
	if p.opt.Metrics == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.order {
		p.opt.Metrics.Forget(p.cfg.Name, m.cfg.Host)
	}
	p.opt.Metrics.ForgetPool(p.cfg.Name)
}
