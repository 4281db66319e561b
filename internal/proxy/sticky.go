package proxy

import (
	"net/netip"
	"strconv"
	"sync"
	"time"

	"fulcrum/internal/balance"
	"fulcrum/internal/config"
	"fulcrum/internal/h1"
	"fulcrum/internal/pool"
)

// sticky is the session-persistence state of a server. The app_cookie table
// survives reloads while the sticky config keeps its type and cookie name.
type sticky struct {
	cfg config.Sticky
	app *appTable
}

func newSticky(cfg *config.Sticky, old *sticky) *sticky {
	if cfg == nil {
		return nil
	}
	s := &sticky{cfg: *cfg}
	if cfg.Type == "app_cookie" {
		if old != nil && old.app != nil && old.cfg.CookieName == cfg.CookieName {
			s.app = old.app
			s.app.setLimits(cfg.MaxEntries, cfg.TTL)
		} else {
			s.app = newAppTable(cfg.MaxEntries, cfg.TTL)
		}
	}
	return s
}

// stickyResult says what happened to a request's pin.
type stickyResult uint8

const (
	stickyNone     stickyResult = iota
	stickyHit                   // pinned backend used
	stickyMiss                  // no pin: the strategy picked, a pin is set
	stickyRepinned              // the pin was stale, tampered or down: moved
)

var stickyLabels = [...]string{"", "hit", "miss", "repinned"}

// DecodeStickyCookie parses a sticky cookie value (16 lowercase hex digits).
func DecodeStickyCookie(v []byte) (uint64, bool) {
	if len(v) != 16 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// lookup resolves the request's pin. It returns the member index to use (-1
// for "let the strategy pick") and the result class.
func (s *sticky) lookup(c *clientConn, snap *pool.Snapshot, client netip.Addr) (int, stickyResult) {
	now := time.Now()
	switch s.cfg.Type {
	case "cookie":
		v := CookieValue(c.req.Headers, s.cfg.CookieName)
		if v == nil {
			return -1, stickyMiss
		}
		id, ok := DecodeStickyCookie(v)
		if !ok {
			return -1, stickyRepinned
		}
		idx, ok := snap.ByStickyID[id]
		if !ok || !snap.Members[idx].State.Usable(now) {
			return -1, stickyRepinned
		}
		return idx, stickyHit
	case "app_cookie":
		v := CookieValue(c.req.Headers, s.cfg.CookieName)
		if len(v) == 0 {
			return -1, stickyMiss
		}
		id, ok := s.app.get(v, now)
		if !ok {
			return -1, stickyRepinned
		}
		idx, ok := snap.ByStickyID[id]
		if !ok || !snap.Members[idx].State.Usable(now) {
			return -1, stickyRepinned
		}
		return idx, stickyHit
	case "source_ip":
		if snap.SourceIP == nil {
			return -1, stickyMiss
		}
		// A request of its own: c.breq may carry the strategy's hash key.
		r := balance.Request{Hash: hashAddr(client), HasHash: true}
		b, err := snap.SourceIP.Pick(&r)
		if err != nil {
			return -1, stickyMiss
		}
		return b.Index, stickyHit
	}
	return -1, stickyNone
}

// setCookie appends the Set-Cookie value pinning the client to mem, or returns
// dst unchanged when no cookie is needed.
//
// httpsClient says the client connection is HTTPS: a trusted proxy in front
// reported X-Forwarded-Proto: https (fulcrum has no TLS listener yet). With
// secure "auto" the cookie is Secure then, and whenever SameSite=None, which
// browsers accept only with Secure.
func (s *sticky) setCookie(dst []byte, res stickyResult, used int, pinned int, snap *pool.Snapshot, resp *h1.Response, requestCookie []byte, httpsClient bool) []byte {
	switch s.cfg.Type {
	case "cookie":
		if res == stickyHit && used == pinned {
			return dst
		}
		id := snap.StickyIDs[used]
		dst = append(dst, s.cfg.CookieName...)
		dst = append(dst, '=')
		dst = appendHex16(dst, id)
		dst = appendCookieAttrs(dst, &s.cfg, httpsClient)
	case "app_cookie":
		// Learn value -> backend from the backend's own Set-Cookie.
		id := snap.StickyIDs[used]
		learned := false
		for i := range resp.Headers {
			h := &resp.Headers[i]
			if !h1.EqualFold(h.Name, "Set-Cookie") {
				continue
			}
			if v := setCookieValue(h.Value, s.cfg.CookieName); len(v) > 0 && len(v) <= maxAppCookieLen {
				s.app.put(v, id, time.Now())
				learned = true
			}
		}
		// A request whose app cookie moved to another backend: re-pin it there.
		// Only a value the table already knows is moved: values a client
		// invents are never stored, so clients cannot fill the table.
		if !learned && len(requestCookie) > 0 && len(requestCookie) <= maxAppCookieLen && used != pinned {
			if _, known := s.app.get(requestCookie, time.Now()); known {
				s.app.put(requestCookie, id, time.Now())
			}
		}
	}
	return dst
}

// appendCookieAttrs appends the attributes of a cookie fulcrum sets: Path=/
// and those the sticky configuration asks for.
func appendCookieAttrs(dst []byte, cfg *config.Sticky, httpsClient bool) []byte {
	dst = append(dst, "; Path=/"...)
	if cfg.TTL > 0 {
		dst = append(dst, "; Max-Age="...)
		// Round up: a sub-second ttl must not become Max-Age=0, which
		// tells the browser to delete the cookie at once (RFC 6265 5.2.2).
		dst = strconv.AppendInt(dst, int64((cfg.TTL+time.Second-1)/time.Second), 10)
	}
	if cfg.Secure == "true" || (cfg.Secure == "auto" && (cfg.SameSite == "none" || httpsClient)) {
		dst = append(dst, "; Secure"...)
	}
	if cfg.HTTPOnly {
		dst = append(dst, "; HttpOnly"...)
	}
	switch cfg.SameSite {
	case "lax":
		dst = append(dst, "; SameSite=Lax"...)
	case "strict":
		dst = append(dst, "; SameSite=Strict"...)
	case "none":
		dst = append(dst, "; SameSite=None"...)
	}
	return dst
}

// setCookieValue returns the value in a Set-Cookie field if it names name.
func setCookieValue(v []byte, name string) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	if len(v) <= len(name) || v[len(name)] != '=' || string(v[:len(name)]) != name {
		return nil
	}
	v = v[len(name)+1:]
	for i, c := range v {
		if c == ';' {
			v = v[:i]
			break
		}
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v
}

// maxAppCookieLen bounds the application cookie values the table stores;
// longer values are not remembered (their requests follow the strategy).
const maxAppCookieLen = 256

func appendHex16(dst []byte, v uint64) []byte {
	const hexd = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		dst = append(dst, hexd[(v>>(uint(i)*4))&0xf])
	}
	return dst
}

