package pool

import (
	"time"

	"fulcrum/internal/events"
	"fulcrum/internal/health"
	"fulcrum/internal/metrics"
	"fulcrum/internal/window"
)

// Status is one backend's state for the admin API.
type Status struct {
	Pool string `json:"pool"`
	// Backend is the backend's host:port as its metrics label and the
	// runtime control API name it (lower case, default port added).
	Backend   string    `json:"backend"`
	URL       string    `json:"url"`
	Weight    int       `json:"weight"`
	Up        bool      `json:"up"`
	Active    int64     `json:"active"`
	Requests  uint64    `json:"requests"`
	Failures  uint64    `json:"failures"`
	Healthy   bool      `json:"healthy"`
	Ejected   bool      `json:"ejected"`
	LastCheck *Check    `json:"last_check,omitempty"`
	EffWeight int       `json:"effective_weight"`
	Since     time.Time `json:"-"`
	// AdminState is ready, drain or disabled (the admin API's runtime
	// control); Weight is the runtime weight when one is set.
	AdminState string `json:"admin_state"`
	// DownReason says why the backend is not up (the failing check's
	// detail or the ejection's reason); null while up.
	DownReason *string `json:"down_reason"`
	// Events are the backend's last events, oldest first.
	Events []events.Event `json:"events"`

	// LastMinute is the backend's traffic over the last minute.
	LastMinute window.Stats `json:"last_minute"`
}

// eventsPerBackend is how many of a backend's events Status carries.
const eventsPerBackend = 5

// Check is the result of the last active health check.
type Check struct {
	OK   bool      `json:"ok"`
	At   time.Time `json:"at"`
	Info string    `json:"info"`
}

// Statuses lists every backend in configured order.
func (p *Pool) Statuses() []Status {
	snap := p.snap.Load()
	var evs map[string][]events.Event
	if p.opt.Events != nil {
		evs = p.opt.Events.ByBackend(snap.Cfg.Name, eventsPerBackend)
	}
	out := make([]Status, 0, len(snap.Members))
	for _, m := range snap.Members {
		out = append(out, p.status(snap, m, evs[m.Backend.Host]))
	}
	return out
}

// status is one member's Status; evs are its events (nil for none).
func (p *Pool) status(snap *Snapshot, m *Member, evs []events.Event) Status {
	now := p.opt.Clock.Now()
	st := Status{
		Pool: snap.Cfg.Name, Backend: m.Backend.Host, URL: m.Backend.URL, Weight: m.Backend.Weight, EffWeight: m.Backend.EffectiveWeight,
		Up: m.State.Usable(now), Active: m.State.Inflight(),
		Requests: m.State.Requests(), Failures: m.State.Failures(),
		Healthy: m.State.Healthy(), Ejected: m.State.Ejected(now),
		AdminState: m.State.Admin().String(), Events: evs,
		LastMinute: m.Window.Stats(now),
	}
	if st.Events == nil {
		st.Events = []events.Event{}
	}
	if r := m.State.DownReason(now); r != "" {
		st.DownReason = &r
	}
	if at, ok, msg := m.State.LastCheck(); !at.IsZero() {
		st.LastCheck = &Check{OK: ok, At: at.UTC(), Info: msg}
	}
	return st
}

// BackendSamples implements metrics.BackendSource.
func (p *Pool) BackendSamples(dst []metrics.BackendSample) []metrics.BackendSample {
	snap := p.snap.Load()
	if snap == nil {
		return dst
	}
	now := p.opt.Clock.Now()
	for _, m := range snap.Members {
		dst = append(dst, metrics.BackendSample{Pool: snap.Cfg.Name, Backend: m.Backend.Host, Up: m.State.Usable(now), Active: m.State.Inflight()})
	}
	return dst
}

// reporter receives health-check events.
type reporter Pool

// CheckDone counts a failed check on the member's handle (pool label
// included). It runs on every check of every backend, so it is a map lookup,
// not a scan. A check of a backend that a reload has just removed is not
// counted: its series are forgotten and must not come back.
func (r *reporter) CheckDone(t *health.Target, ok bool, err error) {
	p := (*Pool)(r)
	if ok || p.opt.Metrics == nil {
		return
	}
	if mm := p.byKey.Load(); mm != nil {
		if m := (*mm)[t.Key]; m != nil && m.State == t.State && m.Metrics != nil {
			m.Metrics.Error(metrics.ErrHealthCheck)
		}
	}
}

// Transition republishes the snapshot. When many backends change at once (a
// network blip, or a reload adding backends that are down) their transitions
// queue on p.mu; the first to get it rebuilds for all whose state changed
// before, so n transitions cost a few O(n) rebuilds, not n. Every Transition
// still returns only once a snapshot reflecting its change is published.
//
// It also records the change as an event: down (with the failing check's
// detail), up, or returned (an ejection ended).
func (r *reporter) Transition(t *health.Target, c health.Change) {
	p := (*Pool)(r)
	if c.Up {
		t.State.MarkUpSince(p.opt.Clock.Now())
	}
	p.dirty.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	if m := p.members[t.Key]; m != nil && m.State == t.State {
		switch {
		case !c.Up:
			p.event(events.KindDown, t.Host, c.Reason)
		case c.Returned:
			p.event(events.KindReturned, t.Host, c.Reason)
		default:
			p.event(events.KindUp, t.Host, c.Reason)
		}
	}
	// Idle connections from before the transition are likely dead (the
	// backend went away); reusing one within upstream's probeAfter would
	// count as a request failure and eject the backend that just recovered.
	if m := p.members[t.Key]; m != nil {
		m.Conns.CloseIdle()
	}
	if p.dirty.Load() { // else a rebuild since our Store saw our change
		p.rebuildLocked()
	}
}
