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

// TestFlagProblemsNameTheFlag: a bad flag value is reported with the flag's
// name, not the file key it overrides, on a file as without one; the file's
// own problems keep their keys, even for a key a flag replaced (a duplicate
// key is a problem of the file's text).
func TestFlagProblemsNameTheFlag(t *testing.T) {
	t.Parallel()
	_, err := FromFlags(&Overrides{HealthCheckInterval: ptr("30")})
	if got, want := err.Error(), `-health-check-interval: must be a duration like "30s" or "1m30s", got "30"`; got != want {
		t.Errorf("FromFlags(-health-check-interval 30) = %q, want %q", got, want)
	}
	doc := "{\"backends\": [\"http://a\"], \"strategy\": \"random\", \"strategy\": \"random\", \"retries\": -1, \"health_check\": {\"interval\": \"5s\"}}"
	_, err = Parse([]byte(doc), "json", &Overrides{Strategy: ptr("fast"), HealthCheckInterval: ptr("-1s"), Listen: ptr("x")})
	for _, p := range [][2]string{
		{"strategy", "duplicate key"},
		{"-strategy", `unknown strategy "fast"`},
		{"-health-check-interval", "must not be negative"},
		{"-listen", "host:port"},
		{"retries", "must be >= 0"},
	} {
		assertProblem(t, err, p[0], p[1])
	}
	// A warning caused by a flag names the flag too.
	cfg := mustParse(t, `{"backends": [{"url": "http://a", "weight": 2}, "http://b"], "strategy": "random"}`, "json",
		&Overrides{Strategy: ptr("round_robin")})
	if len(cfg.Warnings) != 1 || cfg.Warnings[0].String()[:len(`-strategy: "round_robin"`)] != `-strategy: "round_robin"` {
		t.Errorf("warnings %v, want one naming -strategy", cfg.Warnings)
	}
}
