package admin_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestDryRunParam: dry_run=1 and dry_run=true preview (here: a controller
// that cannot, so 404 and no reload), 0 and false reload, anything else is a
// 400 naming the parameter; none of them reloads by mistake.
func TestDryRunParam(t *testing.T) {
	t.Parallel()
	ctl := &fakeCtl{summary: "reloaded"}
	_, ts := setup(t, ctl, "")
	for _, tc := range []struct {
		query   string
		code    int
		body    string
		reloads int
	}{
		{"?dry_run=1", http.StatusNotFound, `"error": "this server cannot preview a reload"`, 0},
		{"?dry_run=true", http.StatusNotFound, `"error": "this server cannot preview a reload"`, 0},
		{"?dry_run=yes", http.StatusBadRequest, `"error": "dry_run: want 1, true, 0 or false, got \"yes\""`, 0},
		{"?dry_run=", http.StatusBadRequest, `"error": "dry_run: want 1, true, 0 or false, got \"\""`, 0},
		{"?dry_run=1&dry_run=1", http.StatusBadRequest, `"error": "dry_run: given 2 times, want it once"`, 0},
		{"?dry_run=0", http.StatusOK, "reloaded\n", 1},
		{"?dry_run=false", http.StatusOK, "reloaded\n", 2},
	} {
		resp, body := do(t, ts, "POST", "/admin/reload"+tc.query, "")
		if resp.StatusCode != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("POST /admin/reload%s = %d %q, want %d with %q", tc.query, resp.StatusCode, body, tc.code, tc.body)
		}
		if tc.code != http.StatusOK && resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("POST /admin/reload%s: Content-Type %q, want application/json", tc.query, resp.Header.Get("Content-Type"))
		}
		if got := ctl.reloadCount(); got != tc.reloads {
			t.Errorf("after POST /admin/reload%s: %d reloads, want %d", tc.query, got, tc.reloads)
		}
	}
	resp, body := do(t, ts, "GET", "/admin/config", "")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Errorf("GET /admin/config without a Previewer = %d %q, want 404 JSON", resp.StatusCode, body)
	}
}
