package health

import (
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/config"
)

// Passive is outlier detection from real traffic. It keeps no state of its
// own: the counters live in each backend.State, so a Passive may be replaced
// on reload (NewPassive with the new config) without losing them.
//
// Rules:
//   - MaxFails consecutive failed requests, all within FailWindow of the
//     first failure of the run, eject the backend. A success ends the run; a
//     failure more than FailWindow after the run's first failure starts a new
//     run. FailWindow <= 0 means no window. MaxFails <= 0 disables passive
//     checks (Observe does nothing).
//   - The n-th consecutive ejection lasts EjectionFor(n) = EjectFor·2^(n-1),
//     capped at MaxEjectFor (treated as EjectFor if smaller).
//   - An ejected backend stays out after its back-off has ended until an
//     active check passes: the Checker then readmits it (see
//     Checker.ProbeAt). Request outcomes observed while it is ejected (late
//     responses, panic-mode traffic) are not counted.
//   - The ejection count (State.Ejections) is forgiven, i.e. reset to 0, by
//     the first success observed more than MaxEjectFor after the last
//     readmission: a backend that has served well for the longest back-off
//     starts again from EjectFor.
//
// Under concurrency the counting is approximate only at run boundaries (a
// failure racing with the start of a run may count toward the next one), but
// every ejection is reported to exactly one caller.
type Passive struct {
	clock    Clock
	maxFails int64
	window   int64 // nanoseconds; <= 0 = none
	eject    time.Duration
	maxEject time.Duration
}

// NewPassive returns the passive checker for cfg (nil clock = RealClock()).
func NewPassive(cfg config.Passive, clock Clock) *Passive {
	if clock == nil {
		clock = RealClock()
	}
	return &Passive{
		clock:    clock,
		maxFails: int64(cfg.MaxFails),
		window:   int64(cfg.FailWindow),
		eject:    max(cfg.EjectFor, 0),
		maxEject: max(cfg.MaxEjectFor, cfg.EjectFor, 0),
	}
}

// Enabled reports whether passive checks are on (MaxFails > 0).
func (p *Passive) Enabled() bool { return p != nil && p.maxFails > 0 }

// Observe records one request outcome on the backend: failed means the
// connection was refused or reset, the request timed out, or (when the
// config considers them) the response was a 5xx. It returns true when this
// call ejected the backend; the caller must then republish its snapshot
// without the backend and call Checker.ProbeAt(key, st.EjectedUntil()).
//
// Observe runs on the request path: it may be called concurrently from any
// goroutine, never blocks, takes no lock and does not allocate. A nil or
// disabled Passive returns false.
func (p *Passive) Observe(st *backend.State, failed bool) (ejected bool) {
	if p == nil || p.maxFails <= 0 {
		return false
	}
	now := p.clock.Now().UnixNano()
	fails := st.ConsecutiveFailures()
	if !failed {
		if fails.Load() != 0 {
			fails.Store(0)
		}
		p.forgive(st, now)
		return false
	}
	if st.Ejected(time.Time{}) {
		return false
	}
	runStart := st.FailRunStart()
	n := fails.Add(1)
	if n == 1 {
		runStart.Store(now)
	} else if s := runStart.Load(); p.window > 0 && s != 0 && now-s > p.window {
		// The run began too long ago: this failure starts a new one.
		if fails.CompareAndSwap(n, 1) {
			runStart.Store(now)
			n = 1
		} else {
			n = fails.Load()
		}
	}
	if n < p.maxFails {
		return false
	}
	ej := st.Ejections()
	until := time.Unix(0, now+int64(p.EjectionFor(int(ej.Load())+1)))
	if !st.TryEject(until) {
		return false // another caller ejected it first
	}
	ej.Add(1)
	// The failure count is left as it is (for logs and the admin API); it
	// is reset on readmission.
	return true
}

// forgive resets the ejection count after a healthy period (see Passive).
func (p *Passive) forgive(st *backend.State, now int64) {
	ej := st.Ejections()
	n := ej.Load()
	if n == 0 || st.Ejected(time.Time{}) {
		return
	}
	if r := st.LastReadmit(); !r.IsZero() && now-r.UnixNano() > int64(p.maxEject) {
		ej.CompareAndSwap(n, 0)
	}
}

// EjectionFor returns how long the n-th consecutive ejection lasts:
// EjectFor·2^(n-1), capped at MaxEjectFor. n < 1 counts as 1.
func (p *Passive) EjectionFor(n int) time.Duration {
	d := p.eject
	for i := 1; i < n && d > 0 && d < p.maxEject; i++ {
		if d > p.maxEject/2 {
			return p.maxEject // doubling would pass the cap (or overflow)
		}
		d *= 2
	}
	return min(d, p.maxEject)
}

// Readmit ends the backend's ejection now, whatever its back-off, and
// reports whether it was ejected. The Checker readmits by itself; this is
// for callers that decide on their own (e.g. an operator via the admin API).
// The caller republishes its snapshot when it returns true.
func (p *Passive) Readmit(st *backend.State) bool {
	clock := RealClock()
	if p != nil {
		clock = p.clock
	}
	return readmit(st, clock.Now())
}

// readmit ends st's ejection at now and restarts its failure run. It reports
// whether st was ejected (at most one concurrent caller gets true).
func readmit(st *backend.State, now time.Time) bool {
	if !st.Readmit(now) {
		return false
	}
	st.ConsecutiveFailures().Store(0)
	st.FailRunStart().Store(0)
	return true
}
