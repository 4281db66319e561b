package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCoreRoundRobin: strict rotation in configured order over three backends.
func TestCoreRoundRobin(t *testing.T) {
	t.Parallel()
	bs := coreStartBackends(t, "a", "b", "c")
	f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "round_robin", "backends": %s}`, coreBackendList(bs, nil)))
	got := coreSeq(t, coreClient(t), f.URL("/"), 30)
	for i, b := range got {
		if want := []string{"a", "b", "c"}[i%3]; b != want {
			t.Fatalf("request %d went to %s, want %s (sequence %v)", i, b, want, got)
		}
	}
}

// TestCoreWeightedRoundRobin: nginx's smooth WRR, deterministic.
func TestCoreWeightedRoundRobin(t *testing.T) {
	t.Parallel()
	t.Run("5,1,1", func(t *testing.T) {
		t.Parallel()
		bs := coreStartBackends(t, "a", "b", "c")
		f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "weighted_round_robin", "backends": %s}`, coreBackendList(bs, []int{5, 1, 1})))
		got := strings.Join(coreSeq(t, coreClient(t), f.URL("/"), 21), " ")
		if want := strings.Repeat("a a b a c a a ", 3); got+" " != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("3,2", func(t *testing.T) {
		t.Parallel()
		bs := coreStartBackends(t, "a", "b")
		f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "weighted_round_robin", "backends": %s}`, coreBackendList(bs, []int{3, 2})))
		got := coreSeq(t, coreClient(t), f.URL("/"), 25)
		for w := 0; w < len(got); w += 5 {
			if cnt := coreCount(got[w : w+5]); cnt["a"] != 3 || cnt["b"] != 2 {
				t.Fatalf("requests %d-%d: %v, want a:3 b:2 (sequence %v)", w, w+4, cnt, got)
			}
		}
		if s := strings.Join(got[:5], " "); s != "a b a b a" {
			t.Errorf("first cycle %q, want nginx's smooth order \"a b a b a\"", s)
		}
	})
}

// TestCoreLeastConnections: requests held open on a backend steer new ones
// elsewhere, in proportion to weight; ties rotate.
func TestCoreLeastConnections(t *testing.T) {
	t.Parallel()
	h := newCoreHold(t)
	a := StartBackend(t, "a", 0, h.handler("a"))
	b := StartBackend(t, "b", 0, h.handler("b"))
	c := StartBackend(t, "c", 0, h.handler("c"))
	f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "least_connections", "backends": %s}`,
		coreBackendList([]*Backend{a, b, c}, []int{2, 1, 1})))
	hc := coreClient(t)
	fast := coreClient(t)

	// Idle pool: ties rotate over all three.
	if cnt := coreCount(coreSeq(t, fast, f.URL("/"), 6)); cnt["a"] != 2 || cnt["b"] != 2 || cnt["c"] != 2 {
		t.Fatalf("idle pool: distribution %v, want 2/2/2 (ties rotate)", cnt)
	}
	// A request holds its slot until its last byte is written, which the
	// client may read a moment before fulcrum releases the slot.
	coreSettle(t, f, 0)

	// Three held requests land on three different backends: each new one
	// avoids those already busy.
	var results []<-chan coreResult
	held := map[string]int{}
	for i := 0; i < 3; i++ {
		name, res := coreGoHold(t, h, hc, f)
		held[name]++
		results = append(results, res)
	}
	if len(held) != 3 {
		t.Fatalf("three held requests went to %v, want one per backend", held)
	}
	// Now a has 1/2 in flight relative to weight, b and c 1/1: a gets everything.
	if got := coreSeq(t, fast, f.URL("/"), 6); coreCount(got)["a"] != 6 {
		t.Fatalf("with a:1/2 b:1/1 c:1/1 in flight, requests went to %v, want all to a", got)
	}
	coreSettle(t, f, 3)
	// The admin API and the metrics see the in-flight requests.
	st := coreByURL(coreAdminBackends(t, f))
	if st[a.URL].Active != 1 || st[b.URL].Active != 1 || st[c.URL].Active != 1 {
		t.Errorf("/admin/backends active = %d/%d/%d, want 1/1/1", st[a.URL].Active, st[b.URL].Active, st[c.URL].Active)
	}
	m := coreScrape(t, f)
	for _, be := range []*Backend{a, b, c} {
		if v := m.val("loadbalancer_backend_connections_active", "pool", "default", "backend", be.Addr()); v != 1 {
			t.Errorf("connections_active{%s} = %v, want 1", be.Name, v)
		}
	}
	// A fourth held request goes to a (1/2 < 1/1); then all are even again.
	name, res := coreGoHold(t, h, hc, f)
	results = append(results, res)
	if name != "a" {
		t.Fatalf("fourth held request went to %s, want a", name)
	}
	if cnt := coreCount(coreSeq(t, fast, f.URL("/"), 6)); cnt["a"] != 2 || cnt["b"] != 2 || cnt["c"] != 2 {
		t.Fatalf("a:2/2 b:1/1 c:1/1 in flight: distribution %v, want 2/2/2 (ties rotate)", cnt)
	}

	h.Release()
	for _, ch := range results {
		if r := coreWaitResult(t, ch); r.err != nil || r.code != 200 {
			t.Errorf("held request: %+v", r)
		}
	}
	WaitFor(t, 10*time.Second, "active back to 0", func() bool {
		for _, s := range coreAdminBackends(t, f) {
			if s.Active != 0 {
				return false
			}
		}
		return true
	})
}

