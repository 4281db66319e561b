package balance

import "fulcrum/internal/backend"

// HashStrategy reports whether the strategy named in the configuration
// places requests on a consistent-hash table (ip_hash, consistent_hash), so
// that a change of its backends moves some keys to other backends.
func HashStrategy(name string) bool { return name == "ip_hash" || name == "consistent_hash" }

// HashSamples is how many hashes HashMoves compares when the two tables
// differ in size and cannot be compared entry by entry.
const HashSamples = 100000

// HashMove is the effect of a change of backends on the consistent-hash
// table of ip_hash, consistent_hash and sticky source_ip.
type HashMove struct {
	// Moved of Of table entries (or sampled hashes) map to a backend with
	// another Key after the change.
	Moved, Of int
	// Sampled is set when the tables differ in size: Of is then HashSamples
	// hashes spread evenly over the hash space, not table entries.
	Sampled bool
	// OldSlots and Slots are the sizes of the tables built over the old and
	// the new backends (1 for a single backend, 0 for none: those need no
	// table).
	OldSlots, Slots int
}

// Fraction is Moved/Of (0 when nothing was compared).
func (m HashMove) Fraction() float64 {
	if m.Of == 0 {
		return 0
	}
	return float64(m.Moved) / float64(m.Of)
}

// HashMoves builds the lookup tables that ip_hash and consistent_hash build
// over old and over next (the same code Pick uses, so weights and
// EffectiveWeight count as they do there) and counts the keys whose backend,
// compared by Key, differs. When both tables have the same size every entry
// is compared, which is exact: a request's hash selects entry hash mod size.
// Otherwise HashSamples hashes are compared. It runs on the slow path (two
// table builds, a few ms for a thousand backends), never on the request path.
func HashMoves(old, next []*backend.Backend) HashMove {
	po, pn := buildHash(old, nil), buildHash(next, nil)
	so, sn := tableSize(po), tableSize(pn)
	mv := HashMove{OldSlots: so, Slots: sn}
	keyAt := func(p Picker, h uint64) string {
		b, err := p.Pick(&Request{Hash: h, HasHash: true})
		if err != nil {
			return ""
		}
		return b.Key
	}
	if so <= 1 || sn <= 1 || so == sn {
		// A snapshot of fewer than two backends maps every hash to the same
		// place, so the other table's entries cover the hash space exactly.
		mv.Of = max(so, sn, 1)
		for e := range uint64(mv.Of) {
			if keyAt(po, e) != keyAt(pn, e) {
				mv.Moved++
			}
		}
		return mv
	}
	mv.Of, mv.Sampled = HashSamples, true
	for i := range uint64(HashSamples) {
		h := mix64(i)
		if keyAt(po, h) != keyAt(pn, h) {
			mv.Moved++
		}
	}
	return mv
}

// tableSize is the number of entries of a hash picker's table: 0 for an
// empty snapshot, 1 for a single backend.
func tableSize(p Picker) int {
	switch p := p.(type) {
	case *maglevPicker:
		return len(p.table)
	case *singlePicker:
		return 1
	}
	return 0
}
