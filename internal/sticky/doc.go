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
// Measured on the 2-CPU development machine, busy with other work (go test
// -bench, -benchtime 1s -count 3, ns/op; 0 allocs/op unless said):
//
//	                               before (hand LRU)   golang-lru
//	Get known, 32 B value          239-283             223-267
//	Get known, 64 B value          301-460             246-283
//	Put known, 32 B / 64 B         212-400 / 424-697   229-289 / 90-238
//	Put new, full table, 32 B      3274-3411, 2 allocs 2727-3279, 1 alloc
//	Get, 10k sessions, RunParallel 532-601 / 528-832   358-789 / 222-757
//	  (32 B / 64 B)
//
// golang-lru costs the request path nothing measurable, so it is used.
package sticky
