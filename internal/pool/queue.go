package pool

// Released must be called after a request on this pool ends; it wakes
// queued requests (max_connections). It costs one atomic load when nobody waits.
func (p *Pool) Released() {
	if p.waiters.Load() > 0 {
		ch := make(chan struct{})
		if old := p.freed.Swap(&ch); old != nil {
			close(*old)
		}
	}
}

// EnterQueue admits a request to the wait queue unless it is full (the queue
// holds as many requests as the pool's backends can serve at once).
func (p *Pool) EnterQueue(maxConns int) bool {
	snap := p.snap.Load()
	limit := int32(maxConns * len(snap.Members))
	if limit < 1 {
		limit = 1
	}
	if p.waiters.Add(1) > limit {
		p.waiters.Add(-1)
		return false
	}
	return true
}

// LeaveQueue is called once for each successful EnterQueue.
func (p *Pool) LeaveQueue() { p.waiters.Add(-1) }

// Queued is the number of requests waiting in the queue for a free backend.
func (p *Pool) Queued() int { return int(p.waiters.Load()) }

// Freed returns a channel closed the next time a request ends while requests wait.
func (p *Pool) Freed() <-chan struct{} { return *p.freed.Load() }

// Budget is the pool's retry budget.
func (p *Pool) Budget() *RetryBudget { return &p.budget }
