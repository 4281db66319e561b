package preview

import (
	"log/slog"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"fulcrum/internal/balance"
	"fulcrum/internal/pool"
)

// TestHashMovesMatchPool: the share of keys Diff says move is the share a
// real pool's picker moves when it is updated from the old to the new
// configuration, counted on 100,000 random hashes through Pick. This ties
// the preview to the data path's tables and backend keys.
func TestHashMovesMatchPool(t *testing.T) {
	t.Parallel()
	four := `["http://10.0.0.1:80", "http://10.0.0.2:80", "http://10.0.0.3:80", "http://10.0.0.4:80"]`
	five := `["http://10.0.0.1:80", {"url": "http://10.0.0.2:80", "weight": 3}, "http://10.0.0.3:80", "http://10.0.0.4:80", "HTTP://10.0.0.5"]`
	for _, tc := range []struct {
		name, extra string
		table       func(*pool.Snapshot) balance.Picker
	}{
		{"ip_hash", `"strategy": "ip_hash"`, func(s *pool.Snapshot) balance.Picker { return s.Picker }},
		{"consistent_hash", `"strategy": "consistent_hash", "hash_key": "cookie:u"`, func(s *pool.Snapshot) balance.Picker { return s.Picker }},
		{"sticky source_ip", `"strategy": "round_robin", "sticky": {"type": "source_ip"}`, func(s *pool.Snapshot) balance.Picker { return s.SourceIP }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := func(bs string) string {
				return `{"listen_addr": "127.0.0.1:8080", ` + tc.extra + `, "backends": ` + bs + `}`
			}
			oldCfg, newCfg := load(t, doc(four)), load(t, doc(five))
			cs, err := Diff(FromConfig(oldCfg, testSalt), FromConfig(newCfg, testSalt))
			if err != nil {
				t.Fatal(err)
			}
			var moved *Moved
			for _, c := range cs {
				if c.Kind == HashKeysMoved {
					moved = c.Moved
				}
			}
			if moved == nil {
				t.Fatalf("no hash_keys_moved in %v", cs)
			}

			p := pool.New(&oldCfg.Pools[0], time.Minute, nil, pool.Options{Logger: slog.New(slog.DiscardHandler)})
			t.Cleanup(p.Stop)
			rng := rand.New(rand.NewPCG(1, 2))
			hashes := make([]uint64, 100000)
			before := make([]string, len(hashes))
			for i := range hashes {
				hashes[i] = rng.Uint64()
				before[i] = pick(t, tc.table(p.Snapshot()), hashes[i])
			}
			p.Update(&newCfg.Pools[0], time.Minute, nil)
			n := 0
			for i, h := range hashes {
				if pick(t, tc.table(p.Snapshot()), h) != before[i] {
					n++
				}
			}
			real := 100 * float64(n) / float64(len(hashes))
			t.Logf("preview: %.1f%% move; the pool moved %.1f%% of %d keys", moved.Percent, real, len(hashes))
			if math.Abs(real-moved.Percent) > 1 {
				t.Errorf("preview says %.1f%% of keys move, the real pool moved %.1f%%", moved.Percent, real)
			}
			// Adding one backend of weight 1 to weights 1,1,1,1 while another
			// goes to 3: the new backend's 1/7 plus the reweighted one's
			// growth from 1/4 to 3/7 move about 1/7 + 3/7 - 1/4 of the keys.
			if want := 100 * (1.0/7 + 3.0/7 - 1.0/4); math.Abs(moved.Percent-want) > 3 {
				t.Errorf("preview says %.1f%% of keys move, want about %.1f%%", moved.Percent, want)
			}
		})
	}
}

func pick(t *testing.T, p balance.Picker, h uint64) string {
	b, err := p.Pick(&balance.Request{Hash: h, HasHash: true})
	if err != nil {
		t.Fatal(err)
	}
	return b.Key
}
