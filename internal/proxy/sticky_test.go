package proxy

// Unit tests of session persistence (sticky.go): the pins of requests and the
// Set-Cookie fulcrum writes. The cookie encoding, Set-Cookie parsing and the
// app_cookie table are tested in internal/sticky.
// The end-to-end behaviour (pins over real sockets, failover, reload,
// metrics) is covered by e2e/sticky_test.go.

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/balance"
	"fulcrum/internal/config"
	"fulcrum/internal/h1"
	"fulcrum/internal/pool"
	sess "fulcrum/internal/sticky"
)

// stickySnap builds a snapshot over backends with the given keys, all usable,
// as pool.rebuildLocked does for the fields sticky.go reads.
func stickySnap(keys ...string) *pool.Snapshot {
	now := time.Now()
	snap := &pool.Snapshot{ByStickyID: map[uint64]int{}}
	var usable []*backend.Backend
	for i, k := range keys {
		st := backend.NewState(now)
		b := &backend.Backend{URL: k, Host: strings.TrimPrefix(k, "http://"), Key: k, KeyHash: balance.HashString(k),
			Weight: 1, EffectiveWeight: 1, Index: i, State: st}
		snap.Members = append(snap.Members, &pool.Member{Backend: b, State: st})
		snap.ByStickyID[pool.StickyID(k)] = i
		snap.StickyIDs = append(snap.StickyIDs, pool.StickyID(k))
		usable = append(usable, b)
	}
	ipHash, _ := balance.Lookup("ip_hash")
	snap.SourceIP = ipHash(usable, nil)
	snap.Usable = len(usable)
	return snap
}

func cookieHex(key string) string { return string(sess.AppendCookie(nil, pool.StickyID(key))) }

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestStickyDecodeCookie(t *testing.T) {
	t.Parallel()
	// The exported name other packages use decodes a backend's cookie; the
	// format itself is tested in internal/sticky.
	for _, key := range []string{"http://127.0.0.1:8080", "http://a:1"} {
		if got, ok := DecodeStickyCookie([]byte(cookieHex(key))); !ok || got != pool.StickyID(key) {
			t.Fatalf("DecodeStickyCookie(cookie of %s) = %#x, %v; want %#x", key, got, ok, pool.StickyID(key))
		}
	}
	if _, ok := DecodeStickyCookie([]byte("0123456789ABCDEF")); ok {
		t.Fatal("uppercase decoded")
	}
}

func TestStickyIDStableAndOpaque(t *testing.T) {
	t.Parallel()
	// The cookie for a backend is a fixed function of its key: the same on
	// every instance and after every reload, and it does not contain the address.
	const key = "http://127.0.0.1:8080"
	v := cookieHex(key)
	if v != cookieHex(key) {
		t.Fatal("StickyID not deterministic")
	}
	// Pinned value: changing it breaks every cookie in the field on upgrade.
	if want := fmt.Sprintf("%016x", balance.HashString("fulcrum-sticky\x00"+key)); v != want {
		t.Fatalf("cookie %s, want %s", v, want)
	}
	if cookieHex("http://127.0.0.1:8081") == v {
		t.Fatal("two backends share a cookie value")
	}
}