// TestCoreLeastResponseTime: a slow backend gets few requests; a recovered
// backend and a newly added one are probed at once.
func TestCoreLeastResponseTime(t *testing.T) {
	t.Parallel()
	slow := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(400 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		w.Write([]byte("s"))
	}
	a := StartBackend(t, "a", 0, nil)
	b := StartBackend(t, "b", 0, nil)
	s := StartBackend(t, "s", 0, slow)
	cfgFor := func(bs ...*Backend) string {
		return fmt.Sprintf(`{"strategy": "least_response_time", "health_check_interval": "200ms", "max_fail_count": 1, "backends": %s}`,
			coreBackendList(bs, nil))
	}
	f := StartFulcrum(t, cfgFor(a, b, s))
	c := coreClient(t)
	cnt := coreCount(coreSeq(t, c, f.URL("/"), 30))
	// s is probed once at start; after that its 400ms average keeps it out.
	// Up to 3 allows for fast answers that were slowed by a loaded machine.
	// How a and b share the rest is not asserted: with one request at a time
	// the lower average wins every pick, and an average only changes when
	// its backend answers, so one noisy first sample can leave a or b with
	// a single request (seen: a:1 b:28 s:1).
	if cnt["s"] < 1 || cnt["s"] > 3 || cnt["a"] < 1 || cnt["b"] < 1 {
		t.Fatalf("distribution %v: want s probed (1..3 of 30), a and b probed and taking the rest", cnt)
	}
	t.Logf("distribution over 30 sequential requests: %v", cnt)

	// Recovered: s goes down, comes back (still slow) and is probed first.
	port := s.Ln.Addr().(*net.TCPAddr).Port
	s.Close()
	WaitFor(t, 15*time.Second, "s marked down", func() bool { return !coreByURL(coreAdminBackends(t, f))[s.URL].Up })
	s2 := StartBackend(t, "s", port, slow)
	WaitFor(t, 15*time.Second, "s marked up", func() bool { return coreByURL(coreAdminBackends(t, f))[s2.URL].Up })
	// /admin/backends reports s up as soon as its state flips, a moment
	// before the new snapshot that routes to it is published; so allow a
	// few requests before the probe. Without the probe s (400ms average)
	// would get none of them.
	var before []string
	for len(before) < 50 {
		got := coreSeq(t, c, f.URL("/"), 1)[0]
		if got == "s" {
			break
		}
		before = append(before, got)
	}
	if len(before) == 50 {
		t.Fatalf("recovered s was not probed: 50 requests went to %v\n%+v\n%s", coreCount(before), coreAdminBackends(t, f), f.Logs.String())
	}
	if len(before) > 0 {
		t.Logf("%d request(s) before the recovered s was probed", len(before))
	}

	// New: a backend added by reload is probed first.
	d := StartBackend(t, "d", 0, nil)
	f.WriteConfig(cfgFor(a, b, s2, d))
	if code, body := coreReload(t, f); code != http.StatusOK {
		t.Fatalf("reload: %d %q", code, body)
	}
	if got := coreSeq(t, c, f.URL("/"), 1)[0]; got != "d" {
		t.Fatalf("first request after adding d went to %s, want d (probe)", got)
	}
}

// coreSourceClient returns a client whose connections come from ip (any
// 127.0.0.0/8 address), one new connection per request.
func coreSourceClient(t testing.TB, ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 15 * time.Second}
}

