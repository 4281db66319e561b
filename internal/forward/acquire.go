package forward

import (
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/pool"
)

// acquire takes a request slot on b's member or, when b is at
// max_connections, on another backend; when every backend is full it waits
// in the pool's bounded queue for up to queue_timeout. nil means no slot.
func (c *Call) acquire(b *backend.Backend) *pool.Member {
	snap, p := c.Snap, c.Pool
	cfg := snap.Cfg
	limit := int64(cfg.MaxConnections)
	mem := snap.Member(b)
	if mem.State.TryAcquire(limit) {
		return mem
	}
	if m := c.acquireOther(limit, b); m != nil {
		return m
	}
	if cfg.QueueTimeout <= 0 || !p.EnterQueue(cfg.MaxConnections) {
		return nil
	}
	defer p.LeaveQueue()
	timer := time.NewTimer(cfg.QueueTimeout)
	defer timer.Stop()
	for {
		// Take the wake-up channel before looking, so a slot freed between
		// the look and the wait is not missed.
		freed := p.Freed()
		if m := c.acquireOther(limit, nil); m != nil {
			return m
		}
		select {
		case <-freed:
		case <-timer.C:
			return nil
		}
	}
}

// acquireOther tries the strategy's next choices, then any usable backend.
func (c *Call) acquireOther(limit int64, skip *backend.Backend) *pool.Member {
	snap := c.Snap
	saved := c.Pick.Exclude
	defer func() { c.Pick.Exclude = saved }()
	c.Pick.Exclude = skip
	for i := 0; i < len(snap.Members) && i < 4; i++ {
		b, err := snap.Picker.Pick(&c.Pick)
		if err != nil {
			return nil
		}
		if m := snap.Member(b); m.State.TryAcquire(limit) {
			return m
		}
		c.Pick.Exclude = b
	}
	now := time.Now()
	for _, m := range snap.Members {
		// Panic mode spreads traffic over backends that are down, never
		// over drained or disabled ones.
		if m.Backend != skip && (m.State.Serving(now) || snap.Panic && m.State.Admin() == backend.AdminReady) &&
			m.State.TryAcquire(limit) {
			return m
		}
	}
	return nil
}
