package balance

import (
	"math"
	"slices"
	"testing"

	"fulcrum/internal/backend"
)

// movedShare counts, independently of HashMoves, the share of hashKeys keys
// that Pick sends to a backend with another Key after the change.
func movedShare(t *testing.T, old, next []*backend.Backend) float64 {
	t.Helper()
	before := mapping(t, build(t, "consistent_hash", old, nil))
	after := mapping(t, build(t, "consistent_hash", next, nil))
	moved := 0
	for i := range before {
		if before[i] != after[i] {
			moved++
		}
	}
	return float64(moved) / float64(len(before))
}

func TestHashMoves(t *testing.T) {
	t.Parallel()
	ten := mkBackends(equalWeights(10)...)
	eleven := mkBackends(equalWeights(11)...)
	reweighted := mkBackends(1, 1, 1, 1, 1, 1, 1, 1, 1, 3)
	shuffled := slices.Clone(ten)
	slices.Reverse(shuffled)
	for _, tc := range []struct {
		name      string
		old, next []*backend.Backend
		want      float64 // expected share; the independent count must agree
		tol       float64
		exact     bool // Moved must be exactly 0
	}{
		{"unchanged", ten, ten, 0, 0, true},
		{"reordered", ten, shuffled, 0, 0, true},
		{"add one to 10", ten, eleven, 1.0 / 11, 0.02, false},
		{"remove one of 11", eleven, ten, 1.0 / 11, 0.02, false},
		{"weight 1 -> 3", ten, reweighted, 2.0 / 12, 0.03, false},
		{"one to two", ten[:1], ten[:2], 0.5, 0.02, false},
		{"two to one", ten[:2], ten[:1], 0.5, 0.02, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mv := HashMoves(tc.old, tc.next)
			got := mv.Fraction()
			if tc.exact && mv.Moved != 0 {
				t.Fatalf("HashMoves = %+v, want nothing moved", mv)
			}
			if math.Abs(got-tc.want) > tc.tol {
				t.Errorf("HashMoves = %+v (%.4f), want %.4f ± %.2f", mv, got, tc.want, tc.tol)
			}
			if ind := movedShare(t, tc.old, tc.next); math.Abs(got-ind) > 0.01 {
				t.Errorf("HashMoves says %.4f move, counting %d keys through Pick says %.4f", got, hashKeys, ind)
			}
			if mv.Sampled || mv.Of != int(maglevSize(len(tc.next))) {
				t.Errorf("HashMoves = %+v, want every one of the %d entries compared", mv, maglevSize(len(tc.next)))
			}
		})
	}
}

// TestHashMovesSampled: tables of different sizes (655 vs 656 backends) are
// compared on sampled hashes, and the result matches Pick.
func TestHashMovesSampled(t *testing.T) {
	t.Parallel()
	old := mkBackends(equalWeights(655)...)
	next := mkBackends(equalWeights(656)...)
	mv := HashMoves(old, next)
	if !mv.Sampled || mv.Of != HashSamples || mv.Slots != int(maglevSize(656)) {
		t.Fatalf("HashMoves = %+v, want %d sampled hashes and %d slots", mv, HashSamples, maglevSize(656))
	}
	// A new table size gives every backend new preference lists, so nearly
	// every key moves (a key stays with chance about 1/656).
	if mv.Fraction() < 0.9 {
		t.Errorf("HashMoves = %+v: %.4f moved, want nearly all", mv, mv.Fraction())
	}
	ind := movedShare(t, old, next)
	if math.Abs(mv.Fraction()-ind) > 0.01 {
		t.Errorf("HashMoves says %.4f move, counting through Pick says %.4f", mv.Fraction(), ind)
	}
}

func TestHashMovesEmpty(t *testing.T) {
	t.Parallel()
	if mv := HashMoves(nil, nil); mv.Moved != 0 || mv.Slots != 0 {
		t.Errorf("HashMoves(nil, nil) = %+v", mv)
	}
	if mv := HashMoves(nil, mkBackends(1, 1)); mv.Fraction() != 1 {
		t.Errorf("HashMoves(nil, two) = %+v, want every key moved", mv)
	}
}

func TestHashStrategy(t *testing.T) {
	t.Parallel()
	for _, s := range strategies {
		if got, want := HashStrategy(s), s == "ip_hash" || s == "consistent_hash"; got != want {
			t.Errorf("HashStrategy(%q) = %v", s, got)
		}
	}
}
