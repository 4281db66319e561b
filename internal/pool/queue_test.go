package pool

import (
	"sync"
	"testing"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/metrics"
)

// TestEnterQueueBound checks that the queue holds max_connections × backends
// waiters, refuses the next one, and takes one again after LeaveQueue.
func TestEnterQueueBound(t *testing.T) {
	for _, tc := range []struct{ backends, maxConns, limit int }{
		{3, 2, 6}, {1, 1, 1}, {2, 0, 1}, // max 0 (unlimited) still admits one
	} {
		p, _ := testPool(t, testCfg(hostsN(tc.backends), func(c *config.Pool) { c.MaxConnections = tc.maxConns }), nil)
		for i := 0; i < tc.limit; i++ {
			if !p.EnterQueue(tc.maxConns) {
				t.Fatalf("%+v: waiter %d refused", tc, i+1)
			}
		}
		if p.EnterQueue(tc.maxConns) {
			t.Fatalf("%+v: waiter %d admitted past the bound", tc, tc.limit+1)
		}
		if got := p.waiters.Load(); int(got) != tc.limit {
			t.Fatalf("%+v: waiters = %d after a refusal, want %d", tc, got, tc.limit)
		}
		p.LeaveQueue()
		if !p.EnterQueue(tc.maxConns) {
			t.Fatalf("%+v: no room after LeaveQueue", tc)
		}
		for i := 0; i < tc.limit; i++ {
			p.LeaveQueue()
		}
		if p.waiters.Load() != 0 {
			t.Fatalf("%+v: waiters = %d at the end", tc, p.waiters.Load())
		}
	}
}

// TestFreedWakesWaiters checks the wake-up channel: Released closes the
// channel a waiter took (even if it took it just before the release), does
// nothing while nobody waits, and hands out a fresh channel afterwards.
func TestFreedWakesWaiters(t *testing.T) {
	p, _ := testPool(t, testCfg(hostsN(1), func(c *config.Pool) { c.MaxConnections = 1 }), nil)
	ch := p.Freed()
	p.Released() // nobody waits: no wake-up, no new channel
	select {
	case <-ch:
		t.Fatal("Released woke a channel with no waiters")
	default:
	}
	if p.Freed() != ch {
		t.Fatal("Released replaced the channel with no waiters")
	}

	if !p.EnterQueue(1) {
		t.Fatal("EnterQueue refused")
	}
	ch = p.Freed()
	p.Released() // between taking the channel and waiting on it
	select {
	case <-ch:
	default:
		t.Fatal("Released did not close the waiter's channel")
	}
	if p.Freed() == ch {
		t.Fatal("Released did not install a fresh channel")
	}
	p.LeaveQueue()
}

// TestQueueHandsOffSlots runs the proxy's acquire loop (take the channel,
// try, wait) in several goroutines against one backend with
// max_connections 1: each release lets exactly one waiter in, none is lost,
// and in-flight never exceeds the limit. (The pool has five backends so that
// the queue, max_connections × backends long, holds all five waiters; they
// all wait for the first backend.)
func TestQueueHandsOffSlots(t *testing.T) {
	const waiters = 5
	p, _ := testPool(t, testCfg(hostsN(waiters), func(c *config.Pool) { c.MaxConnections = 1 }), nil)
	st := p.Snapshot().Members[0].State
	if !st.TryAcquire(1) {
		t.Fatal("first TryAcquire failed")
	}
	acquired := make(chan int, waiters)
	var wg sync.WaitGroup
	for w := 0; w < waiters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !p.EnterQueue(1) {
				t.Error("EnterQueue refused")
				return
			}
			defer p.LeaveQueue()
			timeout := time.NewTimer(10 * time.Second)
			defer timeout.Stop()
			for {
				freed := p.Freed()
				if st.TryAcquire(1) {
					acquired <- w
					return
				}
				select {
				case <-freed:
				case <-timeout.C:
					t.Error("waiter never woken")
					return
				}
			}
		}()
	}
	// Each release hands the slot to one waiter.
	for i := 0; i < waiters; i++ {
		st.Release(false)
		p.Released()
		select {
		case <-acquired:
		case <-time.After(10 * time.Second):
			t.Fatalf("release %d: no waiter took the slot", i+1)
		}
		if n := st.Inflight(); n != 1 {
			t.Fatalf("in flight = %d, want 1", n)
		}
	}
	wg.Wait()
	st.Release(false)
	p.Released()
	if p.waiters.Load() != 0 || st.Inflight() != 0 {
		t.Fatalf("waiters=%d inflight=%d at the end", p.waiters.Load(), st.Inflight())
	}
}

// TestPassiveEjectionAndReadmission runs the pool with the real checker on
// the fake clock: max_fails failures eject a backend (snapshot, admin status
// and metrics within the same rebuild), it stays out past its back-off while
// active checks fail, comes back when one passes, and a second ejection lasts
// twice as long.
func TestPassiveEjectionAndReadmission(t *testing.T) {
	m, reg := newMetrics()
	hosts := []string{listener(t), listener(t)}
	p, clk := testPool(t, testCfg(hosts, func(c *config.Pool) {
		c.HealthCheck.Interval = time.Hour // only the back-off probe runs
		c.Passive.EjectFor = 10 * time.Second
		c.Passive.MaxEjectFor = time.Minute
		c.PanicThreshold = 0
	}), m)
	p.Start(t.Context())
	mem := p.Snapshot().Members[1]

	eject := func(round int) time.Time {
		t.Helper()
		p.Observe(mem, true)
		p.Observe(mem, false) // a success resets the run
		for i := 0; i < 3; i++ {
			p.Observe(mem, true)
		}
		eventually(t, 5*time.Second, "ejection in the snapshot", func() bool { return p.Snapshot().Usable == 1 })
		st := p.Statuses()[1]
		if !st.Ejected || st.Up || !st.Healthy {
			t.Fatalf("round %d: status = %+v, want ejected, not up, healthy", round, st)
		}
		if got := backendErrors(t, reg, hosts[1], metrics.ErrEjected.String()); got != float64(round) {
			t.Fatalf("round %d: ejected errors = %v", round, got)
		}
		if picks(t, p, 20)[hosts[1]] != 0 {
			t.Fatalf("round %d: ejected backend still picked", round)
		}
		return mem.State.EjectedUntil()
	}

	until := eject(1)
	if d := until.Sub(clk.Now()); d != 10*time.Second {
		t.Fatalf("first ejection lasts %v, want 10s", d)
	}
	// Before the back-off ends nothing readmits it.
	clk.Advance(9 * time.Second)
	if p.Snapshot().Usable != 1 {
		t.Fatal("readmitted before the back-off ended")
	}
	// The back-off ends: the checker probes (TCP to a live listener), the
	// check passes and the backend is back.
	deadline := time.Now().Add(10 * time.Second)
	for p.Snapshot().Usable != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("not readmitted; status %+v", p.Statuses()[1])
		}
		clk.WaitPending(2, 100*time.Millisecond)
		clk.Advance(time.Second)
	}
	if st := p.Statuses()[1]; st.Ejected || !st.Up || st.LastCheck == nil || !st.LastCheck.OK {
		t.Fatalf("after readmission: %+v", st)
	}

	// A second ejection soon after doubles the back-off.
	until = eject(2)
	if d := until.Sub(clk.Now()); d != 20*time.Second {
		t.Fatalf("second ejection lasts %v, want 20s", d)
	}
}
