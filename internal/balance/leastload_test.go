package balance

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"fulcrum/internal/backend"
)

func acquire(b *backend.Backend, n int) {
	for range n {
		b.State.Acquire()
	}
}

func TestLeastConnectionsPicksMin(t *testing.T) {
	t.Parallel()
	bs := mkBackends(1, 1, 1)
	p := build(t, "least_connections", bs, nil)
	acquire(bs[0], 2)
	acquire(bs[2], 1)
	if b := mustPick(t, p, nil); b != bs[1] {
		t.Fatalf("loads 2,0,1: picked %s", b.Key)
	}
	acquire(bs[1], 3) // loads 2,3,1
	if b := mustPick(t, p, nil); b != bs[2] {
		t.Fatalf("loads 2,3,1: picked %s", b.Key)
	}
	bs[1].State.Release(false)
	bs[1].State.Release(false)
	bs[1].State.Release(false) // loads 2,0,1
	if b := mustPick(t, p, nil); b != bs[1] {
		t.Fatalf("loads 2,0,1 after releases: picked %s", b.Key)
	}
}

func TestLeastConnectionsWeighted(t *testing.T) {
	t.Parallel()
	bs := mkBackends(4, 1)
	p := build(t, "least_connections", bs, nil)
	acquire(bs[0], 3) // 3/4 < 1/1
	acquire(bs[1], 1)
	if b := mustPick(t, p, nil); b != bs[0] {
		t.Fatalf("loads 3/4, 1/1: picked %s", b.Key)
	}
	acquire(bs[0], 2) // 5/4 > 1/1
	if b := mustPick(t, p, nil); b != bs[1] {
		t.Fatalf("loads 5/4, 1/1: picked %s", b.Key)
	}
	// Held requests settle at the weight ratio: 4:1.
	for range 44 {
		acquire(mustPick(t, p, nil), 1)
	}
	if l0, l1 := bs[0].State.Inflight(), bs[1].State.Inflight(); l0 != 40 || l1 != 10 {
		t.Errorf("after 44 more held picks loads are %d, %d; want 40, 10", l0, l1)
	}
}

// TestLeastConnectionsRotatesTies: idle sequential requests rotate like
// round robin, whether or not the caller brackets them.
func TestLeastConnectionsRotatesTies(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"least_connections", "least_response_time"} {
		for _, bracket := range []bool{false, true} {
			bs := mkBackends(1, 3, 2, 1, 1)
			p := build(t, name, bs, nil)
			for cycle := range 4 {
				for i := range bs {
					b := mustPick(t, p, nil)
					if bracket {
						b.State.Acquire()
						b.State.Release(false)
					}
					if b != bs[i] {
						t.Fatalf("%s bracket=%v cycle %d pick %d = %s", name, bracket, cycle, i, b.Key)
					}
				}
			}
		}
	}
	// Among the least loaded, the least recently picked goes first.
	bs := mkBackends(1, 1, 1, 1)
	p := build(t, "least_connections", bs, nil)
	for range 4 {
		mustPick(t, p, nil) // last picks: 0,1,2,3
	}
	acquire(bs[0], 1)
	acquire(bs[2], 1)
	for _, want := range []int{1, 3, 1, 3} {
		if b := mustPick(t, p, nil); b.Index != want {
			t.Fatalf("picked %d, want %d", b.Index, want)
		}
	}
}

// refModel ranks backends the slow, obvious way: sort every candidate.
type refModel struct {
	bs   []*backend.Backend
	lrt  bool
	last []int // sequence number of the last pick, 0 = never
	seq  int
}

func (m *refModel) key(i int) (class int, load float64) {
	st, w := m.bs[i].State, float64(weightOf(m.bs[i]))
	in := float64(st.Inflight())
	if !m.lrt {
		return 0, in / w
	}
	e := st.EWMA()
	switch {
	case e > 0:
		return 1, float64(e+100*time.Microsecond) * (in + 1) / w
	case in == 0:
		return 0, 0
	}
	return 2, in / w
}

func (m *refModel) best() int {
	best := 0
	for i := 1; i < len(m.bs); i++ {
		ci, li := m.key(i)
		cb, lb := m.key(best)
		if ci < cb || (ci == cb && (li < lb || (li == lb && m.last[i] < m.last[best]))) {
			best = i
		}
	}
	return best
}

// TestLeastLoadMatchesModel drives random sequential Acquire/Release/latency
// traffic and checks every pick against the brute-force model.
func TestLeastLoadMatchesModel(t *testing.T) {
	t.Parallel()
	for _, lrt := range []bool{false, true} {
		for _, n := range []int{2, 3, 5, 8, 33} {
			t.Run(fmt.Sprintf("lrt=%v/%d", lrt, n), func(t *testing.T) {
				t.Parallel()
				rng := rand.New(rand.NewPCG(uint64(n), 9))
				w := make([]int, n)
				for i := range w {
					w[i] = 1 + rng.IntN(4)
				}
				bs := mkBackends(w...)
				name := map[bool]string{false: "least_connections", true: "least_response_time"}[lrt]
				p := build(t, name, bs, nil).(*leastLoad)
				m := &refModel{bs: bs, lrt: lrt, last: make([]int, n)}
				var held []*backend.Backend
				for step := range 5000 {
					switch op := rng.IntN(10); {
					case op < 5:
						want := m.best()
						b := mustPick(t, p, nil)
						if b.Index != want {
							for i := range bs {
								c, l := m.key(i)
								t.Logf("%d: class %d load %v last %d/%d ewma %v in %d", i, c, l, m.last[i], p.slots[i].lastPick.Load(), bs[i].State.EWMA(), bs[i].State.Inflight())
							}
							t.Fatalf("step %d: picked %d, model says %d", step, b.Index, want)
						}
						m.seq++
						m.last[want] = m.seq
						b.State.Acquire()
						held = append(held, b)
					case op < 8 && len(held) > 0:
						k := rng.IntN(len(held))
						b := held[k]
						held = append(held[:k], held[k+1:]...)
						if lrt {
							ms := time.Duration(1+rng.IntN(50)) * time.Millisecond
							b.State.ObserveLatency(ms, epoch.Add(time.Duration(step)*time.Second))
						}
						b.State.Release(false)
					case op == 9 && lrt:
						bs[rng.IntN(n)].State.ResetLatency() // not notified...
						// ...so rebuild, as the pool does when a backend recovers.
						p = build(t, name, bs, nil).(*leastLoad)
						m.last = make([]int, n)
						m.seq = 0
					}
				}
				checkTree(t, p)
			})
		}
	}
}

