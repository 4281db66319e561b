package admin_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/admin"
	"fulcrum/internal/events"
	"fulcrum/internal/pool"
	"fulcrum/internal/window"
)

func (f *fakeCtl) setBackends(bs []pool.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backends = bs
}

func ptr(s string) *string { return &s }

func twoPools() []pool.Status {
	return []pool.Status{
		{Pool: "web", Backend: "127.0.0.1:8081", URL: "http://127.0.0.1:8081", Weight: 3, Up: true, Healthy: true, AdminState: "ready",
			LastCheck: &pool.Check{OK: true, At: time.Now(), Info: "HTTP 200"}},
		{Pool: "web", Backend: "127.0.0.1:8082", URL: "http://127.0.0.1:8082", Weight: 1, Up: true, Healthy: true, AdminState: "ready"},
		{Pool: "api", Backend: "10.0.0.1:9000", URL: "https://10.0.0.1:9000/", Weight: 1, Up: false, Ejected: true, Healthy: true, AdminState: "disabled",
			DownReason: ptr("ejected after 3 failed requests")},
	}
}

func TestDashboardPage(t *testing.T) {
	t.Parallel()
	for _, token := range []string{"", "s3cret"} {
		_, ts := setup(t, &fakeCtl{}, token)
		resp, body := do(t, ts, "GET", "/", "")
		if resp.StatusCode != 200 {
			t.Fatalf("token %q: GET / = %d, want 200 without a token", token, resp.StatusCode)
		}
		h := resp.Header
		if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("X-Content-Type-Options %q", h.Get("X-Content-Type-Options"))
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.HasPrefix(csp, "default-src 'none'; ") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("Content-Security-Policy %q", csp)
		}
		// The CSP allows exactly the page's one script and one style.
		for _, tag := range []string{"script", "style"} {
			m := regexp.MustCompile(`(?s)<`+tag+`>(.*?)</`+tag+`>`).FindAllStringSubmatch(body, -1)
			if len(m) != 1 {
				t.Fatalf("%d <%s> elements, want 1", len(m), tag)
			}
			sum := sha256.Sum256([]byte(m[0][1]))
			want := tag + "-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "';"
			if !strings.Contains(csp, want) {
				t.Errorf("CSP %q lacks %q", csp, want)
			}
		}
		// Self-contained: nothing is loaded from anywhere else, and every
		// call goes to the admin API.
		for _, bad := range []string{`(?i)\b(src|href)\s*=\s*["']?[^"'d]`, `(?i)url\(`, `@import`, `(?i)<link[^>]+stylesheet`, `@font-face`} {
			if m := regexp.MustCompile(bad).FindString(body); m != "" {
				t.Errorf("the page contains %q", m)
			}
		}
		for _, m := range regexp.MustCompile(`fetch\(([^,)]*)`).FindAllStringSubmatch(body, -1) {
			if arg := m[1]; !strings.HasPrefix(arg, `"/admin/`) && arg != "url" {
				t.Errorf("fetch(%s): not an admin API path", arg)
			}
		}
		// Only "/" is the page: other paths keep their 404 (401 before it
		// with a token).
		want404 := 404
		if token != "" {
			want404 = 401
		}
		for _, p := range []string{"/index.html", "/dashboard", "/admin/", "/x/"} {
			if resp, _ := do(t, ts, "GET", p, ""); resp.StatusCode != want404 {
				t.Errorf("token %q: GET %s = %d, want %d", token, p, resp.StatusCode, want404)
			}
		}
	}
}

// sseEvent is one message read from a stream.
type sseEvent struct {
	event string
	data  map[string]any
}

// openDashStream opens GET /admin/stream and returns a channel of its messages,
// closed when the stream ends, and a function that ends the request.
func openDashStream(t *testing.T, url, auth string) (*http.Response, <-chan sseEvent, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/admin/stream", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ch := make(chan sseEvent, 16)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 4<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &ev.data); err != nil {
					t.Errorf("data is not JSON: %v: %s", err, line)
					return
				}
			case line == "" && ev.event != "":
				ch <- ev
				ev = sseEvent{}
			}
		}
	}()
	t.Cleanup(cancel)
	return resp, ch, cancel
}

