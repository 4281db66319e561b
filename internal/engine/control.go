package engine

import (
	"context"
	"fmt"

	"fulcrum/internal/backend"
	"fulcrum/internal/events"
	"fulcrum/internal/pool"
)

// Runtime backend control for the admin API (admin.BackendControl). The
// state it sets lives in each backend's long-lived state, so it survives
// reloads that keep the backend; a restart starts from the file.

// Events is the event log (admin.EventSource).
func (e *Engine) Events() *events.Log { return e.opt.Events }

// poolNamed returns the running pool called name.
func (e *Engine) poolNamed(name string) (*pool.Pool, error) {
	for _, u := range e.cur.Load().pools {
		if u.up.Name == name {
			return u.pool, nil
		}
	}
	return nil, fmt.Errorf("%w: no pool %q", pool.ErrNotFound, name)
}

// SetAdminState drains, disables or enables a backend of a pool.
func (e *Engine) SetAdminState(poolName, host string, s backend.AdminState) (pool.Status, error) {
	return pool.Lookup(e.poolNamed).SetAdminState(poolName, host, s)
}

// SetWeight sets a backend's runtime weight.
func (e *Engine) SetWeight(poolName, host string, w int) (pool.Status, error) {
	return pool.Lookup(e.poolNamed).SetWeight(poolName, host, w)
}

// WaitIdle waits until the backend has no request in flight, or ctx ends,
// and returns its status and the requests still in flight.
func (e *Engine) WaitIdle(ctx context.Context, poolName, host string) (pool.Status, int64, error) {
	return pool.Lookup(e.poolNamed).WaitIdle(ctx, poolName, host)
}
