package balance

import (
	"math/bits"
	"math/rand/v2"

	"fulcrum/internal/backend"
)

// NewRand returns the production random source: math/rand/v2's top-level
// generator (per-thread ChaCha8 state in the runtime), safe for concurrent
// use without a lock.
func NewRand() Rand { return globalRand{} }

type globalRand struct{}

func (globalRand) Uint64() uint64 { return rand.Uint64() }

// aliasTable draws slot i with probability w_i/sum(w) in O(1) (Vose's alias
// method). Column c keeps c when the draw's fraction is below prob[c] and
// gives alias[c] otherwise.
type aliasTable struct {
	prob  []uint64 // threshold scaled to 2^64; full columns alias themselves
	alias []int32
}

// newAliasTable builds the table in exact integer arithmetic: each column
// holds sum(w) units, backend i brings w_i*n of them.
func newAliasTable(w []int64) aliasTable {
	n := int64(len(w))
	t := aliasTable{prob: make([]uint64, n), alias: make([]int32, n)}
	var total int64
	for _, x := range w {
		total += x
	}
	units := make([]int64, n)
	var small, large []int32
	for i, x := range w {
		units[i] = x * n // x <= maxWeight
		if units[i] < total {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s := small[len(small)-1]
		small = small[:len(small)-1]
		l := large[len(large)-1]
		t.prob[s], _ = bits.Div64(uint64(units[s]), 0, uint64(total))
		t.alias[s] = l
		units[l] -= total - units[s]
		if units[l] < total {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// What is left is full (exactly, in integers: the units add up).
	for _, s := range append(small, large...) {
		t.prob[s], t.alias[s] = ^uint64(0), s
	}
	return t
}

// draw maps one uniform 64-bit value to a slot: the high word of r*n is the
// column (uniform), the low word is a uniform fraction for the coin.
func (t *aliasTable) draw(r uint64) int32 {
	col, frac := bits.Mul64(r, uint64(len(t.prob)))
	if frac < t.prob[col] {
		return int32(col)
	}
	return t.alias[col]
}

func weightsOf(backends []*backend.Backend) []int64 {
	w := make([]int64, len(backends))
	for i, b := range backends {
		w[i] = weightOf(b)
	}
	return w
}

// randomPicker serves random: each pick draws a backend with probability
// proportional to its weight, one Rand call, O(1).
type randomPicker struct {
	backends []*backend.Backend
	table    aliasTable
	rnd      Rand
}

var _ Picker = (*randomPicker)(nil)

func buildRandom(backends []*backend.Backend, rnd Rand) Picker {
	if p, ok := trivial(backends); ok {
		return p
	}
	if rnd == nil {
		rnd = NewRand()
	}
	return &randomPicker{
		backends: append([]*backend.Backend(nil), backends...),
		table:    newAliasTable(weightsOf(backends)),
		rnd:      rnd,
	}
}

func (p *randomPicker) Pick(r *Request) (*backend.Backend, error) {
	i := p.table.draw(p.rnd.Uint64())
	if b := p.backends[i]; !excluded(r, b) {
		return b, nil
	}
	return p.backends[(int(i)+1)%len(p.backends)], nil
}

// powerOfTwo serves power_of_two: draw two distinct backends and take the
// one with the lower inflight/weight (the first on a tie). The first is drawn
// by weight; the second by weight too, and if it hits the first, again
// uniformly among the n-1 others (the draw is from n-1 and skips over the
// first, so no neighbour is favoured, unlike a "+1 on collision"). With equal
// weights the second choice is exactly uniform over the others. O(1), two or
// three Rand calls (one more on a retry whose excluded backend was the
// lighter of the pair).
type powerOfTwo struct {
	slots []p2cSlot
	table aliasTable
	rnd   Rand
}

type p2cSlot struct {
	b *backend.Backend
	w int64
}

var _ Picker = (*powerOfTwo)(nil)

func buildPowerOfTwo(backends []*backend.Backend, rnd Rand) Picker {
	if p, ok := trivial(backends); ok {
		return p
	}
	if rnd == nil {
		rnd = NewRand()
	}
	p := &powerOfTwo{
		slots: make([]p2cSlot, len(backends)),
		table: newAliasTable(weightsOf(backends)),
		rnd:   rnd,
	}
	for i, b := range backends {
		p.slots[i] = p2cSlot{b: b, w: weightOf(b)}
	}
	return p
}

func (p *powerOfTwo) Pick(r *Request) (*backend.Backend, error) {
	i, j := p.pair()
	if p.lighter(j, i) {
		i, j = j, i
	}
	if !excluded(r, p.slots[i].b) {
		return p.slots[i].b, nil
	}
	// The lighter one is excluded (a retry): the choice is again between
	// two, j and a third drawn uniformly from the rest, so a retry does not
	// land on a loaded backend just because it was paired with the excluded
	// one.
	if n := len(p.slots); n > 2 {
		hi, _ := bits.Mul64(p.rnd.Uint64(), uint64(n-2))
		k := int32(hi)
		lo, up := min(i, j), max(i, j)
		if k >= lo {
			k++
		}
		if k >= up {
			k++
		}
		if p.lighter(k, j) {
			j = k
		}
	}
	return p.slots[j].b, nil
}

// lighter reports whether slot x carries less load per weight than slot y.
func (p *powerOfTwo) lighter(x, y int32) bool {
	a, b := &p.slots[x], &p.slots[y]
	la, lb := max(a.b.State.Inflight(), 0), max(b.b.State.Inflight(), 0)
	return la*b.w < lb*a.w
}

// pair draws the two distinct candidates.
func (p *powerOfTwo) pair() (int32, int32) {
	i := p.table.draw(p.rnd.Uint64())
	j := p.table.draw(p.rnd.Uint64())
	if j == i {
		hi, _ := bits.Mul64(p.rnd.Uint64(), uint64(len(p.slots)-1))
		if j = int32(hi); j >= i {
			j++
		}
	}
	return i, j
}
