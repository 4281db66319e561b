package pool

import (
	"errors"
	"sync"
	"testing"
	"time"

	"fulcrum/internal/balance"
	"fulcrum/internal/config"
	"fulcrum/internal/testutil"
)

// TestPanicThreshold walks a pool of four through every count of usable
// backends: at or above panic_threshold the picker covers only the usable
// ones; below it (but with at least one up) it covers all four and
// fulcrum_panic_mode is 1; with none up Pick fails with ErrNoBackend (the
// proxy's 503) and panic mode is off.
func TestPanicThreshold(t *testing.T) {
	cases := []struct {
		name      string
		threshold int
		up        int // the first `up` backends are up
		panic     bool
		pickable  int // distinct backends a run of picks reaches; 0 = ErrNoBackend
	}{
		{"all up", 50, 4, false, 4},
		{"three up", 50, 3, false, 3},
		{"exactly at threshold", 50, 2, false, 2},
		{"below threshold", 50, 1, true, 4},
		{"none up", 50, 0, false, 0},
		{"threshold 0 disables", 0, 1, false, 1},
		{"threshold 100, one down", 100, 3, true, 4},
		{"threshold 100, all up", 100, 4, false, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, reg := newMetrics()
			p, _ := testPool(t, testCfg(hostsN(4), func(c *config.Pool) { c.PanicThreshold = tc.threshold }), m)
			for i := tc.up; i < 4; i++ {
				setHealth(p, i, false)
			}
			snap := p.Snapshot()
			if snap.Panic != tc.panic || snap.Usable != tc.up {
				t.Fatalf("Panic=%v Usable=%d, want %v %d", snap.Panic, snap.Usable, tc.panic, tc.up)
			}
			want := 0.0
			if tc.panic {
				want = 1
			}
			if g := gauge(t, reg, "fulcrum_panic_mode"); g != want {
				t.Fatalf("fulcrum_panic_mode = %v, want %v", g, want)
			}
			if tc.pickable == 0 {
				if b, err := snap.Picker.Pick(&balance.Request{}); !errors.Is(err, balance.ErrNoBackend) {
					t.Fatalf("Pick with none up = %v, %v; want ErrNoBackend", b, err)
				}
				return
			}
			got := picks(t, p, 400)
			if len(got) != tc.pickable {
				t.Fatalf("picks reached %d backends (%v), want %d", len(got), got, tc.pickable)
			}
			if !tc.panic {
				for host := range got {
					if !snapUsable(snap, host) {
						t.Fatalf("picked down backend %s outside panic mode", host)
					}
				}
			}
		})
	}
}

func snapUsable(snap *Snapshot, host string) bool {
	for _, m := range snap.Members {
		if m.Backend.Host == host {
			return m.State.Usable(time.Now()) // Ejected ignores the time
		}
	}
	return false
}

// TestPanicModeEntersAndLeaves checks that the gauge follows transitions both
// ways and that going from "one up" to "none up" leaves panic mode (503)
// rather than spreading traffic over dead backends.
func TestPanicModeEntersAndLeaves(t *testing.T) {
	m, reg := newMetrics()
	p, _ := testPool(t, testCfg(hostsN(3), nil), m)
	setHealth(p, 0, false)
	if p.Snapshot().Panic || gauge(t, reg, "fulcrum_panic_mode") != 0 {
		t.Fatal("2 of 3 up (67%) must not be panic mode")
	}
	setHealth(p, 1, false)
	if !p.Snapshot().Panic || gauge(t, reg, "fulcrum_panic_mode") != 1 {
		t.Fatal("1 of 3 up (33%) must be panic mode")
	}
	setHealth(p, 2, false)
	if p.Snapshot().Panic || gauge(t, reg, "fulcrum_panic_mode") != 0 {
		t.Fatal("none up must not be panic mode")
	}
	if _, err := p.Snapshot().Picker.Pick(nil); !errors.Is(err, balance.ErrNoBackend) {
		t.Fatalf("none up: Pick err = %v, want ErrNoBackend", err)
	}
	setHealth(p, 2, true)
	if !p.Snapshot().Panic || gauge(t, reg, "fulcrum_panic_mode") != 1 {
		t.Fatal("back to 1 of 3 up must be panic mode again")
	}
	setHealth(p, 0, true)
	setHealth(p, 1, true)
	if p.Snapshot().Panic || gauge(t, reg, "fulcrum_panic_mode") != 0 {
		t.Fatal("all up: panic mode must be over")
	}
}

