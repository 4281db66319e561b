package engine_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/admin"
	"fulcrum/internal/engine"
	"fulcrum/internal/events"
	"fulcrum/internal/pool"
	"fulcrum/internal/testutil"
)

// The engine serves the admin API's runtime control and event log.
var (
	_ admin.BackendControl = (*engine.Engine)(nil)
	_ admin.EventSource    = (*engine.Engine)(nil)
)

// adminOf serves the admin API of h's engine on a real loopback listener.
func adminOf(t *testing.T, h *harness) string {
	t.Helper()
	s := admin.New(h.eng, h.reg, "", quiet)
	ts := httptest.NewServer(s)
	t.Cleanup(func() { s.Close(); ts.Close() })
	return ts.URL
}

// call sends method url with body and decodes the JSON answer into out
// (when non-nil); it returns the status and the raw body.
func call(t *testing.T, method, url, body string, out any) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	cl := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json\n%s", method, url, ct, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v\n%s", method, url, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// backendView is the part of a status the tests read.
type backendView struct {
	pool.Status
	InFlight *int64 `json:"in_flight"`
}

// TestAdminControl drives the runtime control endpoints against a running
// engine: every answer is JSON, changes reach the next request, bad input
// and unknown names get 400 and 404 naming the problem.
func TestAdminControl(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a", "b")
	h := start(t, cfgJSON("", "weighted_round_robin", bs, nil))
	api := adminOf(t, h)
	hostA, hostB := strings.TrimPrefix(bs[0].url, "http://"), strings.TrimPrefix(bs[1].url, "http://")
	base := api + "/admin/pools/default/backends/"

	var st backendView
	if code, body := call(t, "POST", base+hostB+"/disable", "", &st); code != 200 || st.AdminState != "disabled" || st.URL != bs[1].url {
		t.Fatalf("disable: %d %s", code, body)
	}
	if got := h.seq(6); got != "aaaaaa" {
		t.Fatalf("traffic with b disabled: %q", got)
	}
	if code, body := call(t, "POST", base+hostB+"/enable", "", &st); code != 200 || st.AdminState != "ready" {
		t.Fatalf("enable: %d %s", code, body)
	}
	if got := h.seq(2); got != "ab" && got != "ba" {
		t.Fatalf("traffic with b enabled: %q", got)
	}
	if code, body := call(t, "PUT", base+hostA+"/weight", `{"weight": 3}`, &st); code != 200 || st.Weight != 3 {
		t.Fatalf("weight: %d %s", code, body)
	}
	// weights 3,1: nginx's smooth order, a new cycle from the change on.
	if got := h.seq(8); got != "aabaaaba" {
		t.Fatalf("traffic after weight 3: %q, want aabaaaba", got)
	}
	// The last answer reaches the client just before its request leaves
	// the in-flight count: wait for it.
	if code, body := call(t, "POST", base+hostA+"/drain?wait=2s", "", &st); code != 200 || st.AdminState != "drain" || st.InFlight == nil || *st.InFlight != 0 {
		t.Fatalf("drain: %d %s", code, body)
	}
	if got := h.seq(3); got != "bbb" {
		t.Fatalf("traffic with a drained: %q", got)
	}

	// Errors: JSON {"error": ...} naming the problem.
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{"POST", "/admin/pools/nope/backends/" + hostA + "/drain", "", 404, `no pool \"nope\"`},
		{"POST", "/admin/pools/default/backends/127.0.0.1:1/disable", "", 404, `no backend \"127.0.0.1:1\"`},
		{"PUT", "/admin/pools/default/backends/127.0.0.1:1/weight", `{"weight": 2}`, 404, `no backend`},
		{"PUT", "/admin/pools/default/backends/" + hostA + "/weight", `{"weight": 0}`, 400, "weight: must be 1-1000, got 0"},
		{"PUT", "/admin/pools/default/backends/" + hostA + "/weight", `{"weight": 1001}`, 400, "weight: must be 1-1000, got 1001"},
		{"PUT", "/admin/pools/default/backends/" + hostA + "/weight", `{"weight": 1.5}`, 400, "body:"},
		{"PUT", "/admin/pools/default/backends/" + hostA + "/weight", `{"weight": "2"}`, 400, "body:"},
		{"PUT", "/admin/pools/default/backends/" + hostA + "/weight", `{"weigth": 2}`, 400, `unknown field \"weigth\"`},
		{"PUT", "/admin/pools/default/backends/" + hostA + "/weight", `{}`, 400, "weight: required"},
		{"PUT", "/admin/pools/default/backends/" + hostA + "/weight", `weight=2`, 400, "body:"},
		{"PUT", "/admin/pools/default/backends/" + hostA + "/weight", `{"weight": 2} {"weight": 3}`, 400, "one JSON object"},
		{"POST", "/admin/pools/default/backends/" + hostA + "/drain?wait=soon", "", 400, `wait: must be a duration`},
		{"POST", "/admin/pools/default/backends/" + hostA + "/drain?wait=-1s", "", 400, `wait: must be a duration`},
		{"POST", "/admin/pools/default/backends/" + hostA + "/drain?wait=11m", "", 400, "wait: at most 10m0s"},
	} {
		var e struct{ Error string }
		code, body := call(t, c.method, api+c.path, c.body, &e)
		if code != c.code || !strings.Contains(body, c.want) || e.Error == "" {
			t.Errorf("%s %s %s: %d %s, want %d with %q", c.method, c.path, c.body, code, body, c.code, c.want)
		}
	}
	if w := h.eng.Backends()[0].Weight; w != 3 {
		t.Fatalf("a refused weight changed the weight: %d", w)
	}

	// /admin/backends shows the runtime state and the backend's events.
	var list []pool.Status
	call(t, "GET", api+"/admin/backends", "", &list)
	if len(list) != 2 || list[0].AdminState != "drain" || list[0].Weight != 3 || list[0].DownReason != nil {
		t.Fatalf("backends %+v", list)
	}
	var msgs []string
	for _, e := range list[0].Events {
		msgs = append(msgs, e.Kind+": "+e.Message)
	}
	if got := strings.Join(msgs, ", "); got != "admin: weight 1 to 3, admin: drain (was ready)" {
		t.Fatalf("a's events: %s", got)
	}
	if got := testutil.Counter(t, h.reg, "fulcrum_admin_actions_total", "action", "drain"); got != 1 {
		t.Fatalf(`fulcrum_admin_actions_total{action="drain"} = %v, want 1`, got)
	}
}

