package balance

import (
	"slices"
	"sync/atomic"

	"fulcrum/internal/backend"
)

// roundRobin serves round_robin: a strict rotation in configured order driven
// by one atomic counter, starting at the first backend. With n backends every
// n consecutive picks (from one goroutine, or in counter order) hit each
// backend once.
type roundRobin struct {
	backends []*backend.Backend
	_        cacheLinePad
	next     atomic.Uint64
}

var _ Picker = (*roundRobin)(nil)

func buildRoundRobin(backends []*backend.Backend, _ Rand) Picker {
	if p, ok := trivial(backends); ok {
		return p
	}
	return newRoundRobin(backends)
}

func newRoundRobin(backends []*backend.Backend) *roundRobin {
	return &roundRobin{backends: slices.Clone(backends)}
}

func (p *roundRobin) Pick(r *Request) (*backend.Backend, error) {
	c := p.next.Add(1) - 1
	n := uint64(len(p.backends))
	i := c % n
	if b := p.backends[i]; !excluded(r, b) {
		return b, nil
	}
	return p.backends[skipOver(i, c, n)], nil
}

// skipOver returns a slot other than i out of n > 1, spread over the others
// by the counter value c so that retries away from one backend do not all
// land on its neighbour.
func skipOver(i, c, n uint64) uint64 {
	if n < 2 {
		return i
	}
	return (i + 1 + c%(n-1)) % n
}

// maxCycle caps the precomputed weighted_round_robin cycle (entries).
const maxCycle = 1 << 16

// weightedRoundRobin serves weighted_round_robin: nginx's smooth weighted
// round robin (ngx_http_upstream_get_peer in
// ngx_http_upstream_round_robin.c). The algorithm is deterministic and
// periodic: with weights reduced by their gcd, after sum(weights) picks every
// backend has been picked exactly weight times and all current weights are
// back to zero. So the whole cycle is computed at build time and a pick is
// one atomic increment and an index.
//
// If sum(weights)/gcd exceeds maxCycle, the weights are first scaled down
// proportionally (each kept >= 1) so the cycle fits; the sequence is then
// nginx's for the scaled weights. Equal weights give plain round robin.
type weightedRoundRobin struct {
	backends []*backend.Backend
	seq      []int32 // slots into backends, one nginx cycle
	_        cacheLinePad
	next     atomic.Uint64
}

var _ Picker = (*weightedRoundRobin)(nil)

func buildWeightedRoundRobin(backends []*backend.Backend, _ Rand) Picker {
	if p, ok := trivial(backends); ok {
		return p
	}
	w := make([]int64, len(backends))
	for i, b := range backends {
		w[i] = weightOf(b)
	}
	w = cycleWeights(w, maxCycle)
	if !slices.ContainsFunc(w, func(x int64) bool { return x != 1 }) {
		return newRoundRobin(backends)
	}
	return &weightedRoundRobin{backends: slices.Clone(backends), seq: smoothCycle(w)}
}

func (p *weightedRoundRobin) Pick(r *Request) (*backend.Backend, error) {
	c := p.next.Add(1) - 1
	s := uint64(p.seq[c%uint64(len(p.seq))])
	if b := p.backends[s]; !excluded(r, b) {
		return b, nil
	}
	return p.backends[skipOver(s, c, uint64(len(p.backends)))], nil
}

// cycleWeights divides w (all >= 1) by its gcd and, if the sum still exceeds
// limit (raised to 2*len(w) for huge pools), scales it down proportionally,
// keeping every weight >= 1, so that the sum is at most limit. It returns a
// new slice.
func cycleWeights(w []int64, limit int64) []int64 {
	n := int64(len(w))
	limit = max(limit, 2*n)
	out := reduceGCD(w)
	var sum int64
	for _, x := range out {
		sum += x // each <= maxWeight, so no overflow for any realistic n
	}
	if sum <= limit {
		return out
	}
	// floor(x*target/sum) summed is <= target; the max(…, 1) adds at most n.
	target := limit - n
	for i, x := range out {
		out[i] = max(1, x*target/sum) // x <= maxWeight: no overflow
	}
	return reduceGCD(out)
}

func reduceGCD(w []int64) []int64 {
	var g int64
	for _, x := range w {
		a, b := g, x
		for b != 0 {
			a, b = b, a%b
		}
		g = a
	}
	out := make([]int64, len(w))
	for i, x := range w {
		out[i] = x / g
	}
	return out
}

// smoothCycle returns one full cycle of nginx's smooth weighted round robin
// over weights w (reduced, all >= 1): sum(w) slots.
//
// nginx adds each weight to its backend's current weight, picks the first
// backend with the highest current weight and subtracts the total from it.
// After t steps backend i's current weight before the subtraction is
// w_i*t - S*k_i, where S = sum(w) and k_i counts its earlier picks. Backends
// with the same weight are therefore picked in rotation (lowest slot among
// those picked least), so only one candidate per distinct weight has to be
// compared: O(S * distinct weights) instead of O(S * n). With maxCycle = 2^16,
// distinct weights are at most ~360, and usually a handful.
func smoothCycle(w []int64) []int32 {
	// Per distinct weight: its members (ascending slots), the one whose turn
	// it is, and its current weight w*t - S*(rounds completed).
	var (
		members [][]int32
		next    []int
		cand    []int32
		weight  []int64
		cur     []int64
	)
	byWeight := make(map[int64]int)
	var total int64
	for i, x := range w {
		total += x
		g, ok := byWeight[x]
		if !ok {
			g = len(members)
			byWeight[x] = g
			members = append(members, nil)
			next = append(next, 0)
			cand = append(cand, int32(i))
			weight = append(weight, x)
			cur = append(cur, 0)
		}
		members[g] = append(members[g], int32(i))
	}
	seq := make([]int32, total)
	for t := range seq {
		best, bestSlot, bestCur := 0, int32(0), int64(0)
		for g, c := range cur {
			c += weight[g]
			cur[g] = c
			if g == 0 || c > bestCur || (c == bestCur && cand[g] < bestSlot) {
				best, bestSlot, bestCur = g, cand[g], c
			}
		}
		seq[t] = bestSlot
		if next[best]++; next[best] == len(members[best]) {
			next[best] = 0
			cur[best] -= total // every member has had its pick this round
		}
		cand[best] = members[best][next[best]]
	}
	return seq
}