func TestStickyNewKeepsAppTableAcrossReload(t *testing.T) {
	t.Parallel()
	cfg := &config.Sticky{Type: "app_cookie", CookieName: "JSESSIONID", TTL: time.Hour, MaxEntries: 1600}
	s1 := newSticky(cfg, nil)
	s1.app.Put([]byte("v"), 7, time.Now())

	// Same cookie name, new limits: the table (and its pins) carry over.
	cfg2 := *cfg
	cfg2.MaxEntries, cfg2.TTL = 160, time.Minute
	s2 := newSticky(&cfg2, s1)
	if s2.app != s1.app {
		t.Fatal("reload with the same cookie name dropped the app_cookie table")
	}
	if id, ok := s2.app.Get([]byte("v"), time.Now()); !ok || id != 7 {
		t.Fatalf("pin lost across reload: %d, %v", id, ok)
	}
	// The new limits apply: ttl 1 minute for new pins, at most 160 entries.
	now := time.Now()
	s2.app.Put([]byte("w"), 8, now)
	if _, ok := s2.app.Get([]byte("w"), now.Add(2*time.Minute)); ok {
		t.Fatal("ttl not updated: a pin put after the reload outlived 1 minute")
	}
	for i := range 1000 {
		s2.app.Put(fmt.Appendf(nil, "s%d", i), 1, now)
	}
	if n := s2.app.Len(); n > 160 {
		t.Fatalf("max_entries not updated: %d entries, want <= 160", n)
	}
	// Another cookie name: a fresh table.
	cfg3 := *cfg
	cfg3.CookieName = "SID"
	if s3 := newSticky(&cfg3, s2); s3.app == s2.app || s3.app.Len() != 0 {
		t.Fatal("cookie name changed but the old table was kept")
	}
	if newSticky(nil, s2) != nil {
		t.Fatal("sticky off must yield nil")
	}
	if s := newSticky(&config.Sticky{Type: "cookie", CookieName: "C"}, s2); s.app != nil {
		t.Fatal("cookie stickiness has an app table")
	}
}

// parseSetCookie parses a Set-Cookie value the way a browser would.
func parseSetCookie(t *testing.T, v []byte) *http.Cookie {
	t.Helper()
	c, err := http.ParseSetCookie(string(v))
	if err != nil {
		t.Fatalf("Set-Cookie %q does not parse: %v", v, err)
	}
	return c
}

func TestStickySetCookieAttributes(t *testing.T) {
	t.Parallel()
	keys := []string{"http://127.0.0.1:8001", "http://127.0.0.1:8002"}
	snap := stickySnap(keys...)
	def := config.Sticky{Type: "cookie", CookieName: "FULCRUM_BACKEND", Secure: "auto", HTTPOnly: true, SameSite: "lax"}
	cases := []struct {
		name  string
		mod   func(*config.Sticky)
		exact string // expected Set-Cookie value when non-empty
		check func(t *testing.T, c *http.Cookie, raw string)
	}{
		{name: "defaults (secure auto means not Secure without TLS)", mod: func(*config.Sticky) {},
			exact: "FULCRUM_BACKEND=" + cookieHex(keys[1]) + "; Path=/; HttpOnly; SameSite=Lax"},
		{name: "ttl gives Max-Age in seconds", mod: func(s *config.Sticky) { s.TTL = 90 * time.Second },
			check: func(t *testing.T, c *http.Cookie, raw string) {
				if c.MaxAge != 90 {
					t.Errorf("Max-Age %d, want 90 (%s)", c.MaxAge, raw)
				}
			}},
		{name: "sub-second ttl rounds up, never Max-Age=0", mod: func(s *config.Sticky) { s.TTL = 500 * time.Millisecond },
			check: func(t *testing.T, c *http.Cookie, raw string) {
				// Max-Age=0 would tell the browser to delete the cookie at once.
				if !strings.Contains(raw, "; Max-Age=1") {
					t.Errorf("want Max-Age=1 in %s", raw)
				}
			}},
		{name: "fractional ttl rounds up", mod: func(s *config.Sticky) { s.TTL = 1500 * time.Millisecond },
			check: func(t *testing.T, c *http.Cookie, raw string) {
				if c.MaxAge != 2 {
					t.Errorf("Max-Age %d, want 2 (%s)", c.MaxAge, raw)
				}
			}},
		{name: "secure true", mod: func(s *config.Sticky) { s.Secure = "true" },
			check: func(t *testing.T, c *http.Cookie, raw string) {
				if !c.Secure {
					t.Errorf("not Secure: %s", raw)
				}
			}},
		{name: "secure false", mod: func(s *config.Sticky) { s.Secure = "false" },
			check: func(t *testing.T, c *http.Cookie, raw string) {
				if c.Secure {
					t.Errorf("Secure: %s", raw)
				}
			}},
		{name: "http_only false", mod: func(s *config.Sticky) { s.HTTPOnly = false },
			check: func(t *testing.T, c *http.Cookie, raw string) {
				if c.HttpOnly {
					t.Errorf("HttpOnly: %s", raw)
				}
			}},
		{name: "same_site strict", mod: func(s *config.Sticky) { s.SameSite = "strict" },
			check: func(t *testing.T, c *http.Cookie, raw string) {
				if c.SameSite != http.SameSiteStrictMode {
					t.Errorf("SameSite %v: %s", c.SameSite, raw)
				}
			}},
		{name: "same_site none with secure", mod: func(s *config.Sticky) { s.SameSite, s.Secure = "none", "true" },
			check: func(t *testing.T, c *http.Cookie, raw string) {
				if c.SameSite != http.SameSiteNoneMode || !c.Secure {
					t.Errorf("SameSite %v Secure %v: %s", c.SameSite, c.Secure, raw)
				}
			}},
		{name: "custom name", mod: func(s *config.Sticky) { s.CookieName = "LB" },
			exact: "LB=" + cookieHex(keys[1]) + "; Path=/; HttpOnly; SameSite=Lax"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := def
			tc.mod(&cfg)
			s := newSticky(&cfg, nil)
			raw := s.setCookie(nil, stickyMiss, 1, -1, snap, &h1.Response{}, nil, false)
			if tc.exact != "" && string(raw) != tc.exact {
				t.Fatalf("Set-Cookie %q, want %q", raw, tc.exact)
			}
			c := parseSetCookie(t, raw)
			if c.Name != cfg.CookieName || c.Value != cookieHex(keys[1]) || c.Path != "/" {
				t.Fatalf("cookie %s=%s path %q: want %s=%s path /", c.Name, c.Value, c.Path, cfg.CookieName, cookieHex(keys[1]))
			}
			if cfg.TTL == 0 && (c.MaxAge != 0 || strings.Contains(string(raw), "Max-Age")) {
				t.Fatalf("session cookie has Max-Age: %s", raw)
			}
			if id, ok := DecodeStickyCookie([]byte(c.Value)); !ok || snap.ByStickyID[id] != 1 {
				t.Fatalf("cookie value %q does not lead back to backend 1", c.Value)
			}
			if tc.check != nil {
				tc.check(t, c, string(raw))
			}
		})
	}
}