// TestAdminDrainWait: with ?wait= the drain answers 202 with the count left
// while a request is in flight, and 200 once it finished.
func TestAdminDrainWait(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "slow")
	}))
	t.Cleanup(slow.Close)
	h := start(t, cfgJSON("", "round_robin", []backendSrv{{name: "slow", url: slow.URL}}, nil))
	api := adminOf(t, h)
	drain := api + "/admin/pools/default/backends/" + strings.TrimPrefix(slow.URL, "http://") + "/drain"

	done := make(chan string, 1)
	go func() {
		resp, err := h.cl.Get("http://" + h.eng.Addr().String() + "/slow")
		if err != nil {
			done <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(b)
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request did not reach the backend")
	}
	var st backendView
	t0 := time.Now()
	code, body := call(t, "POST", drain+"?wait=200ms", "", &st)
	if code != 202 || st.InFlight == nil || *st.InFlight != 1 || st.AdminState != "drain" {
		t.Fatalf("drain?wait=200ms with a request in flight: %d %s, want 202 with in_flight 1", code, body)
	}
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Fatalf("202 after %v, before the wait ended", d)
	}
	// A second drain waits; the request finishes; the drain answers 200.
	answered := make(chan int, 1)
	go func() {
		var st backendView
		code, _ := call(t, "POST", drain+"?wait=20s", "", &st)
		if st.InFlight == nil || *st.InFlight != 0 {
			code = -code
		}
		answered <- code
	}()
	select {
	case c := <-answered:
		t.Fatalf("drain?wait=20s answered %d while the request was in flight", c)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if got := <-done; got != "slow" {
		t.Fatalf("the request in flight during the drain got %q, want it to finish", got)
	}
	select {
	case c := <-answered:
		if c != 200 {
			t.Fatalf("drain?wait=20s after the request finished: %d, want 200 with in_flight 0", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the drain did not answer after the request finished")
	}
}

// TestReloadEvents: a reload records its summary, a rejected one its
// errors; a runtime weight survives a reload keeping the file's weight.
func TestReloadEvents(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a", "b")
	h := start(t, cfgJSON("", "weighted_round_robin", bs, nil))
	api := adminOf(t, h)
	hostA := strings.TrimPrefix(bs[0].url, "http://")
	if code, body := call(t, "PUT", api+"/admin/pools/default/backends/"+hostA+"/weight", `{"weight": 2}`, nil); code != 200 {
		t.Fatalf("weight: %d %s", code, body)
	}
	if _, err := h.eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	writeFile(t, h.path, `{"listen_addr": 1}`)
	if _, err := h.eng.Reload(context.Background()); err == nil {
		t.Fatal("invalid config reloaded")
	}
	var evs []events.Event
	call(t, "GET", api+"/admin/events", "", &evs)
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, e.Kind)
		if e.Kind == events.KindReload && (e.Pool != "" || e.Backend != "" || strings.Contains(e.Message, "\n")) {
			t.Errorf("reload event %+v: want no pool, no backend, one line", e)
		}
	}
	if strings.Join(kinds, ",") != "admin,reload,reload" {
		t.Fatalf("events %+v", evs)
	}
	if m := evs[1].Message; !strings.HasPrefix(m, "reloaded: 2 backends, strategy weighted_round_robin") {
		t.Fatalf("reload event %q", m)
	}
	if m := evs[2].Message; !strings.HasPrefix(m, "rejected; running configuration unchanged: ") || !strings.Contains(m, "listen_addr") {
		t.Fatalf("rejected reload event %q", m)
	}
	if w := h.eng.Backends()[0].Weight; w != 2 {
		t.Fatalf("runtime weight after an unchanged reload: %d, want 2", w)
	}
}
