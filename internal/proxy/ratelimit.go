package proxy

import (
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/h1"
)

// rateLimitShards spreads keys over independently locked shards so that no
// single lock is shared by all requests.
const rateLimitShards = 32

// rateLimitMaxKeys bounds the memory of the limiter: beyond it the least
// recently used keys are forgotten (about 120 bytes per key).
const rateLimitMaxKeys = 100_000

type bucket struct {
	key        string
	tokens     float64
	last       int64
	prev, next *bucket
}

type rlShard struct {
	mu   sync.Mutex
	m    map[string]*bucket
	head bucket // sentinel of the LRU list: head.next is the most recent
}

// rateLimiter is a token bucket per key with an LRU-bounded key table.
type rateLimiter struct {
	cfg    config.RateLimit
	shards [rateLimitShards]rlShard
	perCap int
}

func newRateLimiter(cfg *config.RateLimit) *rateLimiter {
	l := &rateLimiter{cfg: *cfg, perCap: rateLimitMaxKeys / rateLimitShards}
	for i := range l.shards {
		s := &l.shards[i]
		s.m = make(map[string]*bucket)
		s.head.next, s.head.prev = &s.head, &s.head
	}
	return l
}

func (l *rateLimiter) sameConfig(c *config.RateLimit) bool { return l.cfg == *c }

// allow takes a token for key. When none is left it returns the seconds after
// which one will be.
func (l *rateLimiter) allow(key []byte, now time.Time) (bool, int) {
	h := uint32(2166136261)
	for _, c := range key {
		h = (h ^ uint32(c)) * 16777619
	}
	s := &l.shards[h%rateLimitShards]
	t := now.UnixNano()
	burst := float64(l.cfg.Burst)
	rps := l.cfg.RequestsPerSecond
	s.mu.Lock()
	b, ok := s.m[string(key)]
	if !ok {
		if len(s.m) >= l.perCap {
			old := s.head.prev
			old.prev.next, old.next.prev = &s.head, old.prev
			s.head.prev = old.prev
			delete(s.m, old.key)
		}
		b = &bucket{key: string(key), tokens: burst, last: t}
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

// rateKey returns the rate-limit key of the current request.
func (c *clientConn) rateKey(l *rateLimiter, client netip.Addr) []byte {
	if l.cfg.Key.Kind == config.KindHeader {
		if v := h1.Get(c.req.Headers, l.cfg.Key.Name); len(v) > 0 {
			return v
		}
	}
	a := client.As16()
	c.keyBuf = append(c.keyBuf[:0], a[:]...)
	return c.keyBuf
}

// writeRateLimited answers 429 with Retry-After. A request body that was not
// read forces the connection closed.
func (c *clientConn) writeRateLimited(retry int, ri reqInfo, start time.Time) bool {
	if retry < 1 {
		retry = 1
	}
	var extra [32]byte
	h := append(extra[:0], "Retry-After: "...)
	h = strconv.AppendInt(h, int64(retry), 10)
	h = append(h, '\r', '\n')
	keep := c.writeAnswer(429, "rate limit exceeded", ri.keepAlive && ri.cl <= 0 && !ri.chunked, h)
	c.srv.finish(c, nil, ri, 429, start, nil)
	return keep
}