// TestCoreIPHash: each client address sticks to one backend; removing a
// backend by reload moves its clients only; adding it back restores the map.
func TestCoreIPHash(t *testing.T) {
	t.Parallel()
	bs := coreStartBackends(t, "a", "b", "c")
	cfg := func(bs []*Backend) string {
		return fmt.Sprintf(`{"strategy": "ip_hash", "backends": %s}`, coreBackendList(bs, nil))
	}
	f := StartFulcrum(t, cfg(bs))
	const sources = 20
	clients := make([]*http.Client, sources)
	for i := range clients {
		clients[i] = coreSourceClient(t, fmt.Sprintf("127.0.0.%d", i+2))
	}
	// mapping sends 3 requests (3 connections) per source and checks they agree.
	mapping := func(phase string) []string {
		out := make([]string, sources)
		for i, c := range clients {
			got := coreSeq(t, c, f.URL("/"), 3)
			if got[0] != got[1] || got[1] != got[2] {
				t.Fatalf("%s: source 127.0.0.%d was spread over %v", phase, i+2, got)
			}
			out[i] = got[0]
		}
		return out
	}
	before := mapping("initial")
	perBackend := coreCount(before)
	if len(perBackend) < 2 {
		t.Fatalf("all %d sources on one backend: %v", sources, perBackend)
	}
	// Remove the backend with the most clients.
	victim := 0
	for i, b := range bs {
		if perBackend[b.Name] > perBackend[bs[victim].Name] {
			victim = i
		}
	}
	var kept []*Backend
	for i, b := range bs {
		if i != victim {
			kept = append(kept, b)
		}
	}
	f.WriteConfig(cfg(kept))
	if code, body := coreReload(t, f); code != http.StatusOK {
		t.Fatalf("reload: %d %q", code, body)
	}
	after := mapping("after removing " + bs[victim].Name)
	moved := 0
	for i := range before {
		switch {
		case after[i] == bs[victim].Name:
			t.Fatalf("source 127.0.0.%d still on removed backend %s", i+2, after[i])
		case before[i] != bs[victim].Name && after[i] != before[i]:
			moved++
			t.Logf("source 127.0.0.%d moved %s -> %s although its backend stayed", i+2, before[i], after[i])
		}
	}
	// The Maglev table used for ip_hash moves well under 1%% of the other
	// backends' keys (not strictly none): about 1 run in 150 sees one of
	// these 20 sources move. More than one is a bug.
	if moved > 1 {
		t.Fatalf("%d sources whose backend stayed were moved", moved)
	}
	f.WriteConfig(cfg(bs))
	if code, body := coreReload(t, f); code != http.StatusOK {
		t.Fatalf("reload: %d %q", code, body)
	}
	restored := mapping("after re-adding " + bs[victim].Name)
	if strings.Join(restored, ",") != strings.Join(before, ",") {
		t.Fatalf("re-adding the backend did not restore the mapping:\nbefore   %v\nrestored %v", before, restored)
	}
}

// TestCoreRandom: weighted random, checked with generous statistical bounds.
func TestCoreRandom(t *testing.T) {
	t.Parallel()
	bs := coreStartBackends(t, "a", "b", "c")
	f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "random", "backends": %s}`, coreBackendList(bs, []int{3, 1, 1})))
	got := coreSeq(t, coreClient(t), f.URL("/"), 300)
	cnt := coreCount(got)
	// Expected 180/60/60 (sd ~8.5/6.9); bounds are > 5 sd wide.
	if cnt["a"] < 130 || cnt["a"] > 230 || cnt["b"] < 25 || cnt["b"] > 100 || cnt["c"] < 25 || cnt["c"] > 100 {
		t.Fatalf("distribution %v, want about 180/60/60", cnt)
	}
	// Not a rotation: some backend repeats back to back.
	repeats := 0
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			repeats++
		}
	}
	if repeats == 0 {
		t.Fatal("no repeats in 300 random picks")
	}
}

// TestCorePowerOfTwo: spreads an idle pool; never picks a busy backend over
// an idle one.
func TestCorePowerOfTwo(t *testing.T) {
	t.Parallel()
	h := newCoreHold(t)
	a := StartBackend(t, "a", 0, h.handler("a"))
	b := StartBackend(t, "b", 0, h.handler("b"))
	c := StartBackend(t, "c", 0, h.handler("c"))
	f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "power_of_two", "backends": %s}`, coreBackendList([]*Backend{a, b, c}, nil)))
	fast := coreClient(t)
	cnt := coreCount(coreSeq(t, fast, f.URL("/"), 60))
	if cnt["a"] < 5 || cnt["b"] < 5 || cnt["c"] < 5 {
		t.Fatalf("idle pool: distribution %v, want all three used", cnt)
	}
	busy, res1 := coreGoHold(t, h, coreClient(t), f)
	cnt = coreCount(coreSeq(t, fast, f.URL("/"), 30))
	if cnt[busy] != 0 {
		t.Fatalf("with one request held on %s, it still got %d of 30 new requests (%v)", busy, cnt[busy], cnt)
	}
	busy2, res2 := coreGoHold(t, h, coreClient(t), f)
	if busy2 == busy {
		t.Fatalf("second held request went to the busy backend %s\n%s\nlog:\n%s", busy, coreRetryLines(f), f.Logs.String())
	}
	h.Release()
	for _, ch := range []<-chan coreResult{res1, res2} {
		if r := coreWaitResult(t, ch); r.err != nil || r.code != 200 {
			t.Errorf("held request: %+v", r)
		}
	}
}

