package ratelimit

import (
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Shards is the number of independently locked parts of the key table: a
// request locks only the shard of its key.
const Shards = 32

// MaxKeys bounds the key table: beyond it the least recently used keys are
// forgotten (and start again with a full bucket).
const MaxKeys = 100_000

// Limiter is a token bucket per key: each key may take burst tokens at once,
// refilled at rps tokens per second. It is safe for concurrent use.
type Limiter struct {
	rps    float64
	burst  float64
	seeds  [2]maphash.Seed
	shards [Shards]shard
}

// digest names a key in the table: 128 bits of two independently seeded
// hashes of it. A fixed-size key makes lookups allocation-free whatever the
// key's length (a string(key) argument longer than 32 bytes would allocate),
// and keeps a long header value from costing memory. Two keys share a bucket
// only if both hashes collide: about n²/2¹²⁹ for n keys, and the seeds are
// random per Limiter, so a client cannot aim at another's bucket.
type digest [2]uint64

// bucket is one key's tokens as of last (Unix nanoseconds). It is guarded by
// its shard's mutex.
type bucket struct {
	tokens float64
	last   int64
}

type shard struct {
	mu   sync.Mutex
	keys *simplelru.LRU[digest, *bucket]
}

// New returns a Limiter of rps tokens per second (> 0) and burst tokens
// (>= 1) per key, remembering at most MaxKeys keys.
func New(rps float64, burst int) *Limiter {
	return newLimiter(rps, burst, MaxKeys)
}

func newLimiter(rps float64, burst, maxKeys int) *Limiter {
	l := &Limiter{rps: rps, burst: float64(burst), seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	per := max(maxKeys/Shards, 1)
	for i := range l.shards {
		keys, err := simplelru.NewLRU[digest, *bucket](per, nil)
		if err != nil {
			panic(err) // only for a size <= 0, which per never is
		}
		l.shards[i].keys = keys
	}
	return l
}

func (l *Limiter) digest(key []byte) digest {
	return digest{maphash.Bytes(l.seeds[0], key), maphash.Bytes(l.seeds[1], key)}
}

// Allow takes a token of key at now. When none is left it returns false and
// the whole seconds (rounded up) after which one will be. A key seen for the
// first time starts with a full bucket. Time going backwards refills nothing.
func (l *Limiter) Allow(key []byte, now time.Time) (ok bool, retryAfterSeconds int) {
	d := l.digest(key)
	s := &l.shards[d[0]%Shards]
	t := now.UnixNano()
	s.mu.Lock()
	b, found := s.keys.Get(d)
	if !found {
		b = &bucket{tokens: l.burst, last: t}
		s.keys.Add(d, b)
	} else if elapsed := float64(t-b.last) / 1e9; elapsed > 0 {
		b.tokens = math.Min(l.burst, b.tokens+elapsed*l.rps)
		b.last = t
	}
	if b.tokens >= 1 {
		b.tokens--
		s.mu.Unlock()
		return true, 0
	}
	wait := (1 - b.tokens) / l.rps
	s.mu.Unlock()
	return false, int(math.Ceil(wait))
}

// Len returns the number of keys remembered.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.keys.Len()
		s.mu.Unlock()
	}
	return n
}
