package ratelimit

// TEMPORARY: the variant on golang.org/x/time/rate, kept only to compare
// benchmarks. Deleted after the comparison.

import (
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// Shards is the number of independently locked parts of the key table: a
// request locks only the shard of its key.

// MaxKeys bounds the key table: beyond it the least recently used keys are
// forgotten (and start again with a full bucket).

// Limiter is a token bucket per key: each key may take burst tokens at once,
// refilled at rps tokens per second. It is safe for concurrent use.
type xrateLimiter struct {
	rps    float64
	burst  int
	seeds  [2]maphash.Seed
	shards [Shards]xshard
}

// digest names a key in the table: 128 bits of two independently seeded
// hashes of it. A fixed-size key makes lookups allocation-free whatever the
// key's length (a string(key) argument longer than 32 bytes would allocate),
// and keeps a long header value from costing memory. Two keys share a bucket
// only if both hashes collide: about n²/2¹²⁹ for n keys, and the seeds are
// random per Limiter, so a client cannot aim at another's bucket.
type xdigest [2]uint64

type xshard struct {
	mu   sync.Mutex
	keys *simplelru.LRU[xdigest, *rate.Limiter]
}

// New returns a Limiter of rps tokens per second (> 0) and burst tokens
// (>= 1) per key, remembering at most MaxKeys keys.
func newXRate(rps float64, burst int) *xrateLimiter {
	return newXRateN(rps, burst, MaxKeys)
}

func newXRateN(rps float64, burst, maxKeys int) *xrateLimiter {
	l := &xrateLimiter{rps: rps, burst: burst, seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	per := max(maxKeys/Shards, 1)
	for i := range l.shards {
		keys, err := simplelru.NewLRU[xdigest, *rate.Limiter](per, nil)
		if err != nil {
			panic(err) // only for a size <= 0, which per never is
		}
		l.shards[i].keys = keys
	}
	return l
}

func (l *xrateLimiter) digest(key []byte) xdigest {
	return xdigest{maphash.Bytes(l.seeds[0], key), maphash.Bytes(l.seeds[1], key)}
}

// Allow takes a token of key at now. When none is left it returns false and
// the whole seconds (rounded up) after which one will be.
func (l *xrateLimiter) Allow(key []byte, now time.Time) (ok bool, retryAfterSeconds int) {
	d := l.digest(key)
	s := &l.shards[d[0]%Shards]
	s.mu.Lock()
	b, found := s.keys.Get(d)
	if !found {
		b = rate.NewLimiter(rate.Limit(l.rps), l.burst)
		s.keys.Add(d, b)
	}
	s.mu.Unlock()
	if b.AllowN(now, 1) {
		return true, 0
	}
	wait := (1 - b.TokensAt(now)) / l.rps
	return false, int(math.Ceil(wait))
}

// Len returns the number of keys remembered.
func (l *xrateLimiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.keys.Len()
		s.mu.Unlock()
	}
	return n
}