func TestLeastResponseTimePrefersLowerEWMA(t *testing.T) {
	t.Parallel()
	bs := mkBackends(1, 1, 1)
	for i, ms := range []int{10, 5, 20} {
		bs[i].State.ObserveLatency(time.Duration(ms)*time.Millisecond, epoch)
	}
	p := build(t, "least_response_time", bs, nil)
	for range 3 {
		if b := mustPick(t, p, nil); b != bs[1] {
			t.Fatalf("idle with EWMA 10,5,20 ms: picked %s", b.Key)
		}
	}
	// One in flight on the 5 ms backend: (5.1)*2 > 10.1, the 10 ms one wins.
	acquire(bs[1], 1)
	if b := mustPick(t, p, nil); b != bs[0] {
		t.Fatalf("5 ms backend busy: picked %s", b.Key)
	}
	// A slow sample raises the EWMA at once (peak): 10 ms backend -> 40 ms.
	bs[0].State.ObserveLatency(40*time.Millisecond, epoch)
	if b := mustPick(t, p, nil); b != bs[1] {
		t.Fatalf("EWMA 40,5(+1 in flight),20: picked %s", b.Key)
	}
	acquire(bs[1], 3) // 5.1*5 = 25.5 > 20.1
	if b := mustPick(t, p, nil); b != bs[2] {
		t.Fatalf("EWMA 40,5(+4),20: picked %s", b.Key)
	}
}

// TestLeastResponseTimeProbes: a backend without a latency sample gets one
// request, not a flood, then is ranked by its sample.
func TestLeastResponseTimeProbes(t *testing.T) {
	t.Parallel()
	bs := mkBackends(1, 1, 1)
	bs[0].State.ObserveLatency(time.Millisecond, epoch)
	bs[1].State.ObserveLatency(time.Millisecond, epoch)
	acquire(bs[0], 50)
	acquire(bs[1], 50)
	p := build(t, "least_response_time", bs, nil) // bs[2]: new, no sample
	probe := mustPick(t, p, nil)
	if probe != bs[2] {
		t.Fatalf("first pick %s, want the unsampled backend", probe.Key)
	}
	probe.State.Acquire()
	for range 20 {
		b := mustPick(t, p, nil)
		if b == bs[2] {
			t.Fatal("unsampled backend picked again while its probe is in flight")
		}
		b.State.Acquire() // loaded backends get still more loaded
	}
	probe.State.ObserveLatency(2*time.Millisecond, epoch)
	probe.State.Release(false)
	// Now sampled and idle: (2.1)*1 beats (1.1)*(60+1).
	if b := mustPick(t, p, nil); b != bs[2] {
		t.Fatalf("after the probe: picked %s", b.Key)
	}
	// Without any sample at all (start-up) it is least connections.
	fresh := mkBackends(1, 1, 1)
	p = build(t, "least_response_time", fresh, nil)
	for _, want := range []int{0, 1, 2, 0, 1, 2} {
		b := mustPick(t, p, nil)
		if b.Index != want {
			t.Fatalf("start-up pick = %d, want %d", b.Index, want)
		}
		b.State.Acquire()
	}
}

// TestLeastLoadRebuild: a new picker over the same States takes over the
// observers; the old one keeps working from its own picks.
func TestLeastLoadRebuild(t *testing.T) {
	t.Parallel()
	bs := mkBackends(1, 1, 1)
	old := build(t, "least_connections", bs, nil)
	acquire(bs[0], 5)
	acquire(bs[1], 5)
	p := build(t, "least_connections", bs, nil).(*leastLoad)
	if b := mustPick(t, p, nil); b != bs[2] {
		t.Fatalf("new picker picked %s", b.Key)
	}
	acquire(bs[2], 10)
	if b := mustPick(t, p, nil); b == bs[2] {
		t.Fatal("new picker did not see the load change")
	}
	mustPick(t, old, nil)
	checkTree(t, p)
}

func TestTreeShapes(t *testing.T) {
	t.Parallel()
	for n := 2; n <= 17; n++ {
		bs := mkBackends(equalWeights(n)...)
		p := build(t, "least_connections", bs, nil).(*leastLoad)
		for x := range n {
			acquire(bs[x], 1)
		}
		checkTree(t, p)
		for x := range int32(n) {
			got := p.bestExcept(x)
			want := int32(-1)
			for s := range int32(n) {
				if s != x && (want < 0 || p.less(s, want)) {
					want = s
				}
			}
			if got != want {
				t.Errorf("n=%d: bestExcept(%d) = %d, want %d", n, x, got, want)
			}
		}
	}
}
