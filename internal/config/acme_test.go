package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestACMEDefaults(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `{"listeners": [{"name": "web", "listen_addr": "127.0.0.1:80", "routes": [{"pool": "p"}]},
		{"name": "tls", "listen_addr": "127.0.0.1:443", "routes": [{"pool": "p"}], "tls": {"acme": {"domains": ["Example.COM.", "www.example.com"]}}}],
		"pools": {"p": {"backends": ["http://a"]}}}`, "json", nil)
	a := cfg.Listeners[1].TLS.ACME
	if a == nil {
		t.Fatal("no acme block")
	}
	if !slices.Equal(a.Domains, []string{"example.com", "www.example.com"}) {
		t.Errorf("domains %q, want lower case without the trailing dot", a.Domains)
	}
	if a.Directory != DefaultACMEDirectory || a.StorageDir != DefaultACMEStorageDir || a.Email != "" || a.CAFile != "" {
		t.Errorf("defaults %+v", a)
	}
	if !slices.Equal(a.Challenges, []string{"http-01", "tls-alpn-01"}) {
		t.Errorf("challenges %q", a.Challenges)
	}
	if len(cfg.Listeners[1].TLS.Certificates) != 0 {
		t.Errorf("certificates %v, want none", cfg.Listeners[1].TLS.Certificates)
	}
}

func TestACMEErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ acme, want string }{
		{`{}`, "tls.acme.domains: required"},
		{`{"domains": []}`, "tls.acme.domains: must list at least one"},
		{`{"domains": "example.com"}`, "tls.acme.domains: must be a list of strings"},
		{`{"domains": ["*.example.com"]}`, "tls.acme.domains[0]: wildcard names need the dns-01 challenge"},
		{`{"domains": ["localhost"]}`, "tls.acme.domains[0]: not a fully qualified DNS name"},
		{`{"domains": ["a_b.example.com"]}`, "tls.acme.domains[0]: not a valid DNS name"},
		{`{"domains": ["a.example.com"], "email": "ops"}`, "tls.acme.email"},
		{`{"domains": ["a.example.com"], "directory": "http://ca.test/dir"}`, "tls.acme.directory"},
		{`{"domains": ["a.example.com"], "storage_dir": ""}`, "tls.acme.storage_dir: must not be empty"},
		{`{"domains": ["a.example.com"], "challenges": ["dns-01"]}`, "tls.acme.challenges[0]"},
		{`{"domains": ["a.example.com"], "challenges": []}`, "tls.acme.challenges: must list at least one"},
		{`{"domains": ["a.example.com"], "challenges": ["tls-alpn-01", "tls-alpn-01"]}`, "tls.acme.challenges[1]: \"tls-alpn-01\" is listed twice"},
		{`{"domains": ["a.example.com"], "renew": true}`, "tls.acme.renew: unknown key"},
		{`{"domains": ["a.example.com", "A.example.com."]}`, "listeners[0].tls.acme.domains[1]: \"a.example.com\" is listed twice"},
		// The flat form has one (TLS) listener, so http-01 has nowhere to be answered.
		{`{"domains": ["a.example.com"], "challenges": ["http-01"]}`, "listeners[0].tls.acme.challenges: http-01 is answered on plain-HTTP listeners"},
	} {
		_, err := Parse([]byte(`{"backends": ["http://a"], "tls": {"acme": `+tc.acme+`}}`), "json", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.acme, err, tc.want)
		}
	}
}

// With no plain listener but both challenges offered, http-01 is dropped
// with a warning, not an error.
func TestACMEWithoutPlainListenerWarns(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(`{"backends": ["http://a"], "tls": {"acme": {"domains": ["a.example.com"]}}}`), "json", nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, w := range cfg.Warnings {
		found = found || strings.Contains(w.String(), "http-01 is not offered")
	}
	if !found {
		t.Errorf("warnings %v, want one about http-01", cfg.Warnings)
	}
}

func TestACMERelativePaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "fulcrum.yaml")
	os.WriteFile(path, []byte("backends: [http://a]\ntls:\n  acme: {domains: [a.example.com], ca_file: ca.pem, challenges: [tls-alpn-01]}\n"), 0o600)
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Listeners[0].TLS.ACME
	if a.CAFile != filepath.Join(dir, "ca.pem") || a.StorageDir != filepath.Join(dir, DefaultACMEStorageDir) {
		t.Errorf("ca_file %q storage_dir %q, want both under %s", a.CAFile, a.StorageDir, dir)
	}
}

// One name on two listeners: fine when they share storage_dir (one order,
// one certificate), refused when they do not (two orders racing for the
// same challenges).
func TestACMESameNameTwoListeners(t *testing.T) {
	t.Parallel()
	doc := func(s1, s2 string) string {
		return `{"pools": {"p": {"backends": ["http://a"]}}, "listeners": [
			{"name": "web", "listen_addr": "127.0.0.1:80", "routes": [{"pool": "p"}]},
			{"name": "a", "listen_addr": "127.0.0.1:443", "routes": [{"pool": "p"}], "tls": {"acme": {"domains": ["x.example.com"], "storage_dir": "` + s1 + `"}}},
			{"name": "b", "listen_addr": "127.0.0.1:8443", "routes": [{"pool": "p"}], "tls": {"acme": {"domains": ["y.example.com", "x.example.com"], "storage_dir": "` + s2 + `"}}}]}`
	}
	if _, err := Parse([]byte(doc("/var/lib/f", "/var/lib/f/")), "json", nil); err != nil {
		t.Errorf("same storage_dir: %v", err)
	}
	_, err := Parse([]byte(doc("/var/lib/f", "/var/lib/g")), "json", nil)
	if want := `listeners[2].tls.acme.domains[1]: "x.example.com" is also obtained by listeners[1] (a) with another storage_dir`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("different storage_dir: %v, want %q", err, want)
	}
}
