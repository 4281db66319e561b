package sticky

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Shards is the number of independently locked parts of a Table. Each holds
// max/Shards entries, at least one, so a max below Shards behaves as Shards.
const Shards = 16

// Table maps application cookie values to backend sticky IDs. It is bounded:
// beyond max entries the least recently used are forgotten; and an entry
// expires ttl after it was last put (0: never). Safe for concurrent use.
//
// Memory: about 100 bytes per entry, whatever the cookie's length.
type Table struct {
	seeds  [2]maphash.Seed
	shards [Shards]shard
}

// digest names a cookie value in the table: 128 bits of two independently
// seeded hashes of it. A fixed-size key makes lookups allocation-free whatever
// the value's length (a string(key) argument longer than 32 bytes would
// allocate) and stores no client-chosen bytes. Two values share an entry only
// if both hashes collide: about n²/2¹²⁹ for n entries, with seeds random per
// Table, so a client cannot aim at another's pin.
type digest [2]uint64

type entry struct {
	id      uint64
	expires int64 // Unix nanoseconds; 0 = never
}

type shard struct {
	mu      sync.Mutex
	entries *simplelru.LRU[digest, entry]
	ttl     time.Duration
}

// NewTable returns a Table of at most max entries (rounded up to Shards)
// that expire ttl after their last Put (0: never).
func NewTable(max int, ttl time.Duration) *Table {
	t := &Table{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	per := perShard(max)
	for i := range t.shards {
		entries, err := simplelru.NewLRU[digest, entry](per, nil)
		if err != nil {
			panic(err) // only for a size <= 0, which perShard never gives
		}
		t.shards[i].entries = entries
		t.shards[i].ttl = ttl
	}
	return t
}

func perShard(maxEntries int) int { return max(maxEntries/Shards, 1) }

// SetLimits changes the bound and the ttl (of the entries put from now on),
// keeping the entries. Shrinking forgets the least recently used at once.
func (t *Table) SetLimits(max int, ttl time.Duration) {
	per := perShard(max)
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.entries.Resize(per)
		s.ttl = ttl
		s.mu.Unlock()
	}
}

func (t *Table) locate(k []byte) (*shard, digest) {
	d := digest{maphash.Bytes(t.seeds[0], k), maphash.Bytes(t.seeds[1], k)}
	return &t.shards[d[0]%Shards], d
}

// Get returns the backend ID pinned to cookie value k, and marks it recently
// used. An entry past its expiry is removed and not returned. Get does not
// extend an entry's life; Put does.
func (t *Table) Get(k []byte, now time.Time) (uint64, bool) {
	s, d := t.locate(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries.Get(d)
	if !ok {
		return 0, false
	}
	if e.expires != 0 && now.UnixNano() > e.expires {
		s.entries.Remove(d)
		return 0, false
	}
	return e.id, true
}

// Put pins cookie value k to backend id until now+ttl, forgetting the least
// recently used entry of k's shard if it is full.
func (t *Table) Put(k []byte, id uint64, now time.Time) {
	s, d := t.locate(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := entry{id: id}
	if s.ttl > 0 {
		e.expires = now.Add(s.ttl).UnixNano()
	}
	s.entries.Add(d, e)
}

// Len returns the number of entries, expired ones not yet removed included.
func (t *Table) Len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += s.entries.Len()
		s.mu.Unlock()
	}
	return n
}
