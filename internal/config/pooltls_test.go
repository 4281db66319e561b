package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const poolTLSListeners = `"listeners": [{"name": "l", "listen_addr": ":1", "routes": [{"pool": "p"}]}]`

func TestPoolTLSKeys(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, `{"pools": {"p": {"backends": ["https://a", "http://b"], "tls": {"ca_file": "/ca.pem",
		"server_name": "api.internal", "cert_file": "/c.pem", "key_file": "/c.key"}}}, `+poolTLSListeners+`}`, "json", nil)
	want := &PoolTLS{CAFile: "/ca.pem", ServerName: "api.internal", CertFile: "/c.pem", KeyFile: "/c.key"}
	if got := cfg.Pools[0].TLS; !reflect.DeepEqual(got, want) {
		t.Errorf("pool TLS = %+v, want %+v", got, want)
	}
	if b := cfg.Pools[0].Backends[0]; b.Scheme != "https" || b.Host != "a:443" {
		t.Errorf("https backend parsed as %+v", b)
	}
	yaml := mustParse(t, "pools:\n  p:\n    backends: [\"https://a\"]\n    tls: {insecure_skip_verify: true}\nlisteners: [{name: l, listen_addr: \":1\", routes: [{pool: p}]}]\n", "yaml", nil)
	if got := yaml.Pools[0].TLS; got == nil || !got.InsecureSkipVerify {
		t.Errorf("YAML pool TLS = %+v", got)
	}
	// No block: nil (system roots), also for https backends.
	if got := mustParse(t, `{"backends": ["https://a"]}`, "json", nil).Pools[0].TLS; got != nil {
		t.Errorf("no block: %+v, want nil", got)
	}
	// The flat form's pool block is backend_tls (tls is the listener's).
	flat := mustParse(t, `{"backends": ["https://a"], "backend_tls": {"server_name": "x.test"},
		"tls_cert_file": "/l.pem", "tls_key_file": "/l.key"}`, "json", nil)
	if flat.Pools[0].TLS == nil || flat.Pools[0].TLS.ServerName != "x.test" || flat.Listeners[0].TLS == nil {
		t.Errorf("flat: pool TLS %+v, listener TLS %+v", flat.Pools[0].TLS, flat.Listeners[0].TLS)
	}
}

func TestPoolTLSErrors(t *testing.T) {
	t.Parallel()
	full := func(pool string) string {
		return `{"pools": {"p": {"backends": ["https://a"], ` + pool + `}}, ` + poolTLSListeners + `}`
	}
	for _, tc := range []struct{ doc, want string }{
		{full(`"tls": {"ca_file": 5}`), "pools.p.tls.ca_file: must be a string"},
		{full(`"tls": {"ca_file": ""}`), "pools.p.tls.ca_file: must not be empty"},
		{full(`"tls": {"insecure_skip_verify": "yes"}`), "pools.p.tls.insecure_skip_verify: must be true or false"},
		{full(`"tls": {"cert_file": "/c.pem"}`), "pools.p.tls.key_file: required with cert_file"},
		{full(`"tls": {"key_file": "/c.key"}`), "pools.p.tls.cert_file: required with key_file"},
		{full(`"tls": {"server_name": "a b"}`), "pools.p.tls.server_name: must be a host name"},
		{full(`"tls": {"server_name": "a:443"}`), "pools.p.tls.server_name: must be a host name"},
		{full(`"tls": {"ca_file": "/ca", "insecure_skip_verify": true}`), "pools.p.tls.ca_file: has no effect with insecure_skip_verify"},
		{full(`"tls": {"ca_fille": "/ca"}`), `pools.p.tls.ca_fille: unknown key (did you mean "ca_file"?)`},
		{full(`"tls": "on"`), "pools.p.tls: must be an object"},
		{`{"pools": {"p": {"backends": ["http://a"], "tls": {}}}, ` + poolTLSListeners + `}`, "pools.p.tls: has no effect: no backend of this pool is https://"},
		{`{"backends": ["http://a"], "backend_tls": {"ca_file": "/ca"}}`, "backend_tls: has no effect: no backend of this pool is https://"},
		{`{"backends": ["https://a"], "backend_tls": {"cert_file": "/c"}}`, "backend_tls.key_file: required with cert_file"},
		{`{"backend_tls": {}, "pools": {"p": {"backends": ["https://a"]}}, ` + poolTLSListeners + `}`, "backend_tls: unknown key"},
	} {
		_, err := Parse([]byte(tc.doc), "json", nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\nerror %v,\nwant one containing %q", tc.doc, err, tc.want)
		}
	}
	// YAML problems carry their line.
	_, err := Parse([]byte("pools:\n  p:\n    backends: [\"https://a\"]\n    tls:\n      cert_file: 7\nlisteners: [{name: l, listen_addr: \":1\", routes: [{pool: p}]}]\n"), "yaml", nil)
	if err == nil || !strings.Contains(err.Error(), "line 5: pools.p.tls.cert_file: must be a string") {
		t.Errorf("YAML: %v", err)
	}
}

// Relative pool TLS paths are relative to the config file's directory.
func TestPoolTLSRelativePaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "fulcrum.json")
	doc := `{"pools": {"p": {"backends": ["https://a"], "tls": {"ca_file": "certs/ca.pem", "cert_file": "/abs/c.pem", "key_file": "c.key"}}}, ` + poolTLSListeners + `}`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := PoolTLS{CAFile: filepath.Join(dir, "certs/ca.pem"), CertFile: "/abs/c.pem", KeyFile: filepath.Join(dir, "c.key")}
	if got := *cfg.Pools[0].TLS; got != want {
		t.Errorf("paths %+v, want %+v", got, want)
	}
}
