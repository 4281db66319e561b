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
