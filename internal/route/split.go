package route

import "sync/atomic"

// split is the smooth weighted round robin of one split route, the one
// nginx uses (ngx_http_upstream_get_peer): on each pick every target's
// current weight grows by its weight, the largest (first on ties) is chosen
// and loses the total. The sequence is periodic with period
// sum(weights)/gcd(weights), so it is computed once at compile time and a
// pick is one atomic increment: lock-free, 0 allocations, and exact over
// every period (95/5 gives 95 and 5 in any 100 consecutive picks that start
// a period, and never more than one pick away from the ideal share).
type split struct {
	targets []SplitTarget
	cycle   []uint8 // index into targets; maxSplitTargets <= 256
	next    atomic.Uint64
}

func newSplit(ts []SplitTarget) *split {
	s := &split{targets: append([]SplitTarget(nil), ts...)}
	g := 0
	for _, t := range ts {
		g = gcd(g, t.Weight)
	}
	total := 0
	w := make([]int, len(ts))
	for i, t := range ts {
		w[i] = t.Weight / g
		total += w[i]
	}
	cur := make([]int, len(ts))
	s.cycle = make([]uint8, total)
	for k := range s.cycle {
		best := 0
		for i := range cur {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		s.cycle[k] = uint8(best)
	}
	return s
}

// pick returns the next pool of the cycle. Concurrent picks each get a
// distinct position of the sequence.
func (s *split) pick() string {
	n := s.next.Add(1) - 1
	return s.targets[s.cycle[n%uint64(len(s.cycle))]].Pool
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