// TestPanicModeFromActiveChecks runs the real checker (TCP checks against
// real loopback sockets) on the fake clock: three of four backends refuse
// connections, the checker marks them down, and the pool enters panic mode;
// an ejection of the last one by passive checks then leaves none usable.
func TestPanicModeFromActiveChecks(t *testing.T) {
	hosts := []string{listener(t), testutil.ClosedAddr(t), testutil.ClosedAddr(t), testutil.ClosedAddr(t)}
	m, reg := newMetrics()
	p, clk := testPool(t, testCfg(hosts, func(c *config.Pool) {
		c.HealthCheck.UnhealthyThreshold = 2
	}), m)
	p.Start(t.Context())

	// Every runner parks on a fake timer; step the clock one interval at a
	// time until the verdicts settle (bounded by real time).
	deadline := time.Now().Add(10 * time.Second)
	for !p.Snapshot().Panic {
		if time.Now().After(deadline) {
			t.Fatalf("no panic mode; usable=%v", usableHosts(p.Snapshot(), clk.Now()))
		}
		clk.WaitPending(len(hosts), 200*time.Millisecond)
		clk.Advance(time.Second)
	}
	snap := p.Snapshot()
	if snap.Usable != 1 || gauge(t, reg, "fulcrum_panic_mode") != 1 {
		t.Fatalf("Usable=%d gauge=%v, want 1 and 1", snap.Usable, gauge(t, reg, "fulcrum_panic_mode"))
	}
	for _, h := range hosts[1:] {
		if backendErrors(t, reg, h, "health_check") < 2 {
			t.Errorf("%s: health_check errors = %v, want >= 2", h, backendErrors(t, reg, h, "health_check"))
		}
	}
	if got := picks(t, p, 100); len(got) != 4 {
		t.Fatalf("panic picks reached %v, want all 4", got)
	}

	// Passive checks eject the last usable backend: none usable, no panic.
	mem := snap.Members[0]
	for i := 0; i < 3; i++ {
		p.Observe(mem, true)
	}
	eventually(t, 5*time.Second, "snapshot without the ejected backend", func() bool { return p.Snapshot().Usable == 0 })
	if p.Snapshot().Panic || gauge(t, reg, "fulcrum_panic_mode") != 0 {
		t.Fatal("none usable must not be panic mode")
	}
	if _, err := p.Snapshot().Picker.Pick(nil); !errors.Is(err, balance.ErrNoBackend) {
		t.Fatalf("Pick err = %v, want ErrNoBackend", err)
	}
}

// TestSnapshotIsImmutable checks that a published snapshot does not change
// when a later one is built: a request that loaded it must see the same
// Backend values from start to end (P4). It also runs readers concurrently
// with rebuilds so that the race detector sees the request path's reads.
func TestSnapshotIsImmutable(t *testing.T) {
	p, clk := testPool(t, testCfg(hostsN(3), func(c *config.Pool) { c.SlowStart = 10 * time.Second }), nil)
	old := p.Snapshot()
	before := make([]*Member, len(old.Members))
	backends := make([]any, len(old.Members))
	for i, m := range old.Members {
		before[i] = m
		backends[i] = m.Backend
	}
	clk.Advance(5 * time.Second)
	setHealth(p, 1, false)
	for i, m := range old.Members {
		if m != before[i] || any(m.Backend) != backends[i] {
			t.Fatalf("old snapshot's member %d changed after a rebuild (Backend %p -> %p)", i, backends[i], m.Backend)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				snap := p.Snapshot()
				for _, m := range snap.Members {
					_ = m.Backend.EffectiveWeight + m.Backend.Index
				}
				_ = p.Statuses()
			}
		}()
	}
	for i := 0; i < 200; i++ {
		clk.Advance(10 * time.Millisecond)
		setHealth(p, i%3, i%2 == 0)
		p.mu.Lock()
		p.rebuildLocked()
		p.mu.Unlock()
	}
	close(stop)
	wg.Wait()
}
