package pool

import (
	"testing"
	"time"

	"fulcrum/internal/config"
)

func TestSlowStartWeight(t *testing.T) {
	const win = 10 * time.Second
	cases := []struct {
		w      int
		window time.Duration
		since  time.Duration
		want   int
	}{
		// Weights are on the rampScale (16) scale while a ramp runs.
		{10, 0, 0, 160},              // slow start off
		{10, win, win, 160},          // window over
		{10, win, 2 * win, 160},      // long over
		{10, win, -time.Second, 160}, // clock went backwards: no ramp
		{10, win, 0, 1},              // just up: floor of 1, never 0
		{10, win, 500 * time.Millisecond, 8},
		{10, win, 5 * time.Second, 80}, // linear
		{10, win, 9 * time.Second, 144},
		{100, win, 2500 * time.Millisecond, 400},
		{1, win, 5 * time.Second, 8}, // weight 1 ramps too
		{1, win, 0, 1},
	}
	for _, tc := range cases {
		if got := slowStartWeight(tc.w, tc.window, tc.since); got != tc.want {
			t.Errorf("slowStartWeight(%d, %v, %v) = %d, want %d", tc.w, tc.window, tc.since, got, tc.want)
		}
	}
}

// weights returns each member's effective weight in the current snapshot.
func weights(p *Pool) []int {
	snap := p.Snapshot()
	out := make([]int, len(snap.Members))
	for i, m := range snap.Members {
		out[i] = m.Backend.EffectiveWeight
	}
	return out
}

func rebuild(p *Pool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rebuildLocked()
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSlowStartRamp drives the ramp on the fake clock: backends present at
// start-up serve at full weight; a backend that comes back up, and one added
// by a reload, start at 1/160 of a full share and reach their full weight
// linearly over slow_start, while the others keep theirs (weights are scaled
// by rampScale while a ramp runs). The ramp shows in the picks of
// weighted_round_robin.
func TestSlowStartRamp(t *testing.T) {
	const win = 10 * time.Second
	hosts := hostsN(3)
	cfg := testCfg(hosts[:2], func(c *config.Pool) {
		c.Strategy = "weighted_round_robin"
		c.SlowStart = win
		c.PanicThreshold = 0
		for i := range c.Backends {
			c.Backends[i].Weight = 10
		}
	})
	p, clk := testPool(t, cfg, nil)
	// Backends present at start-up serve at full weight at once.
	if w := weights(p); !equalInts(w, []int{10, 10}) {
		t.Fatalf("weights at start = %v, want [10 10]", w)
	}
	if p.rampingLocked(clk.Now()) {
		t.Fatal("rampingLocked = true at start-up")
	}

	// Backend 1 goes down and comes back: it ramps again from 1.
	setHealth(p, 1, false)
	clk.Advance(time.Minute)
	setHealth(p, 1, true)
	if w := weights(p); !equalInts(w, []int{160, 1}) {
		t.Fatalf("weights right after recovery = %v, want [160 1]", w)
	}
	if got := picks(t, p, 161); got[hosts[0]] != 160 || got[hosts[1]] != 1 {
		t.Fatalf("picks right after recovery = %v, want 160/1", got)
	}
	for _, step := range []struct {
		adv        time.Duration
		want, full int
	}{{2500 * time.Millisecond, 40, 160}, {2500 * time.Millisecond, 80, 160}, {4 * time.Second, 144, 160}, {time.Second, 10, 10}} {
		clk.Advance(step.adv)
		rebuild(p)
		if w := weights(p); w[1] != step.want || w[0] != step.full {
			t.Fatalf("at +%v: weights = %v, want [%d %d]", clk.Now().Sub(epoch), w, step.full, step.want)
		}
	}
	if got := picks(t, p, 200); got[hosts[0]] != 100 || got[hosts[1]] != 100 {
		t.Fatalf("picks after the ramp = %v, want 100/100", got)
	}
	clk.Advance(2 * time.Second)
	if p.rampingLocked(clk.Now()) {
		t.Fatal("rampingLocked = true after every ramp is over")
	}

	// A backend added by a reload starts small; kept ones keep full weight.
	cfg2 := testCfg(hosts, func(c *config.Pool) {
		c.Strategy = "weighted_round_robin"
		c.SlowStart = win
		c.PanicThreshold = 0
		for i := range c.Backends {
			c.Backends[i].Weight = 10
		}
	})
	p.Update(cfg2, time.Minute, nil)
	if w := weights(p); !equalInts(w, []int{160, 160, 1}) {
		t.Fatalf("weights after adding a backend = %v, want [160 160 1]", w)
	}
	clk.Advance(win / 2)
	rebuild(p)
	if w := weights(p); !equalInts(w, []int{160, 160, 80}) {
		t.Fatalf("weights half-way = %v, want [160 160 80]", w)
	}
}

// TestSlowStartLoopRamps checks that the pool's own maintenance loop (a 1 s
// real ticker) finishes the ramp without any other rebuild.
func TestSlowStartLoopRamps(t *testing.T) {
	p, clk := testPool(t, testCfg(hostsN(2), func(c *config.Pool) {
		c.SlowStart = 10 * time.Second
		for i := range c.Backends {
			c.Backends[i].Weight = 4
		}
	}), nil)
	p.Start(t.Context())
	clk.Advance(time.Hour)
	eventually(t, 5*time.Second, "the loop to finish the ramp", func() bool {
		return equalInts(weights(p), []int{4, 4})
	})
}
