package config

import (
	"errors"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Fuzz targets. Seed corpora live in testdata/fuzz/<FuzzName>/ (run by every
// plain "go test") in addition to the f.Add seeds below. To fuzz:
//
//	go test -run='^$' -fuzz=FuzzParseJSON -fuzztime=60s ./internal/config/

const fullJSON = `{
 "listen_addr": "127.0.0.1:8080", "strategy": "consistent_hash", "hash_key": "cookie:sid",
 "backends": ["http://a:1", {"url": "https://[::1]:8443/", "weight": 5}],
 "health_check": {"type": "http", "path": "/h", "interval": "2s", "timeout": "1s",
   "expected_status": "200,204-206", "healthy_threshold": 1, "unhealthy_threshold": 2,
   "host": "h.example", "headers": {"X-A": "b"}},
 "passive": {"max_fails": 4, "fail_window": "5s", "eject_for": "1s", "max_eject_for": "1m", "fail_on_5xx": false},
 "panic_threshold": 10, "retries": 1, "retry_buffer": "1KiB", "connect_timeout": "1s",
 "response_header_timeout": "5s", "idle_timeout": "5s", "max_connections": 10,
 "queue_timeout": "1s", "slow_start": "10s",
 "sticky": {"type": "cookie", "cookie_name": "S", "ttl": "1h", "secure": "auto", "http_only": true, "same_site": "none"},
 "rate_limit": {"requests_per_second": 3.5, "burst": 7, "key": "header:X-Key"},
 "trusted_proxies": ["10.0.0.0/8", "::1"],
 "read_header_timeout": "1s", "read_timeout": "0s", "write_timeout": "1s",
 "max_header_bytes": 2048, "max_body_bytes": "1MB", "max_conns": 5, "max_conns_per_ip": 1,
 "admin_addr": "", "admin_token": "t", "shutdown_timeout": "1s",
 "log_level": "error", "log_format": "json", "access_log": true}`

func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(seedJSON))
	f.Add([]byte(fullJSON))
	f.Add([]byte(`{"backends": ["http://a"], "tracing": {"otlp_endpoint": "http://127.0.0.1:4318/", "sample_ratio": 0.25, "service_name": "x"}}`))
	f.Add([]byte(`{"backends": ["http://a"], "sticky": {"type": "app_cookie", "cookie_name": "J"}}`))
	f.Add([]byte(`{"backends": ["http://a"], "tls": {"acme": {"domains": ["a.example.com", "*.x.com", ""], "email": "o@x", "challenges": ["tls-alpn-01", "dns-01"], "storage_dir": "d"}}}`))
	f.Add([]byte(`{"backends": [], "a": {"b": [1, 2.5e300, -0, null, true]}, "a": "dup"}`))
	f.Add([]byte("{\"backends\": [\"http://a\"]} trailing"))
	for _, pc := range problemCases() {
		if data, format := pc.document(); format == "json" {
			f.Add([]byte(data))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "json", nil)
		checkResult(t, cfg, err)
	})
}

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte(seedYAML))
	f.Add([]byte(seedJSON))
	f.Add([]byte(fullJSON))
	f.Add([]byte(`{"backends": ["http://a"], "tracing": {"otlp_endpoint": "http://127.0.0.1:4318/", "sample_ratio": 0.25, "service_name": "x"}}`))
	f.Add([]byte("backends:\n  - &b {url: http://a, weight: 2}\n  - {<<: *b, url: http://b}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte(yamlBomb()))
	f.Add([]byte("backends: [http://a]\nretries: 0x3\nwrite_timeout: 0\nrate_limit: {requests_per_second: .nan}\n"))
	f.Add([]byte("---\n---\n"))
	f.Add([]byte("? [a]\n: 1\n<<: [1]\n!!binary x: !custom y\n"))
	for _, pc := range problemCases() {
		if data, format := pc.document(); format == "yaml" {
			f.Add([]byte(data))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "yaml", nil)
		checkResult(t, cfg, err)
	})
}

// checkResult asserts the loader's contract: exactly one of cfg and err is
// set, a *ValidationError has at least one problem, and every Config that is
// returned satisfies the invariants the rest of fulcrum relies on.
func checkResult(t *testing.T, cfg *Config, err error) {
	t.Helper()
	if (cfg == nil) == (err == nil) {
		t.Fatalf("want exactly one of cfg and err; cfg=%v err=%v", cfg, err)
	}
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) && len(ve.Problems) == 0 {
			t.Fatal("ValidationError without problems")
		}
		_ = err.Error()
		return
	}
	checkInvariants(t, cfg)
}