func TestStickySetCookieWhen(t *testing.T) {
	t.Parallel()
	snap := stickySnap("http://127.0.0.1:8001", "http://127.0.0.1:8002")
	s := newSticky(&config.Sticky{Type: "cookie", CookieName: "S", Secure: "auto", HTTPOnly: true, SameSite: "lax"}, nil)
	cases := []struct {
		name         string
		res          stickyResult
		used, pinned int
		want         bool
	}{
		{"hit on the pinned backend: no cookie", stickyHit, 0, 0, false},
		{"hit but served elsewhere: reset", stickyHit, 1, 0, true},
		{"miss: set", stickyMiss, 1, -1, true},
		{"repinned: reset", stickyRepinned, 0, -1, true},
	}
	for _, tc := range cases {
		got := s.setCookie(nil, tc.res, tc.used, tc.pinned, snap, &h1.Response{}, nil, false)
		if (len(got) > 0) != tc.want {
			t.Errorf("%s: Set-Cookie %q", tc.name, got)
		}
		if len(got) > 0 && !strings.HasPrefix(string(got), "S="+cookieHex(snap.Members[tc.used].Backend.Key)+";") {
			t.Errorf("%s: cookie %q does not name backend %d", tc.name, got, tc.used)
		}
	}
}

func TestStickyAppCookieLearns(t *testing.T) {
	t.Parallel()
	snap := stickySnap("http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003")
	s := newSticky(&config.Sticky{Type: "app_cookie", CookieName: "JSESSIONID", TTL: time.Hour, MaxEntries: 1000}, nil)
	resp := func(fields ...string) *h1.Response {
		r := &h1.Response{Status: 200}
		for _, f := range fields {
			name, val, _ := strings.Cut(f, ": ")
			r.Headers = append(r.Headers, h1.Header{Name: []byte(name), Value: []byte(val)})
		}
		return r
	}
	lookup := func(v string) (uint64, bool) { return s.app.Get([]byte(v), time.Now()) }
	id := func(i int) uint64 { return pool.StickyID(snap.Members[i].Backend.Key) }

	// The backend's Set-Cookie (any case of the field name, among others) is learned.
	if out := s.setCookie(nil, stickyMiss, 1, -1, snap, resp("Content-Type: text/plain",
		"set-cookie: other=1", "Set-Cookie: JSESSIONID=s1; Path=/; HttpOnly"), nil, false); len(out) != 0 {
		t.Fatalf("app_cookie must not add a Set-Cookie of its own: %q", out)
	}
	if got, ok := lookup("s1"); !ok || got != id(1) {
		t.Fatalf("s1 -> %x, %v; want backend 1", got, ok)
	}
	if _, ok := lookup("1"); ok {
		t.Fatal("learned another cookie's value")
	}
	// A response without the cookie on the pinned backend changes nothing.
	s.setCookie(nil, stickyHit, 1, 1, snap, resp(), []byte("s1"), false)
	if got, _ := lookup("s1"); got != id(1) {
		t.Fatal("pin changed on a plain hit")
	}
	// The pinned backend was down: the request went to 2, which did not set a
	// new cookie (shared sessions): the value moves to 2.
	s.setCookie(nil, stickyRepinned, 2, -1, snap, resp(), []byte("s1"), false)
	if got, _ := lookup("s1"); got != id(2) {
		t.Fatal("pin did not move with the request")
	}
	// The new backend issued a new session: the new value is learned, the
	// old one is left alone.
	s.setCookie(nil, stickyRepinned, 0, -1, snap, resp("Set-Cookie: JSESSIONID=s2"), []byte("s1"), false)
	if got, _ := lookup("s2"); got != id(0) {
		t.Fatal("s2 not learned")
	}
	if got, _ := lookup("s1"); got != id(2) {
		t.Fatal("old value re-pinned although the backend issued a new one")
	}
	// A deletion (empty value) is not learned.
	s.setCookie(nil, stickyMiss, 0, -1, snap, resp("Set-Cookie: JSESSIONID=; Max-Age=0"), nil, false)
	if _, ok := lookup(""); ok {
		t.Fatal("empty value learned")
	}
}

