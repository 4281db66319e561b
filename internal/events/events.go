// Package events keeps the last things that changed in the balancer (a
// backend going down or up, an ejection, an admin action, a reload, panic
// mode) in a bounded in-memory ring, so that an operator can ask "why is it
// down" without reading logs.
//
// Producers (health checks, passive ejection, the admin API, reload, panic
// mode) are all off the request path except a passive ejection, which is
// rare. Add takes a short mutex and never waits for a reader. Readers copy
// what they need (Since, ForBackend, ByBackend) and a subscriber learns of
// new events through Changed, a channel closed by the next Add: it then
// reads Since(its last ID), so a slow subscriber misses nothing that is
// still in the ring, and one that fell behind by more than the capacity gets
// what is left.
//
// This package imports no other fulcrum package.
package events

import (
	"slices"
	"sync"
	"time"
)

// Capacity is the number of events the balancer keeps.
const Capacity = 1000

// Kinds of events.
const (
	KindDown      = "down"       // active checks took the backend out
	KindUp        = "up"         // active checks brought it back
	KindEjected   = "ejected"    // passive checks ejected it after failed requests
	KindReturned  = "returned"   // an ejection ended (an active check passed after it)
	KindAdmin     = "admin"      // a runtime action of the admin API (drain, disable, enable, weight)
	KindReload    = "reload"     // a reload: applied (with its summary) or rejected (with the errors)
	KindPanicMode = "panic_mode" // a pool entered or left panic mode
	// KindCertificate is for certificates obtained, renewed or failed.
	// Nothing emits it yet: it is defined so that TLS work can.
	KindCertificate = "certificate"
)

// Event is one change. Pool and Backend are empty when the event concerns
// neither (a reload); Backend is host:port, as in the metrics labels.
type Event struct {
	ID      uint64    `json:"id"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Pool    string    `json:"pool"`
	Backend string    `json:"backend"`
	Message string    `json:"message"`
}

// Log is a bounded ring of events with increasing IDs (the first is 1).
// All methods are safe for concurrent use; the zero value is not usable,
// create one with New.
type Log struct {
	now func() time.Time

	mu      sync.Mutex
	ring    []Event // len == capacity once full; ring[(start+i)%len] is the i-th oldest
	start   int
	n       int // events in the ring
	last    uint64
	changed chan struct{} // closed (and replaced) by Add
}

// New returns an empty log that keeps the last capacity events (at least 1).
// now stamps events; nil means time.Now.
func New(capacity int, now func() time.Time) *Log {
	if capacity < 1 {
		capacity = 1
	}
	if now == nil {
		now = time.Now
	}
	return &Log{now: now, ring: make([]Event, capacity), changed: make(chan struct{})}
}

// Add records an event and returns it. It never blocks on readers.
func (l *Log) Add(kind, pool, backend, message string) Event {
	l.mu.Lock()
	l.last++
	ev := Event{ID: l.last, Time: l.now().UTC(), Kind: kind, Pool: pool, Backend: backend, Message: message}
	if l.n < len(l.ring) {
		l.ring[(l.start+l.n)%len(l.ring)] = ev
		l.n++
	} else {
		l.ring[l.start] = ev
		l.start = (l.start + 1) % len(l.ring)
	}
	ch := l.changed
	l.changed = make(chan struct{})
	l.mu.Unlock()
	close(ch)
	return ev
}

// LastID is the ID of the newest event (0 if none yet).
func (l *Log) LastID() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Changed returns a channel that is closed by the next Add. Take it before
// reading with Since, so that an event added in between is not missed.
func (l *Log) Changed() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// at returns the i-th oldest event in the ring. l.mu must be held.
func (l *Log) at(i int) *Event { return &l.ring[(l.start+i)%len(l.ring)] }

// Since returns the events with an ID greater than id that are still in the
// ring, oldest first, at most limit of them (limit <= 0 means no limit).
func (l *Log) Since(id uint64, limit int) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := 0
	if l.n > 0 {
		// IDs in the ring are consecutive: the oldest is last-n+1.
		oldest := l.last - uint64(l.n) + 1
		if id >= oldest {
			first = int(min(id-oldest+1, uint64(l.n)))
		}
	}
	count := l.n - first
	if limit > 0 && count > limit {
		count = limit
	}
	out := make([]Event, count)
	for i := range out {
		out[i] = *l.at(first + i)
	}
	return out
}

// ForBackend returns the newest n events of one backend of one pool, oldest
// first.
func (l *Log) ForBackend(pool, backend string, n int) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for i := l.n - 1; i >= 0 && len(out) < n; i-- {
		if e := l.at(i); e.Pool == pool && e.Backend == backend {
			out = append(out, *e)
		}
	}
	slices.Reverse(out)
	return out
}

// ByBackend returns, for every backend of pool that has events, its newest
// n events, oldest first: ForBackend for all of a pool's backends in one
// pass over the ring.
func (l *Log) ByBackend(pool string, n int) map[string][]Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]Event{}
	for i := l.n - 1; i >= 0; i-- {
		e := l.at(i)
		if e.Pool != pool || e.Backend == "" || len(out[e.Backend]) >= n {
			continue
		}
		out[e.Backend] = append(out[e.Backend], *e)
	}
	for _, evs := range out {
		slices.Reverse(evs)
	}
	return out
}
