package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"fulcrum/internal/admin"
	"fulcrum/internal/config"
	"fulcrum/internal/engine"
	"fulcrum/internal/pool"
	"fulcrum/internal/preview"
)

// adminFor serves the admin API of h's engine on a loopback test server.
func adminFor(t *testing.T, h *harness, token string) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(admin.New(h.eng, prometheus.NewRegistry(), token, quiet))
	t.Cleanup(ts.Close)
	t.Cleanup(ts.Client().CloseIdleConnections)
	return ts
}

func adminCall(t *testing.T, ts *httptest.Server, method, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type dryRunAnswer struct {
	Valid    bool             `json:"valid"`
	Error    string           `json:"error"`
	Changes  []preview.Change `json:"changes"`
	Warnings []string         `json:"warnings"`
}

// TestDryRunChangesNothing: POST /admin/reload?dry_run=1 lists what the
// file would change and applies none of it: the running config, the
// backends, traffic and the reload counters stay as they were. A real reload
// then makes exactly the changes listed.
func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a", "b", "c")
	const token = "dry-run-token"
	withToken := func(cfg string) string {
		return strings.Replace(cfg, "{", fmt.Sprintf(`{"admin_token": %q, `, token), 1)
	}
	h := start(t, withToken(cfgJSON("", "round_robin", bs[:2], nil)))
	ts := adminFor(t, h, token)
	before, backends := h.eng.Config(), h.eng.Backends()

	writeFile(t, h.path, withToken(cfgJSON("", "ip_hash", []backendSrv{bs[0], bs[2]}, []int{1, 3})))
	for _, q := range []string{"dry_run=1", "dry_run=true"} {
		code, body := adminCall(t, ts, "POST", "/admin/reload?"+q, token)
		var got dryRunAnswer
		if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 || !got.Valid {
			t.Fatalf("%s: %d %s (%v)", q, code, body, err)
		}
		var lines []string
		for _, c := range got.Changes {
			lines = append(lines, string(c.Kind)+": "+c.Message)
		}
		want := []string{
			"strategy_changed: pool default: strategy round_robin -> ip_hash",
			"backend_removed: pool default: backend " + bs[1].url + " removed: it gets no new requests, requests in flight finish",
			"backend_added: pool default: backend " + bs[2].url + " added (weight 3)",
		}
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: changes\n%s\nwant\n%s", q, strings.Join(lines, "\n"), strings.Join(want, "\n"))
		}
		if len(got.Warnings) != 0 {
			t.Errorf("%s: warnings %v", q, got.Warnings)
		}
	}
	if h.eng.Config() != before || !reflect.DeepEqual(statusKeys(h.eng), keysOf(backends)) {
		t.Fatal("the dry run changed the running configuration")
	}
	if got := h.seq(4); got != "abab" && got != "baba" {
		t.Errorf("traffic after the dry run: %q, want a and b in turn", got)
	}
	if s, f := h.reloads("success"), h.reloads("failure"); s != 0 || f != 0 {
		t.Errorf("reload counters after dry runs: success %v, failure %v; want 0 and 0", s, f)
	}
	if _, err := h.eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := statusKeys(h.eng); !reflect.DeepEqual(got, []string{bs[0].url + "*1", bs[2].url + "*3"}) {
		t.Errorf("backends after the real reload: %v", got)
	}
	// Now the file is what runs: nothing left to change.
	code, body := adminCall(t, ts, "POST", "/admin/reload?dry_run=1", token)
	if code != 200 || !strings.Contains(body, `"valid": true`) || !strings.Contains(body, `"changes": []`) {
		t.Errorf("dry run after the reload: %d %s, want valid with no changes", code, body)
	}
}

func statusKeys(e *engine.Engine) []string { return keysOf(e.Backends()) }

// keysOf lists the backends' URLs and weights.
func keysOf(st []pool.Status) []string {
	var out []string
	for _, s := range st {
		out = append(out, fmt.Sprintf("%s*%d", s.URL, s.Weight))
	}
	return out
}

