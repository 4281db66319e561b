package config

import "testing"

// TestAdminOverride: -admin sets admin_addr without a file and overrides the
// file's; "" turns the admin listener off.
func TestAdminOverride(t *testing.T) {
	t.Parallel()
	cfg, err := FromFlags(&Overrides{Admin: ptr("127.0.0.1:9191")})
	if err != nil || cfg.AdminAddr != "127.0.0.1:9191" {
		t.Fatalf("FromFlags(-admin 127.0.0.1:9191) = %v, %v", cfg, err)
	}
	doc := `{"backends": ["http://a"], "admin_addr": "127.0.0.1:7000"}`
	for _, admin := range []string{"127.0.0.1:7001", ""} {
		if cfg := mustParse(t, doc, "json", &Overrides{Admin: ptr(admin)}); cfg.AdminAddr != admin {
			t.Errorf("-admin %q over the file's admin_addr: AdminAddr %q", admin, cfg.AdminAddr)
		}
	}
	if cfg := mustParse(t, doc, "json", nil); cfg.AdminAddr != "127.0.0.1:7000" {
		t.Errorf("without -admin: AdminAddr %q, want the file's", cfg.AdminAddr)
	}
}
