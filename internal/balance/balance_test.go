package balance

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fulcrum/internal/backend"
)

// strategies is the configured vocabulary (config.Strategies); kept literal
// here so this package's tests do not depend on config's.
var strategies = []string{
	"round_robin", "weighted_round_robin", "least_connections",
	"least_response_time", "ip_hash", "random", "power_of_two", "consistent_hash",
}

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if leaked := leakedGoroutines(); leaked != "" {
			fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", leaked)
			code = 1
		}
	}
	os.Exit(code)
}

// leakedGoroutines returns the stacks of goroutines still running test code.
// Goroutines that called wg.Done may still be unwinding, so it retries briefly.
func leakedGoroutines() string {
	var leaked []string
	for try := 0; try < 50; try++ {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		leaked = leaked[:0]
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "internal/balance.") && !strings.Contains(g, "leakedGoroutines") &&
				!strings.Contains(g, "TestMain") {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) == 0 {
			return ""
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	return strings.Join(leaked, "\n\n")
}

// mkBackends returns backends named b0, b1, … with the given weights
// (EffectiveWeight = Weight) and fresh States.
func mkBackends(weights ...int) []*backend.Backend {
	out := make([]*backend.Backend, len(weights))
	for i, w := range weights {
		key := fmt.Sprintf("http://10.0.%d.%d:8080", i/256, i%256)
		out[i] = &backend.Backend{
			URL: key, Host: strings.TrimPrefix(key, "http://"), Key: key,
			KeyHash: HashString(key), Weight: w, EffectiveWeight: w, Index: i,
			State: backend.NewState(epoch),
		}
	}
	return out
}

func equalWeights(n int) []int {
	w := make([]int, n)
	for i := range w {
		w[i] = 1
	}
	return w
}

// seqRand is a deterministic, lock-free Rand for tests: splitmix64.
type seqRand struct{ s atomic.Uint64 }

func newSeqRand(seed uint64) *seqRand {
	r := &seqRand{}
	r.s.Store(seed)
	return r
}

func (r *seqRand) Uint64() uint64 { return mix64(r.s.Add(0x9e3779b97f4a7c15)) }

func build(t testing.TB, name string, bs []*backend.Backend, rnd Rand) Picker {
	t.Helper()
	b, ok := Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%q) failed", name)
	}
	return b(bs, rnd)
}

func mustPick(t testing.TB, p Picker, r *Request) *backend.Backend {
	b, err := p.Pick(r)
	if err != nil || b == nil {
		t.Helper() // only here: it is costly in loops of 100k picks
		t.Fatalf("Pick = %v, %v", b, err)
	}
	return b
}

func TestLookup(t *testing.T) {
	t.Parallel()
	for _, name := range strategies {
		if b, ok := Lookup(name); !ok || b == nil {
			t.Errorf("Lookup(%q) = %v, %v", name, b, ok)
		}
	}
	if len(builders) != len(strategies) {
		t.Errorf("registry has %d strategies, want %d", len(builders), len(strategies))
	}
	for _, name := range []string{"", "least_conn", "ROUND_ROBIN", "hash"} {
		if _, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) succeeded", name)
		}
	}
}

func TestEmptySnapshot(t *testing.T) {
	t.Parallel()
	for _, name := range strategies {
		for _, bs := range [][]*backend.Backend{nil, {}} {
			p := build(t, name, bs, newSeqRand(1))
			for _, r := range []*Request{nil, {}, {Hash: 7, HasHash: true}} {
				if b, err := p.Pick(r); b != nil || !errors.Is(err, ErrNoBackend) {
					t.Errorf("%s: Pick = %v, %v; want nil, ErrNoBackend", name, b, err)
				}
			}
		}
	}
}

func TestSingleBackend(t *testing.T) {
	t.Parallel()
	for _, name := range strategies {
		bs := mkBackends(3)
		p := build(t, name, bs, newSeqRand(1))
		for _, r := range []*Request{nil, {}, {Hash: 7, HasHash: true}, {Exclude: bs[0]}} {
			if b := mustPick(t, p, r); b != bs[0] {
				t.Errorf("%s: Pick(%+v) = %v", name, r, b.Key)
			}
		}
	}
}

// TestNilRequestAndRand: a nil Request is the zero Request, a nil Rand is NewRand().
func TestNilRequestAndRand(t *testing.T) {
	t.Parallel()
	for _, name := range strategies {
		bs := mkBackends(1, 2, 3)
		p := build(t, name, bs, nil)
		for range 100 {
			mustPick(t, p, nil)
		}
	}
}

func TestNewRand(t *testing.T) {
	t.Parallel()
	r := NewRand()
	seen := make(map[uint64]bool)
	for range 1000 {
		seen[r.Uint64()] = true
	}
	if len(seen) < 999 {
		t.Errorf("NewRand produced %d distinct values out of 1000", len(seen))
	}
}

