package pool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/events"
	"fulcrum/internal/metrics"
)

// Errors of runtime control. The admin API answers ErrNotFound with 404 and
// ErrConflict with 409; the wrapping error's text names the pool, the
// backend and the problem.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// Weight bounds of a runtime weight (those of backends[].weight).
const (
	MinWeight = 1
	MaxWeight = 1000
)

// drainPoll is how often WaitIdle looks at the in-flight count.
const drainPoll = 10 * time.Millisecond

// memberLocked returns the member whose host:port (its metrics label) is
// host. p.mu must be held.
func (p *Pool) memberLocked(host string) (*Member, error) {
	var found *Member
	n := 0
	for _, m := range p.order {
		if m.cfg.Host == host {
			found = m
			n++
		}
	}
	switch n {
	case 0:
		return nil, fmt.Errorf("%w: pool %q has no backend %q", ErrNotFound, p.cfg.Name, host)
	case 1:
		return found, nil
	}
	// One host:port under both schemes: the address does not say which.
	return nil, fmt.Errorf("%w: pool %q has %d backends at %q (http and https); change them in the config file",
		ErrConflict, p.cfg.Name, n, host)
}

// SetAdminState puts a backend in admin state to and returns its status.
// The new snapshot is published before it returns, so the next pick sees
// it. Draining or disabling a backend closes its idle upstream connections;
// requests in flight finish on their own. Enabling a backend that was not
// ready starts its slow-start ramp, as a health recovery does.
//
// Every call is an action: logged, counted and recorded as an event, even
// when the backend was already in that state.
func (p *Pool) SetAdminState(host string, to backend.AdminState) (Status, error) {
	action := metrics.ActionEnable
	switch to {
	case backend.AdminDrain:
		action = metrics.ActionDrain
	case backend.AdminDisabled:
		action = metrics.ActionDisable
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m, err := p.memberLocked(host)
	if err != nil {
		return Status{}, err
	}
	prev := m.State.SetAdmin(to)
	switch {
	case to == backend.AdminReady && prev != backend.AdminReady:
		m.State.MarkUpSince(p.opt.Clock.Now())
	case to != backend.AdminReady:
		m.Conns.CloseIdle()
	}
	p.rebuildLocked()
	p.actionDoneLocked(action, host, action+" (was "+prev.String()+")",
		"admin_state", to.String(), "was", prev.String())
	return p.statusLocked(m), nil
}

// SetWeight sets a backend's runtime weight (MinWeight to MaxWeight) and
// returns its status. The new snapshot is published before it returns, so
// the next pick uses the weight; weighted_round_robin starts a new cycle.
// The weight stays in force across reloads while the file keeps the
// backend's weight; a reload that changes it there takes the file's.
func (p *Pool) SetWeight(host string, w int) (Status, error) {
	if w < MinWeight || w > MaxWeight {
		return Status{}, fmt.Errorf("weight: must be %d-%d, got %d", MinWeight, MaxWeight, w)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	m, err := p.memberLocked(host)
	if err != nil {
		return Status{}, err
	}
	prev := m.State.Weight(m.cfg.Weight)
	m.State.SetWeight(w, m.cfg.Weight)
	p.rebuildLocked()
	p.actionDoneLocked(metrics.ActionWeight, host, "weight "+strconv.Itoa(prev)+" to "+strconv.Itoa(w),
		"weight", w, "was", prev, "file_weight", m.cfg.Weight)
	return p.statusLocked(m), nil
}

// BackendStatus returns one backend's status.
func (p *Pool) BackendStatus(host string) (Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, err := p.memberLocked(host)
	if err != nil {
		return Status{}, err
	}
	return p.statusLocked(m), nil
}

// WaitIdle waits until no request is in flight on the backend, or until
// ctx ends, and returns the number still in flight (0 when it got there).
// It is for a drain: if the backend is enabled again meanwhile (or was not
// draining or disabled to begin with), it returns an ErrConflict.
func (p *Pool) WaitIdle(ctx context.Context, host string) (int64, error) {
	p.mu.Lock()
	m, err := p.memberLocked(host)
	p.mu.Unlock()
	if err != nil {
		return 0, err
	}
	st := m.State
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		if st.Admin() == backend.AdminReady {
			return st.Inflight(), fmt.Errorf("%w: backend %q of pool %q is ready again (enabled while draining); stopped waiting for it to drain",
				ErrConflict, host, p.Snapshot().Cfg.Name)
		}
		n := st.Inflight()
		if n <= 0 {
			return 0, nil
		}
		select {
		case <-ctx.Done():
			return n, nil
		case <-tick.C:
		}
	}
}

// statusLocked is m's status in the published snapshot. p.mu must be held.
func (p *Pool) statusLocked(m *Member) Status {
	snap := p.snap.Load()
	var evs []events.Event
	if p.opt.Events != nil {
		evs = p.opt.Events.ForBackend(snap.Cfg.Name, m.cfg.Host, eventsPerBackend)
	}
	return p.status(snap, snap.Members[m.Backend.Index], evs)
}

// actionDoneLocked logs, counts and records one admin action on host.
// p.mu must be held.
func (p *Pool) actionDoneLocked(action, host, msg string, attrs ...any) {
	p.opt.Logger.Info("admin action", append([]any{"action", action, "pool", p.cfg.Name, "backend", host}, attrs...)...)
	if p.opt.Metrics != nil {
		p.opt.Metrics.AdminAction(action)
	}
	p.event(events.KindAdmin, host, msg)
}

// Lookup resolves a pool name to the running pool (an error wrapping
// ErrNotFound for an unknown name). Its methods are the admin API's runtime
// control over every pool of the engine that provides it.
type Lookup func(name string) (*Pool, error)

// SetAdminState is Pool.SetAdminState on the pool called poolName.
func (l Lookup) SetAdminState(poolName, host string, s backend.AdminState) (Status, error) {
	p, err := l(poolName)
	if err != nil {
		return Status{}, err
	}
	return p.SetAdminState(host, s)
}

// SetWeight is Pool.SetWeight on the pool called poolName.
func (l Lookup) SetWeight(poolName, host string, w int) (Status, error) {
	p, err := l(poolName)
	if err != nil {
		return Status{}, err
	}
	return p.SetWeight(host, w)
}

// WaitIdle is Pool.WaitIdle on the pool called poolName; it also returns
// the backend's status when the wait ends.
func (l Lookup) WaitIdle(ctx context.Context, poolName, host string) (Status, int64, error) {
	p, err := l(poolName)
	if err != nil {
		return Status{}, 0, err
	}
	n, err := p.WaitIdle(ctx, host)
	if err != nil {
		return Status{}, n, err
	}
	st, err := p.BackendStatus(host)
	return st, n, err
}
