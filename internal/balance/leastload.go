package balance

import (
	"sync/atomic"
	"time"

	"fulcrum/internal/backend"
)

// leastLoad serves least_connections and least_response_time.
//
// Design: a tournament tree over the backends. Leaf i is backend slot i (the
// leaves are implicit); each internal node holds, in one atomic word, the
// slot that wins its subtree and a version. A backend's rank is its load
// (see less), then the picker sequence number of its last pick (the least
// recently picked wins, so ties rotate), then its slot. The root holds the
// best backend, so Pick reads it in O(1).
//
// The picker is the load observer of every backend's State: Acquire,
// Release and ObserveLatency call LoadChanged, which recomputes the
// backend's path to the root, O(log n). Pick stamps the winner's last-pick
// sequence and recomputes its path too, so consecutive picks rotate even if
// the caller has not acquired yet.
//
// Each node is recomputed with load, read both children, compare-and-swap
// with the version bumped, retrying if the CAS fails. The version defeats
// ABA (same winner, different loads). Whoever changes a rank then recomputes
// the nodes above it (up to the first one its change cannot affect, see
// update), and a CAS only succeeds if no other recomputation of the node
// succeeded since its load; so once all updates have returned every node is
// exact (TestConcurrent checks it). Sequential use is exact, and under
// concurrency a pick can only be stale by updates still in progress. The
// retry loop is lock-free: a failed CAS means another one succeeded.
type leastLoad struct {
	slots []loadSlot
	lrt   bool // least_response_time ranking; least_connections otherwise
	// size is the number of leaves, a power of two >= len(slots); node k's
	// children are 2k and 2k+1, leaf i is node size+i, the root is node 1.
	size  int
	nodes []atomic.Uint64 // [1, size): winner slot (low 32 bits, int32) | version << 32
	_     cacheLinePad
	seq   atomic.Uint64 // pick sequence for lastPick
}

type loadSlot struct {
	b  *backend.Backend
	st *backend.State
	w  int64
	// lastPick is the picker's seq at this backend's last pick (0 = never).
	lastPick atomic.Uint64
	_        [32]byte // one slot per cache line: Pick writes lastPick
}

var (
	_ Picker           = (*leastLoad)(nil)
	_ backend.Observer = (*leastLoad)(nil)
)

// lrtEpsilon is added to the EWMA in least_response_time scores so that the
// in-flight count still counts for very fast backends and sub-100µs noise
// does not dominate the ranking.
const lrtEpsilon = int64(100 * time.Microsecond)

func buildLeastConnections(backends []*backend.Backend, _ Rand) Picker {
	if p, ok := trivial(backends); ok {
		return p
	}
	return newLeastLoad(backends, false)
}

func buildLeastResponseTime(backends []*backend.Backend, _ Rand) Picker {
	if p, ok := trivial(backends); ok {
		return p
	}
	return newLeastLoad(backends, true)
}

func newLeastLoad(backends []*backend.Backend, lrt bool) *leastLoad {
	n := len(backends)
	size := 1
	for size < n {
		size <<= 1
	}
	p := &leastLoad{
		slots: make([]loadSlot, n),
		lrt:   lrt,
		size:  size,
		nodes: make([]atomic.Uint64, size),
	}
	for i, b := range backends {
		p.slots[i].b, p.slots[i].st, p.slots[i].w = b, b.State, weightOf(b)
	}
	for k := size - 1; k >= 1; k-- {
		p.nodes[k].Store(uint64(uint32(p.better(p.winner(2*k), p.winner(2*k+1)))))
	}
	for i := range p.slots {
		p.slots[i].st.SetObserver(p, i)
	}
	// Loads that changed between the pass above and SetObserver were not
	// notified to p: recompute everything once more, bottom-up.
	for k := size - 1; k >= 1; k-- {
		p.refresh(k)
	}
	return p
}

func (p *leastLoad) Pick(r *Request) (*backend.Backend, error) {
	w := p.winner(1)
	if excluded(r, p.slots[w].b) {
		w = p.bestExcept(w)
	}
	s := &p.slots[w]
	s.lastPick.Store(p.seq.Add(1))
	p.update(w)
	return s.b, nil
}

