package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fulcrum/internal/admin"
	"fulcrum/internal/events"
)

// eventCtl is a Controller with a real event log.
type eventCtl struct {
	fakeCtl
	log *events.Log
}

func (e *eventCtl) Events() *events.Log { return e.log }

var _ admin.EventSource = (*eventCtl)(nil)

func newEventCtl(n int) *eventCtl {
	c := &eventCtl{log: events.New(events.Capacity, nil)}
	for i := 1; i <= n; i++ {
		c.log.Add(events.KindAdmin, "web", "127.0.0.1:8081", fmt.Sprint("action ", i))
	}
	return c
}

func TestEventsJSON(t *testing.T) {
	t.Parallel()
	ctl := newEventCtl(150)
	srv := serve(t, admin.New(ctl, prometheus.NewRegistry(), "", quiet))
	get := func(path string) (int, []events.Event, string) {
		t.Helper()
		resp, err := http.Get(srv + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var evs []events.Event
		var raw json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if resp.StatusCode == 200 {
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("GET %s: Content-Type %q", path, resp.Header.Get("Content-Type"))
			}
			if err := json.Unmarshal(raw, &evs); err != nil {
				t.Fatalf("GET %s: not an array of events: %v\n%s", path, err, raw)
			}
		}
		return resp.StatusCode, evs, string(raw)
	}
	code, evs, _ := get("/admin/events")
	if code != 200 || len(evs) != 100 || evs[0].ID != 1 || evs[99].ID != 100 {
		t.Fatalf("default: %d, %d events (%d..), want the first 100", code, len(evs), evs[0].ID)
	}
	if e := evs[4]; e.Kind != "admin" || e.Pool != "web" || e.Backend != "127.0.0.1:8081" || e.Message != "action 5" || e.Time.IsZero() {
		t.Fatalf("event %+v", e)
	}
	if _, evs, _ = get("/admin/events?since=140"); len(evs) != 10 || evs[0].ID != 141 {
		t.Fatalf("since=140: %d events", len(evs))
	}
	if _, evs, _ = get("/admin/events?since=10&limit=3"); len(evs) != 3 || evs[0].ID != 11 || evs[2].ID != 13 {
		t.Fatalf("since=10&limit=3: %+v", evs)
	}
	if _, evs, raw := get("/admin/events?since=150"); len(evs) != 0 || strings.TrimSpace(raw) != "[]" {
		t.Fatalf("nothing new: %q, want []", raw)
	}
	for _, bad := range []string{"since=x", "since=-1", "limit=0", "limit=1001", "limit=a"} {
		code, _, raw := get("/admin/events?" + bad)
		var e struct{ Error string }
		if code != 400 || json.Unmarshal([]byte(raw), &e) != nil || e.Error == "" || !strings.Contains(e.Error, strings.Split(bad, "=")[0]) {
			t.Errorf("%s: %d %s, want 400 with an error naming the parameter", bad, code, raw)
		}
	}
}

// serve serves s on a real loopback listener and returns its URL.
func serve(t *testing.T, s *admin.Server) string {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.URL
}

// stream opens an event stream and returns a reader of its lines.
type stream struct {
	t      *testing.T
	resp   *http.Response
	lines  chan string
	cancel context.CancelFunc
}

func openStream(t *testing.T, url string, header map[string]string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	s := &stream{t: t, resp: resp, lines: make(chan string, 1000), cancel: cancel}
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
	for range s.lines {
	}
}

// next returns the next non-empty line (comments included).
func (s *stream) next() string {
	s.t.Helper()
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				s.t.Fatal("stream ended")
			}
			if l != "" {
				return l
			}
		case <-time.After(10 * time.Second):
			s.t.Fatal("timed out waiting for a stream line")
		}
	}
}