// appTable maps application cookie values to backend sticky IDs: sharded,
// each shard an LRU bounded to its share of max entries, entries expire after
// ttl. Memory: about 100 bytes plus the cookie value per entry.
type appTable struct {
	shards [16]appShard
}

type appEntry struct {
	key        string
	id         uint64
	expires    int64
	prev, next *appEntry
}

type appShard struct {
	mu   sync.Mutex
	m    map[string]*appEntry
	head appEntry
	cap  int
	ttl  time.Duration
}

func newAppTable(max int, ttl time.Duration) *appTable {
	t := &appTable{}
	for i := range t.shards {
		s := &t.shards[i]
		s.m = map[string]*appEntry{}
		s.head.next, s.head.prev = &s.head, &s.head
	}
	t.setLimits(max, ttl)
	return t
}

func (t *appTable) setLimits(max int, ttl time.Duration) {
	per := max / len(t.shards)
	if per < 1 {
		per = 1
	}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.cap, s.ttl = per, ttl
		s.mu.Unlock()
	}
}

func (t *appTable) shard(k []byte) *appShard {
	h := uint32(2166136261)
	for _, c := range k {
		h = (h ^ uint32(c)) * 16777619
	}
	return &t.shards[h%uint32(len(t.shards))]
}

func (t *appTable) get(k []byte, now time.Time) (uint64, bool) {
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

func (t *appTable) put(k []byte, id uint64, now time.Time) {
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
	e := &appEntry{key: string(k), id: id, expires: exp}
	s.m[e.key] = e
	s.pushFront(e)
}

func (s *appShard) unlink(e *appEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (s *appShard) pushFront(e *appEntry) {
	e.next, e.prev = s.head.next, &s.head
	s.head.next.prev = e
	s.head.next = e
}

func (t *appTable) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
