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
		{10, 0, 0, 10},              // slow start off
		{10, win, win, 10},          // window over
		{10, win, 2 * win, 10},      // long over
		{10, win, -time.Second, 10}, // clock went backwards: no ramp
		{10, win, 0, 1},             // just up: floor of 1, never 0
		{10, win, 500 * time.Millisecond, 1},
		{10, win, 5 * time.Second, 5}, // linear
		{10, win, 9 * time.Second, 9},
		{100, win, 2500 * time.Millisecond, 25},
		{1, win, 5 * time.Second, 1}, // weight 1 cannot ramp
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

// TestSlowStartRamp drives the ramp on the fake clock: a backend that comes
// back up, and one added by a reload, start at weight 1 and reach their full
// weight linearly over slow_start, while the others keep theirs. The ramp
// shows in the picks of weighted_round_robin.
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
	// Backends present at start-up count as just up.
	if w := weights(p); !equalInts(w, []int{1, 1}) {
		t.Fatalf("weights at start = %v, want [1 1]", w)
	}
	if !p.rampingLocked(clk.Now()) {
		t.Fatal("rampingLocked = false during the ramp")
	}
	clk.Advance(win)
	rebuild(p)
	if w := weights(p); !equalInts(w, []int{10, 10}) {
		t.Fatalf("weights after the window = %v, want [10 10]", w)
	}

	// Backend 1 goes down and comes back: it ramps again from 1.
	setHealth(p, 1, false)
	clk.Advance(time.Minute)
	setHealth(p, 1, true)
	if w := weights(p); !equalInts(w, []int{10, 1}) {
		t.Fatalf("weights right after recovery = %v, want [10 1]", w)
	}
	if got := picks(t, p, 110); got[hosts[0]] != 100 || got[hosts[1]] != 10 {
		t.Fatalf("picks right after recovery = %v, want 100/10", got)
	}
	for _, step := range []struct {
		adv  time.Duration
		want int
	}{{2500 * time.Millisecond, 2}, {2500 * time.Millisecond, 5}, {4 * time.Second, 9}, {time.Second, 10}} {
		clk.Advance(step.adv)
		rebuild(p)
		if w := weights(p); w[1] != step.want || w[0] != 10 {
			t.Fatalf("at +%v: weights = %v, want [10 %d]", clk.Now().Sub(epoch), w, step.want)
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
	p.Update(cfg2, time.Minute)
	if w := weights(p); !equalInts(w, []int{10, 10, 1}) {
		t.Fatalf("weights after adding a backend = %v, want [10 10 1]", w)
	}
	clk.Advance(win / 2)
	rebuild(p)
	if w := weights(p); !equalInts(w, []int{10, 10, 5}) {
		t.Fatalf("weights half-way = %v, want [10 10 5]", w)
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
