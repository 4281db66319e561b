package balance

import (
	"math/rand/v2"
	"slices"
	"testing"

	"fulcrum/internal/backend"
)

const hashKeys = 100000

func keyHash(i int) uint64 { return Hash64([]byte{byte(i), byte(i >> 8), byte(i >> 16), 'k'}) }

// mapping returns the backend Key each of hashKeys keys maps to.
func mapping(t testing.TB, p Picker) []string {
	t.Helper()
	out := make([]string, hashKeys)
	for i := range out {
		out[i] = mustPick(t, p, &Request{Hash: keyHash(i), HasHash: true}).Key
	}
	return out
}

func TestMaglevSizesArePrime(t *testing.T) {
	t.Parallel()
	for i, m := range maglevSizes {
		for d := uint64(2); d*d <= m; d++ {
			if m%d == 0 {
				t.Errorf("maglevSizes[%d] = %d is divisible by %d", i, m, d)
				break
			}
		}
		if i > 0 && m <= maglevSizes[i-1] {
			t.Errorf("maglevSizes not ascending at %d", i)
		}
	}
	for _, tc := range []struct {
		n    int
		want uint64
	}{{1, 65537}, {655, 65537}, {656, 131071}, {1000, 131071}, {10000, 1048573}, {1 << 30, 16777213}} {
		if got := maglevSize(tc.n); got != tc.want {
			t.Errorf("maglevSize(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

func TestHashSameKeySameBackend(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"ip_hash", "consistent_hash"} {
		bs := mkBackends(equalWeights(5)...)
		p := build(t, name, bs, nil)
		for i := range 1000 {
			r := &Request{Hash: keyHash(i), HasHash: true}
			first := mustPick(t, p, r)
			for range 3 {
				if b := mustPick(t, p, r); b != first {
					t.Fatalf("%s: key %d went to %s then %s", name, i, first.Key, b.Key)
				}
			}
		}
	}
}

// TestHashSetDeterministic: the mapping depends on the set of backends, not
// on their order in the slice (nor on which Backend values carry them).
func TestHashSetDeterministic(t *testing.T) {
	t.Parallel()
	bs := mkBackends(1, 2, 1, 3, 1, 1, 2)
	want := mapping(t, build(t, "consistent_hash", bs, nil))
	rng := rand.New(rand.NewPCG(5, 6))
	for range 3 {
		shuffled := slices.Clone(bs)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := mapping(t, build(t, "consistent_hash", shuffled, nil)); !slices.Equal(got, want) {
			t.Fatal("mapping changed with slice order")
		}
	}
}

// TestHashRemoveRestore: removing one of 10 backends moves its keys and at
// most 5% of the others'; restoring it restores the exact mapping.
func TestHashRemoveRestore(t *testing.T) {
	t.Parallel()
	bs := mkBackends(equalWeights(10)...)
	before := mapping(t, build(t, "consistent_hash", bs, nil))
	for _, gone := range []int{0, 3, 9} {
		rest := slices.Delete(slices.Clone(bs), gone, gone+1)
		after := mapping(t, build(t, "consistent_hash", rest, nil))
		var others, moved int
		for i := range before {
			switch {
			case after[i] == bs[gone].Key:
				t.Fatalf("key %d still maps to the removed backend", i)
			case before[i] == bs[gone].Key:
			default:
				others++
				if after[i] != before[i] {
					moved++
				}
			}
		}
		frac := float64(moved) / float64(others)
		t.Logf("removing backend %d moved %.2f%% of the other keys", gone, 100*frac)
		if frac > 0.05 {
			t.Errorf("removing backend %d moved %.2f%% of the other keys, want <= 5%%", gone, 100*frac)
		}
		if restored := mapping(t, build(t, "consistent_hash", bs, nil)); !slices.Equal(restored, before) {
			t.Errorf("restoring backend %d did not restore the mapping", gone)
		}
	}
}

// TestHashWeights: table and key shares follow weights within a few percent.
func TestHashWeights(t *testing.T) {
	t.Parallel()
	for _, weights := range [][]int{{1, 2, 3, 4}, {1, 1, 10}, {5, 1, 1, 1, 1, 1}} {
		bs := mkBackends(weights...)
		p := build(t, "consistent_hash", bs, nil).(*maglevPicker)
		table := make(map[string]int)
		for _, s := range p.table {
			table[p.slots[s].Key]++
		}
		keys := make(map[string]int)
		for _, k := range mapping(t, p) {
			keys[k]++
		}
		var total int
		for _, w := range weights {
			total += w
		}
		for i, b := range bs {
			want := float64(weights[i]) / float64(total)
			tshare := float64(table[b.Key]) / float64(len(p.table))
			kshare := float64(keys[b.Key]) / hashKeys
			if rel := tshare/want - 1; rel > 0.01 || rel < -0.01 {
				t.Errorf("weights %v: backend %d has %.4f of the table, want %.4f", weights, i, tshare, want)
			}
			if rel := kshare/want - 1; rel > 0.05 || rel < -0.05 {
				t.Errorf("weights %v: backend %d got %.4f of the keys, want %.4f", weights, i, kshare, want)
			}
		}
	}
}

// TestMaglevLargePool: 1000 backends with skewed weights all get entries,
// and shares stay close to the weights.
func TestMaglevLargePool(t *testing.T) {
	t.Parallel()
	w := make([]int, 1000)
	for i := range w {
		w[i] = 1 + i%10
	}
	w[0] = 500
	bs := mkBackends(w...)
	p := build(t, "ip_hash", bs, nil).(*maglevPicker)
	counts := make(map[*backend.Backend]int)
	for _, s := range p.table {
		counts[p.slots[s]]++
	}
	var total int
	for _, x := range w {
		total += x
	}
	for i, b := range bs {
		want := float64(w[i]) / float64(total) * float64(len(p.table))
		if got := float64(counts[b]); got < 0.9*want-1 || got > 1.1*want+1 {
			t.Errorf("backend %d (weight %d) has %v entries, want about %.1f", i, w[i], got, want)
		}
	}
}

func TestHashWithoutKeyIsRoundRobin(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"ip_hash", "consistent_hash"} {
		bs := mkBackends(3, 1, 2, 1)
		p := build(t, name, bs, nil)
		for cycle := range 3 {
			for i := range bs {
				if b := mustPick(t, p, &Request{Hash: 42}); b != bs[i] {
					t.Fatalf("%s cycle %d pick %d = %s, want %s", name, cycle, i, b.Key, bs[i].Key)
				}
			}
		}
	}
}

// TestHashExcludeStableSecondChoice: a retry away from a key's backend goes
// to the same other backend every time.
func TestHashExcludeStableSecondChoice(t *testing.T) {
	t.Parallel()
	bs := mkBackends(equalWeights(5)...)
	p := build(t, "consistent_hash", bs, nil)
	spread := make(map[string]int)
	for i := range 2000 {
		r := &Request{Hash: keyHash(i), HasHash: true}
		first := mustPick(t, p, r)
		r.Exclude = first
		second := mustPick(t, p, r)
		if second == first {
			t.Fatalf("key %d: excluded backend returned", i)
		}
		if again := mustPick(t, p, r); again != second {
			t.Fatalf("key %d: second choice %s then %s", i, second.Key, again.Key)
		}
		spread[second.Key]++
	}
	if len(spread) != len(bs) {
		t.Errorf("second choices hit %d backends, want all %d", len(spread), len(bs))
	}
}
