package upstream

import (
	"crypto/tls"
	"testing"
)

func TestForBackend(t *testing.T) {
	t.Parallel()
	pool := ClientTLS(nil, "", false, nil, 2)
	if pool.MinVersion != tls.VersionTLS12 || pool.ClientSessionCache == nil {
		t.Fatalf("pool config %+v", pool)
	}
	for addr, want := range map[string]string{"10.0.0.1:443": "10.0.0.1", "[::1]:8443": "::1", "api.test:443": "api.test"} {
		if got := ForBackend(pool, addr).ServerName; got != want {
			t.Errorf("ForBackend(%s).ServerName = %q, want %q", addr, got, want)
		}
	}
	named := ClientTLS(nil, "api.internal", false, nil, 2)
	a, b := ForBackend(named, "10.0.0.1:443"), ForBackend(named, "10.0.0.2:443")
	if a.ServerName != "api.internal" || b.ServerName != "api.internal" {
		t.Errorf("server_name override lost: %q, %q", a.ServerName, b.ServerName)
	}
	// One shared cache, one entry per backend under the same server name.
	s := &tls.ClientSessionState{}
	a.ClientSessionCache.Put("api.internal", s)
	if _, ok := b.ClientSessionCache.Get("api.internal"); ok {
		t.Error("backend b sees backend a's session")
	}
	if got, ok := ForBackend(named, "10.0.0.1:443").ClientSessionCache.Get("api.internal"); !ok || got != s {
		t.Error("a new view of backend a does not see its session")
	}
	if pool.ServerName != "" || named.ClientSessionCache == a.ClientSessionCache {
		t.Error("ForBackend changed the pool's config")
	}
}