func checkInvariants(t *testing.T, cfg *Config) {
	t.Helper()
	if len(cfg.Listeners) != 1 {
		t.Fatalf("%d services", len(cfg.Listeners))
	}
	s := cfg.Listeners[0]
	p := cfg.Pools[0]
	if len(p.Backends) == 0 {
		t.Fatal("no backends")
	}
	seen := map[string]bool{}
	for _, b := range p.Backends {
		if b.Weight < 1 || b.Weight > maxBackendWeight {
			t.Fatalf("weight %d", b.Weight)
		}
		if b.Scheme != "http" && b.Scheme != "https" || b.Host == "" || b.URL == "" {
			t.Fatalf("backend %+v", b)
		}
		if seen[b.Scheme+b.Host] {
			t.Fatalf("duplicate backend %+v", b)
		}
		seen[b.Scheme+b.Host] = true
	}
	if !slices.Contains(Strategies, p.Strategy) {
		t.Fatalf("strategy %q", p.Strategy)
	}
	if p.Strategy == "consistent_hash" && p.HashKey.Kind == KindNone {
		t.Fatal("consistent_hash without a hash key")
	}
	hc := p.HealthCheck
	if hc.Interval <= 0 || hc.Timeout <= 0 || hc.Timeout > hc.Interval ||
		hc.HealthyThreshold < 1 || hc.UnhealthyThreshold < 1 || len(hc.ExpectedStatus) == 0 ||
		(hc.Type != "http" && hc.Type != "tcp") || !strings.HasPrefix(hc.Path, "/") {
		t.Fatalf("health check %+v", hc)
	}
	for _, r := range hc.ExpectedStatus {
		if r.Lo < 100 || r.Hi > 599 || r.Lo > r.Hi {
			t.Fatalf("status range %+v", r)
		}
	}
	for k := range hc.Headers {
		if textproto.CanonicalMIMEHeaderKey(k) != k {
			t.Fatalf("header %q not canonical", k)
		}
	}
	if p.Passive.MaxFails < 0 || p.Passive.FailWindow <= 0 || p.Passive.EjectFor <= 0 || p.Passive.MaxEjectFor < p.Passive.EjectFor {
		t.Fatalf("passive %+v", p.Passive)
	}
	if p.PanicThreshold < 0 || p.PanicThreshold > 100 || p.Retries < 0 || p.Retries > maxRetries ||
		p.RetryBuffer < 0 || p.ConnectTimeout <= 0 || p.ResponseHeaderTimeout <= 0 ||
		p.MaxConnections < 0 || p.QueueTimeout < 0 || p.SlowStart < 0 {
		t.Fatalf("pool %+v", p)
	}
	if st := p.Sticky; st != nil {
		switch st.Type {
		case "cookie", "app_cookie":
			if !isToken(st.CookieName) || st.TTL < 0 {
				t.Fatalf("sticky %+v", st)
			}
		case "source_ip":
		default:
			t.Fatalf("sticky %+v", st)
		}
	}
	l := s.Limits
	if l.ReadHeaderTimeout <= 0 || l.ReadTimeout < 0 || l.WriteTimeout < 0 || l.IdleTimeout <= 0 ||
		l.MaxHeaderBytes < 1024 || l.MaxBodyBytes < 0 || l.MaxConns < 0 || l.MaxConnsPerIP < 0 {
		t.Fatalf("limits %+v", l)
	}
	if rl := s.RateLimit; rl != nil {
		if !(rl.RequestsPerSecond > 0) || rl.Burst < 1 || (rl.Key.Kind != KindClientIP && rl.Key.Kind != KindHeader) {
			t.Fatalf("rate limit %+v", rl)
		}
	}
	for _, pfx := range s.TrustedProxies {
		if !pfx.IsValid() || pfx != pfx.Masked() {
			t.Fatalf("prefix %v", pfx)
		}
	}
	if _, err := checkListenAddr(s.Listen); err != nil {
		t.Fatalf("listen %q: %v", s.Listen, err)
	}
	if cfg.AdminAddr != "" {
		host, err := checkListenAddr(cfg.AdminAddr)
		if err != nil || (!isLoopback(host) && cfg.AdminToken == "") {
			t.Fatalf("admin %q token %q: %v", cfg.AdminAddr, cfg.AdminToken, err)
		}
	}
	if cfg.ShutdownTimeout < 0 || (cfg.LogFormat != "text" && cfg.LogFormat != "json") {
		t.Fatalf("config %+v", cfg)
	}
}

func FuzzParseHashKey(f *testing.F) {
	for _, s := range []string{
		"header:X-User", "header:x-user", "cookie:sid", "query:id", "path", "client_ip",
		"", ":", "header:", "header:a b", "path:x", "Header:X", "query:\x00", "cookie:é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseHashKey(s)
		if err != nil {
			if k != (HashKey{}) {
				t.Fatalf("error with a non-zero key: %+v", k)
			}
			return
		}
		var spec string
		switch k.Kind {
		case KindHeader:
			if !isToken(k.Name) || textproto.CanonicalMIMEHeaderKey(k.Name) != k.Name {
				t.Fatalf("header name %q", k.Name)
			}
			spec = "header:" + k.Name
		case KindCookie:
			if !isToken(k.Name) {
				t.Fatalf("cookie name %q", k.Name)
			}
			spec = "cookie:" + k.Name
		case KindQuery:
			if k.Name == "" || hasCtl(k.Name) {
				t.Fatalf("query name %q", k.Name)
			}
			spec = "query:" + k.Name
		case KindPath:
			spec = "path"
		case KindClientIP:
			spec = "client_ip"
		default:
			t.Fatalf("kind %d", k.Kind)
		}
		// The canonical spelling parses to the same key.
		if k2, err := ParseHashKey(spec); err != nil || k2 != k {
			t.Fatalf("round trip %q -> %+v -> %q -> %+v, %v", s, k, spec, k2, err)
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{
		"0", "512", "64KiB", "1MiB", "10MB", "1 gb", "8388607TiB", "8388608TiB",
		"9223372036854775807", "9223372036854775808", "-1", "", "K", "1.5MiB", " 7 b ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("error with n=%d", n)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d", s, n)
		}
		// A plain number of bytes means exactly that.
		if trimmed := strings.TrimSpace(s); allDigits(trimmed) {
			if want, err := strconv.ParseInt(trimmed, 10, 64); err != nil || want != n {
				t.Fatalf("ParseSize(%q) = %d, want %d (%v)", s, n, want, err)
			}
		}
		// The integer and the string form agree.
		if m, err := ParseSize(n); err != nil || m != n {
			t.Fatalf("ParseSize(%d) = %d, %v", n, m, err)
		}
	})
}