// event reads the next event (skipping comments).
func (s *stream) event() events.Event {
	s.t.Helper()
	for {
		l := s.next()
		if strings.HasPrefix(l, ":") {
			continue
		}
		if !strings.HasPrefix(l, "id: ") {
			s.t.Fatalf("line %q, want id: N", l)
		}
		d := s.next()
		if !strings.HasPrefix(d, "data: ") {
			s.t.Fatalf("line %q after %q, want data: {...}", d, l)
		}
		var e events.Event
		if err := json.Unmarshal([]byte(strings.TrimPrefix(d, "data: ")), &e); err != nil {
			s.t.Fatalf("data %q: %v", d, err)
		}
		if l != fmt.Sprintf("id: %d", e.ID) {
			s.t.Fatalf("%q does not match the event's id %d", l, e.ID)
		}
		return e
	}
}

func TestEventStream(t *testing.T) {
	t.Parallel()
	ctl := newEventCtl(3)
	s := admin.New(ctl, prometheus.NewRegistry(), "", quiet)
	s.SetHeartbeat(50 * time.Millisecond)
	url := serve(t, s) + "/admin/events"

	// Without since or Last-Event-ID: only new events.
	live := openStream(t, url, nil)
	if ct := live.resp.Header.Get("Content-Type"); live.resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("%d %q, want 200 text/event-stream", live.resp.StatusCode, ct)
	}
	if l := live.next(); l != ": heartbeat" {
		t.Fatalf("first line of an idle stream %q, want the heartbeat", l)
	}
	ctl.log.Add(events.KindDown, "web", "127.0.0.1:8082", "1 failed check: GET /health returned 503 <&>")
	e := live.event()
	if e.ID != 4 || e.Kind != "down" || e.Message != "1 failed check: GET /health returned 503 <&>" {
		t.Fatalf("live event %+v", e)
	}
	// A burst larger than a batch arrives whole and in order.
	for i := 0; i < 250; i++ {
		ctl.log.Add(events.KindAdmin, "web", "127.0.0.1:8081", "burst")
	}
	for want := uint64(5); want < 255; want++ {
		if e := live.event(); e.ID != want {
			t.Fatalf("burst: event %d, want %d", e.ID, want)
		}
	}

	// ?since= replays what is in the ring after it.
	replay := openStream(t, url+"?since=1", nil)
	if e := replay.event(); e.ID != 2 {
		t.Fatalf("since=1: first event %d, want 2", e.ID)
	}
	// Last-Event-ID (a reconnecting EventSource) wins over since.
	resumed := openStream(t, url+"?since=1", map[string]string{"Last-Event-ID": "253"})
	if e := resumed.event(); e.ID != 254 {
		t.Fatalf("Last-Event-ID 253: first event %d, want 254", e.ID)
	}
	bad := openStream(t, url, map[string]string{"Last-Event-ID": "x"})
	if bad.resp.StatusCode != 400 {
		t.Fatalf("Last-Event-ID x: %d, want 400", bad.resp.StatusCode)
	}

	// Close ends every stream.
	s.Close()
	for _, st := range []*stream{live, replay, resumed} {
		deadline := time.After(10 * time.Second)
	drain:
		for {
			select {
			case _, ok := <-st.lines:
				if !ok {
					break drain
				}
			case <-deadline:
				t.Fatal("stream still open after Close")
			}
		}
	}
}

// A stream opened with the admin token ends when the token changes (a
// reload that rotates it), as new requests with the old one get 401.
func TestEventStreamEndsWhenTokenChanges(t *testing.T) {
	t.Parallel()
	ctl := newEventCtl(1)
	s := admin.New(ctl, prometheus.NewRegistry(), "old", quiet)
	s.SetHeartbeat(20 * time.Millisecond)
	st := openStream(t, serve(t, s)+"/admin/events", map[string]string{"Authorization": "Bearer old"})
	if st.resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200", st.resp.StatusCode)
	}
	if l := st.next(); l != ": heartbeat" {
		t.Fatalf("first line %q, want the heartbeat", l)
	}
	s.SetToken("new")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-st.lines:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("stream with the old token still open after the token changed")
		}
	}
}