func nextMsg(t *testing.T, ch <-chan sseEvent, within time.Duration) (sseEvent, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-time.After(within):
		t.Fatalf("no message within %v", within)
	}
	return sseEvent{}, false
}

func TestStreamNeedsToken(t *testing.T) {
	t.Parallel()
	_, ts := setup(t, &fakeCtl{backends: twoPools()}, "s3cret")
	for _, auth := range []string{"", "Bearer nope"} {
		if resp, _ := do(t, ts, "GET", "/admin/stream", auth); resp.StatusCode != 401 {
			t.Errorf("auth %q: %d, want 401", auth, resp.StatusCode)
		}
	}
	// The token is never taken from the URL (URLs end up in logs).
	if resp, _ := do(t, ts, "GET", "/admin/stream?token=s3cret", ""); resp.StatusCode != 401 {
		t.Errorf("?token=: %d, want 401", resp.StatusCode)
	}
	resp, ch, cancel := openDashStream(t, ts.URL, "Bearer s3cret")
	defer cancel()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if ev, _ := nextMsg(t, ch, 5*time.Second); ev.event != "snapshot" {
		t.Fatalf("first message %q, want snapshot", ev.event)
	}
}

func TestStreamSnapshotThenChanges(t *testing.T) {
	t.Parallel()
	ctl := &fakeCtl{backends: twoPools()}
	_, ts := setup(t, ctl, "")
	_, ch, cancel := openDashStream(t, ts.URL, "")
	defer cancel()
	ev, _ := nextMsg(t, ch, 5*time.Second)
	if ev.event != "snapshot" {
		t.Fatalf("first message %q", ev.event)
	}
	snap, _ := json.Marshal(ev.data)
	for _, want := range []string{
		`"fields":["state","admin_state","weight","active","rps","error_rate","p50_ms","p99_ms","down_reason","check"]`,
		`{"backend":"127.0.0.1:8081","row":["up","ready",3,0,0,0,0,0,"","HTTP 200"]}`,
		`{"backend":"10.0.0.1:9000","row":["ejected","disabled",1,0,0,0,0,0,"ejected after 3 failed requests",""],"url":"https://10.0.0.1:9000/"}`,
		`"events":[]`,
	} {
		if !strings.Contains(string(snap), want) {
			t.Errorf("snapshot lacks %s:\n%s", want, snap)
		}
	}
	pools := ev.data["pools"].([]any)
	if len(pools) != 2 || pools[0].(map[string]any)["name"] != "web" || pools[1].(map[string]any)["name"] != "api" {
		t.Fatalf("pools %v", pools)
	}

	// One backend goes down and is drained, another gets traffic: the update carries
	// exactly those two rows, by pool and backend index.
	bs := twoPools()
	bs[0].LastMinute = window.Stats{Requests: 120, Errors: 6, Span: time.Minute, P50: 2345 * time.Microsecond, P99: 31234 * time.Microsecond}
	bs[1].Up, bs[1].Healthy, bs[1].AdminState = false, false, "drain"
	bs[1].LastCheck = &pool.Check{At: time.Now(), Info: "connection refused"}
	bs[1].DownReason = ptr("3 health checks failed: connection refused")
	ctl.setBackends(bs)
	ev, _ = nextMsg(t, ch, 5*time.Second)
	if ev.event != "update" {
		t.Fatalf("second message %q", ev.event)
	}
	rows, _ := json.Marshal(ev.data["rows"])
	// 120 requests over the last 60 s, 5% errors; latencies to three digits.
	const want = `[[0,0,"up","ready",3,0,2,0.05,2.35,31.2,"","HTTP 200"],` +
		`[0,1,"down","drain",1,0,0,0,0,0,"3 health checks failed: connection refused","connection refused"]]`
	if string(rows) != want {
		t.Fatalf("update rows\n%s, want\n%s", rows, want)
	}
	// Nothing changes: no message, only keep-alives (none within 2 s).
	select {
	case ev := <-ch:
		t.Fatalf("message %q although nothing changed: %v", ev.event, ev.data)
	case <-time.After(2500 * time.Millisecond):
	}
	// A reload that changes the backends: a new snapshot.
	ctl.setBackends(bs[:2])
	if ev, _ = nextMsg(t, ch, 5*time.Second); ev.event != "snapshot" || len(ev.data["pools"].([]any)) != 1 {
		t.Fatalf("after the structure changed: %q %v", ev.event, ev.data)
	}
}