// LoadChanged implements backend.Observer; State calls it on the request
// path after each change of the backend's in-flight count or latency.
func (p *leastLoad) LoadChanged(slot int) {
	if uint(slot) < uint(len(p.slots)) {
		p.update(int32(slot))
	}
}

// update recomputes the path from slot's leaf towards the root after slot's
// rank changed. It stops early at a node whose winner neither changed nor is
// slot: the nodes above read only that node's winner and the winner's rank,
// and neither changed, so whatever else they need is the job of whoever
// changed it.
func (p *leastLoad) update(slot int32) {
	for k := (p.size + int(slot)) >> 1; k >= 1; k >>= 1 {
		if was, now := p.refresh(k); was == now && now != slot {
			return
		}
	}
}

// refresh recomputes internal node k from its children and returns its
// winner before and after.
func (p *leastLoad) refresh(k int) (was, now int32) {
	for {
		old := p.nodes[k].Load()
		w := p.better(p.winner(2*k), p.winner(2*k+1))
		next := uint64(uint32(w)) | (old>>32+1)<<32
		if p.nodes[k].CompareAndSwap(old, next) {
			return int32(uint32(old)), w
		}
	}
}

// winner is the winning slot of node k, or -1 for a padding leaf.
func (p *leastLoad) winner(k int) int32 {
	if k >= p.size {
		if s := k - p.size; s < len(p.slots) {
			return int32(s)
		}
		return -1
	}
	return int32(uint32(p.nodes[k].Load()))
}

// bestExcept is the best slot other than x (len(slots) >= 2): the best of
// the winners of the siblings along x's path, O(log n).
func (p *leastLoad) bestExcept(x int32) int32 {
	best := int32(-1)
	for k := p.size + int(x); k > 1; k >>= 1 {
		best = p.better(best, p.winner(k^1))
	}
	if best < 0 {
		return x
	}
	return best
}

// better returns the better ranked of slots a and b; -1 means none.
func (p *leastLoad) better(a, b int32) int32 {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	case p.less(b, a):
		return b
	}
	return a
}

// less reports whether slot a ranks strictly before slot b. The order is
// total: load, then least recently picked, then lower slot.
//
// least_connections load is inflight/weight, compared as
// inflight_a*w_b < inflight_b*w_a (exact, no float).
//
// least_response_time load is, in this order of classes:
//  0. no latency sample yet (new or recovered backend) and nothing in
//     flight: a probe, preferred to everything so the backend gets tried;
//  1. a sample: score (EWMA+lrtEpsilon)*(inflight+1)/weight;
//  2. no sample but requests in flight: after every sampled backend, by
//     inflight/weight, so a probe is not flooded before its first sample.
//     When no backend has a sample yet (start-up) this is least_connections.
func (p *leastLoad) less(a, b int32) bool {
	sa, sb := &p.slots[a], &p.slots[b]
	ia, ib := max(sa.st.Inflight(), 0), max(sb.st.Inflight(), 0)
	if p.lrt {
		ea, eb := int64(sa.st.EWMA()), int64(sb.st.EWMA())
		ca, cb := lrtClass(ea, ia), lrtClass(eb, ib)
		if ca != cb {
			return ca < cb
		}
		switch ca {
		case 1:
			x := float64(ea+lrtEpsilon) * float64(ia+1) * float64(sb.w)
			y := float64(eb+lrtEpsilon) * float64(ib+1) * float64(sa.w)
			if x != y {
				return x < y
			}
		case 2:
			if x, y := ia*sb.w, ib*sa.w; x != y {
				return x < y
			}
		}
	} else if x, y := ia*sb.w, ib*sa.w; x != y {
		return x < y
	}
	if la, lb := sa.lastPick.Load(), sb.lastPick.Load(); la != lb {
		return la < lb
	}
	return a < b
}

func lrtClass(ewma, inflight int64) int {
	switch {
	case ewma > 0:
		return 1
	case inflight == 0:
		return 0
	}
	return 2
}