func TestStickyLookup(t *testing.T) {
	t.Parallel()
	keys := []string{"http://127.0.0.1:8001", "http://127.0.0.1:8002", "http://127.0.0.1:8003"}
	client := netipMust("127.0.0.9")
	conn := func(cookie string) *clientConn {
		c := &clientConn{scratch: &scratch{}}
		if cookie != "" {
			c.req.Headers = []h1.Header{{Name: []byte("Cookie"), Value: []byte(cookie)}}
		}
		return c
	}

	t.Run("cookie", func(t *testing.T) {
		snap := stickySnap(keys...)
		snap.Members[2].State.SetHealthy(false, time.Now())
		s := newSticky(&config.Sticky{Type: "cookie", CookieName: "S"}, nil)
		cases := []struct {
			name   string
			cookie string
			idx    int
			res    stickyResult
		}{
			{"no cookie header", "", -1, stickyMiss},
			{"other cookies only", "a=1; b=2", -1, stickyMiss},
			{"valid", "S=" + cookieHex(keys[1]), 1, stickyHit},
			{"valid among others", "a=1; S=" + cookieHex(keys[0]) + "; b=2", 0, stickyHit},
			{"valid quoted", `S="` + cookieHex(keys[0]) + `"`, 0, stickyHit},
			{"pinned backend down", "S=" + cookieHex(keys[2]), -1, stickyRepinned},
			{"garbage", "S=garbage", -1, stickyRepinned},
			{"empty value", "S=", -1, stickyRepinned},
			{"wrong length", "S=" + cookieHex(keys[0])[:15], -1, stickyRepinned},
			{"uppercase", "S=" + strings.ToUpper(cookieHex(keys[0])), -1, stickyRepinned},
			{"hex of no backend", "S=" + cookieHex("http://127.0.0.1:9"), -1, stickyRepinned},
		}
		for _, tc := range cases {
			idx, res := s.lookup(conn(tc.cookie), snap, client)
			if idx != tc.idx || res != tc.res {
				t.Errorf("%s: lookup = %d, %s; want %d, %s", tc.name, idx, stickyLabels[res], tc.idx, stickyLabels[tc.res])
			}
		}
		// A drained or disabled backend is passed over like a down one, even
		// in a snapshot built before the admin action; enabled, it is used again.
		for _, a := range []backend.AdminState{backend.AdminDrain, backend.AdminDisabled} {
			snap.Members[1].State.SetAdmin(a)
			if idx, res := s.lookup(conn("S="+cookieHex(keys[1])), snap, client); idx != -1 || res != stickyRepinned {
				t.Errorf("pinned backend %s: lookup = %d, %s; want -1, repinned", a, idx, stickyLabels[res])
			}
		}
		snap.Members[1].State.SetAdmin(backend.AdminReady)
		if idx, res := s.lookup(conn("S="+cookieHex(keys[1])), snap, client); idx != 1 || res != stickyHit {
			t.Errorf("pinned backend enabled again: lookup = %d, %s; want 1, hit", idx, stickyLabels[res])
		}
	})

	t.Run("app_cookie", func(t *testing.T) {
		snap := stickySnap(keys...)
		s := newSticky(&config.Sticky{Type: "app_cookie", CookieName: "J", TTL: time.Hour, MaxEntries: 100}, nil)
		now := time.Now()
		s.app.Put([]byte("known"), pool.StickyID(keys[2]), now)
		s.app.Put([]byte("gone"), pool.StickyID("http://127.0.0.1:9"), now)
		for _, tc := range []struct {
			cookie string
			idx    int
			res    stickyResult
		}{
			{"", -1, stickyMiss},
			{"J=", -1, stickyMiss},
			{"J=known", 2, stickyHit},
			{"J=unknown", -1, stickyRepinned},
			{"J=gone", -1, stickyRepinned},
		} {
			idx, res := s.lookup(conn(tc.cookie), snap, client)
			if idx != tc.idx || res != tc.res {
				t.Errorf("%q: lookup = %d, %s; want %d, %s", tc.cookie, idx, stickyLabels[res], tc.idx, stickyLabels[tc.res])
			}
		}
		snap.Members[2].State.SetAdmin(backend.AdminDrain)
		if idx, res := s.lookup(conn("J=known"), snap, client); idx != -1 || res != stickyRepinned {
			t.Errorf("pinned backend draining: lookup = %d, %s", idx, stickyLabels[res])
		}
		snap.Members[2].State.SetAdmin(backend.AdminReady)
		snap.Members[2].State.SetHealthy(false, now)
		if idx, res := s.lookup(conn("J=known"), snap, client); idx != -1 || res != stickyRepinned {
			t.Errorf("pinned backend down: lookup = %d, %s", idx, stickyLabels[res])
		}
	})

	t.Run("source_ip", func(t *testing.T) {
		snap := stickySnap(keys...)
		s := newSticky(&config.Sticky{Type: "source_ip"}, nil)
		c := conn("")
		first, res := s.lookup(c, snap, client)
		if first < 0 || res != stickyHit {
			t.Fatalf("lookup = %d, %s", first, stickyLabels[res])
		}
		if c.call.Pick.HasHash {
			t.Fatal("lookup left its hash in the request: the strategy's retries would use it")
		}
		for range 10 {
			if idx, _ := s.lookup(conn(""), snap, client); idx != first {
				t.Fatalf("same client went to %d, then %d", first, idx)
			}
		}
		// Different clients spread over the backends.
		seen := map[int]bool{}
		for i := range 64 {
			idx, _ := s.lookup(conn(""), snap, netipMust(fmt.Sprintf("10.0.0.%d", i)))
			seen[idx] = true
		}
		if len(seen) != len(keys) {
			t.Fatalf("64 clients used backends %v", seen)
		}
		// No usable backend in the table: the strategy decides.
		empty := stickySnap()
		if idx, res := s.lookup(conn(""), empty, client); idx != -1 || res != stickyMiss {
			t.Fatalf("empty snapshot: lookup = %d, %s", idx, stickyLabels[res])
		}
	})
}

