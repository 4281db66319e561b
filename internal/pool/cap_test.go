package pool

import (
	"testing"
	"time"

	"fulcrum/internal/config"
)

// Passive checks never eject more than half of the backends: with three, the
// first ejection stands and the second is undone, so a stall on fulcrum's side
// (every backend timing out at once) cannot take the whole pool out.
func TestPassiveEjectionCap(t *testing.T) {
	hosts := hostsN(3)
	p, _ := testPool(t, testCfg(hosts, func(c *config.Pool) { c.PanicThreshold = 0 }), nil)
	fail := func(i int) {
		m := p.Snapshot().Members[i]
		for k := 0; k < 3; k++ {
			p.Observe(m, true)
		}
	}
	fail(0)
	if !member(p, 0).State.Ejected(time.Now()) {
		t.Fatal("first backend not ejected")
	}
	fail(1)
	if member(p, 1).State.Ejected(time.Now()) {
		t.Fatal("second of three backends ejected: more than half would be out")
	}
	// A single backend is never ejected by passive checks.
	one, _ := testPool(t, testCfg(hostsN(1), nil), nil)
	m := one.Snapshot().Members[0]
	for k := 0; k < 3; k++ {
		one.Observe(m, true)
	}
	if m.State.Ejected(time.Now()) {
		t.Fatal("the only backend was ejected")
	}
}

// With round_robin, a backend coming back during slow start still ramps: the
// pool rotates by the ramped weights (weight 1 included) until the ramp ends.
func TestSlowStartRoundRobinRamps(t *testing.T) {
	const win = 10 * time.Second
	hosts := hostsN(2)
	p, clk := testPool(t, testCfg(hosts, func(c *config.Pool) {
		c.SlowStart = win
		c.PanicThreshold = 0
	}), nil)
	if got := picks(t, p, 100); got[hosts[0]] != 50 || got[hosts[1]] != 50 {
		t.Fatalf("start-up picks = %v, want 50/50 (no ramp at start-up)", got)
	}
	setHealth(p, 1, false)
	clk.Advance(time.Minute)
	setHealth(p, 1, true)
	clk.Advance(win / 4)
	rebuild(p)
	got := picks(t, p, 20)
	if got[hosts[1]] == 0 || got[hosts[1]] >= got[hosts[0]] {
		t.Fatalf("picks a quarter into the ramp = %v, want the recovered backend to get a small share", got)
	}
	clk.Advance(win)
	rebuild(p)
	if got := picks(t, p, 100); got[hosts[0]] != 50 || got[hosts[1]] != 50 {
		t.Fatalf("picks after the ramp = %v, want 50/50", got)
	}
}
