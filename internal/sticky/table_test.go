package sticky

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// sameShard returns n keys that land in one shard of t, so that the LRU
// order among them is deterministic.
func sameShard(t *Table, n int) [][]byte {
	var keys [][]byte
	for i := 0; len(keys) < n; i++ {
		k := fmt.Appendf(nil, "k%d", i)
		if s, _ := t.locate(k); s == &t.shards[0] {
			keys = append(keys, k)
		}
	}
	return keys
}

func TestTableLRUBound(t *testing.T) {
	t.Parallel()
	now := time.Now()
	t.Run("never exceeds max entries", func(t *testing.T) {
		tab := NewTable(160, 0)
		for i := range 5000 {
			tab.Put(fmt.Appendf(nil, "session-%d", i), uint64(i), now)
			if n := tab.Len(); n > 160 {
				t.Fatalf("after %d puts the table holds %d entries, max 160", i+1, n)
			}
		}
		if n := tab.Len(); n < 160/2 {
			t.Fatalf("table holds only %d of 160 entries after 5000 puts", n)
		}
	})
	t.Run("tiny max is rounded up to one entry per shard", func(t *testing.T) {
		// Documented limitation: max entries below Shards behaves as Shards.
		tab := NewTable(1, 0)
		for i := range 1000 {
			tab.Put(fmt.Appendf(nil, "s%d", i), uint64(i), now)
		}
		if n := tab.Len(); n > Shards {
			t.Fatalf("holds %d entries, want <= %d", n, Shards)
		}
	})
	t.Run("evicts least recently used", func(t *testing.T) {
		tab := NewTable(Shards*4, 0) // 4 per shard
		keys := sameShard(tab, 6)
		for i, k := range keys[:4] {
			tab.Put(k, uint64(i), now)
		}
		// Touch keys[0] (by Get) and keys[1] (by Put with a new id): they
		// become the most recent; keys[2] and keys[3] are the oldest.
		if id, ok := tab.Get(keys[0], now); !ok || id != 0 {
			t.Fatalf("get keys[0] = %d, %v", id, ok)
		}
		tab.Put(keys[1], 11, now)
		tab.Put(keys[4], 4, now)
		tab.Put(keys[5], 5, now)
		for i, want := range []bool{true, true, false, false, true, true} {
			if _, ok := tab.Get(keys[i], now); ok != want {
				t.Errorf("keys[%d] present = %v, want %v", i, ok, want)
			}
		}
		if id, _ := tab.Get(keys[1], now); id != 11 {
			t.Errorf("keys[1] maps to %d after update, want 11", id)
		}
		if n := tab.shards[0].entries.Len(); n != 4 {
			t.Errorf("shard holds %d entries, want 4", n)
		}
	})
	t.Run("shrinking the limit evicts the least recently used", func(t *testing.T) {
		tab := NewTable(Shards*8, 0)
		for i := range 2000 {
			tab.Put(fmt.Appendf(nil, "x%d", i), 1, now)
		}
		keys := sameShard(tab, 3)
		for _, k := range keys {
			tab.Put(k, 2, now)
		}
		tab.SetLimits(Shards*2, 0)
		if n := tab.Len(); n > 2*Shards {
			t.Fatalf("holds %d entries after shrinking to %d", n, 2*Shards)
		}
		for i, want := range []bool{false, true, true} {
			if _, ok := tab.Get(keys[i], now); ok != want {
				t.Errorf("after shrinking, keys[%d] present = %v, want %v", i, ok, want)
			}
		}
		for i := range 200 {
			tab.Put(fmt.Appendf(nil, "y%d", i), 2, now)
		}
		if n := tab.Len(); n > 2*Shards {
			t.Fatalf("holds %d entries after shrinking to %d", n, 2*Shards)
		}
	})
}