// TestStreamEnds checks the three ways a stream ends: the client goes, the
// server closes its streams, the token it was opened with is replaced.
func TestStreamEnds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		end  func(s *admin.Server, cancel context.CancelFunc)
	}{
		{"client gone", func(s *admin.Server, cancel context.CancelFunc) { cancel() }},
		{"Close", func(s *admin.Server, cancel context.CancelFunc) { s.Close() }},
		{"token rotated", func(s *admin.Server, cancel context.CancelFunc) { s.SetToken("new") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := admin.New(&fakeCtl{backends: twoPools()}, nil, "old", quiet)
			handled := make(chan struct{})
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s.ServeHTTP(w, r)
				if r.URL.Path == "/admin/stream" {
					close(handled)
				}
			}))
			t.Cleanup(ts.Close)
			_, ch, cancel := openDashStream(t, ts.URL, "Bearer old")
			defer cancel()
			nextMsg(t, ch, 5*time.Second)
			c.end(s, cancel)
			select {
			case <-handled:
			case <-time.After(5 * time.Second):
				t.Fatal("the stream handler still runs 5 s later")
			}
			for range ch { // the client sees the end too
			}
		})
	}
}

// TestStreamEvents: a snapshot carries the last 50 events, an update the
// new ones (at most 100 per message, the rest in the next).
func TestStreamEvents(t *testing.T) {
	t.Parallel()
	ctl := newEventCtl(70)
	ctl.backends = twoPools()
	ts := httptest.NewServer(admin.New(ctl, nil, "", quiet))
	t.Cleanup(ts.Close)
	_, ch, cancel := openDashStream(t, ts.URL, "")
	defer cancel()
	ids := func(ev sseEvent) (first, last float64, n int) {
		evs := ev.data["events"].([]any)
		if len(evs) == 0 {
			return 0, 0, 0
		}
		return evs[0].(map[string]any)["id"].(float64), evs[len(evs)-1].(map[string]any)["id"].(float64), len(evs)
	}
	ev, _ := nextMsg(t, ch, 5*time.Second)
	if first, last, n := ids(ev); ev.event != "snapshot" || first != 21 || last != 70 || n != 50 {
		t.Fatalf("snapshot %q carries events %v..%v (%d), want 21..70", ev.event, first, last, n)
	}
	for i := range 130 {
		ctl.log.Add(events.KindDown, "web", "127.0.0.1:8082", fmt.Sprint("down ", i))
	}
	ev, _ = nextMsg(t, ch, 5*time.Second)
	if first, last, n := ids(ev); ev.event != "update" || first != 71 || last != 170 || n != 100 {
		t.Fatalf("update %q carries events %v..%v (%d), want 71..170", ev.event, first, last, n)
	}
	if rows := ev.data["rows"].([]any); len(rows) != 0 {
		t.Fatalf("rows %v, want none (no backend changed)", rows)
	}
	ev, _ = nextMsg(t, ch, 5*time.Second)
	if first, last, _ := ids(ev); first != 171 || last != 200 {
		t.Fatalf("next update carries events %v..%v, want 171..200", first, last)
	}
	e := ev.data["events"].([]any)[0].(map[string]any)
	if e["kind"] != "down" || e["pool"] != "web" || e["backend"] != "127.0.0.1:8082" || e["message"] != "down 100" || e["time"] == "" {
		t.Fatalf("event %v", e)
	}
}
