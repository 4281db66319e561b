package admin_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Every error under /admin/ is JSON {"error": "..."}: a missing token, an
// unknown path and a method the path does not take, as well as the
// handlers' own errors.
func TestAdminErrorsAreJSON(t *testing.T) {
	t.Parallel()
	_, ts := setup(t, &fakeCtl{summary: "reloaded"}, "tok")
	for _, tc := range []struct {
		method, path, auth string
		status             int
		allow              string
	}{
		{"GET", "/admin/backends", "", http.StatusUnauthorized, ""},
		{"GET", "/admin/nope", "Bearer tok", http.StatusNotFound, ""},
		{"DELETE", "/admin/backends", "Bearer tok", http.StatusMethodNotAllowed, "GET"},
		{"GET", "/admin/reload", "Bearer tok", http.StatusMethodNotAllowed, "POST"},
		{"GET", "/admin/routes", "Bearer tok", http.StatusNotFound, ""}, // fakeCtl has no routes
	} {
		resp, body := do(t, ts, tc.method, tc.path, tc.auth)
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q, want application/json", tc.method, tc.path, ct)
		}
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
			t.Errorf("%s %s: body %q is not {\"error\": ...} (%v)", tc.method, tc.path, body, err)
		}
		if tc.allow != "" && !strings.Contains(resp.Header.Get("Allow"), tc.allow) {
			t.Errorf("%s %s: Allow %q, want it to name %s", tc.method, tc.path, resp.Header.Get("Allow"), tc.allow)
		}
	}
	// Outside /admin/ the mux's own answers stay (Prometheus scrapers and
	// browsers expect text there).
	if resp, _ := do(t, ts, "GET", "/nope", "Bearer tok"); resp.StatusCode != http.StatusNotFound ||
		strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /nope: %d %q, want a plain 404", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