func TestStickySecureAutoAndSecret(t *testing.T) {
	snap, keys := stickySnapForSecret(t)
	auto := newSticky(&config.Sticky{Type: "cookie", CookieName: "LB", Secure: "auto", SameSite: "lax"}, nil)
	if got := string(auto.setCookie(nil, stickyMiss, 0, -1, snap, &h1.Response{}, nil, false)); strings.Contains(got, "Secure") {
		t.Fatalf("auto on plain HTTP must not be Secure: %q", got)
	}
	if got := string(auto.setCookie(nil, stickyMiss, 0, -1, snap, &h1.Response{}, nil, true)); !strings.Contains(got, "; Secure") {
		t.Fatalf("auto behind a trusted HTTPS proxy must be Secure: %q", got)
	}
	none := newSticky(&config.Sticky{Type: "cookie", CookieName: "LB", Secure: "auto", SameSite: "none"}, nil)
	if got := string(none.setCookie(nil, stickyMiss, 0, -1, snap, &h1.Response{}, nil, false)); !strings.Contains(got, "; Secure") || !strings.Contains(got, "SameSite=None") {
		t.Fatalf("SameSite=None must come with Secure under auto: %q", got)
	}
	// A secret changes the cookie value; without it the value is the unkeyed hash.
	if pool.StickyIDKeyed("", keys[0]) != pool.StickyID(keys[0]) {
		t.Fatal("empty secret must give the unkeyed ID")
	}
	if a, b := pool.StickyIDKeyed("s3cret", keys[0]), pool.StickyID(keys[0]); a == b {
		t.Fatal("secret did not change the ID")
	}
	if pool.StickyIDKeyed("s3cret", keys[0]) != pool.StickyIDKeyed("s3cret", keys[0]) {
		t.Fatal("keyed ID not deterministic")
	}
}