func TestTableConcurrent(t *testing.T) {
	t.Parallel()
	// Request goroutines learn and look up at once (run with -race); the
	// bound holds throughout and every surviving entry has a written id.
	tab := NewTable(64, time.Hour)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			now := time.Now()
			for i := range 2000 {
				k := fmt.Appendf(nil, "s%d", (g*7919+i)%300)
				if i%3 == 0 {
					tab.Put(k, uint64(g+1), now)
				} else if id, ok := tab.Get(k, now); ok && (id < 1 || id > 8) {
					t.Errorf("bad id %d", id)
					return
				}
				if i%500 == 0 {
					tab.SetLimits(64, time.Hour) // a reload meanwhile
				}
			}
		}()
	}
	wg.Wait()
	if n := tab.Len(); n > 64 {
		t.Fatalf("holds %d entries, max 64", n)
	}
}

func TestTableExpiry(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	tab := NewTable(100, time.Minute)
	tab.Put([]byte("a"), 1, t0)
	tab.Put([]byte("b"), 2, t0)
	if id, ok := tab.Get([]byte("a"), t0.Add(59*time.Second)); !ok || id != 1 {
		t.Fatalf("a before expiry = %d, %v", id, ok)
	}
	if id, ok := tab.Get([]byte("a"), t0.Add(time.Minute)); !ok || id != 1 {
		t.Fatalf("a at exactly its ttl = %d, %v; want still there", id, ok)
	}
	// A Get does not extend the entry; a Put does.
	tab.Put([]byte("b"), 3, t0.Add(30*time.Second))
	if _, ok := tab.Get([]byte("a"), t0.Add(61*time.Second)); ok {
		t.Fatal("a found after its ttl")
	}
	if id, ok := tab.Get([]byte("b"), t0.Add(61*time.Second)); !ok || id != 3 {
		t.Fatalf("b refreshed at +30s = %d, %v at +61s; want 3, true", id, ok)
	}
	if n := tab.Len(); n != 1 {
		t.Fatalf("expired entry not removed on lookup: %d entries", n)
	}
	if _, ok := tab.Get([]byte("b"), t0.Add(91*time.Second)); ok {
		t.Fatal("b found after its refreshed ttl")
	}
	if _, ok := tab.Get([]byte("never"), t0); ok {
		t.Fatal("unknown key found")
	}

	// SetLimits changes the ttl of the entries put afterwards.
	tab.SetLimits(100, time.Hour)
	tab.Put([]byte("c"), 4, t0)
	if _, ok := tab.Get([]byte("c"), t0.Add(59*time.Minute)); !ok {
		t.Fatal("entry put after SetLimits(ttl 1h) expired within the hour")
	}

	// ttl 0: entries never expire.
	forever := NewTable(100, 0)
	forever.Put([]byte("a"), 1, t0)
	if _, ok := forever.Get([]byte("a"), t0.Add(100*365*24*time.Hour)); !ok {
		t.Fatal("entry with ttl 0 expired")
	}
}

func TestTableKeysAreBytes(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tab := NewTable(100, 0)
	long := make([]byte, MaxAppCookieLen)
	for i := range long {
		long[i] = byte(i)
	}
	tab.Put([]byte("abc"), 1, now)
	tab.Put(long, 2, now)
	for _, k := range []string{"ab", "abcd", "ABC", "", string(long[:len(long)-1])} {
		if id, ok := tab.Get([]byte(k), now); ok {
			t.Errorf("Get(%q) = %d: another value's entry", k, id)
		}
	}
	if id, ok := tab.Get(append([]byte(nil), long...), now); !ok || id != 2 {
		t.Errorf("long value = %d, %v", id, ok)
	}
}

func TestTableGetPutDoNotAllocate(t *testing.T) {
	now := time.Now()
	tab := NewTable(100, time.Hour)
	k := make([]byte, MaxAppCookieLen)
	tab.Put(k, 1, now)
	if n := testing.AllocsPerRun(100, func() { tab.Get(k, now); tab.Put(k, 2, now) }); n != 0 {
		t.Fatalf("Get and Put of a known value allocate %v times", n)
	}
}
