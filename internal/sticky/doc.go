// Package sticky holds the parts of fulcrum's session persistence that do not
// need a request or a pool: the app_cookie Table (application cookie value to
// backend sticky ID) and the encoding of cookies (fulcrum's own sticky cookie
// value, and reading a backend's Set-Cookie). Choosing the backend for a
// request, which needs the HTTP/1.1 request and the pool snapshot, stays in
// internal/proxy; the sticky ID naming a backend is pool.StickyID.
//
// # Libraries
//
// The Table is github.com/hashicorp/golang-lru/v2 (simplelru.LRU): Shards
// independently locked shards, each an LRU of max/Shards entries, with the
// expiry stored in the value and checked on Get. A single lru.Cache would be
// one mutex taken by every request; inside a shard, lru.Cache would lock a
// second time and could not check an expiry and remove the entry under one
// lock. The expirable LRU does not fit: it reads time.Now itself (the Table
// takes the request's now, so tests cannot set the clock), and starts a
// goroutine per cache that v2.0.7 never stops: Shards of them per Table, and
// a reload with another cookie name would leak them.
//
// Entries are keyed by a 128-bit seeded digest of the cookie value (see
// digest): simplelru.Get with a string(key) argument allocates for values
// longer than 32 bytes, and storing the digest bounds memory per entry.
//
// Measured on the 2-CPU development machine (go test -bench, -benchtime 1s
// -count 3, ns/op over three runs; 0 allocs/op unless said):
//
//	                                before (hand LRU)   golang-lru
//	Get known, 32 B / 64 B value    89-93 / 121-133     60-67 / 57-73
//	Put known, 32 B / 64 B value    101-107 / 138-145   64-80 / 61-70
//	Get of 10k sessions, parallel   166-199 / 204-246   83-113 / 121-188
//	  (32 B / 64 B)
//	Put new, table full, 32 B       834-946, 89 B, 2    705-761, 103 B, 1
//	Put new, table full, 64 B       884-932, 122 B, 2   784-831, 105 B, 1
//
// golang-lru is no slower than the hand-written table, so it is used. The
// hand-written table is compared in the benchmarks of commit dcb5b30
// (old_test.go).
package sticky