func stickySnapForSecret(t *testing.T) (*pool.Snapshot, []string) {
	t.Helper()
	keys := []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}
	snap := &pool.Snapshot{ByStickyID: map[uint64]int{}}
	for i, k := range keys {
		st := backend.NewState(time.Now())
		snap.Members = append(snap.Members, &pool.Member{Backend: &backend.Backend{Key: k, Index: i, State: st}, State: st})
		snap.ByStickyID[pool.StickyID(k)] = i
		snap.StickyIDs = append(snap.StickyIDs, pool.StickyID(k))
	}
	return snap, keys
}

// Values a client invents are never stored: the table cannot be filled by
// clients, and over-long values are not remembered at all.
func TestStickyAppCookieIgnoresInventedValues(t *testing.T) {
	snap := stickySnap("http://127.0.0.1:1", "http://127.0.0.1:2")
	s := newSticky(&config.Sticky{Type: "app_cookie", CookieName: "JSESSIONID", TTL: time.Hour, MaxEntries: 1000}, nil)
	for i := 0; i < 100; i++ {
		s.setCookie(nil, stickyRepinned, 1, -1, snap, &h1.Response{}, []byte(fmt.Sprintf("invented-%d", i)), false)
	}
	if n := s.app.Len(); n != 0 {
		t.Fatalf("table holds %d invented values, want 0", n)
	}
	long := "Set-Cookie: JSESSIONID=" + strings.Repeat("x", sess.MaxAppCookieLen+1)
	resp := &h1.Response{Headers: []h1.Header{{Name: []byte("Set-Cookie"), Value: []byte(long[len("Set-Cookie: "):])}}}
	s.setCookie(nil, stickyMiss, 0, -1, snap, resp, nil, false)
	if n := s.app.Len(); n != 0 {
		t.Fatalf("over-long value stored")
	}
}
