package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestTLSKeys(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `{"backends": ["http://a"], "tls_cert_file": "/c.pem", "tls_key_file": "/c.key"}`, "json", nil)
	want := &TLS{Certificates: []CertFiles{{CertFile: "/c.pem", KeyFile: "/c.key"}}, MinVersion: "1.2"}
	if !reflect.DeepEqual(cfg.Listeners[0].TLS, want) {
		t.Errorf("flat TLS = %+v, want %+v", cfg.Listeners[0].TLS, want)
	}
	cfg = mustParse(t, `{"pools": {"p": {"backends": ["http://a"]}}, "listeners": [{"name": "s", "listen_addr": ":1", "routes": [{"pool": "p"}],
		"tls": {"certificates": [{"cert_file": "/a.pem", "key_file": "/a.key"}], "min_version": "1.3", "strict_sni": true,
		"client_auth": {"ca_file": "/ca.pem", "mode": "verify_if_given"}}}, {"name": "plain", "listen_addr": ":2", "routes": [{"pool": "p"}]}]}`, "json", nil)
	want = &TLS{Certificates: []CertFiles{{CertFile: "/a.pem", KeyFile: "/a.key"}}, MinVersion: "1.3", StrictSNI: true,
		ClientAuth: &ClientAuth{CAFile: "/ca.pem", Mode: "verify_if_given"}}
	if !reflect.DeepEqual(cfg.Listeners[0].TLS, want) || cfg.Listeners[1].TLS != nil {
		t.Errorf("full TLS = %+v and %+v, want %+v and nil", cfg.Listeners[0].TLS, cfg.Listeners[1].TLS, want)
	}
	if ca := mustParse(t, `{"backends": ["http://a"], "tls": {"certificates": [{"cert_file": "/a", "key_file": "/b"}], "client_auth": {"ca_file": "/ca"}}}`, "json", nil).Listeners[0].TLS.ClientAuth; ca.Mode != "require" {
		t.Errorf("client_auth.mode default %q, want require", ca.Mode)
	}
}

func TestTLSErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ doc, want string }{
		{`"tls": {}`, "tls.certificates: required"},
		{`"tls": {"certificates": [{"cert_file": "/a"}]}`, "tls.certificates[0].key_file: required"},
		{`"tls": {"certificates": [{"cert_file": "/a", "key_file": "/b"}], "min_version": "1.1"}`, "tls.min_version"},
		{`"tls": {"certificates": [{"cert_file": "/a", "key_file": "/b"}], "strict": true}`, "tls.strict: unknown key"},
		{`"tls": {"certificates": [{"cert_file": "/a", "key_file": "/b"}], "client_auth": {"ca_file": "/c", "mode": "optional"}}`, "tls.client_auth.mode"},
		{`"tls_cert_file": "/a"`, "tls_key_file: required"},
		{`"tls_key_file": "/a", "tls_cert_file": ""`, "tls_cert_file: must not be empty"},
	} {
		_, err := Parse([]byte(`{"backends": ["http://a"], `+tc.doc+`}`), "json", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.doc, err, tc.want)
		}
	}
}

// Relative certificate paths are relative to the config file's directory.
func TestTLSRelativePaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "fulcrum.json")
	os.WriteFile(path, []byte(`{"backends": ["http://a"], "tls_cert_file": "certs/c.pem", "tls_key_file": "/abs/c.key"}`), 0o600)
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Listeners[0].TLS.Certificates[0]
	if got.CertFile != filepath.Join(dir, "certs/c.pem") || got.KeyFile != "/abs/c.key" {
		t.Errorf("paths %+v", got)
	}
}
