package e2e

// Runtime backend control (drain, disable, enable, weight) and the event log
// (GET /admin/events, its SSE stream, down_reason), driven through the built
// binary with real backends.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const rtToken = "rt-token-1"

// rtStatus is the part of a GET /admin/backends entry (or of an action's
// answer) these tests read.
type rtStatus struct {
	Pool       string    `json:"pool"`
	URL        string    `json:"url"`
	Weight     int       `json:"weight"`
	Up         bool      `json:"up"`
	Active     int64     `json:"active"`
	AdminState string    `json:"admin_state"`
	DownReason *string   `json:"down_reason"`
	Events     []rtEvent `json:"events"`
	InFlight   *int64    `json:"in_flight"`
}

type rtEvent struct {
	ID      uint64    `json:"id"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Pool    string    `json:"pool"`
	Backend string    `json:"backend"`
	Message string    `json:"message"`
}

// rtClient has no keep-alives (nothing lingers) and a bounded wait.
var rtClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// rtDo sends an admin request with the token and decodes a JSON answer into
// out (if non-nil). It returns the status and the body.
func rtDo(t testing.TB, f *Fulcrum, method, path, body string, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, f.AdminURL(path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+rtToken)
	resp, err := rtClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d, not the JSON expected: %v\n%s", method, path, resp.StatusCode, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// rtBackends is GET /admin/backends indexed by url.
func rtBackends(t testing.TB, f *Fulcrum) map[string]rtStatus {
	t.Helper()
	var list []rtStatus
	if code, body := rtDo(t, f, "GET", "/admin/backends", "", &list); code != 200 {
		t.Fatalf("GET /admin/backends: %d %s", code, body)
	}
	out := map[string]rtStatus{}
	for _, s := range list {
		out[s.URL] = s
	}
	return out
}

// rtPath is the control path of backend b of pool default.
func rtPath(b *Backend, action string) string {
	return "/admin/pools/default/backends/" + b.Addr() + "/" + action
}

// rtAction posts a state action (drain, disable, enable) and checks the 200
// answer's admin_state.
func rtAction(t testing.TB, f *Fulcrum, b *Backend, action, wantState string) {
	t.Helper()
	var st rtStatus
	code, body := rtDo(t, f, "POST", rtPath(b, action), "", &st)
	if code != 200 || st.AdminState != wantState || st.URL != b.URL {
		t.Fatalf("POST %s: %d %s, want 200 with admin_state %s", rtPath(b, action), code, body, wantState)
	}
}

func rtSeq(t testing.TB, f *Fulcrum, n int) string {
	t.Helper()
	return strings.Join(coreSeq(t, coreClient(t), f.URL("/"), n), " ")
}

func rtMetric(t testing.TB, f *Fulcrum, name string, kv ...string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", f.AdminURL("/metrics"), nil)
	req.Header.Set("Authorization", "Bearer "+rtToken)
	resp, err := rtClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	want := name
	if len(kv) > 0 {
		var parts []string
		for i := 0; i+1 < len(kv); i += 2 {
			parts = append(parts, fmt.Sprintf("%s=%q", kv[i], kv[i+1]))
		}
		want += "{" + strings.Join(parts, ",") + "}"
	}
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), want+" "); ok {
			var x float64
			fmt.Sscan(v, &x)
			return x
		}
	}
	t.Fatalf("%s not in /metrics", want)
	return 0
}

// TestRuntimeDrainWait: a drain with ?wait= answers 202 with the count left
// while a slow request is in flight, and 200 once it finished; the drained
// backend gets no new request meanwhile, and the slow one completes.
func TestRuntimeDrainWait(t *testing.T) {
	t.Parallel()
	h := newCoreHold(t)
	a := StartBackend(t, "a", 0, h.handler("a"))
	b := StartBackend(t, "b", 0, h.handler("b"))
	f := StartFulcrum(t, fmt.Sprintf(`{"admin_token": %q, "strategy": "round_robin", "backends": %s}`,
		rtToken, coreBackendList([]*Backend{a, b}, nil)))
	held := chaosGo(coreClient(t), f.URL("/hold"), true)
	var slow, other *Backend
	select {
	case name := <-h.entered:
		slow, other = a, b
		if name == "b" {
			slow, other = b, a
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request did not reach a backend")
	}
	before := rtMetric(t, f, "fulcrum_admin_actions_total", "action", "drain")

	var st rtStatus
	t0 := time.Now()
	code, body := rtDo(t, f, "POST", rtPath(slow, "drain")+"?wait=300ms", "", &st)
	if code != 202 || st.InFlight == nil || *st.InFlight != 1 || st.AdminState != "drain" {
		t.Fatalf("drain?wait=300ms with a request in flight: %d %s, want 202 with in_flight 1", code, body)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Fatalf("202 after %v, before the wait ended", d)
	}
	if got := rtSeq(t, f, 4); got != strings.TrimSpace(strings.Repeat(other.Name+" ", 4)) {
		t.Fatalf("traffic while %s drains: %q, want all on %s", slow.Name, got, other.Name)
	}
	answered := make(chan string, 1)
	go func() {
		var st rtStatus
		req, _ := http.NewRequest("POST", f.AdminURL(rtPath(slow, "drain")+"?wait=30s"), nil)
		req.Header.Set("Authorization", "Bearer "+rtToken)
		resp, err := rtClient.Do(req)
		if err != nil {
			answered <- err.Error()
			return
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&st)
		in := int64(-1)
		if st.InFlight != nil {
			in = *st.InFlight
		}
		answered <- fmt.Sprintf("%d in_flight=%d", resp.StatusCode, in)
	}()
	select {
	case got := <-answered:
		t.Fatalf("drain?wait=30s answered %s while the request was in flight", got)
	case <-time.After(200 * time.Millisecond):
	}
	h.Release()
	if r := chaosRecv(t, held, 10*time.Second, "the slow request"); r.err != nil || r.code != 200 || r.body != slow.Name {
		t.Fatalf("the request in flight during the drain: %+v, want it to finish on %s", r, slow.Name)
	}
	select {
	case got := <-answered:
		if got != "200 in_flight=0" {
			t.Fatalf("drain?wait=30s after the request finished: %s, want 200 in_flight=0", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the drain did not answer after the request finished")
	}
	if got := rtMetric(t, f, "fulcrum_admin_actions_total", "action", "drain"); got != before+2 {
		t.Fatalf(`fulcrum_admin_actions_total{action="drain"} = %v, want %v`, got, before+2)
	}
	rtAction(t, f, slow, "enable", "ready")
	if got := coreCount(coreSeq(t, coreClient(t), f.URL("/"), 4)); got["a"] != 2 || got["b"] != 2 {
		t.Fatalf("traffic after enable: %v, want both", got)
	}
}

// TestRuntimeDisableWeightReload: disable and enable, a weight change that
// is exact for weighted round robin, and the runtime state across reloads
// (kept while the file keeps the weight; the file's weight wins once it
// changes; the drain survives either way).
func TestRuntimeDisableWeightReload(t *testing.T) {
	t.Parallel()
	bs := coreStartBackends(t, "a", "b", "c")
	a, b, c := bs[0], bs[1], bs[2]
	cfg := func(wA int) string {
		return fmt.Sprintf(`{"admin_token": %q, "strategy": "weighted_round_robin", "backends": %s}`,
			rtToken, coreBackendList(bs, []int{wA, 1, 1}))
	}
	f := StartFulcrum(t, cfg(1))

	rtAction(t, f, c, "disable", "disabled")
	if got := coreCount(coreSeq(t, coreClient(t), f.URL("/"), 6)); got["c"] != 0 || got["a"] != 3 || got["b"] != 3 {
		t.Fatalf("traffic with c disabled: %v", got)
	}
	if st := rtBackends(t, f)[c.URL]; st.AdminState != "disabled" || !st.Up || st.DownReason != nil {
		t.Fatalf("disabled c: %+v, want admin_state disabled, up (health keeps running), no down_reason", st)
	}
	rtAction(t, f, c, "enable", "ready")
	if got := coreCount(coreSeq(t, coreClient(t), f.URL("/"), 6)); got["a"] != 2 || got["b"] != 2 || got["c"] != 2 {
		t.Fatalf("traffic after enable: %v", got)
	}

	var st rtStatus
	if code, body := rtDo(t, f, "PUT", rtPath(a, "weight"), `{"weight": 3}`, &st); code != 200 || st.Weight != 3 {
		t.Fatalf("PUT weight 3: %d %s", code, body)
	}
	// nginx's smooth weighted round robin over 3,1,1, from the next request.
	if got := rtSeq(t, f, 10); got != "a b a c a a b a c a" {
		t.Fatalf("traffic after weight 3: %q, want \"a b a c a a b a c a\"", got)
	}
	rtAction(t, f, b, "drain", "drain")

	// An unchanged file: the runtime weight and the drain stay.
	if code, body := rtDo(t, f, "POST", "/admin/reload", "", nil); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	sts := rtBackends(t, f)
	if sts[a.URL].Weight != 3 || sts[b.URL].AdminState != "drain" {
		t.Fatalf("after an unchanged reload: a weight %d, b %s; want 3 and drain", sts[a.URL].Weight, sts[b.URL].AdminState)
	}
	if got := rtSeq(t, f, 8); got != "a a c a a a c a" {
		t.Fatalf("traffic after the reload: %q, want weights 3,1 over a and c", got)
	}
	// The file changes a's weight: the file's weight wins; b stays drained.
	f.WriteConfig(cfg(2))
	if code, body := rtDo(t, f, "POST", "/admin/reload", "", nil); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	sts = rtBackends(t, f)
	if sts[a.URL].Weight != 2 || sts[b.URL].AdminState != "drain" {
		t.Fatalf("after the file changed a's weight: a weight %d, b %s; want 2 (the file's) and drain", sts[a.URL].Weight, sts[b.URL].AdminState)
	}
	if got := coreCount(coreSeq(t, coreClient(t), f.URL("/"), 6)); got["a"] != 4 || got["c"] != 2 || got["b"] != 0 {
		t.Fatalf("traffic with a at the file's weight 2: %v, want a:4 c:2", got)
	}
	// Reload events carry the summary.
	var evs []rtEvent
	rtDo(t, f, "GET", "/admin/events?limit=1000", "", &evs)
	reloads := 0
	for _, e := range evs {
		if e.Kind == "reload" && strings.HasPrefix(e.Message, "reloaded: 3 backends") {
			reloads++
		}
	}
	if reloads != 2 {
		t.Fatalf("events %+v: want 2 reload events with the summary", evs)
	}
}

// TestRuntimeAuthAndErrors: every new endpoint needs the token (401
// without), and bad input or unknown names get 400 or 404 with a JSON error.
func TestRuntimeAuthAndErrors(t *testing.T) {
	t.Parallel()
	bs := coreStartBackends(t, "a")
	f := StartFulcrum(t, fmt.Sprintf(`{"admin_token": %q, "backends": %s}`, rtToken, coreBackendList(bs, nil)))
	host := bs[0].Addr()
	endpoints := []struct{ method, path, body string }{
		{"POST", "/admin/pools/default/backends/" + host + "/drain", ""},
		{"POST", "/admin/pools/default/backends/" + host + "/drain?wait=1s", ""},
		{"POST", "/admin/pools/default/backends/" + host + "/disable", ""},
		{"POST", "/admin/pools/default/backends/" + host + "/enable", ""},
		{"PUT", "/admin/pools/default/backends/" + host + "/weight", `{"weight": 2}`},
		{"GET", "/admin/events", ""},
	}
	for _, ep := range endpoints {
		for _, auth := range []string{"", "Bearer wrong", rtToken} {
			req, _ := http.NewRequest(ep.method, f.AdminURL(ep.path), strings.NewReader(ep.body))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := rtClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("%s %s with Authorization %q: %d, want 401", ep.method, ep.path, auth, resp.StatusCode)
			}
		}
		if code, body := rtDo(t, f, ep.method, ep.path, ep.body, nil); code != 200 {
			t.Errorf("%s %s with the token: %d %s, want 200", ep.method, ep.path, code, body)
		}
	}
	// The SSE stream is behind the token too.
	req, _ := http.NewRequest("GET", f.AdminURL("/admin/events"), nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := rtClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("event stream without the token: %d, want 401", resp.StatusCode)
	}

	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/admin/pools/nope/backends/" + host + "/drain", "", 404, `no pool "nope"`},
		{"POST", "/admin/pools/default/backends/127.0.0.1:1/enable", "", 404, `no backend "127.0.0.1:1"`},
		{"PUT", "/admin/pools/nope/backends/" + host + "/weight", `{"weight": 2}`, 404, `no pool "nope"`},
		{"PUT", "/admin/pools/default/backends/" + host + "/weight", `{"weight": 0}`, 400, "weight: must be 1-1000, got 0"},
		{"PUT", "/admin/pools/default/backends/" + host + "/weight", `{"weight": 5000}`, 400, "weight: must be 1-1000, got 5000"},
		{"PUT", "/admin/pools/default/backends/" + host + "/weight", `{"weight": "x"}`, 400, "body: must be a JSON object"},
		{"PUT", "/admin/pools/default/backends/" + host + "/weight", `{}`, 400, "weight: required"},
		{"POST", "/admin/pools/default/backends/" + host + "/drain?wait=forever", "", 400, "wait: must be a duration"},
		{"POST", "/admin/pools/default/backends/" + host + "/drain?wait=1h", "", 400, "wait: at most 10m0s"},
		{"GET", "/admin/events?since=abc", "", 400, "since: must be an event id"},
		{"GET", "/admin/events?limit=0", "", 400, "limit: must be a number from 1 to 1000"},
	} {
		var e struct {
			Error string `json:"error"`
		}
		code, body := rtDo(t, f, c.method, c.path, c.body, &e)
		if code != c.code || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s %s %s: %d %s, want %d with an error containing %q", c.method, c.path, c.body, code, body, c.code, c.want)
		}
	}
}

// rtStream is an open SSE connection to GET /admin/events.
type rtStream struct {
	t      testing.TB
	cancel context.CancelFunc
	lines  chan string
	body   io.Closer
}

func openRTStream(t testing.TB, f *Fulcrum, lastID string) *rtStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.AdminURL("/admin/events"), nil)
	req.Header.Set("Authorization", "Bearer "+rtToken)
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("event stream: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &rtStream{t: t, cancel: cancel, lines: make(chan string, 256), body: resp.Body}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *rtStream) Close() {
	s.cancel()
	s.body.Close()
	for range s.lines {
	}
}

// next returns the next event whose kind is kind (others are skipped), with
// its id line checked against the event.
func (s *rtStream) next(kind string) rtEvent {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	id := ""
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				s.t.Fatal("event stream ended")
			}
			switch {
			case strings.HasPrefix(l, "id: "):
				id = strings.TrimPrefix(l, "id: ")
			case strings.HasPrefix(l, "data: "):
				var e rtEvent
				if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "data: ")), &e); err != nil {
					s.t.Fatalf("data line %q: %v", l, err)
				}
				if id != fmt.Sprint(e.ID) {
					s.t.Fatalf("id line %q, event id %d", id, e.ID)
				}
				if e.Kind == kind {
					return e
				}
			}
		case <-deadline:
			s.t.Fatalf("no %s event on the stream within 10s", kind)
		}
	}
}

// TestRuntimeEventsAndDownReason: the SSE stream delivers admin events live
// and resumes after Last-Event-ID; a backend that is killed shows a
// down_reason and a down event within a few seconds.
func TestRuntimeEventsAndDownReason(t *testing.T) {
	t.Parallel()
	bs := coreStartBackends(t, "a", "b")
	a, b := bs[0], bs[1]
	f := StartFulcrum(t, fmt.Sprintf(`{"admin_token": %q, "backends": %s,
 "health_check": {"type": "http", "path": "/health", "interval": "250ms", "timeout": "200ms", "unhealthy_threshold": 1, "healthy_threshold": 1}}`,
		rtToken, coreBackendList(bs, nil)))
	WaitFor(t, 10*time.Second, "first health checks", func() bool {
		sts := rtBackends(t, f)
		return sts[a.URL].Up && sts[b.URL].Up
	})

	live := openRTStream(t, f, "")
	rtAction(t, f, a, "disable", "disabled")
	e := live.next("admin")
	if e.Pool != "default" || e.Backend != a.Addr() || e.Message != "disable (was ready)" || e.Time.IsZero() {
		t.Fatalf("live admin event %+v", e)
	}
	live.Close()
	rtAction(t, f, a, "enable", "ready") // while no stream is open
	resumed := openRTStream(t, f, fmt.Sprint(e.ID))
	if got := resumed.next("admin"); got.ID != e.ID+1 || got.Message != "enable (was disabled)" {
		t.Fatalf("resumed after Last-Event-ID %d: %+v, want the enable event %d", e.ID, got, e.ID+1)
	}

	b.Close()
	down := resumed.next("down")
	if down.Backend != b.Addr() || !strings.HasPrefix(down.Message, "1 failed check: ") {
		t.Fatalf("down event %+v, want b's failed check", down)
	}
	// The reason follows the latest failing check: a refused connection
	// (the very first check after the kill may see the old connection close).
	var st rtStatus
	WaitFor(t, 5*time.Second, "b's down_reason", func() bool {
		st = rtBackends(t, f)[b.URL]
		return !st.Up && st.DownReason != nil && *st.DownReason == "connect: connection refused"
	})
	if n := len(st.Events); n == 0 || n > 5 || st.Events[n-1].Kind != "down" {
		t.Fatalf("b's events %+v, want at most 5 ending with the down event", st.Events)
	}
	if st := rtBackends(t, f)[a.URL]; st.DownReason != nil || st.AdminState != "ready" {
		t.Fatalf("a: %+v, want ready with down_reason null", st)
	}
	var evs []rtEvent
	rtDo(t, f, "GET", fmt.Sprintf("/admin/events?since=%d", e.ID), "", &evs)
	if len(evs) < 2 || evs[0].ID != e.ID+1 || evs[len(evs)-1].Kind != "down" {
		t.Fatalf("events since %d: %+v", e.ID, evs)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].ID <= evs[i-1].ID {
			t.Fatalf("events not in increasing id order: %+v", evs)
		}
	}
}
