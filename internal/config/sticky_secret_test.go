package config

import (
	"strings"
	"testing"
)

func TestStickySecret(t *testing.T) {
	cfg, err := Parse([]byte(`{"backends": ["http://a:1"], "sticky": {"type": "cookie", "secret": "k3y"}}`), "json", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Pools[0].Sticky.Secret; got != "k3y" {
		t.Fatalf("secret = %q", got)
	}
	_, err = Parse([]byte(`{"backends": ["http://a:1"], "sticky": {"type": "app_cookie", "cookie_name": "S", "secret": "x"}}`), "json", nil)
	if err == nil || !strings.Contains(err.Error(), "sticky.secret") {
		t.Fatalf("secret on app_cookie: want a sticky.secret problem, got %v", err)
	}
}
