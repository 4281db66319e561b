package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAdminReloadKeepsPublicListenerAuthenticated: an admin listener bound to
// 0.0.0.0 with a token keeps requiring the token whatever a reload file
// says. A file that moves admin_addr to loopback and drops the token (which
// earlier versions accepted, clearing the token of the still-public
// listener), a file that keeps the public address without a token, and a
// file that moves listen_addr are all refused with 400 by POST /admin/reload
// and logged by SIGHUP, and the running configuration keeps serving.
//
// The admin listener binds 0.0.0.0 because only a non-loopback address
// shows the bug; every request of the test goes to 127.0.0.1, and the
// listener requires a token from the start.
func TestAdminReloadKeepsPublicListenerAuthenticated(t *testing.T) {
	t.Parallel()
	a := StartBackend(t, "a", 0, nil)
	b := StartBackend(t, "b", 0, nil)
	port := freePort(t)
	public := fmt.Sprintf("0.0.0.0:%d", port)
	const token = "reload-e2e-token"
	auth := "Bearer " + token
	f := StartFulcrum(t, fmt.Sprintf(`{"admin_addr": %q, "admin_token": %q, "strategy": "round_robin", "backends": [%q]}`,
		public, token, a.URL))
	f.Admin = fmt.Sprintf("127.0.0.1:%d", port)
	f.waitListening(t)

	// stillGuarded checks that the admin API still wants the token and that
	// traffic still follows the first file.
	stillGuarded := func(what string) {
		t.Helper()
		if code, _, body := adminDo(t, "GET", f.AdminURL("/admin/backends"), ""); code != http.StatusUnauthorized {
			t.Fatalf("%s: GET /admin/backends without a token: %d, want 401\n%s", what, code, body)
		}
		if code, _, body := adminDo(t, "GET", f.AdminURL("/admin/backends"), auth); code != http.StatusOK || !strings.Contains(body, a.URL) || strings.Contains(body, b.URL) {
			t.Fatalf("%s: GET /admin/backends with the token: %d, want 200 listing only the running backend\n%s", what, code, body)
		}
		for range 2 {
			if code, body := Get(t, tokenClient(), f.URL("/")); code != http.StatusOK || body != "a" {
				t.Fatalf("%s: traffic: %d %q, want 200 from the running backend a", what, code, body)
			}
		}
	}
	stillGuarded("before any reload")

	refused := []struct{ name, cfg, want string }{
		{"admin_addr moved to loopback, token dropped",
			fmt.Sprintf(`{"admin_addr": %q, "backends": [%q]}`, f.Admin, b.URL), "admin_addr"},
		{"admin_addr moved to loopback, token kept",
			fmt.Sprintf(`{"admin_addr": %q, "admin_token": %q, "backends": [%q]}`, f.Admin, token, b.URL), "admin_addr"},
		{"public admin_addr kept, token dropped",
			fmt.Sprintf(`{"admin_addr": %q, "backends": [%q]}`, public, b.URL), "requires admin_token or admin_token_file"},
	}
	failures := 0
	for _, r := range refused {
		f.WriteConfig(r.cfg)
		code, _, body := adminDo(t, "POST", f.AdminURL("/admin/reload"), auth)
		failures++
		if code != http.StatusBadRequest || !strings.Contains(body, r.want) {
			t.Fatalf("%s: POST /admin/reload: %d, want 400 naming %q\n%s", r.name, code, r.want, body)
		}
		stillGuarded(r.name + " (POST /admin/reload)")

		logged := strings.Count(f.Logs.String(), "reload rejected")
		f.Signal(syscall.SIGHUP)
		failures++
		WaitFor(t, 10*time.Second, r.name+": SIGHUP reload rejected in the log", func() bool {
			return strings.Count(f.Logs.String(), "reload rejected") > logged
		})
		stillGuarded(r.name + " (SIGHUP)")
	}
	logs := f.Logs.String()
	for _, w := range []string{"admin_addr: cannot change on reload", "requires admin_token"} {
		if !strings.Contains(logs, w) {
			t.Errorf("the log does not show %q:\n%s", w, logs)
		}
	}
	if strings.Contains(logs, "takes effect after a restart") {
		t.Errorf("a refused admin_addr change is still described as taking effect later:\n%s", logs)
	}
	_, _, metrics := adminDo(t, "GET", f.AdminURL("/metrics"), auth)
	if want := fmt.Sprintf(`fulcrum_reloads_total{result="failure"} %d`, failures); !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %q", want)
	}

	// A file that keeps both addresses and the token still applies.
	f.WriteConfig(fmt.Sprintf(`{"admin_addr": %q, "admin_token": %q, "backends": [%q]}`, public, token, b.URL))
	if code, _, body := adminDo(t, "POST", f.AdminURL("/admin/reload"), auth); code != http.StatusOK {
		t.Fatalf("valid reload: %d\n%s", code, body)
	}
	if code, body := Get(t, tokenClient(), f.URL("/")); code != http.StatusOK || body != "b" {
		t.Fatalf("traffic after the valid reload: %d %q, want b", code, body)
	}
	if code, _, _ := adminDo(t, "GET", f.AdminURL("/admin/backends"), ""); code != http.StatusUnauthorized {
		t.Fatalf("GET /admin/backends without a token after the valid reload: %d, want 401", code)
	}
}
