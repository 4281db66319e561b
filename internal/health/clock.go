package health

import "time"

// Clock is the source of time for scheduling checks and timing ejections.
// Implementations must be safe for concurrent use. Tests inject a fake one
// (healthtest.Clock); production uses RealClock.
//
// Per-check timeouts are deliberately not driven by the Clock: a check's
// hard deadline is a real context deadline, because it bounds real I/O.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that delivers the time on C once d has
	// elapsed. d <= 0 fires at once.
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the checker uses.
type Timer interface {
	C() <-chan time.Time
	// Stop prevents the timer from firing and reports whether it was pending.
	Stop() bool
}

// RealClock returns the wall clock.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
