package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestReloadAdminAddrRefused: the admin listener stays bound where it
// started, so a reload naming another admin_addr is refused and nothing of it
// applies. In particular a file with a loopback admin_addr and no token must
// not clear the token of an admin listener bound to 0.0.0.0; and a file that
// keeps the public address but drops the token is refused by the token rule.
func TestReloadAdminAddrRefused(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a", "b")
	withAdmin := func(addr, token string, b []backendSrv) string {
		cfg := strings.Replace(cfgJSON("", "round_robin", b, nil), `"admin_addr": ""`, fmt.Sprintf(`"admin_addr": %q`, addr), 1)
		if token != "" {
			cfg = strings.Replace(cfg, "{", fmt.Sprintf(`{"admin_token": %q, `, token), 1)
		}
		return cfg
	}
	// The engine does not bind the admin listener (cmd/fulcrum does), so
	// this address is never listened on.
	const public = "0.0.0.0:19090"
	h := start(t, withAdmin(public, "tok", bs))
	before := h.eng.Config()
	refused := []struct{ name, cfg, want string }{
		{"loopback without token", withAdmin("127.0.0.1:19090", "", bs[:1]), "admin_addr: cannot change on reload"},
		{"loopback with token", withAdmin("127.0.0.1:19090", "tok", bs[:1]), "admin_addr: cannot change on reload"},
		{"admin off", withAdmin("", "", bs[:1]), "admin_addr: cannot change on reload"},
		{"same address, token dropped", withAdmin(public, "", bs[:1]), "requires admin_token or admin_token_file"},
	}
	for i, r := range refused {
		writeFile(t, h.path, r.cfg)
		summary, err := h.eng.Reload(context.Background())
		if err == nil || !strings.Contains(err.Error(), r.want) {
			t.Fatalf("%s: Reload = %q, %v; want an error containing %q", r.name, summary, err, r.want)
		}
		if h.eng.Config() != before || h.eng.AdminToken() != "tok" {
			t.Fatalf("%s: running config changed (admin token %q)", r.name, h.eng.AdminToken())
		}
		if got := h.seq(2); got != "ab" && got != "ba" {
			t.Fatalf("%s: traffic after the refused reload: %q, want both running backends", r.name, got)
		}
		if f := h.reloads("failure"); f != float64(i+1) {
			t.Errorf("%s: reload failures = %v, want %d", r.name, f, i+1)
		}
	}
	// The same address with a new token applies, and the summary carries no
	// note about admin_addr.
	writeFile(t, h.path, withAdmin(public, "tok2", bs[:1]))
	summary, err := h.eng.Reload(context.Background())
	if err != nil || strings.Contains(summary, "admin_addr") {
		t.Fatalf("Reload keeping admin_addr = %q, %v", summary, err)
	}
	if h.eng.AdminToken() != "tok2" {
		t.Fatalf("AdminToken after reload = %q, want tok2", h.eng.AdminToken())
	}
}
