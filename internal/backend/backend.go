// Package backend holds the identity of an upstream server (Backend, immutable
// and part of a snapshot) and its long-lived runtime state (State: atomics that
// survive snapshot swaps and hot reloads while the backend's identity is kept).
//
// Nothing here imports another internal package.
package backend

import (
	"sync/atomic"
	"time"
)

// Backend is one upstream server as seen by a snapshot. It is immutable once
// published; a config or health change builds new Backend values (cheap) that
// point at the same *State.
type Backend struct {
	// URL is the backend URL exactly as configured ("http://10.0.0.1:8081").
	URL string
	// Host is "host:port", the dial address and the metrics label.
	Host string
	// Key identifies the backend across reloads and fleet instances; it is the
	// normalised URL. Consistent hashing and sticky cookies derive from it.
	Key string
	// KeyHash is a 64-bit hash of Key, precomputed for hashing strategies.
	KeyHash uint64
	// Weight is the configured weight (>= 1).
	Weight int
	// EffectiveWeight is the weight pickers use: Weight, or while a slow-start
	// ramp runs in the pool, the ramped weight on a x16 scale (>= 1).
	EffectiveWeight int
	// Index is the position of the backend in its pool's configured list.
	Index int
	// State is the long-lived runtime state. Never nil.
	State *State
}

// Observer is told when a backend's load (in-flight count or latency) changes.
// Pickers that keep an ordered structure over load install one with
// State.SetObserver. Changed must not block; it is called on the request path.
type Observer interface {
	LoadChanged(slot int)
}

type observerRef struct {
	o    Observer
	slot int
}

// State is the runtime state of one backend. It must not be copied.
type State struct {
	_ noCopy

	inflight atomic.Int64
	requests atomic.Uint64
	failures atomic.Uint64

	// ewmaNanos is the peak-EWMA of response time in nanoseconds; 0 means no sample yet.
	ewmaNanos atomic.Int64
	// lastSample is the unix-nano time of the last latency sample.
	lastSample atomic.Int64

	// health is the active-check verdict (true = up).
	health atomic.Bool
	// ejectedUntil is non-zero while passive checks eject the backend: the
	// unix-nano time the ejection's back-off ends. The backend stays ejected
	// past that time until Readmit (an active check passing after it).
	ejectedUntil atomic.Int64
	// lastReadmit is the unix-nano time the last ejection ended (0 = never).
	lastReadmit atomic.Int64
	// failRunStart is the unix-nano time of the first failure of the current
	// run of consecutive request failures (passive checks' fail window).
	failRunStart atomic.Int64
	// consecFails counts consecutive request failures (passive checks).
	consecFails atomic.Int64
	// ejections counts consecutive ejections (for back-off); reset after a healthy period.
	ejections atomic.Int64
	// upSince is the unix-nano time the backend last became usable (slow start).
	upSince atomic.Int64

	// lastCheck / lastCheckOK / lastCheckMsg: result of the last active check.
	lastCheck    atomic.Int64
	lastCheckOK  atomic.Bool
	lastCheckMsg atomic.Pointer[string]

	observer atomic.Pointer[observerRef]

	// Runtime control and the reason the backend is out (see admin.go).
	admin       atomic.Int32 // an AdminState
	weight      atomic.Int64 // runtime weight (0 = none) ...
	weightBase  atomic.Int64 // ... set while the file said this weight
	downDetail  atomic.Pointer[string]
	ejectReason atomic.Pointer[string]
}

// NewState returns the state of a backend that has not been checked yet; it
// counts as up until its first check completes.
func NewState(now time.Time) *State {
	s := &State{}
	s.health.Store(true)
	s.upSince.Store(now.UnixNano())
	return s
}

// Acquire counts a request starting on this backend.
func (s *State) Acquire() {
	s.inflight.Add(1)
	s.requests.Add(1)
	s.notify()
}

// TryAcquire counts a request starting on this backend unless max requests
// are already in flight (max <= 0 means no limit). It reports whether the
// request may go ahead; the check and the increment are one atomic step.
func (s *State) TryAcquire(max int64) bool {
	if max <= 0 {
		s.Acquire()
		return true
	}
	for {
		n := s.inflight.Load()
		if n >= max {
			return false
		}
		if s.inflight.CompareAndSwap(n, n+1) {
			s.requests.Add(1)
			s.notify()
			return true
		}
	}
}

// Release counts a request ending on this backend. failed says whether it
// counted as a failure (transport error, timeout, or a 5xx considered a failure).
func (s *State) Release(failed bool) {
	s.inflight.Add(-1)
	if failed {
		s.failures.Add(1)
	}
	s.notify()
}

// Inflight is the number of requests in flight.
func (s *State) Inflight() int64 { return s.inflight.Load() }

// Requests is the number of requests sent to this backend.
func (s *State) Requests() uint64 { return s.requests.Load() }

// Failures is the number of failed requests.
func (s *State) Failures() uint64 { return s.failures.Load() }

// decayNanos is the EWMA time constant.
const decayNanos = int64(10 * time.Second)

