package balance

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestRoundRobinRotation(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 3, 7} {
		bs := mkBackends(equalWeights(n)...)
		for _, name := range []string{"round_robin", "weighted_round_robin"} {
			p := build(t, name, bs, nil)
			for cycle := range 5 {
				for i := range n {
					if b := mustPick(t, p, &Request{}); b != bs[i] {
						t.Fatalf("%s n=%d cycle %d pick %d = %s, want %s", name, n, cycle, i, b.Key, bs[i].Key)
					}
				}
			}
		}
	}
	if _, ok := buildWeightedRoundRobin(mkBackends(4, 4, 4), nil).(*roundRobin); !ok {
		t.Error("weighted_round_robin with equal weights is not plain round robin")
	}
}

// nginxSWRR is the reference: ngx_http_upstream_get_peer step by step.
type nginxSWRR struct {
	weight, current []int64
}

func (s *nginxSWRR) next() int {
	best, total := -1, int64(0)
	for i := range s.weight {
		s.current[i] += s.weight[i]
		total += s.weight[i]
		if best < 0 || s.current[i] > s.current[best] {
			best = i
		}
	}
	s.current[best] -= total
	return best
}

func newNginx(w []int64) *nginxSWRR {
	return &nginxSWRR{weight: slices.Clone(w), current: make([]int64, len(w))}
}

func TestWeightedRoundRobinNginxOrder(t *testing.T) {
	t.Parallel()
	bs := mkBackends(5, 1, 1)
	p := build(t, "weighted_round_robin", bs, nil)
	var got strings.Builder
	for i := range 14 {
		if i == 7 {
			got.WriteByte('|')
		}
		got.WriteByte("abc"[mustPick(t, p, &Request{}).Index])
	}
	if want := "aabacaa|aabacaa"; got.String() != want {
		t.Errorf("weights 5,1,1 give %s, want %s", got.String(), want)
	}
}

// TestWeightedRoundRobinMatchesNginx compares three cycles of picks with the
// nginx reference for random weight vectors.
func TestWeightedRoundRobinMatchesNginx(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 300 {
		n := 2 + rng.IntN(12)
		w := make([]int, n)
		mult := 1 + rng.IntN(3) // sometimes a common factor
		for i := range w {
			w[i] = mult * (1 + rng.IntN(1+rng.IntN(20)))
		}
		bs := mkBackends(w...)
		p := build(t, "weighted_round_robin", bs, nil)
		ref := newNginx(weightsOf(bs))
		var total int
		for _, x := range w {
			total += x
		}
		for i := range 3 * total {
			want := ref.next()
			if got := mustPick(t, p, &Request{}).Index; got != want {
				t.Fatalf("iter %d weights %v: pick %d = %d, nginx says %d", iter, w, i, got, want)
			}
		}
	}
}

func TestWeightedRoundRobinUsesEffectiveWeight(t *testing.T) {
	t.Parallel()
	bs := mkBackends(5, 5)
	bs[0].EffectiveWeight = 1 // slow start
	counts := pickCounts(t, build(t, "weighted_round_robin", bs, nil), 2, 60, &Request{})
	if counts[0] != 10 || counts[1] != 50 {
		t.Errorf("effective weights 1,5 gave %v picks, want [10 50]", counts)
	}
}

// TestWeightedRoundRobinCap: a pool whose cycle would exceed maxCycle gets
// proportionally scaled weights, still nginx-ordered, every backend present.
func TestWeightedRoundRobinCap(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	w := make([]int, 200)
	for i := range w {
		w[i] = 1 + rng.IntN(1000)
	}
	w[0] = 100000
	bs := mkBackends(w...)
	p := build(t, "weighted_round_robin", bs, nil).(*weightedRoundRobin)
	if len(p.seq) > maxCycle {
		t.Fatalf("cycle length %d > %d", len(p.seq), maxCycle)
	}
	ref := newNginx(cycleWeights(weightsOf(bs), maxCycle))
	for i := range 4096 {
		if got, want := mustPick(t, p, &Request{}).Index, ref.next(); got != want {
			t.Fatalf("pick %d = %d, nginx over scaled weights says %d", i, got, want)
		}
	}
	counts := make([]int, len(bs))
	for _, s := range p.seq {
		counts[s]++
	}
	var total int
	for _, x := range w {
		total += x
	}
	// Each scaled weight is off by less than one unit of the target sum
	// T = maxCycle-n, and the sum by less than n units.
	n, target := float64(len(w)), float64(maxCycle-len(w))
	for i, c := range counts {
		if c < 1 {
			t.Fatalf("backend %d never picked", i)
		}
		share, want := float64(c)/float64(len(p.seq)), float64(w[i])/float64(total)
		if tol := (1 + want*n) / (target - n); share-want > tol || want-share > tol {
			t.Errorf("backend %d (weight %d): share %.6f, want %.6f±%.6f", i, w[i], share, want, tol)
		}
	}
}

func TestCycleWeights(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in    []int64
		limit int64
		want  []int64
	}{
		{[]int64{5, 1, 1}, 100, []int64{5, 1, 1}},
		{[]int64{10, 20, 30}, 100, []int64{1, 2, 3}},
		{[]int64{4, 4}, 100, []int64{1, 1}},
		{[]int64{300, 100}, 100, []int64{3, 1}},
		{[]int64{9000, 1000}, 100, []int64{9, 1}},
		{[]int64{1000, 1, 1}, 100, []int64{96, 1, 1}}, // target 97: floor(97000/1002), 0 -> 1
		{[]int64{997, 2}, 10, []int64{7, 1}},          // target 8: floor(7976/999), 0 -> 1
		{[]int64{6, 6, 6, 6, 6, 6}, 4, []int64{1, 1, 1, 1, 1, 1}},
	} {
		got := cycleWeights(tc.in, tc.limit)
		if !slices.Equal(got, tc.want) {
			t.Errorf("cycleWeights(%v, %d) = %v, want %v", tc.in, tc.limit, got, tc.want)
		}
		var sum int64
		for _, x := range got {
			sum += x
		}
		if sum > max(tc.limit, 2*int64(len(tc.in))) {
			t.Errorf("cycleWeights(%v, %d) sums to %d", tc.in, tc.limit, sum)
		}
	}
}

func TestRoundRobinExcludeSpreads(t *testing.T) {
	t.Parallel()
	bs := mkBackends(equalWeights(4)...)
	for _, name := range []string{"round_robin", "weighted_round_robin"} {
		p := build(t, name, bs, nil)
		counts := pickCounts(t, p, 4, 4*300, &Request{Exclude: bs[1]})
		if counts[1] != 0 {
			t.Errorf("%s: excluded backend picked %d times", name, counts[1])
		}
		// The excluded backend's turns (a quarter) are spread over the others.
		for _, i := range []int{0, 2, 3} {
			if counts[i] < 380 || counts[i] > 420 {
				t.Errorf("%s: counts with exclusion %v, want about 400 each", name, counts)
			}
		}
	}
}

func ExampleLookup() {
	bs := mkBackends(5, 1, 1)
	build, _ := Lookup("weighted_round_robin")
	p := build(bs, nil)
	var seq []string
	for range 7 {
		b, _ := p.Pick(&Request{})
		seq = append(seq, fmt.Sprint(b.Index))
	}
	fmt.Println(strings.Join(seq, " "))
	// Output: 0 0 1 0 2 0 0
}