// TestDryRunRefusals: an invalid file, and one a reload would refuse, give
// 400 with {"valid": false, "error": ...} naming the key; the admin token
// guards both endpoints; a bad dry_run value is a 400 naming it.
func TestDryRunRefusals(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a")
	good := cfgJSON("", "round_robin", bs, nil)
	h := start(t, good)
	ts := adminFor(t, h, "tok")
	for _, tc := range []struct{ name, file, want string }{
		{"invalid", strings.Replace(good, `"weight": 1`, `"weight": 0`, 1), "config: backends[0].weight: must be >= 1, got 0"},
		{"log_format", strings.Replace(good, "{", `{"log_format": "json", `, 1), `log_format: cannot change on reload (running "text", file says "json"); restart fulcrum`},
		{"admin_addr", strings.Replace(good, `"admin_addr": ""`, `"admin_addr": "127.0.0.1:1"`, 1), `admin_addr: cannot change on reload (running "", file says "127.0.0.1:1"); restart fulcrum`},
	} {
		writeFile(t, h.path, tc.file)
		code, body := adminCall(t, ts, "POST", "/admin/reload?dry_run=1", "tok")
		var got dryRunAnswer
		if err := json.Unmarshal([]byte(body), &got); err != nil || code != 400 || got.Valid || got.Error != tc.want {
			t.Errorf("%s: %d %s, want 400 valid false with error %q", tc.name, code, body, tc.want)
		}
		// The client-side check of fulcrum validate -against says the same.
		if tc.name != "invalid" {
			next, err := config.Load(h.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			salt := preview.NewSalt()
			err = preview.Refused(preview.FromConfig(h.eng.Config(), salt), preview.FromConfig(next, salt))
			if err == nil || err.Error() != tc.want {
				t.Errorf("%s: preview.Refused = %v, want %q (as the engine)", tc.name, err, tc.want)
			}
			if _, rerr := h.eng.Reload(context.Background()); rerr == nil || rerr.Error() != tc.want {
				t.Errorf("%s: Reload = %v, want %q", tc.name, rerr, tc.want)
			}
		}
	}
	writeFile(t, h.path, good)
	for _, tc := range []struct{ method, path, token string }{
		{"POST", "/admin/reload?dry_run=1", ""},
		{"GET", "/admin/config", ""},
		{"GET", "/admin/config", "wrong"},
	} {
		if code, body := adminCall(t, ts, tc.method, tc.path, tc.token); code != 401 {
			t.Errorf("%s %s with token %q: %d %s, want 401", tc.method, tc.path, tc.token, code, body)
		}
	}
	code, body := adminCall(t, ts, "POST", "/admin/reload?dry_run=yes", "tok")
	if code != 400 || !strings.Contains(body, `"error": "dry_run: want 1, true, 0 or false, got \"yes\""`) {
		t.Errorf("dry_run=yes: %d %s", code, body)
	}
	if f := h.reloads("failure"); f != 2 {
		t.Errorf("reload failures = %v, want 2 (the two real reloads above, not the dry runs)", f)
	}
}

// TestAdminConfig: GET /admin/config is the running model, without the
// admin token or sticky secret, with a fresh salt each time.
func TestAdminConfig(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a", "b")
	const token, secret = "config-admin-token-77", "config-sticky-secret-88"
	cfg := strings.Replace(cfgJSON("", "least_connections", bs, []int{2, 1}), "{",
		fmt.Sprintf(`{"admin_token": %q, "sticky": {"type": "cookie", "secret": %q}, `, token, secret), 1)
	h := start(t, cfg)
	ts := adminFor(t, h, token)
	code, body := adminCall(t, ts, "GET", "/admin/config", token)
	if code != 200 {
		t.Fatalf("GET /admin/config: %d %s", code, body)
	}
	for _, s := range []string{token, secret} {
		if strings.Contains(body, s) {
			t.Errorf("GET /admin/config shows %q:\n%s", s, body)
		}
	}
	m, err := preview.Decode([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	next, err := config.Load(h.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cs, err := preview.Diff(m, preview.FromConfig(next, m.Salt)); err != nil || len(cs) != 0 {
		t.Errorf("the served model differs from the file it runs: %v %v", cs, err)
	}
	if p := m.Pools[0]; p.Strategy != "least_connections" || len(p.Backends) != 2 || p.Backends[0].Weight != 2 || p.Sticky == nil || p.Sticky.Secret == "" {
		t.Errorf("model pool = %+v", p)
	}
	_, again := adminCall(t, ts, "GET", "/admin/config", token)
	if m2, err := preview.Decode([]byte(again)); err != nil || m2.Salt == m.Salt || m2.Pools[0].Sticky.Secret == m.Pools[0].Sticky.Secret {
		t.Errorf("two GETs share a salt or a fingerprint (%v)", err)
	}
}