// TestExclude: with two or more backends no strategy returns the excluded
// one, whatever the request and the load. An Exclude from an older snapshot
// (same State, other Backend value) matches too.
func TestExclude(t *testing.T) {
	t.Parallel()
	for _, name := range strategies {
		for _, n := range []int{2, 3, 10} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				t.Parallel()
				weights := make([]int, n)
				for i := range weights {
					weights[i] = i%3 + 1
				}
				bs := mkBackends(weights...)
				p := build(t, name, bs, newSeqRand(2))
				for x := range bs {
					old := *bs[x] // the same backend in an earlier snapshot
					for _, ex := range []*backend.Backend{bs[x], &old} {
						for i := range 300 {
							r := &Request{Exclude: ex, Hash: uint64(i) * 0x9e3779b97f4a7c15, HasHash: i%2 == 0}
							b := mustPick(t, p, r)
							if b.State == bs[x].State {
								t.Fatalf("pick %d returned the excluded backend %s", i, b.Key)
							}
							if i%5 != 0 { // build up some load
								b.State.Acquire()
							}
						}
					}
				}
			})
		}
	}
}

// TestConcurrent hammers every strategy from many goroutines under -race:
// every in-flight count returns to zero and, for the tree pickers, the tree
// is exact once everything has returned.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	const goroutines, iterations = 16, 2000
	for _, name := range strategies {
		for _, n := range []int{3, 100} {
			t.Run(fmt.Sprintf("%s/%d", name, n), func(t *testing.T) {
				t.Parallel()
				weights := make([]int, n)
				for i := range weights {
					weights[i] = i%4 + 1
				}
				bs := mkBackends(weights...)
				p := build(t, name, bs, newSeqRand(3))
				var wg sync.WaitGroup
				for g := range goroutines {
					wg.Go(func() {
						rnd := newSeqRand(uint64(g))
						var held []*backend.Backend
						for i := range iterations {
							r := &Request{Hash: rnd.Uint64(), HasHash: i%3 != 0}
							if i%7 == 0 {
								r.Exclude = bs[i%n]
							}
							b, err := p.Pick(r)
							if err != nil {
								t.Error(err)
								return
							}
							b.State.Acquire()
							held = append(held, b)
							if len(held) > 4 || i%2 == 0 {
								h := held[0]
								held = held[1:]
								h.State.ObserveLatency(time.Duration(1+rnd.Uint64()%5000)*time.Microsecond, epoch)
								h.State.Release(i%11 == 0)
							}
						}
						for _, h := range held {
							h.State.Release(false)
						}
					})
				}
				wg.Wait()
				for _, b := range bs {
					if got := b.State.Inflight(); got != 0 {
						t.Errorf("%s: inflight = %d after all releases", b.Key, got)
					}
				}
				if ll, ok := p.(*leastLoad); ok {
					checkTree(t, ll)
				}
			})
		}
	}
}

// checkTree verifies that every node of a quiescent tree holds the better of
// its children, and that the root is the best backend by brute force.
func checkTree(t *testing.T, p *leastLoad) {
	t.Helper()
	for k := 1; k < p.size; k++ {
		if got, want := p.winner(k), p.better(p.winner(2*k), p.winner(2*k+1)); got != want {
			t.Errorf("node %d holds slot %d, its children say %d", k, got, want)
		}
	}
	best := int32(0)
	for s := int32(1); s < int32(len(p.slots)); s++ {
		if p.less(s, best) {
			best = s
		}
	}
	if root := p.winner(1); root != best {
		t.Errorf("root is slot %d, brute force says %d", root, best)
	}
}

func TestWeightOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		weight, effective int
		want              int64
	}{
		{5, 5, 5},
		{5, 2, 2}, // slow start
		{5, 0, 5}, // unset effective weight
		{0, 0, 1},
		{-3, -3, 1},
		{1 << 30, 1 << 30, maxWeight},
	} {
		b := &backend.Backend{Weight: tc.weight, EffectiveWeight: tc.effective}
		if got := weightOf(b); got != tc.want {
			t.Errorf("weightOf(%d, %d) = %d, want %d", tc.weight, tc.effective, got, tc.want)
		}
	}
}

// pickCounts picks n times and counts picks per backend index.
func pickCounts(t testing.TB, p Picker, nb, n int, r *Request) []int {
	t.Helper()
	counts := make([]int, nb)
	for range n {
		counts[mustPick(t, p, r).Index]++
	}
	return counts
}

// chiSquare is sum((obs-exp)^2/exp) for expected shares proportional to w.
func chiSquare(counts []int, w []float64) float64 {
	var total, wsum float64
	for i := range counts {
		total += float64(counts[i])
		wsum += w[i]
	}
	var x float64
	for i, c := range counts {
		exp := total * w[i] / wsum
		x += (float64(c) - exp) * (float64(c) - exp) / exp
	}
	return x
}
