package e2e

// Session persistence end to end: cookie, app_cookie and source_ip
// stickiness through the real binary, with failover (a killed backend),
// hot reloads, two instances sharing a config, tampered cookies and the
// loadbalancer_sticky_total counters. Helpers are prefixed "sticky" to stay
// out of the way of other files in this package.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const stickyCookie = "FULCRUM_BACKEND"

// stickyHealth detects a dead backend within about 600 ms without being
// fooled by one slow probe on a busy machine.
const stickyHealth = `"health_check": {"type": "tcp", "interval": "200ms", "timeout": "200ms", "healthy_threshold": 1, "unhealthy_threshold": 3}`

// stickyConfig is a fulcrum config over backends with extra top-level keys.
func stickyConfig(backends []*Backend, extra string) string {
	urls := make([]string, len(backends))
	for i, b := range backends {
		urls[i] = strconv.Quote(b.URL)
	}
	return fmt.Sprintf(`{"backends": [%s], %s}`, strings.Join(urls, ", "), extra)
}

func stickyBackends(t *testing.T, n int, handler func(name string) http.HandlerFunc) []*Backend {
	t.Helper()
	bs := make([]*Backend, n)
	for i := range bs {
		name := fmt.Sprintf("b%d", i+1)
		var h http.HandlerFunc
		if handler != nil {
			h = handler(name)
		}
		bs[i] = StartBackend(t, name, 0, h)
	}
	return bs
}

// stickyStart starts fulcrum and prints its log if the test fails.
func stickyStart(t *testing.T, cfg string) *Fulcrum {
	t.Helper()
	f := StartFulcrum(t, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fulcrum %s log:\n%s", f.Addr, f.Logs.String())
		}
	})
	return f
}

