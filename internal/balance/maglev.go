package balance

import (
	"cmp"
	"slices"

	"fulcrum/internal/backend"
)

// maglevSizes are the lookup-table sizes, primes; a snapshot of n backends
// uses the smallest one >= 100*n (the paper's M >> N guidance, which keeps
// the imbalance to about 1%), and the largest for bigger pools.
var maglevSizes = [...]uint64{65537, 131071, 262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213}

// maglevMaxProbe bounds the walk an Exclude triggers in maglevPicker.Pick.
const maglevMaxProbe = 64

// maglevPicker serves ip_hash and consistent_hash: Request.Hash indexes a
// Maglev lookup table (Eisenbud et al., "Maglev: A Fast and Reliable Software
// Network Load Balancer", NSDI 2016, section 3.4), O(1).
//
// The table is built once per snapshot. Backends are ordered by (weight
// descending, KeyHash, Key), so the table depends only on the set of
// backends and their weights, never on slice order. Each backend's preference
// list is the permutation offset + j*skip (mod M), with offset and skip
// derived from KeyHash and M prime. Backends take turns claiming their next
// free preferred entry until the table is full; a backend of weight w takes w
// turns per round, interleaved (turn t of a round goes to every backend whose
// weight exceeds t), so table shares follow weights. Removing one of 10
// backends moves its keys and under 1% of the others' (TestHashRemoveRestore
// measures 0.2-0.5%); adding it back restores the identical table.
//
// Build cost is O(M log M) probes of a bitmap (M = 131071 entries for 1000
// backends: a few ms); the table is 4*M bytes.
//
// Weights are EffectiveWeight, so slow start reshuffles some keys at each
// rebuild step. A request without HasHash is served round robin in
// configured order. With Exclude, the next table entries are tried, so a
// key's retries go to a stable second choice.
type maglevPicker struct {
	slots []*backend.Backend // table order
	table []int32            // entry -> slot
	rr    *roundRobin        // requests without a hash
}

var _ Picker = (*maglevPicker)(nil)

func buildHash(backends []*backend.Backend, _ Rand) Picker {
	if p, ok := trivial(backends); ok {
		return p
	}
	slots := slices.Clone(backends)
	slices.SortFunc(slots, func(a, b *backend.Backend) int {
		return cmp.Or(
			cmp.Compare(weightOf(b), weightOf(a)),
			cmp.Compare(a.KeyHash, b.KeyHash),
			cmp.Compare(a.Key, b.Key),
		)
	})
	keys := make([]uint64, len(slots))
	for i, b := range slots {
		keys[i] = b.KeyHash
	}
	return &maglevPicker{
		slots: slots,
		table: maglevTable(keys, reduceGCD(weightsOf(slots)), maglevSize(len(slots))),
		rr:    newRoundRobin(backends),
	}
}

func maglevSize(n int) uint64 {
	for _, m := range maglevSizes {
		if m >= 100*uint64(n) {
			return m
		}
	}
	return maglevSizes[len(maglevSizes)-1]
}

// maglevTable populates a table of m entries (m prime, > len(keys)). Slots
// must be sorted by weight descending. A bitmap of taken entries (m/8 bytes,
// cache-resident) serves the probing, so only claims touch the table.
func maglevTable(keys []uint64, weights []int64, m uint64) []int32 {
	n := len(keys)
	table := make([]int32, m)
	taken := make([]uint64, (m+63)/64)
	next := make([]uint64, n) // next preferred entry
	skip := make([]uint64, n)
	for i, k := range keys {
		next[i] = mix64(k^0x6a09e667f3bcc908) % m
		skip[i] = mix64(k^0xbb67ae8584caa73b)%(m-1) + 1
	}
	filled := uint64(0)
	for filled < m {
		// One round: turn t goes to the prefix of slots with weight > t.
		end := n
		for t := int64(0); end > 0 && filled < m; t++ {
			for end > 0 && weights[end-1] <= t {
				end--
			}
			for i := 0; i < end && filled < m; i++ {
				c, s := next[i], skip[i]
				for taken[c>>6]&(1<<(c&63)) != 0 {
					if c += s; c >= m {
						c -= m
					}
				}
				taken[c>>6] |= 1 << (c & 63)
				table[c] = int32(i)
				if c += s; c >= m {
					c -= m
				}
				next[i] = c
				filled++
			}
		}
	}
	return table
}

func (p *maglevPicker) Pick(r *Request) (*backend.Backend, error) {
	if r == nil || !r.HasHash {
		return p.rr.Pick(r)
	}
	m := uint64(len(p.table))
	e := r.Hash % m
	s := p.table[e]
	if b := p.slots[s]; !excluded(r, b) {
		return b, nil
	}
	for range maglevMaxProbe {
		if e++; e == m {
			e = 0
		}
		if t := p.table[e]; t != s {
			return p.slots[t], nil
		}
	}
	return p.slots[(int(s)+1)%len(p.slots)], nil
}
