package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Route is the metrics handle for one route label value. Get it from
// Metrics.Route when building a route table and pass it to every
// Backend.ObserveRequest for that route. A Route must not be copied.
type Route struct {
	name string
	// id indexes every Backend's route table. It is unique among live
	// routes and reused after ForgetRoute; a slot is trusted only if its
	// cells point back to this Route.
	id int

	// Guarded by Metrics.mu.
	cells     map[*routeCells]struct{} // every backend's cells for this route
	forgotten bool
}

// routeCells holds one backend's request series for one route.
type routeCells struct {
	m    *Metrics
	b    *Backend
	r    *Route
	dead bool // Metrics.dead: records into discard children only

	duration prometheus.Observer

	// requests[method][page] is allocated on first use, so cells that only
	// ever see GET 200 hold one 800-byte page, not 1,000 pointers per method.
	requests [len(methodNames)][statusPages]atomic.Pointer[statusPage]
}

// Route returns the handle for the route label value name: the route's
// configured name, or "LISTENER/INDEX" for an unnamed one. The same name
// yields the same pointer until ForgetRoute(name). It takes a lock and
// creates no series (they appear with the first request), so it is cheap to
// call when a route table is built. "" and "none" yield the handle a nil
// *Route records as.
func (m *Metrics) Route(name string) *Route {
	if name == "" || name == NoBackendLabel {
		return m.noRoute
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.routes[name]; r != nil {
		return r
	}
	return m.newRouteLocked(name)
}

func (m *Metrics) newRouteLocked(name string) *Route {
	id := m.nextID
	if n := len(m.freeIDs); n > 0 {
		id = m.freeIDs[n-1]
		m.freeIDs = m.freeIDs[:n-1]
	} else {
		m.nextID++
	}
	r := &Route{name: name, id: id, cells: map[*routeCells]struct{}{}}
	m.routes[name] = r
	return r
}

// ForgetRoute deletes every request series (count and duration) of the route
// name, on every backend. Call it after a reload that no longer configures
// the route. The cost is proportional to the route's own series. Like
// Forget, a handle obtained before keeps working without re-creating them;
// a later Route(name) returns a new handle. ForgetRoute("none") does nothing.
func (m *Metrics) ForgetRoute(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.routes[name]
	if r == nil || r == m.noRoute {
		return
	}
	delete(m.routes, name)
	r.forgotten = true
	for c := range r.cells {
		c.deleteSeriesLocked()
		// Free the backend's slot for the route that will reuse the id.
		if t := c.b.routes.Load(); t != nil && r.id < len(t.cells) {
			t.cells[r.id].CompareAndSwap(c, nil)
		}
	}
	r.cells = nil
	m.freeIDs = append(m.freeIDs, r.id)
}

// deleteSeriesLocked deletes the series c created. m.mu must be held.
func (c *routeCells) deleteSeriesLocked() {
	m := c.m
	rn, pool, host := c.r.name, c.b.pool, c.b.host
	m.duration.DeleteLabelValues(rn, pool, host)
	for mi := range c.requests {
		for pg := range c.requests[mi] {
			p := c.requests[mi][pg].Load()
			if p == nil {
				continue
			}
			for slot := range p {
				if p[slot].Load() != nil {
					m.requests.DeleteLabelValues(rn, pool, host, statusLabel(pg, slot), methodNames[mi])
				}
			}
		}
	}
}

// counter returns the request counter child for (method index, status code).
func (c *routeCells) counter(mi, status int) prometheus.Counter {
	page, slot := statusSlot(status)
	if p := c.requests[mi][page].Load(); p != nil {
		if cc := p[slot].Load(); cc != nil {
			return cc.c
		}
	}
	return c.counterSlow(mi, page, slot)
}

// counterSlow creates the page and child on first use, under m.mu.
func (c *routeCells) counterSlow(mi, page, slot int) prometheus.Counter {
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	p := c.requests[mi][page].Load()
	if p == nil {
		p = new(statusPage)
		c.requests[mi][page].Store(p)
	}
	if cc := p[slot].Load(); cc != nil {
		return cc.c
	}
	ch := m.discard
	if !c.dead && !c.b.forgotten && !c.r.forgotten {
		ch = m.requests.WithLabelValues(c.r.name, c.b.pool, c.b.host, statusLabel(page, slot), methodNames[mi])
	}
	p[slot].Store(&counterCell{c: ch})
	return ch
}
