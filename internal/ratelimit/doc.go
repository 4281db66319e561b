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
// -benchtime 1s -count 3, ns/op over three runs; 0 allocs/op for every
// known key; "x/time/rate" is the same sharded golang-lru table with a
// rate.Limiter per key):
//
//	                              before       golang-lru     golang-lru
//	                              (hand LRU)   + own bucket   + x/time/rate
//	known key, 16 B               79-86        95-103         141-158
//	known key, 64 B               147-166      110-112        161-169
//	known key, RunParallel        58-59        79-88          188-193
//	1000 keys/goroutine, parallel 111-121      93-120         214-224
//	refused (429 path)            45-57        73-78          190-192
//	new key evicting an old one   789-858      879-910        1005-1191
//	  (B/op, allocs/op)           72 B, 2      106 B, 2       173 B, 2
//
// golang-lru adds about 20 ns for a short key (two seeded hashes instead of
// one FNV pass) and is faster for long ones. x/time/rate is 2-3.7x slower
// than before on the contended and refusing paths, which are the ones a rate
// limiter exists for, so it is not used. The three variants are compared in
// the benchmarks of commit dcb5b30 (old_test.go, xrate_test.go).
//
// The semantics are those of the limiter fulcrum had before: a new key
// starts with a full bucket, refill is continuous and capped at burst, time
// going backwards refills nothing, and Retry-After is the wait for one token
// rounded up to whole seconds.
package ratelimit
