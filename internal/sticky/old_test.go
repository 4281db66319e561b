package sticky

// TEMPORARY: the hand-written appTable of internal/proxy/sticky.go before
// this package, kept only to compare benchmarks. Deleted after the comparison.

import (
	"sync"
	"time"
)

type oldTable struct {
	shards [16]oldShard
}

type oldEntry struct {
	key        string
	id         uint64
	expires    int64
	prev, next *oldEntry
}

type oldShard struct {
	mu   sync.Mutex
	m    map[string]*oldEntry
	head oldEntry
	cap  int
	ttl  time.Duration
}

func newOldTable(maxEntries int, ttl time.Duration) *oldTable {
	t := &oldTable{}
	for i := range t.shards {
		s := &t.shards[i]
		s.m = map[string]*oldEntry{}
		s.head.next, s.head.prev = &s.head, &s.head
		s.cap, s.ttl = max(maxEntries/16, 1), ttl
	}
	return t
}

func (t *oldTable) shard(k []byte) *oldShard {
	h := uint32(2166136261)
	for _, c := range k {
		h = (h ^ uint32(c)) * 16777619
	}
	return &t.shards[h%uint32(len(t.shards))]
}

func (t *oldTable) Get(k []byte, now time.Time) (uint64, bool) {
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[string(k)]
	if !ok {
		return 0, false
	}
	if e.expires != 0 && now.UnixNano() > e.expires {
		s.unlink(e)
		delete(s.m, e.key)
		return 0, false
	}
	s.unlink(e)
	s.pushFront(e)
	return e.id, true
}

func (t *oldTable) Put(k []byte, id uint64, now time.Time) {
	s := t.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	var exp int64
	if s.ttl > 0 {
		exp = now.Add(s.ttl).UnixNano()
	}
	if e, ok := s.m[string(k)]; ok {
		e.id, e.expires = id, exp
		s.unlink(e)
		s.pushFront(e)
		return
	}
	for len(s.m) >= s.cap {
		old := s.head.prev
		s.unlink(old)
		delete(s.m, old.key)
	}
	e := &oldEntry{key: string(k), id: id, expires: exp}
	s.m[e.key] = e
	s.pushFront(e)
}

func (s *oldShard) unlink(e *oldEntry) { e.prev.next, e.next.prev = e.next, e.prev }

func (s *oldShard) pushFront(e *oldEntry) {
	e.next, e.prev = s.head.next, &s.head
	s.head.next.prev = e
	s.head.next = e
}