// ObserveLatency feeds a response-time sample into the peak-EWMA.
// A sample above the current average replaces it at once (peak); lower samples
// decay it exponentially with a 10 s time constant.
func (s *State) ObserveLatency(d time.Duration, now time.Time) {
	n := int64(d)
	if n <= 0 {
		n = 1
	}
	t := now.UnixNano()
	for i := 0; i < 4; i++ {
		old := s.ewmaNanos.Load()
		var next int64
		if old == 0 || n > old {
			next = n
		} else {
			last := s.lastSample.Load()
			dt := t - last
			if dt < 0 {
				dt = 0
			}
			// w = exp(-dt/tau) approximated by tau/(tau+dt): monotone, no math.Exp.
			w := float64(decayNanos) / float64(decayNanos+dt)
			next = int64(float64(old)*w + float64(n)*(1-w))
			if next <= 0 {
				next = 1
			}
		}
		if s.ewmaNanos.CompareAndSwap(old, next) {
			s.lastSample.Store(t)
			s.notify()
			return
		}
	}
}

// EWMA returns the current peak-EWMA response time (0 = no sample yet).
func (s *State) EWMA() time.Duration { return time.Duration(s.ewmaNanos.Load()) }

// ResetLatency forgets the latency history (a recovered backend is probed afresh).
func (s *State) ResetLatency() { s.ewmaNanos.Store(0) }

// SetObserver installs (or with o == nil removes) the load observer.
func (s *State) SetObserver(o Observer, slot int) {
	if o == nil {
		s.observer.Store(nil)
		return
	}
	s.observer.Store(&observerRef{o: o, slot: slot})
}

func (s *State) notify() {
	if r := s.observer.Load(); r != nil {
		r.o.LoadChanged(r.slot)
	}
}

// Healthy is the active-check verdict.
func (s *State) Healthy() bool { return s.health.Load() }

// SetHealthy stores the active-check verdict and reports whether it changed.
func (s *State) SetHealthy(up bool, now time.Time) bool {
	if s.health.Swap(up) == up {
		return false
	}
	if up {
		s.upSince.Store(now.UnixNano())
		s.ResetLatency()
	}
	return true
}

// UpSince is when the backend last became usable.
func (s *State) UpSince() time.Time { return time.Unix(0, s.upSince.Load()) }

// MarkUpSince sets the slow-start reference time.
func (s *State) MarkUpSince(t time.Time) { s.upSince.Store(t.UnixNano()) }

// EjectedUntil is the end of the current passive ejection (zero time if none).
func (s *State) EjectedUntil() time.Time {
	n := s.ejectedUntil.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Ejected reports whether passive checks eject the backend. An ejection lasts
// until Readmit, not merely until EjectedUntil; now is unused and kept for
// API stability.
func (s *State) Ejected(now time.Time) bool {
	return s.ejectedUntil.Load() != 0
}

// TryEject ejects the backend until Readmit, recording until as the end of the
// back-off (the earliest readmission). It reports whether this call ejected
// it: of concurrent callers exactly one wins, and it returns false if the
// backend is already ejected.
func (s *State) TryEject(until time.Time) bool {
	n := until.UnixNano()
	if n == 0 {
		n = 1 // 0 means "not ejected"
	}
	return s.ejectedUntil.CompareAndSwap(0, n)
}

// Readmit ends a passive ejection at now and reports whether the backend was
// ejected (of concurrent callers at most one gets true).
func (s *State) Readmit(now time.Time) bool {
	if s.ejectedUntil.Swap(0) == 0 {
		return false
	}
	s.lastReadmit.Store(now.UnixNano())
	return true
}

// LastReadmit is when the last ejection ended (zero time if never).
func (s *State) LastReadmit() time.Time {
	n := s.lastReadmit.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// FailRunStart is the unix-nano time of the first failure in the current run
// of consecutive request failures (0 = none); owned by passive checks.
func (s *State) FailRunStart() *atomic.Int64 { return &s.failRunStart }

// SetEjectedUntil sets (or with the zero time clears) the ejection end; a
// non-zero time ejects the backend until Readmit or a clearing call. It is a
// raw setter: prefer TryEject and Readmit, which keep the bookkeeping.
func (s *State) SetEjectedUntil(t time.Time) {
	if t.IsZero() {
		s.ejectedUntil.Store(0)
		return
	}
	s.ejectedUntil.Store(t.UnixNano())
}

// ConsecutiveFailures is the passive-check counter.
func (s *State) ConsecutiveFailures() *atomic.Int64 { return &s.consecFails }

// Ejections is the number of consecutive ejections (for exponential back-off).
func (s *State) Ejections() *atomic.Int64 { return &s.ejections }

// Usable reports whether the backend may receive traffic at now: healthy by
// active checks and not ejected by passive ones.
func (s *State) Usable(now time.Time) bool {
	return s.health.Load() && !s.Ejected(now)
}

// RecordCheck stores the outcome of an active check for the admin API.
func (s *State) RecordCheck(ok bool, msg string, at time.Time) {
	s.lastCheckOK.Store(ok)
	s.lastCheckMsg.Store(&msg)
	s.lastCheck.Store(at.UnixNano())
}

// LastCheck returns the last active check's time (zero if none), verdict and message.
func (s *State) LastCheck() (at time.Time, ok bool, msg string) {
	n := s.lastCheck.Load()
	if n == 0 {
		return time.Time{}, false, ""
	}
	if p := s.lastCheckMsg.Load(); p != nil {
		msg = *p
	}
	return time.Unix(0, n), s.lastCheckOK.Load(), msg
}

// noCopy lets go vet's copylocks check catch copies of State.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
