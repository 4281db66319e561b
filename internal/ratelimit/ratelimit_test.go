package ratelimit

import (
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestAllowBurstThenRefill(t *testing.T) {
	t.Parallel()
	l := New(2, 3) // 2 tokens/s, burst 3
	k := []byte("client")
	for i := range 3 {
		if ok, _ := l.Allow(k, t0); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	if ok, retry := l.Allow(k, t0); ok || retry != 1 {
		t.Fatalf("over the burst: %v, retry %d; want false, 1 (0.5s rounded up)", ok, retry)
	}
	// 0.5s at 2/s refills one token, and only one.
	if ok, _ := l.Allow(k, t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("refilled token refused")
	}
	if ok, _ := l.Allow(k, t0.Add(500*time.Millisecond)); ok {
		t.Fatal("second token after 0.5s allowed")
	}
	// A long pause refills to the burst, not beyond.
	later := t0.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow(k, later); !ok {
			t.Fatalf("after an hour, request %d refused", i)
		}
	}
	if ok, _ := l.Allow(k, later); ok {
		t.Fatal("bucket refilled beyond the burst")
	}
}

func TestAllowRetryAfterRoundsUp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		rps     float64
		elapsed time.Duration // after the burst of 1 is taken
		want    int
	}{
		{1, 0, 1},                         // 1s exactly
		{1, 100 * time.Millisecond, 1},    // 0.9s
		{0.5, 0, 2},                       // 2s exactly
		{0.5, 100 * time.Millisecond, 2},  // 1.95s
		{0.25, 900 * time.Millisecond, 4}, // 3.1s
		{0.1, 0, 10},
		{100, 0, 1}, // 10ms: at least one second
	}
	for _, tc := range cases {
		l := New(tc.rps, 1)
		k := []byte("k")
		l.Allow(k, t0)
		ok, retry := l.Allow(k, t0.Add(tc.elapsed))
		if ok || retry != tc.want {
			t.Errorf("rps %v after %v: %v, retry %d; want false, %d", tc.rps, tc.elapsed, ok, retry, tc.want)
		}
	}
}

func TestAllowKeysAreIndependent(t *testing.T) {
	t.Parallel()
	l := New(1, 1)
	if ok, _ := l.Allow([]byte("a"), t0); !ok {
		t.Fatal("a refused")
	}
	if ok, _ := l.Allow([]byte("a"), t0); ok {
		t.Fatal("a allowed twice")
	}
	if ok, _ := l.Allow([]byte("b"), t0); !ok {
		t.Fatal("b refused because of a")
	}
	// A key is its bytes: a prefix or an extension is another key.
	if ok, _ := l.Allow([]byte("aa"), t0); !ok {
		t.Fatal("aa refused because of a")
	}
}

func TestAllowTimeGoingBackwardsRefillsNothing(t *testing.T) {
	t.Parallel()
	l := New(1, 1)
	k := []byte("k")
	l.Allow(k, t0)
	if ok, _ := l.Allow(k, t0.Add(-time.Hour)); ok {
		t.Fatal("a request stamped earlier was given a token")
	}
	if ok, _ := l.Allow(k, t0.Add(time.Second)); !ok {
		t.Fatal("token refilled after 1s refused")
	}
}

func TestKeyTableBounded(t *testing.T) {
	t.Parallel()
	l := newLimiter(1, 1, 64*Shards) // 64 keys per shard
	k := make([]byte, 8)
	for i := range 50_000 {
		binary.BigEndian.PutUint64(k, uint64(i))
		l.Allow(k, t0)
	}
	if n := l.Len(); n > 64*Shards || n < 64*Shards/2 {
		t.Fatalf("table holds %d keys, want <= %d and most of it used", n, 64*Shards)
	}
}

func TestForgottenKeyStartsFull(t *testing.T) {
	t.Parallel()
	l := newLimiter(1, 1, Shards) // one key per shard
	a := []byte("a")
	l.Allow(a, t0)
	if ok, _ := l.Allow(a, t0); ok {
		t.Fatal("a allowed twice")
	}
	// Another key in a's shard evicts a, the least recently used.
	var other []byte
	for i := 0; other == nil; i++ {
		k := fmt.Appendf(nil, "k%d", i)
		if l.digest(k)[0]%Shards == l.digest(a)[0]%Shards {
			other = k
		}
	}
	l.Allow(other, t0)
	if ok, _ := l.Allow(a, t0); !ok {
		t.Fatal("a was not forgotten when its shard was full")
	}
}

func TestLeastRecentlyUsedIsForgotten(t *testing.T) {
	t.Parallel()
	l := newLimiter(1, 1, 2*Shards) // two keys per shard
	var keys [][]byte
	for i := 0; len(keys) < 3; i++ {
		k := fmt.Appendf(nil, "k%d", i)
		if l.digest(k)[0]%Shards == 0 {
			keys = append(keys, k)
		}
	}
	l.Allow(keys[0], t0)
	l.Allow(keys[1], t0)
	l.Allow(keys[0], t0) // keys[0] is now the most recent
	l.Allow(keys[2], t0) // evicts keys[1]
	if ok, _ := l.Allow(keys[0], t0); ok {
		t.Fatal("keys[0], recently used, was forgotten")
	}
	if ok, _ := l.Allow(keys[1], t0); !ok {
		t.Fatal("keys[1], least recently used, was remembered")
	}
}

func TestAllowConcurrent(t *testing.T) {
	t.Parallel()
	// Goroutines share keys (run with -race): no key grants more than its
	// burst at one instant, whoever asks.
	const burst = 5
	l := newLimiter(1, burst, 8*Shards)
	var mu sync.Mutex
	granted := map[int]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				key := (g + i) % 20
				if ok, _ := l.Allow(fmt.Appendf(nil, "c%d", key), t0); ok {
					mu.Lock()
					granted[key]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for k, n := range granted {
		// A key may be forgotten and start full again, but the table holds
		// all 20 keys, so each grants exactly its burst.
		if n != burst {
			t.Errorf("key %d granted %d tokens, want %d", k, n, burst)
		}
	}
}
