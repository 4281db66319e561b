// Package healthtest provides a fake health.Clock for tests of health and of
// the packages built on it. Only _test.go files import it.
package healthtest

import (
	"sort"
	"sync"
	"time"

	"fulcrum/internal/health"
)

// Clock is a manually advanced health.Clock. Time moves only on Advance or
// Set; timers fire (in deadline order) when the time reaches them. Safe for
// concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*timer
	created int           // timers ever created (waiting ones)
	changed chan struct{} // closed and replaced whenever the timer set changes
}

var _ health.Clock = (*Clock)(nil)

// NewClock returns a fake clock showing start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start, changed: make(chan struct{})}
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the fake time reaches Now()+d.
// d <= 0 fires at once.
func (c *Clock) NewTimer(d time.Duration) health.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{c: c, at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	c.created++
	c.notifyLocked()
	return t
}

// Advance moves the time forward by d, firing every timer due on the way.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.now.Add(d))
}

// Set moves the time to t (never backwards), firing every timer due.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.setLocked(t)
	}
}

func (c *Clock) setLocked(t time.Time) {
	c.now = t
	sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
	kept := c.timers[:0]
	fired := false
	for _, tm := range c.timers {
		if tm.at.After(t) {
			kept = append(kept, tm)
			continue
		}
		fired = true
		select {
		case tm.ch <- tm.at:
		default:
		}
	}
	clear(c.timers[len(kept):])
	c.timers = kept
	if fired {
		c.notifyLocked()
	}
}

// Pending returns the number of timers that have not fired or been stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitPending waits until at least n timers are pending, or until the real
// timeout passes; it reports whether n was reached. Tests call it before
// Advance, to know the goroutines under test are parked on their timers.
func (c *Clock) WaitPending(n int, timeout time.Duration) bool {
	return c.WaitUntil(func(pending, _ int) bool { return pending >= n }, timeout)
}

// Created returns how many waiting timers were ever created.
func (c *Clock) Created() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}

// WaitUntil waits until cond holds for the number of pending timers and of
// timers ever created, or until the real timeout passes; it reports whether
// cond held. After a change that makes goroutines stop their timers and park
// on new ones, waiting for the new ones (created) and for the old ones to be
// gone (pending) tells that all of them have parked again.
func (c *Clock) WaitUntil(cond func(pending, created int) bool, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		pending, created, ch := len(c.timers), c.created, c.changed
		c.mu.Unlock()
		if cond(pending, created) {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

func (c *Clock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type timer struct {
	c  *Clock
	at time.Time
	ch chan time.Time
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, tm := range c.timers {
		if tm == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			c.notifyLocked()
			return true
		}
	}
	return false
}
