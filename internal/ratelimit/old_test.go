package ratelimit

// TEMPORARY: the hand-written limiter of internal/proxy/ratelimit.go before
// this package, kept only to compare benchmarks. Deleted after the comparison.

import (
	"math"
	"sync"
	"time"
)

type oldBucket struct {
	key        string
	tokens     float64
	last       int64
	prev, next *oldBucket
}

type oldShard struct {
	mu   sync.Mutex
	m    map[string]*oldBucket
	head oldBucket
}

type oldLimiter struct {
	rps    float64
	burst  int
	shards [32]oldShard
	perCap int
}

func newOld(rps float64, burst int) *oldLimiter {
	l := &oldLimiter{rps: rps, burst: burst, perCap: MaxKeys / 32}
	for i := range l.shards {
		s := &l.shards[i]
		s.m = make(map[string]*oldBucket)
		s.head.next, s.head.prev = &s.head, &s.head
	}
	return l
}

func (l *oldLimiter) Allow(key []byte, now time.Time) (bool, int) {
	h := uint32(2166136261)
	for _, c := range key {
		h = (h ^ uint32(c)) * 16777619
	}
	s := &l.shards[h%32]
	t := now.UnixNano()
	burst := float64(l.burst)
	rps := l.rps
	s.mu.Lock()
	b, ok := s.m[string(key)]
	if !ok {
		if len(s.m) >= l.perCap {
			old := s.head.prev
			old.prev.next, old.next.prev = &s.head, old.prev
			s.head.prev = old.prev
			delete(s.m, old.key)
		}
		b = &oldBucket{key: string(key), tokens: burst, last: t}
		s.m[b.key] = b
	} else {
		b.prev.next, b.next.prev = b.next, b.prev
		elapsed := float64(t-b.last) / 1e9
		if elapsed > 0 {
			b.tokens = math.Min(burst, b.tokens+elapsed*rps)
			b.last = t
		}
	}
	b.next, b.prev = s.head.next, &s.head
	s.head.next.prev = b
	s.head.next = b
	if b.tokens >= 1 {
		b.tokens--
		s.mu.Unlock()
		return true, 0
	}
	wait := (1 - b.tokens) / rps
	s.mu.Unlock()
	return false, int(math.Ceil(wait))
}
