// Package ratelimit is fulcrum's per-key token bucket: each key (a client
// address or a header value) may send burst requests at once, refilled at a
// steady rate. The key table is bounded (MaxKeys) and forgets the least
// recently used keys, so clients cannot grow it without limit.
//
// # Libraries
//
// The key table is github.com/hashicorp/golang-lru/v2 (simplelru.LRU), one
// per shard under the shard's own mutex: a single lru.Cache has one mutex,
// which every request would take. lru.Cache is not used inside the shards
// because it would lock a second time and cannot look up and insert under
// one lock. Keys are stored as a 128-bit seeded digest (see digest), so a
// lookup never allocates, whatever the key's length: simplelru.Get with a
// string(key) argument allocates for keys longer than 32 bytes, e.g. API-key
// headers.
//
// The bucket itself is hand-written (a float and a timestamp updated under
// the shard lock) instead of golang.org/x/time/rate. A rate.Limiter per key
// costs the request path: it takes its own mutex after the shard's, works in
// time.Time arithmetic, and the Retry-After of a refusal needs TokensAt, a
// third lock. Measured on the 2-CPU development machine (go test -bench,
// -benchtime 1s -count 3, ns/op; 0 allocs/op for every known-key case):
//
//	                             before     golang-lru    golang-lru
//	                             (hand LRU) + own bucket  + x/time/rate
//	known key, 16 B              110-128    114-120       255-338
//	known key, 64 B              252-379    138-149       289-336
//	known key, RunParallel        80-141     84-89        174-203
//	1000 keys/goroutine, parallel 111-149   167-173       211-252
//	refused (429 path)            64-84      82-85        332-462
//	new key evicting an old one  1054-1534  1103-1151     2455-3052
//	  (B/op, allocs/op)          77 B, 2    109 B, 2      173 B, 2
//
// x/time/rate is 2-5x slower on the contended and refusing paths, which
// are the ones a rate limiter exists for, so it is not used. The
// semantics are those of the limiter fulcrum had before: a new key starts
// with a full bucket, refill is continuous and capped at burst, and
// Retry-After is the wait for one token rounded up to whole seconds.
package ratelimit