// TestCoreConsistentHash: the same key always reaches the same backend, for
// every hash_key source; requests without the key rotate round robin.
func TestCoreConsistentHash(t *testing.T) {
	t.Parallel()
	cases := []struct {
		hashKey string
		req     func(url string, key int) *http.Request
		noKey   bool // requests without the key exist
	}{
		{"header:X-User", func(u string, k int) *http.Request {
			r, _ := http.NewRequest("GET", u+"/any", nil)
			r.Header.Set("X-User", fmt.Sprintf("user-%d", k))
			return r
		}, true},
		{"cookie:session", func(u string, k int) *http.Request {
			r, _ := http.NewRequest("GET", u+"/any", nil)
			r.Header.Set("Cookie", fmt.Sprintf("theme=dark; session=s%d; x=y", k))
			return r
		}, true},
		{"query:id", func(u string, k int) *http.Request {
			r, _ := http.NewRequest("GET", fmt.Sprintf("%s/any?x=1&id=%d", u, k), nil)
			return r
		}, true},
		{"path", func(u string, k int) *http.Request {
			r, _ := http.NewRequest("GET", fmt.Sprintf("%s/user/%d?v=%d", u, k, time.Now().UnixNano()), nil)
			return r
		}, false},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.hashKey, ":", "_"), func(t *testing.T) {
			t.Parallel()
			bs := coreStartBackends(t, "a", "b", "c")
			f := StartFulcrum(t, fmt.Sprintf(`{"strategy": "consistent_hash", "hash_key": %q, "backends": %s}`,
				tc.hashKey, coreBackendList(bs, nil)))
			c := coreClient(t)
			do := func(r *http.Request) string {
				t.Helper()
				resp, err := c.Do(r)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				return resp.Header.Get("X-Backend")
			}
			used := map[string]int{}
			for k := 0; k < 15; k++ {
				first := do(tc.req(f.URL(""), k))
				for i := 0; i < 3; i++ {
					if got := do(tc.req(f.URL(""), k)); got != first {
						t.Fatalf("key %d went to %s, then %s", k, first, got)
					}
				}
				used[first]++
			}
			if len(used) < 2 {
				t.Fatalf("15 keys all on one backend: %v", used)
			}
			if !tc.noKey {
				return
			}
			got := coreSeq(t, c, f.URL("/nokey"), 9)
			for i := 3; i < len(got); i++ {
				if got[i] != got[i-3] {
					t.Fatalf("requests without the key are not round robin: %v", got)
				}
			}
			if len(coreCount(got)) != 3 {
				t.Fatalf("requests without the key: %v, want all three backends", got)
			}
		})
	}
}

// coreSettle waits until the backends have want requests in flight in all:
// a response's slot is released just after its last byte is written, so a
// client that has read it can be a moment ahead of the release.
func coreSettle(t *testing.T, f *Fulcrum, want int64) {
	t.Helper()
	WaitFor(t, 5*time.Second, fmt.Sprintf("%d requests in flight", want), func() bool {
		var n int64
		for _, s := range coreAdminBackends(t, f) {
			n += s.Active
		}
		return n == want
	})
}

// coreRetryLines returns f's retry and per-backend metric lines, to explain a
// failed pick.
func coreRetryLines(f *Fulcrum) string {
	c := &http.Client{Timeout: 5 * time.Second}
	code, body, err := coreFetch(c, f.AdminURL("/metrics"))
	if err != nil || code != 200 {
		return fmt.Sprintf("metrics: %d %v", code, err)
	}
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, "retr") || strings.Contains(l, "active") || strings.Contains(l, "stale") || strings.Contains(l, "errors") {
			if !strings.HasPrefix(l, "#") {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}