// stickyTransport is a keep-alive transport closed at cleanup. local, if
// non-empty, is the loopback source address connections are made from.
func stickyTransport(t *testing.T, local string) *http.Transport {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// stickyJarClients returns n clients, each with its own cookie jar, sharing tr.
func stickyJarClients(t *testing.T, n int, tr *http.Transport) []*http.Client {
	t.Helper()
	cs := make([]*http.Client, n)
	for i := range cs {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = &http.Client{Jar: jar, Transport: tr, Timeout: 20 * time.Second}
	}
	return cs
}

// stickyResp is one response as the tests look at it.
type stickyResp struct {
	status  int
	body    string
	cookies []*http.Cookie // Set-Cookie fields of the response
	raw     []string       // the same, unparsed
}

// cookie returns the value of the named Set-Cookie, if the response has one.
func (r stickyResp) cookie(name string) (string, bool) {
	for _, c := range r.cookies {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

// stickyGet sends GET url. cookie, if non-empty, is sent as the Cookie
// field (on top of whatever the client's jar adds); hdr adds fields.
func stickyGet(c *http.Client, url, cookie string, hdr ...string) (stickyResp, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return stickyResp{}, err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return stickyResp{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return stickyResp{}, err
	}
	r := stickyResp{status: resp.StatusCode, body: string(b), cookies: resp.Cookies(), raw: resp.Header.Values("Set-Cookie")}
	if r.status != 200 {
		return r, fmt.Errorf("GET %s: status %d: %q", url, r.status, r.body)
	}
	return r, nil
}

// stickyMustGet is stickyGet for the test goroutine.
func stickyMustGet(t *testing.T, c *http.Client, url, cookie string, hdr ...string) stickyResp {
	t.Helper()
	r, err := stickyGet(c, url, cookie, hdr...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// stickyRun makes each selected client send n requests to url, the clients
// concurrently, each client's requests in order, and returns every client's
// responses (nil for clients not selected). Failures are reported with
// t.Errorf and fail the test at the end.
func stickyRun(t *testing.T, clients []*http.Client, selected func(i int) bool, n int, url string) [][]stickyResp {
	t.Helper()
	out := make([][]stickyResp, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		if selected != nil && !selected(i) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				r, err := stickyGet(c, url, "")
				if err != nil {
					t.Errorf("client %d: %v", i, err)
					return
				}
				out[i] = append(out[i], r)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// stickyOneBackend returns the backend that served all of rs, or fails.
func stickyOneBackend(t *testing.T, who string, rs []stickyResp) string {
	t.Helper()
	for _, r := range rs[1:] {
		if r.body != rs[0].body {
			t.Fatalf("%s was not pinned: served by %v", who, stickyBodies(rs))
		}
	}
	return rs[0].body
}

func stickyBodies(rs []stickyResp) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.body
	}
	return out
}

var stickyMetricRE = regexp.MustCompile(`^loadbalancer_sticky_total\{[^}]*result="([a-z]+)"[^}]*\} (\S+)$`)

// stickyCounts scrapes loadbalancer_sticky_total by result.
func stickyCounts(t *testing.T, f *Fulcrum) map[string]int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(f.AdminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, l := range strings.Split(string(b), "\n") {
		if m := stickyMetricRE.FindStringSubmatch(l); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", l, err)
			}
			out[m[1]] += int(v)
		}
	}
	return out
}

// stickyWantCounts checks the counters against what the test did.
func stickyWantCounts(t *testing.T, f *Fulcrum, hit, miss, repinned int) {
	t.Helper()
	got := stickyCounts(t, f)
	want := map[string]int{"hit": hit, "miss": miss, "repinned": repinned}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("loadbalancer_sticky_total: got %v, want %v", got, want)
		}
	}
}

// stickyReload rewrites the config file and applies it through the admin API.
func stickyReload(t *testing.T, f *Fulcrum, cfg string) {
	t.Helper()
	f.WriteConfig(cfg)
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Post(f.AdminURL("/admin/reload"), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("reload: %d %s", resp.StatusCode, b)
	}
}

// stickyBackendUp reports what the admin API says about the backend at url.
func stickyBackendUp(t *testing.T, f *Fulcrum, url string) bool {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(f.AdminURL("/admin/backends"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st []struct {
		URL string `json:"url"`
		Up  bool   `json:"up"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.URL == url {
			return s.Up
		}
	}
	t.Fatalf("backend %s not in /admin/backends", url)
	return false
}

// stickyByBackend groups client indexes by the backend they are pinned to.
func stickyByBackend(pins []string) map[string][]int {
	out := map[string][]int{}
	for i, b := range pins {
		out[b] = append(out[b], i)
	}
	return out
}

// TestStickyCookie: 50 clients with their own cookie jars stay on one
// backend each; first picks follow round_robin; a second instance with the
// same config honours the same cookies; a killed backend's clients move once
// and stay; a reload that keeps the backend list keeps every pin.
func TestStickyCookie(t *testing.T) {
	bs := stickyBackends(t, 3, nil)
	extra := `"strategy": "round_robin", ` + stickyHealth + `,
		"sticky": {"type": "cookie", "cookie_name": "FULCRUM_BACKEND", "ttl": 0, "secure": "auto", "http_only": true, "same_site": "lax"}`
	cfg := stickyConfig(bs, extra)
	f := stickyStart(t, cfg)
	tr := stickyTransport(t, "")
	const nClients, nReq = 50, 20
	clients := stickyJarClients(t, nClients, tr)
	hit, miss, repinned := 0, 0, 0

	// 1. Every client stays on one backend, the cookie is set once.
	res := stickyRun(t, clients, nil, nReq, f.URL("/"))
	pins := make([]string, nClients)
	cookieOf := map[string]string{} // backend name -> cookie value
	for i, rs := range res {
		pins[i] = stickyOneBackend(t, fmt.Sprintf("client %d", i), rs)
		v, ok := rs[0].cookie(stickyCookie)
		if !ok {
			t.Fatalf("client %d: first response sets no %s cookie: %q", i, stickyCookie, rs[0].raw)
		}
		if old, seen := cookieOf[pins[i]]; seen && old != v {
			t.Fatalf("backend %s has two cookie values: %s and %s", pins[i], old, v)
		}
		cookieOf[pins[i]] = v
		for j, r := range rs[1:] {
			if len(r.raw) != 0 {
				t.Fatalf("client %d request %d: cookie re-sent on a hit: %q", i, j+2, r.raw)
			}
		}
	}
	miss += nClients
	hit += nClients * (nReq - 1)
	// The value names the backend without revealing its address.
	seenValue := map[string]bool{}
	for _, b := range bs {
		v := cookieOf[b.Name]
		if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(v) || seenValue[v] {
			t.Fatalf("cookie values %v: want 16 distinct hex digits per backend", cookieOf)
		}
		seenValue[v] = true
	}
	// First picks follow round_robin: the counter only moves on misses.
	byBackend := stickyByBackend(pins)
	for _, b := range bs {
		if n := len(byBackend[b.Name]); n < nClients/len(bs) || n > nClients/len(bs)+1 {
			t.Fatalf("first picks not round robin: %v", map[string]int{
				"b1": len(byBackend["b1"]), "b2": len(byBackend["b2"]), "b3": len(byBackend["b3"])})
		}
	}
	stickyWantCounts(t, f, hit, miss, repinned)

	// 2. A second instance with the same config: same cookie for the same
	// backend, and it honours the first instance's cookies.
	f2 := stickyStart(t, cfg)
	plain := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for i, jc := range stickyJarClients(t, 2*len(bs), tr) {
		r := stickyMustGet(t, jc, f2.URL("/"), "")
		if v, _ := r.cookie(stickyCookie); v != cookieOf[r.body] {
			t.Fatalf("fresh client %d on instance 2: cookie %q for %s, instance 1 uses %q", i, v, r.body, cookieOf[r.body])
		}
	}
	for i, b := range pins {
		r := stickyMustGet(t, plain, f2.URL("/"), stickyCookie+"="+cookieOf[b])
		if r.body != b || len(r.raw) != 0 {
			t.Fatalf("client %d's cookie on instance 2: served by %s (Set-Cookie %q), want %s and no new cookie", i, r.body, r.raw, b)
		}
	}
	stickyWantCounts(t, f2, nClients, 2*len(bs), 0)
	f2.Stop()

	// 3. Kill a backend. A few of its clients go first, before the health
	// check can notice, so their failed attempt is retried elsewhere (the
	// retry budget always allows 3); the rest after it is marked down.
	victim := bs[1]
	victims := byBackend[victim.Name]
	early := victims[:min(3, len(victims))]
	victim.Close()
	moved := map[int]string{}
	for _, i := range early {
		r := stickyMustGet(t, clients[i], f.URL("/"), "")
		v, ok := r.cookie(stickyCookie)
		if r.body == victim.Name || !ok || v != cookieOf[r.body] {
			t.Fatalf("client %d after its backend died: served by %s, Set-Cookie %q", i, r.body, r.raw)
		}
		moved[i] = r.body
		repinned++
	}
	WaitFor(t, 15*time.Second, "the killed backend to be marked down", func() bool { return !stickyBackendUp(t, f, victim.URL) })
	const nAfter = 10
	res = stickyRun(t, clients, nil, nAfter, f.URL("/"))
	for i, rs := range res {
		got := stickyOneBackend(t, fmt.Sprintf("client %d after the kill", i), rs)
		isVictim := slices.Contains(victims, i)
		switch {
		case !isVictim:
			if got != pins[i] || len(rs[0].raw) != 0 {
				t.Fatalf("client %d of a live backend moved from %s to %s (Set-Cookie %q)", i, pins[i], got, rs[0].raw)
			}
			hit += nAfter
		case moved[i] != "":
			// Already moved by the early request: it stays there.
			if got != moved[i] || len(rs[0].raw) != 0 {
				t.Fatalf("client %d moved to %s, then went to %s", i, moved[i], got)
			}
			hit += nAfter
		default:
			v, ok := rs[0].cookie(stickyCookie)
			if got == victim.Name || !ok || v != cookieOf[got] {
				t.Fatalf("client %d after its backend was marked down: served by %s, Set-Cookie %q", i, got, rs[0].raw)
			}
			for _, r := range rs[1:] {
				if len(r.raw) != 0 {
					t.Fatalf("client %d: cookie set again after moving: %q", i, r.raw)
				}
			}
			moved[i] = got
			repinned++
			hit += nAfter - 1
		}
		pins[i] = got
	}
	stickyWantCounts(t, f, hit, miss, repinned)
	if len(victims) >= 4 {
		// The strategy spreads the moved clients over the survivors.
		movedTo := map[string]int{}
		for _, b := range moved {
			movedTo[b]++
		}
		if len(movedTo) != len(bs)-1 {
			t.Fatalf("the %d moved clients went to %v only", len(moved), movedTo)
		}
	}

	// 4. A reload that keeps the backend list (here reversed) keeps every pin.
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	stickyReload(t, f, stickyConfig(rev, strings.Replace(extra, `"interval": "200ms"`, `"interval": "300ms"`, 1)))
	res = stickyRun(t, clients, nil, 3, f.URL("/"))
	for i, rs := range res {
		if got := stickyOneBackend(t, fmt.Sprintf("client %d after reload", i), rs); got != pins[i] || len(rs[0].raw) != 0 {
			t.Fatalf("client %d: pinned to %s, after reload served by %s (Set-Cookie %q)", i, pins[i], got, rs[0].raw)
		}
	}
	hit += nClients * 3
	stickyWantCounts(t, f, hit, miss, repinned)
}

// TestStickyCookieTampered: garbage, wrong-length, uppercase and unknown
// cookies, and cookies of a backend removed by reload, are answered 200 with
// the cookie reset to the backend that served; the Set-Cookie attributes are
// the configured ones; pins survive reloads that keep the backend.
func TestStickyCookieTampered(t *testing.T) {
	bs := stickyBackends(t, 3, nil)
	extra := `"strategy": "round_robin", "sticky": {"type": "cookie"}`
	f := stickyStart(t, stickyConfig(bs, extra))
	c := &http.Client{Transport: stickyTransport(t, ""), Timeout: 20 * time.Second}
	url := f.URL("/")
	hit, miss, repinned := 0, 0, 0

	// Learn each backend's cookie; check the attributes (defaults: session
	// cookie, HttpOnly, SameSite=Lax, and no Secure since secure "auto"
	// has no TLS listener to follow).
	cookieOf := map[string]string{}
	for range bs {
		r := stickyMustGet(t, c, url, "")
		miss++
		if len(r.raw) != 1 {
			t.Fatalf("want one Set-Cookie, got %q", r.raw)
		}
		v, ok := r.cookie(stickyCookie)
		if !ok {
			t.Fatalf("no %s cookie: %q", stickyCookie, r.raw)
		}
		want := stickyCookie + "=" + v + "; Path=/; HttpOnly; SameSite=Lax"
		if r.raw[0] != want {
			t.Fatalf("Set-Cookie %q, want %q", r.raw[0], want)
		}
		cookieOf[r.body] = v
	}
	if len(cookieOf) != len(bs) {
		t.Fatalf("round robin did not reach every backend: %v", cookieOf)
	}
	valid := cookieOf["b1"]
	upper := strings.ToUpper(valid)
	tampered := []string{
		"garbage",
		"",
		valid[:15],
		valid + "0",
		"0000000000000000", // valid hex, no backend
		"../../../etc/passwd",
		strings.Repeat("a", 4000),
		"FULCRUM_BACKEND=" + valid, // value containing '='
	}
	if upper != valid {
		tampered = append(tampered, upper)
	}
	reset := func(what, cookie string) string {
		t.Helper()
		r := stickyMustGet(t, c, url, cookie)
		v, ok := r.cookie(stickyCookie)
		if !ok || cookieOf[r.body] != v {
			t.Fatalf("%s: served by %s with Set-Cookie %q: want the cookie reset to that backend", what, r.body, r.raw)
		}
		repinned++
		return r.body
	}
	for _, v := range tampered {
		reset(fmt.Sprintf("cookie %.40q", v), stickyCookie+"="+v)
	}
	// Valid cookies, however they are presented, are hits and set nothing.
	for _, ck := range []string{
		stickyCookie + "=" + cookieOf["b2"],
		"a=1; " + stickyCookie + "=" + cookieOf["b2"] + "; z=2",
		stickyCookie + `="` + cookieOf["b2"] + `"`,
		"fulcrum_backend=garbage; " + stickyCookie + "=" + cookieOf["b2"],
	} {
		if r := stickyMustGet(t, c, url, ck); r.body != "b2" || len(r.raw) != 0 {
			t.Fatalf("cookie %q: served by %s, Set-Cookie %q; want b2 and none", ck, r.body, r.raw)
		}
		hit++
	}
	stickyWantCounts(t, f, hit, miss, repinned)

	// Remove b3 by reload: its cookie falls back to the strategy and is reset;
	// b3 (still running) gets nothing; the other pins are kept.
	stickyReload(t, f, stickyConfig(bs[:2], extra))
	b3hits := bs[2].Hits.Load()
	for range 4 {
		if got := reset("cookie of removed b3", stickyCookie+"="+cookieOf["b3"]); got == "b3" {
			t.Fatal("removed backend still served")
		}
	}
	if n := bs[2].Hits.Load(); n != b3hits {
		t.Fatalf("removed backend got %d requests", n-b3hits)
	}
	for _, name := range []string{"b1", "b2"} {
		if r := stickyMustGet(t, c, url, stickyCookie+"="+cookieOf[name]); r.body != name || len(r.raw) != 0 {
			t.Fatalf("%s's pin after removing b3: served by %s, Set-Cookie %q", name, r.body, r.raw)
		}
		hit++
	}
	// Put b3 back: its old cookie works again (the value is a function of
	// the backend's URL, not of its position or of the process).
	stickyReload(t, f, stickyConfig(bs, extra))
	if r := stickyMustGet(t, c, url, stickyCookie+"="+cookieOf["b3"]); r.body != "b3" || len(r.raw) != 0 {
		t.Fatalf("b3's cookie after b3 came back: served by %s, Set-Cookie %q", r.body, r.raw)
	}
	hit++
	stickyWantCounts(t, f, hit, miss, repinned)
}

// stickyAppHandler is an application with a shared session store: a request
// without a known JSESSIONID gets a new random one; known sessions are
// served without a new cookie (so a failover keeps the session).
type stickyAppStore struct {
	mu       sync.Mutex
	sessions map[string]string // value -> backend that created it
}

func (s *stickyAppStore) handler(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("JSESSIONID"); err == nil {
			s.mu.Lock()
			_, ok := s.sessions[c.Value]
			s.mu.Unlock()
			if ok {
				io.WriteString(w, name)
				return
			}
		}
		var b [12]byte
		rand.Read(b[:])
		v := hex.EncodeToString(b[:])
		s.mu.Lock()
		s.sessions[v] = name
		s.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: v, Path: "/", HttpOnly: true})
		io.WriteString(w, name)
	}
}

// TestStickyAppCookie: fulcrum learns JSESSIONID -> backend from the
// backends' Set-Cookie and routes later requests there; unknown values go to
// the strategy; a killed backend's sessions move and stay; a reload keeps
// the learned table.
func TestStickyAppCookie(t *testing.T) {
	store := &stickyAppStore{sessions: map[string]string{}}
	bs := stickyBackends(t, 3, store.handler)
	extra := `"strategy": "round_robin", ` + stickyHealth + `, "sticky": {"type": "app_cookie", "cookie_name": "JSESSIONID"}`
	f := stickyStart(t, stickyConfig(bs, extra))
	tr := stickyTransport(t, "")
	const nClients, nReq = 30, 10
	clients := stickyJarClients(t, nClients, tr)
	hit, miss, repinned := 0, 0, 0

	res := stickyRun(t, clients, nil, nReq, f.URL("/"))
	pins := make([]string, nClients)
	for i, rs := range res {
		pins[i] = stickyOneBackend(t, fmt.Sprintf("client %d", i), rs)
		if _, ok := rs[0].cookie("JSESSIONID"); !ok || len(rs[0].raw) != 1 {
			t.Fatalf("client %d: first response Set-Cookie %q: want only the application's", i, rs[0].raw)
		}
		for _, r := range rs[1:] {
			if len(r.raw) != 0 {
				t.Fatalf("client %d: Set-Cookie %q on a pinned request", i, r.raw)
			}
		}
	}
	miss += nClients
	hit += nClients * (nReq - 1)
	byBackend := stickyByBackend(pins)
	for _, b := range bs {
		if n := len(byBackend[b.Name]); n != nClients/len(bs) {
			t.Fatalf("first picks not round robin: %d clients on %s (%v)", n, b.Name, pins)
		}
	}
	stickyWantCounts(t, f, hit, miss, repinned)

	// Unknown session values fall back to the strategy (round robin: one
	// each in turn); the application's new session is then pinned.
	plain := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	unknownTo := map[string]int{}
	for i := range 3 * len(bs) {
		r := stickyMustGet(t, plain, f.URL("/"), fmt.Sprintf("JSESSIONID=unknown-%d", i))
		repinned++
		unknownTo[r.body]++
		v, ok := r.cookie("JSESSIONID")
		if !ok {
			t.Fatalf("application issued no session: %q", r.raw)
		}
		for range 2 {
			if r2 := stickyMustGet(t, plain, f.URL("/"), "JSESSIONID="+v); r2.body != r.body {
				t.Fatalf("new session of %s served by %s", r.body, r2.body)
			}
			hit++
		}
	}
	for _, b := range bs {
		if unknownTo[b.Name] != 3 {
			t.Fatalf("unknown sessions went to %v: want round robin", unknownTo)
		}
	}
	stickyWantCounts(t, f, hit, miss, repinned)

	// Kill a backend: its sessions move (the application keeps them, so no
	// new cookie) and stay on their new backend.
	victim := bs[0]
	victims := byBackend[victim.Name]
	early := victims[:min(3, len(victims))]
	victim.Close()
	moved := map[int]string{}
	for _, i := range early {
		r := stickyMustGet(t, clients[i], f.URL("/"), "")
		if r.body == victim.Name {
			t.Fatalf("client %d served by dead %s", i, r.body)
		}
		moved[i] = r.body
		repinned++
	}
	WaitFor(t, 15*time.Second, "the killed backend to be marked down", func() bool { return !stickyBackendUp(t, f, victim.URL) })
	res = stickyRun(t, clients, nil, 5, f.URL("/"))
	for i, rs := range res {
		got := stickyOneBackend(t, fmt.Sprintf("client %d after the kill", i), rs)
		switch {
		case pins[i] != victim.Name:
			if got != pins[i] {
				t.Fatalf("client %d of a live backend moved from %s to %s", i, pins[i], got)
			}
			hit += 5
		case moved[i] != "":
			if got != moved[i] {
				t.Fatalf("client %d moved to %s, then went to %s", i, moved[i], got)
			}
			hit += 5
		default:
			if got == victim.Name {
				t.Fatalf("client %d served by dead %s", i, got)
			}
			repinned++
			hit += 4
		}
		pins[i] = got
	}
	stickyWantCounts(t, f, hit, miss, repinned)

	// A reload with the same sticky settings keeps the learned table.
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	stickyReload(t, f, stickyConfig(rev, extra))
	res = stickyRun(t, clients, nil, 2, f.URL("/"))
	for i, rs := range res {
		if got := stickyOneBackend(t, fmt.Sprintf("client %d after reload", i), rs); got != pins[i] {
			t.Fatalf("client %d: pinned to %s, after reload served by %s", i, pins[i], got)
		}
	}
	hit += 2 * nClients
	stickyWantCounts(t, f, hit, miss, repinned)
}

// TestStickySourceIP: clients bound to 127.0.0.2, 127.0.0.3, ... stay on one
// backend; X-Forwarded-For counts only from a trusted proxy; removing one of
// four backends by reload moves its clients and (up to Maglev's small
// disruption) nobody else.
func TestStickySourceIP(t *testing.T) {
	bs := stickyBackends(t, 4, nil)
	extra := `"strategy": "round_robin", "trusted_proxies": ["127.0.0.1/32"], "sticky": {"type": "source_ip"}`
	f := stickyStart(t, stickyConfig(bs, extra))
	const nClients, nReq = 40, 5
	clients := make([]*http.Client, nClients)
	srcOf := func(i int) string { return fmt.Sprintf("127.0.0.%d", i+2) }
	for i := range clients {
		clients[i] = &http.Client{Transport: stickyTransport(t, srcOf(i)), Timeout: 20 * time.Second}
	}
	hit := 0

	res := stickyRun(t, clients, nil, nReq, f.URL("/"))
	pins := make([]string, nClients)
	for i, rs := range res {
		pins[i] = stickyOneBackend(t, "client "+srcOf(i), rs)
		for _, r := range rs {
			if len(r.raw) != 0 {
				t.Fatalf("source_ip set a cookie: %q", r.raw)
			}
		}
	}
	hit += nClients * nReq
	byBackend := stickyByBackend(pins)
	if len(byBackend) < 3 {
		t.Fatalf("40 source addresses hashed onto %d backends: %v", len(byBackend), byBackend)
	}

	// Behind a trusted proxy (127.0.0.1), X-Forwarded-For is the client; from
	// an untrusted peer it is ignored.
	proxyC := &http.Client{Transport: stickyTransport(t, "127.0.0.1"), Timeout: 20 * time.Second}
	for i := range 10 {
		if r := stickyMustGet(t, proxyC, f.URL("/"), "", "X-Forwarded-For", srcOf(i)); r.body != pins[i] {
			t.Fatalf("XFF %s via trusted proxy: served by %s, the client itself by %s", srcOf(i), r.body, pins[i])
		}
		if r := stickyMustGet(t, clients[0], f.URL("/"), "", "X-Forwarded-For", srcOf(i)); r.body != pins[0] {
			t.Fatalf("XFF %s from untrusted %s: served by %s, want %s", srcOf(i), srcOf(0), r.body, pins[0])
		}
		hit += 2
	}
	stickyWantCounts(t, f, hit, 0, 0)

	// Remove the backend with the most clients.
	var gone *Backend
	for _, b := range bs {
		if gone == nil || len(byBackend[b.Name]) > len(byBackend[gone.Name]) {
			gone = b
		}
	}
	var keep []*Backend
	for _, b := range bs {
		if b != gone {
			keep = append(keep, b)
		}
	}
	stickyReload(t, f, stickyConfig(keep, extra))
	res = stickyRun(t, clients, nil, nReq, f.URL("/"))
	others := 0
	for i, rs := range res {
		got := stickyOneBackend(t, "client "+srcOf(i)+" after removal", rs)
		switch {
		case pins[i] == gone.Name:
			if got == gone.Name {
				t.Fatalf("client %s still on removed %s", srcOf(i), got)
			}
		case got != pins[i]:
			others++
			t.Logf("client %s of %s moved to %s", srcOf(i), pins[i], got)
		}
	}
	// Maglev moves a key of a surviving backend with probability ~0.1%
	// (internal/balance/maglev.go); allow 2 of ~30.
	if others > 2 {
		t.Fatalf("%d clients of surviving backends moved", others)
	}
	hit += nClients * nReq
	stickyWantCounts(t, f, hit, 0, 0)
}

// TestStickyCookiePinnedBackendDropsRequest: the pinned backend accepts the
// request and closes the connection without answering (a crash mid-request).
// The idempotent request is retried on another backend with its full head,
// the client gets 200 and the pin moves there.
func TestStickyCookiePinnedBackendDropsRequest(t *testing.T) {
	var drop atomic.Bool
	bs := stickyBackends(t, 2, func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if name == "b1" && drop.Load() {
				if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
					c.Close()
				}
				return
			}
			if r.URL.Path != "/x" || r.Header.Get("X-Check") != "1" {
				// The retried request must be the same request.
				http.Error(w, "mangled retry: "+r.Method+" "+r.URL.String(), http.StatusBadRequest)
				return
			}
			io.WriteString(w, name)
		}
	})
	// A mangled retry would hang until response_header_timeout: keep it short.
	extra := `"strategy": "round_robin", "passive": {"max_fails": 0}, "response_header_timeout": "5s", "sticky": {"type": "cookie"}`
	f := stickyStart(t, stickyConfig(bs, extra))
	c := &http.Client{Transport: stickyTransport(t, ""), Timeout: 20 * time.Second}
	url := f.URL("/x")
	cookieOf := map[string]string{}
	for range bs {
		r := stickyMustGet(t, c, url, "", "X-Check", "1")
		cookieOf[r.body], _ = r.cookie(stickyCookie)
	}
	if cookieOf["b1"] == "" || cookieOf["b2"] == "" {
		t.Fatalf("cookies %v", cookieOf)
	}
	drop.Store(true)
	for i := range 3 {
		r := stickyMustGet(t, c, url, stickyCookie+"="+cookieOf["b1"], "X-Check", "1")
		if v, _ := r.cookie(stickyCookie); r.body != "b2" || v != cookieOf["b2"] {
			t.Fatalf("request %d pinned to failing b1: served by %s, Set-Cookie %q", i, r.body, r.raw)
		}
	}
	if r := stickyMustGet(t, c, url, stickyCookie+"="+cookieOf["b2"], "X-Check", "1"); r.body != "b2" || len(r.raw) != 0 {
		t.Fatalf("moved pin: served by %s, Set-Cookie %q", r.body, r.raw)
	}
	stickyWantCounts(t, f, 1, 2, 3)
}
