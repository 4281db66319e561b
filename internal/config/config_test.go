package config

import (
	"errors"
	"fulcrum/internal/route"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// seedJSON is the original design's flat file; it must load unchanged.
const seedJSON = `{"listen_addr": ":8080", "health_check_interval": "30s", "max_fail_count": 3,
 "strategy": "weighted_round_robin",
 "backends": [{"url": "http://backend1:8081", "weight": 3}, {"url": "http://backend2:8082", "weight": 2}]}`

const seedYAML = `# The seed configuration, in YAML.
listen_addr: ":8080"
health_check_interval: 30s
max_fail_count: 3
strategy: weighted_round_robin
backends:
  - url: http://backend1:8081
    weight: 3
  - url: http://backend2:8082
    weight: 2
`

// defaultConfig is the Config every omitted key produces, for the given
// backends.
func defaultConfig(backends ...Backend) *Config {
	return &Config{
		AdminAddr:       "127.0.0.1:9090",
		ShutdownTimeout: 30 * time.Second,
		LogLevel:        slog.LevelInfo,
		LogFormat:       "text",
		AccessLogFormat: "text",
		Flat:            true,
		Listeners: []Listener{{
			Name:      "default",
			Listen:    ":8080",
			Routes:    []route.Spec{{Pool: "default"}},
			RequestID: true,
			Limits: Limits{
				ReadHeaderTimeout: 10 * time.Second,
				ReadTimeout:       60 * time.Second,
				WriteTimeout:      60 * time.Second,
				IdleTimeout:       60 * time.Second,
				MaxHeaderBytes:    65536,
				MaxConns:          50000,
			},
		}},
		Pools: []Pool{{
			Name:     "default",
			Strategy: "round_robin",
			Backends: backends,
			HealthCheck: HealthCheck{
				Type:               "tcp",
				Path:               "/",
				Interval:           30 * time.Second,
				Timeout:            2 * time.Second,
				ExpectedStatus:     []StatusRange{{200, 399}},
				HealthyThreshold:   1,
				UnhealthyThreshold: 3,
			},
			Passive: Passive{
				MaxFails:    3,
				FailWindow:  10 * time.Second,
				EjectFor:    30 * time.Second,
				MaxEjectFor: 5 * time.Minute,
				Consider5xx: true,
			},
			PanicThreshold:        50,
			Retries:               2,
			RetryBuffer:           65536,
			ConnectTimeout:        5 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleTimeout:           60 * time.Second,
		}},
	}
}

func seedExpected() *Config {
	want := defaultConfig(
		Backend{URL: "http://backend1:8081", Scheme: "http", Host: "backend1:8081", Weight: 3},
		Backend{URL: "http://backend2:8082", Scheme: "http", Host: "backend2:8082", Weight: 2},
	)
	want.Pools[0].Strategy = "weighted_round_robin"
	return want
}

func mustParse(t *testing.T, data, format string, ov *Overrides) *Config {
	t.Helper()
	cfg, err := Parse([]byte(data), format, ov)
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return cfg
}

func assertConfig(t *testing.T, got, want *Config) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config mismatch\n got: %+v\nwant: %+v", got, want)
	}
}

func TestSeedJSON(t *testing.T) {
	t.Parallel()
	assertConfig(t, mustParse(t, seedJSON, "json", nil), seedExpected())
}

func TestSeedYAML(t *testing.T) {
	t.Parallel()
	assertConfig(t, mustParse(t, seedYAML, "yaml", nil), seedExpected())
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	b := Backend{URL: "http://a", Scheme: "http", Host: "a:80", Weight: 1}
	for name, doc := range map[string]struct{ data, format string }{
		"json object":     {`{"backends": [{"url": "http://a"}]}`, "json"},
		"json shorthand":  {`{"backends": ["http://a"]}`, "json"},
		"yaml shorthand":  {"backends: [http://a]", "yaml"},
		"yaml with bom":   {"\xef\xbb\xbfbackends: [http://a]", "yaml"},
		"json with bom":   {"\xef\xbb\xbf{\"backends\": [\"http://a\"]}", "json"},
		"json whitespace": {"\n\t {\"backends\": [\"http://a\"]} \n\n", "json"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assertConfig(t, mustParse(t, doc.data, doc.format, nil), defaultConfig(b))
		})
	}
}

// TestAllKeys sets every key to a non-default value and checks where each
// one lands.
func TestAllKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "token"), "  s3cret-token\n")
	cfgPath := filepath.Join(dir, "fulcrum.yaml")
	writeFile(t, cfgPath, `
listen_addr: "127.0.0.1:80"
backends:
  - url: https://Backend1.example
    weight: 1000
  - http://[::1]:9000/
  - {url: "http://10.0.0.1:080"}
strategy: consistent_hash
hash_key: header:x-user-id
max_fail_count: 7
health_check:
  type: http
  path: /status?full=1
  interval: 5s
  timeout: 1500ms
  expected_status: "200,204, 300-302"
  healthy_threshold: 4
  unhealthy_threshold: 6
  host: app.internal:8443
  headers:
    x-probe: "yes"
    User-Agent: fulcrum-probe
passive:
  fail_window: 20s
  eject_for: 10m
  fail_on_5xx: false
panic_threshold: 0
retries: 10
retry_buffer: 1MiB
connect_timeout: 1s
response_header_timeout: 2m
idle_timeout: 90s
max_connections: 100
queue_timeout: 250ms
slow_start: 1m
sticky:
  type: cookie
  cookie_name: srv
  ttl: 24h
  secure: true
  http_only: false
  same_site: strict
rate_limit:
  requests_per_second: 2.5
trusted_proxies: ["10.1.2.3/8", "192.168.0.1", "::ffff:172.16.0.0/108", "fd00::/8"]
read_header_timeout: 5s
read_timeout: 0s
write_timeout: 0
max_header_bytes: 1KiB
max_body_bytes: 10MB
max_conns: 0
max_conns_per_ip: 20
admin_addr: "0.0.0.0:9999"
admin_token_file: token
shutdown_timeout: 0s
log_level: debug
log_format: json
access_log: true
access_log_format: combined
request_id: false
`)
	cfg, err := Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		AdminAddr:       "0.0.0.0:9999",
		AdminToken:      "s3cret-token",
		ShutdownTimeout: 0,
		LogLevel:        slog.LevelDebug,
		LogFormat:       "json",
		AccessLog:       true,
		AccessLogFormat: "combined",
		Flat:            true,
		Listeners: []Listener{{
			Name:   "default",
			Listen: "127.0.0.1:80",
			Routes: []route.Spec{{Pool: "default"}},
			TrustedProxies: []netip.Prefix{
				netip.MustParsePrefix("10.0.0.0/8"),
				netip.MustParsePrefix("192.168.0.1/32"),
				netip.MustParsePrefix("172.16.0.0/12"),
				netip.MustParsePrefix("fd00::/8"),
			},
			Limits: Limits{
				ReadHeaderTimeout: 5 * time.Second,
				IdleTimeout:       90 * time.Second,
				MaxHeaderBytes:    1024,
				MaxBodyBytes:      10_000_000,
				MaxConnsPerIP:     20,
			},
			RateLimit: &RateLimit{RequestsPerSecond: 2.5, Burst: 3, Key: HashKey{Kind: KindClientIP}},
		}},
		Pools: []Pool{{
			Name:     "default",
			Strategy: "consistent_hash",
			HashKey:  HashKey{Kind: KindHeader, Name: "X-User-Id"},
			Backends: []Backend{
				{URL: "https://Backend1.example", Scheme: "https", Host: "backend1.example:443", Weight: 1000},
				{URL: "http://[::1]:9000/", Scheme: "http", Host: "[::1]:9000", Weight: 1},
				{URL: "http://10.0.0.1:080", Scheme: "http", Host: "10.0.0.1:80", Weight: 1},
			},
			HealthCheck: HealthCheck{
				Type:               "http",
				Path:               "/status?full=1",
				Interval:           5 * time.Second,
				Timeout:            1500 * time.Millisecond,
				ExpectedStatus:     []StatusRange{{200, 200}, {204, 204}, {300, 302}},
				HealthyThreshold:   4,
				UnhealthyThreshold: 6,
				Host:               "app.internal:8443",
				Headers:            map[string]string{"X-Probe": "yes", "User-Agent": "fulcrum-probe"},
			},
			Passive: Passive{
				MaxFails:    7, // from max_fail_count
				FailWindow:  20 * time.Second,
				EjectFor:    10 * time.Minute,
				MaxEjectFor: 10 * time.Minute, // max(5m, eject_for)
				Consider5xx: false,
			},
			PanicThreshold:        0,
			Retries:               10,
			RetryBuffer:           1 << 20,
			ConnectTimeout:        time.Second,
			ResponseHeaderTimeout: 2 * time.Minute,
			MaxConnections:        100,
			QueueTimeout:          250 * time.Millisecond,
			SlowStart:             time.Minute,
			Sticky: &Sticky{
				Type: "cookie", CookieName: "srv", TTL: 24 * time.Hour,
				Secure: "true", HTTPOnly: false, SameSite: "strict",
			},
			IdleTimeout: 90 * time.Second,
		}},
	}
	assertConfig(t, cfg, want)
}

func TestSectionDefaults(t *testing.T) {
	t.Parallel()
	const base = `"backends": ["http://a"]`
	tests := []struct {
		name  string
		extra string
		check func(t *testing.T, c *Config)
	}{
		{"health_check present uses its own defaults", `"health_check": {}`, func(t *testing.T, c *Config) {
			want := HealthCheck{
				Type: "http", Path: "/health", Interval: 10 * time.Second, Timeout: 2 * time.Second,
				ExpectedStatus: []StatusRange{{200, 399}}, HealthyThreshold: 2, UnhealthyThreshold: 3,
			}
			if got := c.Pools[0].HealthCheck; !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		}},
		{"health_check timeout defaults to at most the interval", `"health_check": {"interval": "500ms"}`, func(t *testing.T, c *Config) {
			if got := c.Pools[0].HealthCheck.Timeout; got != 500*time.Millisecond {
				t.Errorf("timeout = %v, want 500ms", got)
			}
		}},
		{"implicit check timeout is min(2s, interval)", `"health_check_interval": "1s", "max_fail_count": 5`, func(t *testing.T, c *Config) {
			hc := c.Pools[0].HealthCheck
			if hc.Type != "tcp" || hc.Interval != time.Second || hc.Timeout != time.Second || hc.UnhealthyThreshold != 5 {
				t.Errorf("got %+v", hc)
			}
			if c.Pools[0].Passive.MaxFails != 5 {
				t.Errorf("passive.max_fails = %d, want max_fail_count 5", c.Pools[0].Passive.MaxFails)
			}
		}},
		{"passive max_fails 0 disables", `"passive": {"max_fails": 0}`, func(t *testing.T, c *Config) {
			if got := c.Pools[0].Passive.MaxFails; got != 0 {
				t.Errorf("max_fails = %d", got)
			}
		}},
		{"tcp health check", `"health_check": {"type": "tcp", "interval": "3s"}`, func(t *testing.T, c *Config) {
			hc := c.Pools[0].HealthCheck
			if hc.Type != "tcp" || hc.Interval != 3*time.Second || hc.Timeout != 2*time.Second {
				t.Errorf("got %+v", hc)
			}
		}},
		{"grpc health check", `"health_check": {"type": "grpc", "service": "shop.Cart", "host": "api.internal", "headers": {"x-token": "t"}}`, func(t *testing.T, c *Config) {
			hc := c.Pools[0].HealthCheck
			if hc.Type != "grpc" || hc.Service != "shop.Cart" || hc.Host != "api.internal" || hc.Headers["X-Token"] != "t" || hc.Interval != 10*time.Second {
				t.Errorf("got %+v", hc)
			}
		}},
		{"grpc binary metadata", `"health_check": {"type": "grpc", "headers": {"x-sig-bin": "\u00e9\t"}}`, func(t *testing.T, c *Config) {
			if got := c.Pools[0].HealthCheck.Headers["X-Sig-Bin"]; got != "\u00e9\t" {
				t.Errorf("x-sig-bin = %q", got)
			}
		}},
		{"sticky cookie defaults", `"sticky": {"type": "cookie"}`, func(t *testing.T, c *Config) {
			want := &Sticky{Type: "cookie", CookieName: "FULCRUM_BACKEND", Secure: "auto", HTTPOnly: true, SameSite: "lax"}
			if got := c.Pools[0].Sticky; !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		}},
		{"sticky secure as JSON boolean", `"sticky": {"type": "cookie", "secure": false}`, func(t *testing.T, c *Config) {
			if got := c.Pools[0].Sticky.Secure; got != "false" {
				t.Errorf("secure = %q", got)
			}
		}},
		{"sticky app_cookie defaults", `"sticky": {"type": "app_cookie", "cookie_name": "JSESSIONID"}`, func(t *testing.T, c *Config) {
			want := &Sticky{Type: "app_cookie", CookieName: "JSESSIONID", TTL: time.Hour, MaxEntries: 100000}
			if got := c.Pools[0].Sticky; !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		}},
		{"sticky source_ip", `"sticky": {"type": "source_ip"}`, func(t *testing.T, c *Config) {
			if got := c.Pools[0].Sticky; !reflect.DeepEqual(got, &Sticky{Type: "source_ip"}) {
				t.Errorf("got %+v", got)
			}
		}},
		{"rate limit defaults", `"rate_limit": {"requests_per_second": 100}`, func(t *testing.T, c *Config) {
			want := &RateLimit{RequestsPerSecond: 100, Burst: 100, Key: HashKey{Kind: KindClientIP}}
			if got := c.Listeners[0].RateLimit; !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		}},
		{"rate limit by header", `"rate_limit": {"requests_per_second": 0.5, "burst": 10, "key": "header:x-api-key"}`, func(t *testing.T, c *Config) {
			want := &RateLimit{RequestsPerSecond: 0.5, Burst: 10, Key: HashKey{Kind: KindHeader, Name: "X-Api-Key"}}
			if got := c.Listeners[0].RateLimit; !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
		}},
		{"admin disabled", `"admin_addr": ""`, func(t *testing.T, c *Config) {
			if c.AdminAddr != "" {
				t.Errorf("AdminAddr = %q", c.AdminAddr)
			}
		}},
		{"admin on localhost without token", `"admin_addr": "localhost:9090"`, func(t *testing.T, c *Config) {
			if c.AdminAddr != "localhost:9090" || c.AdminToken != "" {
				t.Errorf("got %q %q", c.AdminAddr, c.AdminToken)
			}
		}},
		{"admin on ::1 without token", `"admin_addr": "[::1]:9090"`, func(t *testing.T, c *Config) {}},
		{"admin public with token", `"admin_addr": ":9090", "admin_token": "abc"`, func(t *testing.T, c *Config) {
			if c.AdminToken != "abc" {
				t.Errorf("AdminToken = %q", c.AdminToken)
			}
		}},
		{"integral float accepted as integer", `"retries": 3.0, "max_conns": 1e3`, func(t *testing.T, c *Config) {
			if c.Pools[0].Retries != 3 || c.Listeners[0].Limits.MaxConns != 1000 {
				t.Errorf("retries=%d max_conns=%d", c.Pools[0].Retries, c.Listeners[0].Limits.MaxConns)
			}
		}},
		{"sizes as numbers and strings", `"retry_buffer": 0, "max_body_bytes": "1 GiB", "max_header_bytes": "2kb"`, func(t *testing.T, c *Config) {
			s := c.Listeners[0]
			if c.Pools[0].RetryBuffer != 0 || s.Limits.MaxBodyBytes != 1<<30 || s.Limits.MaxHeaderBytes != 2000 {
				t.Errorf("got %d %d %d", c.Pools[0].RetryBuffer, s.Limits.MaxBodyBytes, s.Limits.MaxHeaderBytes)
			}
		}},
		{"log levels", `"log_level": "warn"`, func(t *testing.T, c *Config) {
			if c.LogLevel != slog.LevelWarn {
				t.Errorf("LogLevel = %v", c.LogLevel)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, mustParse(t, "{"+base+", "+tt.extra+"}", "json", nil))
		})
	}
}

// problemCase is one invalid input and the problem it must produce.
type problemCase struct {
	name   string
	format string // "json" (default) or "yaml"
	doc    string // full document; for JSON without braces, "backends" is added
	path   string
	msg    string // fragment of Problem.Msg
}

func problemCases() []problemCase {
	return []problemCase{
		// Structure and types.
		{name: "root not an object", doc: `[1]`, path: "", msg: "must be an object"},
		{name: "yaml root scalar", format: "yaml", doc: `hello`, path: "", msg: "must be an object"},
		{name: "unknown top-level key", doc: `"listen": ":80"`, path: "listen", msg: `unknown key (did you mean "listen_addr"?)`},
		{name: "unknown nested key", doc: `"health_check": {"intervall": "5s"}`, path: "health_check.intervall", msg: `unknown key (did you mean "interval"?)`},
		{name: "unknown key far from any", doc: `"zzzzzzzzzz": 1`, path: "zzzzzzzzzz", msg: "unknown key"},
		{name: "duplicate JSON key", doc: `"retries": 1, "retries": 2`, path: "retries", msg: "duplicate key"},
		{name: "duplicate YAML key", format: "yaml", doc: "backends: [http://a]\nretries: 1\nretries: 2\n", path: "retries", msg: "duplicate key"},
		{name: "string for int", doc: `"retries": "2"`, path: "retries", msg: `must be an integer, got string "2"`},
		{name: "fraction for int", doc: `"retries": 2.5`, path: "retries", msg: "must be an integer, got 2.5"},
		{name: "huge int", doc: `"retries": 99999999999999999999999`, path: "retries", msg: "must be <= 10, got 99999999999999999999999"},
		{name: "huge negative int", doc: `"max_conns": -99999999999999999999999`, path: "max_conns", msg: "must be >= 0"},
		{name: "yaml huge int", format: "yaml", doc: "backends: [http://a]\nretries: 99999999999999999999\n", path: "retries", msg: "must be <= 10"},
		{name: "yaml bad int tag", format: "yaml", doc: "backends: [http://a]\nretries: !!int abc\n", path: "retries", msg: "invalid or out-of-range integer"},
		{name: "yaml bad float tag", format: "yaml", doc: "backends: [http://a]\nretries: !!float abc\n", path: "retries", msg: "invalid number"},
		{name: "yaml bad bool tag", format: "yaml", doc: "backends: [http://a]\naccess_log: !!bool abc\n", path: "access_log", msg: "invalid boolean"},
		{name: "yaml duplicate key in flow map", format: "yaml", doc: "backends: [{url: http://a, url: http://b}]\n", path: "backends[0].url", msg: "duplicate key (first on line 1)"},
		{name: "json duplicate key line", doc: "{\"backends\": [\"http://a\"],\n\"retries\": 1,\n\"retries\": 2}", path: "retries", msg: "duplicate key (line 3)"},
		{name: "null value", doc: `"strategy": null`, path: "strategy", msg: "must be a string, got null"},
		{name: "bool as string", doc: `"access_log": "yes"`, path: "access_log", msg: `must be true or false, got string "yes"`},
		{name: "object expected", doc: `"health_check": "http"`, path: "health_check", msg: "must be an object"},
		{name: "yaml bad tag", format: "yaml", doc: "backends: [http://a]\nlisten_addr: !!binary Zm9v\n", path: "listen_addr", msg: "unsupported YAML tag"},
		{name: "yaml non-scalar key", format: "yaml", doc: "backends: [http://a]\n? [a]\n: 1\n", path: "", msg: "mapping keys must be plain strings"},
		{name: "yaml merge of a scalar", format: "yaml", doc: "backends: [http://a]\n<<: 5\n", path: "", msg: "merge key"},
		// Backends.
		{name: "backends missing", doc: `{}`, path: "backends", msg: "required"},
		{name: "backends empty", doc: `{"backends": []}`, path: "backends", msg: "at least one backend"},
		{name: "backends not a list", doc: `{"backends": "http://a"}`, path: "backends", msg: "must be a list"},
		{name: "backend wrong type", doc: `{"backends": [true]}`, path: "backends[0]", msg: "must be a URL string or an object"},
		{name: "backend url missing", doc: `{"backends": [{"weight": 2}]}`, path: "backends[0].url", msg: "required"},
		{name: "backend url not string", doc: `{"backends": [{"url": 1}]}`, path: "backends[0].url", msg: "must be a string"},
		{name: "backend unknown key", doc: `{"backends": [{"url": "http://a", "wieght": 2}]}`, path: "backends[0].wieght", msg: `did you mean "weight"`},
		{name: "weight zero", doc: `{"backends": ["http://a", {"url": "http://b", "weight": 0}]}`, path: "backends[1].weight", msg: "must be >= 1, got 0"},
		{name: "weight negative", doc: `{"backends": [{"url": "http://b", "weight": -3}]}`, path: "backends[0].weight", msg: "must be >= 1, got -3"},
		{name: "weight too big", doc: `{"backends": [{"url": "http://b", "weight": 1001}]}`, path: "backends[0].weight", msg: "must be <= 1000, got 1001"},
		{name: "url empty", doc: `{"backends": [""]}`, path: "backends[0]", msg: "must not be empty"},
		{name: "url without scheme", doc: `{"backends": ["backend1:8081"]}`, path: "backends[0]", msg: "not an absolute URL"},
		{name: "unsupported scheme", doc: `{"backends": [{"url": "ftp://a"}]}`, path: "backends[0].url", msg: "unsupported scheme"},
		{name: "url no host", doc: `{"backends": ["http://"]}`, path: "backends[0]", msg: "no host"},
		{name: "url with path", doc: `{"backends": ["http://a/api"]}`, path: "backends[0]", msg: "must not have a path"},
		{name: "url with query", doc: `{"backends": ["http://a/?x=1"]}`, path: "backends[0]", msg: "must not have a query"},
		{name: "url with empty query", doc: `{"backends": ["http://a?"]}`, path: "backends[0]", msg: "must not have a query"},
		{name: "url with fragment", doc: `{"backends": ["http://a#f"]}`, path: "backends[0]", msg: "must not have a fragment"},
		{name: "url with userinfo", doc: `{"backends": ["http://u:p@a"]}`, path: "backends[0]", msg: "user info"},
		{name: "url bad port", doc: `{"backends": ["http://a:0"]}`, path: "backends[0]", msg: "port"},
		{name: "url port too big", doc: `{"backends": ["http://a:70000"]}`, path: "backends[0]", msg: "port"},
		{name: "url empty port", doc: `{"backends": ["http://a:"]}`, path: "backends[0]", msg: "empty port"},
		{name: "url bad host", doc: `{"backends": ["http://a..b"]}`, path: "backends[0]", msg: "invalid host"},
		{name: "url with spaces", doc: `{"backends": [" http://a"]}`, path: "backends[0]", msg: "spaces"},
		{name: "url unparsable", doc: `{"backends": ["http://[::1"]}`, path: "backends[0]", msg: "invalid URL"},
		{name: "duplicate backend", doc: `{"backends": ["http://a:80", "http://b", "http://A/"]}`, path: "backends[2]", msg: "duplicate of backends[0]"},
		{name: "duplicate ipv6 backend", doc: `{"backends": ["http://[::1]:80", "http://[0:0::1]"]}`, path: "backends[1]", msg: "duplicate of backends[0]"},
		// Strategy and hash key.
		{name: "unknown strategy", doc: `"strategy": "fastest"`, path: "strategy", msg: "unknown strategy \"fastest\" (valid: round_robin, weighted_round_robin,"},
		{name: "consistent_hash without key", doc: `"strategy": "consistent_hash"`, path: "hash_key", msg: "required when strategy is \"consistent_hash\""},
		{name: "hash_key client_ip", doc: `"strategy": "consistent_hash", "hash_key": "client_ip"`, path: "hash_key", msg: "ip_hash"},
		{name: "hash_key bad", doc: `"hash_key": "header:bad name"`, path: "hash_key", msg: "not a valid header name"},
		{name: "hash_key bad kind", doc: `"hash_key": "body"`, path: "hash_key", msg: "invalid key"},
		// Durations.
		{name: "duration without unit", doc: `"health_check_interval": "30"`, path: "health_check_interval", msg: `must be a duration like "30s" or "1m30s", got "30"`},
		{name: "duration garbage", doc: `"health_check_interval": "abc"`, path: "health_check_interval", msg: `must be a duration like "30s" or "1m30s"`},
		{name: "duration as number", doc: `"connect_timeout": 5`, path: "connect_timeout", msg: "got number 5"},
		{name: "duration zero", doc: `"health_check_interval": "0s"`, path: "health_check_interval", msg: "must be greater than 0"},
		{name: "duration negative", doc: `"queue_timeout": "-1s"`, path: "queue_timeout", msg: "must not be negative"},
		{name: "read_header_timeout zero", doc: `"read_header_timeout": "0s"`, path: "read_header_timeout", msg: "greater than 0"},
		{name: "max_fail_count zero", doc: `"max_fail_count": 0`, path: "max_fail_count", msg: "must be >= 1, got 0"},
		// Health check.
		{name: "hc interval alongside object", doc: `"health_check_interval": "5s", "health_check": {}`, path: "health_check_interval", msg: "has no effect"},
		{name: "hc bad type", doc: `"health_check": {"type": "udp"}`, path: "health_check.type", msg: `must be one of "http", "tcp", "grpc"; got "udp"`},
		{name: "hc grpc with path", doc: `"health_check": {"type": "grpc", "path": "/x"}`, path: "health_check.path", msg: `only applies to health checks of type "http"`},
		{name: "hc grpc with expected_status", doc: `"health_check": {"type": "grpc", "expected_status": "200"}`, path: "health_check.expected_status", msg: `only applies to health checks of type "http"`},
		{name: "hc service on http", doc: `"health_check": {"service": "shop.Cart"}`, path: "health_check.service", msg: `only applies to health checks of type "grpc"`},
		{name: "hc service control", doc: `"health_check": {"type": "grpc", "service": "a\u0001"}`, path: "health_check.service", msg: "control characters"},
		{name: "hc grpc metadata name", doc: `"health_check": {"type": "grpc", "headers": {"X!Tok": "a"}}`, path: `health_check.headers["X!tok"]`, msg: "not a valid gRPC metadata name"},
		{name: "hc grpc metadata value", doc: `"health_check": {"type": "grpc", "headers": {"X-Tok": "\u00e9"}}`, path: "health_check.headers.X-Tok", msg: "printable ASCII"},
		{name: "hc grpc metadata reserved", doc: `"health_check": {"type": "grpc", "headers": {"grpc-timeout": "1S"}}`, path: "health_check.headers.Grpc-Timeout", msg: "set by gRPC itself"},
		{name: "hc grpc user agent", doc: `"health_check": {"type": "grpc", "headers": {"User-Agent": "x"}}`, path: "health_check.headers.User-Agent", msg: "set by gRPC itself"},
		{name: "hc service type", doc: `"health_check": {"type": "grpc", "service": 1}`, path: "health_check.service", msg: "must be a string"},
		{name: "hc path", doc: `"health_check": {"path": "health"}`, path: "health_check.path", msg: `must start with "/"`},
		{name: "hc timeout > interval", doc: `"health_check": {"interval": "1s", "timeout": "2s"}`, path: "health_check.timeout", msg: "must not exceed health_check.interval"},
		{name: "hc timeout zero", doc: `"health_check": {"timeout": "0s"}`, path: "health_check.timeout", msg: "greater than 0"},
		{name: "hc status range", doc: `"health_check": {"expected_status": "200-600"}`, path: "health_check.expected_status", msg: "out of range"},
		{name: "hc status inverted", doc: `"health_check": {"expected_status": "399-200"}`, path: "health_check.expected_status", msg: "greater than"},
		{name: "hc status garbage", doc: `"health_check": {"expected_status": "2xx"}`, path: "health_check.expected_status", msg: "invalid status code"},
		{name: "hc status wrong type", doc: `"health_check": {"expected_status": [200]}`, path: "health_check.expected_status", msg: "must be a status list"},
		{name: "hc healthy_threshold", doc: `"health_check": {"healthy_threshold": 0}`, path: "health_check.healthy_threshold", msg: "must be >= 1"},
		{name: "hc unhealthy_threshold", doc: `"health_check": {"unhealthy_threshold": -1}`, path: "health_check.unhealthy_threshold", msg: "must be >= 1"},
		{name: "hc host", doc: `"health_check": {"host": "a b"}`, path: "health_check.host", msg: "host name"},
		{name: "hc header name", doc: `"health_check": {"headers": {"Bad Header": "x"}}`, path: `health_check.headers["Bad Header"]`, msg: "not a valid header name"},
		{name: "hc header value", doc: `"health_check": {"headers": {"X-A": "a\r\nb"}}`, path: "health_check.headers.X-A", msg: "CR, LF or NUL"},
		{name: "hc header value type", doc: `"health_check": {"headers": {"X-A": 1}}`, path: "health_check.headers.X-A", msg: "must be a string"},
		{name: "hc header duplicate", doc: `"health_check": {"headers": {"x-a": "1", "X-A": "2"}}`, path: "health_check.headers.X-A", msg: "duplicate header"},
		{name: "hc host header", doc: `"health_check": {"headers": {"host": "x"}}`, path: "health_check.headers.host", msg: "health_check.host"},
		{name: "hc headers not object", doc: `"health_check": {"headers": ["X-A: 1"]}`, path: "health_check.headers", msg: "must be an object"},
		{name: "hc tcp with path", doc: `"health_check": {"type": "tcp", "path": "/x"}`, path: "health_check.path", msg: `only applies to health checks of type "http"`},
		// Passive.
		{name: "passive negative", doc: `"passive": {"max_fails": -1}`, path: "passive.max_fails", msg: "must be >= 0"},
		{name: "passive max_eject_for", doc: `"passive": {"eject_for": "1m", "max_eject_for": "30s"}`, path: "passive.max_eject_for", msg: "must be >= passive.eject_for"},
		{name: "passive bool", doc: `"passive": {"fail_on_5xx": 1}`, path: "passive.fail_on_5xx", msg: "must be true or false"},
		{name: "passive unknown", doc: `"passive": {"max_fail": 1}`, path: "passive.max_fail", msg: `did you mean "max_fails"`},
		// Pool numbers.
		{name: "panic_threshold", doc: `"panic_threshold": 101`, path: "panic_threshold", msg: "must be <= 100, got 101"},
		{name: "retries negative", doc: `"retries": -1`, path: "retries", msg: "must be >= 0, got -1"},
		{name: "retries too many", doc: `"retries": 11`, path: "retries", msg: "must be <= 10"},
		{name: "retry_buffer bad", doc: `"retry_buffer": "64QB"`, path: "retry_buffer", msg: "invalid size"},
		{name: "retry_buffer negative", doc: `"retry_buffer": -1`, path: "retry_buffer", msg: "negative"},
		{name: "max_connections negative", doc: `"max_connections": -5`, path: "max_connections", msg: "must be >= 0"},
		// Sticky.
		{name: "sticky no type", doc: `"sticky": {}`, path: "sticky.type", msg: "required"},
		{name: "sticky bad type", doc: `"sticky": {"type": "ip"}`, path: "sticky.type", msg: "must be one of"},
		{name: "sticky source_ip extra key", doc: `"sticky": {"type": "source_ip", "cookie_name": "x"}`, path: "sticky.cookie_name", msg: "unknown key"},
		{name: "sticky source_ip really unknown", doc: `"sticky": {"type": "source_ip", "foo": 1}`, path: "sticky.foo", msg: "unknown key"},
		{name: "sticky cookie name", doc: `"sticky": {"type": "cookie", "cookie_name": "a;b"}`, path: "sticky.cookie_name", msg: "not a valid cookie name"},
		{name: "sticky secure bad", doc: `"sticky": {"type": "cookie", "secure": "yes"}`, path: "sticky.secure", msg: `must be one of "auto", "true", "false"`},
		{name: "sticky same_site bad", doc: `"sticky": {"type": "cookie", "same_site": "Lax"}`, path: "sticky.same_site", msg: "must be one of"},
		{name: "sticky none insecure", doc: `"sticky": {"type": "cookie", "same_site": "none", "secure": false}`, path: "sticky.same_site", msg: "requires secure"},
		{name: "sticky cookie max_entries", doc: `"sticky": {"type": "cookie", "max_entries": 5}`, path: "sticky.max_entries", msg: "app_cookie"},
		{name: "sticky app_cookie no name", doc: `"sticky": {"type": "app_cookie"}`, path: "sticky.cookie_name", msg: "required"},
		{name: "sticky app_cookie http_only", doc: `"sticky": {"type": "app_cookie", "cookie_name": "s", "http_only": true}`, path: "sticky.http_only", msg: "only applies"},
		{name: "sticky app_cookie max_entries", doc: `"sticky": {"type": "app_cookie", "cookie_name": "s", "max_entries": 0}`, path: "sticky.max_entries", msg: "must be >= 1"},
		{name: "sticky ttl negative", doc: `"sticky": {"type": "cookie", "ttl": "-1h"}`, path: "sticky.ttl", msg: "negative"},
		// Rate limit.
		{name: "rate_limit rps missing", doc: `"rate_limit": {}`, path: "rate_limit.requests_per_second", msg: "required"},
		{name: "rate_limit rps zero", doc: `"rate_limit": {"requests_per_second": 0}`, path: "rate_limit.requests_per_second", msg: "must be a number > 0"},
		{name: "rate_limit rps string", doc: `"rate_limit": {"requests_per_second": "10"}`, path: "rate_limit.requests_per_second", msg: "must be a number"},
		{name: "rate_limit burst", doc: `"rate_limit": {"requests_per_second": 1, "burst": 0}`, path: "rate_limit.burst", msg: "must be >= 1"},
		{name: "rate_limit key", doc: `"rate_limit": {"requests_per_second": 1, "key": "cookie:s"}`, path: "rate_limit.key", msg: `must be "client_ip" or "header:NAME"`},
		// Listener.
		{name: "listen no port", doc: `"listen_addr": "8080"`, path: "listen_addr", msg: "must be host:port"},
		{name: "listen empty", doc: `"listen_addr": ""`, path: "listen_addr", msg: "must not be empty"},
		{name: "listen bad port", doc: `"listen_addr": ":http"`, path: "listen_addr", msg: "port must be a number"},
		{name: "listen port range", doc: `"listen_addr": ":65536"`, path: "listen_addr", msg: "port must be a number from 0 to 65535, got 65536"},
		{name: "listen bad host", doc: `"listen_addr": "a b:80"`, path: "listen_addr", msg: "invalid host"},
		{name: "trusted_proxies bad cidr", doc: `"trusted_proxies": ["10.0.0.0/33"]`, path: "trusted_proxies[0]", msg: "invalid CIDR"},
		{name: "trusted_proxies garbage", doc: `"trusted_proxies": ["10.0.0.1", "nope"]`, path: "trusted_proxies[1]", msg: "invalid CIDR"},
		{name: "trusted_proxies zone", doc: `"trusted_proxies": ["fe80::1%eth0"]`, path: "trusted_proxies[0]", msg: "invalid CIDR"},
		{name: "trusted_proxies not list", doc: `"trusted_proxies": "10.0.0.0/8"`, path: "trusted_proxies", msg: "must be a list"},
		{name: "trusted_proxies item type", doc: `"trusted_proxies": [10]`, path: "trusted_proxies[0]", msg: "must be a string"},
		{name: "max_header_bytes small", doc: `"max_header_bytes": 100`, path: "max_header_bytes", msg: "at least 1024"},
		{name: "max_header_bytes huge", doc: `"max_header_bytes": "4GiB"`, path: "max_header_bytes", msg: "at most"},
		{name: "max_body_bytes fraction", doc: `"max_body_bytes": 1.5`, path: "max_body_bytes", msg: "whole number"},
		{name: "max_conns negative", doc: `"max_conns": -1`, path: "max_conns", msg: "must be >= 0"},
		{name: "max_conns_per_ip negative", doc: `"max_conns_per_ip": -1`, path: "max_conns_per_ip", msg: "must be >= 0"},
		// Admin and process.
		{name: "admin public no token", doc: `"admin_addr": ":9090"`, path: "admin_addr", msg: "admin listener on a non-loopback address requires admin_token or admin_token_file"},
		{name: "admin wildcard no token", doc: `"admin_addr": "0.0.0.0:9090"`, path: "admin_addr", msg: "requires admin_token"},
		{name: "admin bad addr", doc: `"admin_addr": "localhost"`, path: "admin_addr", msg: "must be host:port"},
		{name: "admin same as listen", doc: `"listen_addr": "127.0.0.1:8080", "admin_addr": "127.0.0.1:8080"`, path: "admin_addr", msg: "conflicts with listen_addr"},
		{name: "admin token and file", doc: `"admin_token": "a", "admin_token_file": "/x"`, path: "admin_token_file", msg: "cannot be combined"},
		{name: "admin token file missing", doc: `"admin_token_file": "/nonexistent/fulcrum-token"`, path: "admin_token_file", msg: "cannot read token"},
		{name: "admin token empty", doc: `"admin_token": ""`, path: "admin_token", msg: "must not be empty"},
		{name: "admin token spaces", doc: `"admin_token": "a b"`, path: "admin_token", msg: "spaces"},
		{name: "log_level", doc: `"log_level": "verbose"`, path: "log_level", msg: `must be one of "debug", "info", "warn", "error"; got "verbose"`},
		{name: "log_format", doc: `"log_format": "xml"`, path: "log_format", msg: "must be one of"},
		{name: "shutdown negative", doc: `"shutdown_timeout": "-5s"`, path: "shutdown_timeout", msg: "negative"},
	}
}

func (pc problemCase) document() (data, format string) {
	format = pc.format
	if format == "" {
		format = "json"
	}
	if format == "json" && !strings.HasPrefix(pc.doc, "{") && !strings.HasPrefix(pc.doc, "[") {
		return `{"backends": ["http://a"], ` + pc.doc + `}`, format
	}
	return pc.doc, format
}

func TestProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range problemCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data, format := tc.document()
			cfg, err := Parse([]byte(data), format, nil)
			if cfg != nil {
				t.Errorf("got a Config together with problems: %+v", cfg)
			}
			assertProblem(t, err, tc.path, tc.msg)
		})
	}
}

func assertProblem(t *testing.T, err error, path, fragment string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %T: %v", err, err)
	}
	for _, p := range ve.Problems {
		if p.Path == path && strings.Contains(p.Msg, fragment) {
			return
		}
	}
	t.Errorf("no problem at %q containing %q; got:\n%v", path, fragment, err)
}

func TestMultipleProblems(t *testing.T) {
	t.Parallel()
	doc := `{
  "listen_addr": "nope",
  "strategy": "fastest",
  "backends": [{"url": "http://a", "weight": 3}, {"url": "http://b", "weight": 0}, "http://a", "gopher://c"],
  "health_check": {"intervall": "5s", "timeout": "abc"},
  "max_fail_count": -1,
  "extra": true
}`
	_, err := Parse([]byte(doc), "json", nil)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want *ValidationError, got %v", err)
	}
	want := []Problem{
		{Path: "listen_addr", Msg: `must be host:port like ":8080" or "127.0.0.1:8080", got "nope"`},
		{Path: "backends[1].weight", Msg: "must be >= 1, got 0"},
		{Path: "backends[2]", Msg: "duplicate of backends[0] (both are http://a:80)"},
		{Path: "backends[3]", Msg: `unsupported scheme "gopher" in "gopher://c": want "http" or "https"`},
		{Path: "strategy", Msg: `unknown strategy "fastest" (valid: round_robin, weighted_round_robin, least_connections, least_response_time, ip_hash, random, power_of_two, consistent_hash)`},
		{Path: "max_fail_count", Msg: "must be >= 1, got -1"},
		{Path: "health_check.timeout", Msg: `must be a duration like "30s" or "1m30s", got "abc"`},
		{Path: "health_check.intervall", Msg: `unknown key (did you mean "interval"?)`},
		{Path: "extra", Msg: "unknown key"},
	}
	if !reflect.DeepEqual(ve.Problems, want) {
		t.Errorf("problems:\n%v\nwant:\n%v", err, (&ValidationError{want}).Error())
	}
	// Error() is one line per problem, "config: PATH: MSG".
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("Error() has %d lines, want %d", len(lines), len(want))
	}
	if lines[1] != "config: backends[1].weight: must be >= 1, got 0" {
		t.Errorf("line 2 = %q", lines[1])
	}
}

func TestProblemOrderIsDeterministic(t *testing.T) {
	t.Parallel()
	doc := `{"b1": 1, "a1": 2, "c1": 3, "backends": []}`
	first := ""
	for i := range 20 {
		_, err := Parse([]byte(doc), "json", nil)
		if i == 0 {
			first = err.Error()
			continue
		}
		if err.Error() != first {
			t.Fatalf("run %d differs:\n%v\nvs\n%v", i, err, first)
		}
	}
	if want := "config: backends: must list at least one backend\nconfig: b1: unknown key\nconfig: a1: unknown key\nconfig: c1: unknown key"; first != want {
		t.Errorf("got\n%s\nwant\n%s", first, want)
	}
}

func TestRootProblemFormat(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(`"hello"`), "json", nil)
	if got, want := err.Error(), `config: must be an object (the top level of the configuration), got string "hello"`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSyntaxErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data, format, want string
	}{
		{"json bad token", "{\n  \"backends\": [\"http://a\"],\n  \"retries\": ,\n}", "json", "config: parse json: line 3, column 14: invalid character ','"},
		{"json truncated", "{\"backends\": [", "json", "unexpected end of input"},
		{"json trailing data", `{"backends": ["http://a"]} {}`, "json", "line 1, column 28: unexpected data after the top-level value"},
		{"json trailing garbage", "{\"backends\": [\"http://a\"]}\n\n  x", "json", "line 3, column 3: unexpected data"},
		{"json deep nesting", strings.Repeat("[", 200) + strings.Repeat("]", 200), "json", "nesting deeper than"},
		{"yaml bad", "backends: [\n", "yaml", "config: line 1: did not find expected node content"},
		{"yaml tabs", "backends:\n\t- http://a\n", "yaml", "config: line 2: found character that cannot start any token"},
		{"yaml two documents", "backends: [http://a]\n---\nretries: 1\n", "yaml", "only one document"},
		{"yaml unknown anchor", "backends: *nope\n", "yaml", "unknown anchor"},
		{"yaml alias cycle", "a: &x [*x]\n", "yaml", "refers to itself"},
		{"yaml deep nesting", strings.Repeat("[", 200) + strings.Repeat("]", 200), "yaml", "nesting deeper than"},
		{"yaml alias bomb", yamlBomb(), "yaml", "document too large"},
		{"unknown format", "{}", "toml", `unsupported format "toml"`},
		{"yml bad", "a: [", "yml", "config: line 1: did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Parse([]byte(tt.data), tt.format, nil)
			if err == nil || cfg != nil {
				t.Fatalf("want an error, got cfg=%v err=%v", cfg, err)
			}
			var ve *ValidationError
			if errors.As(err, &ve) {
				t.Fatalf("syntax error reported as *ValidationError: %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// yamlBomb is a "billion laughs" document: ten levels of nine-fold aliases.
func yamlBomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		prev := "*a" + string(rune('0'+i-1))
		name := "a" + string(rune('0'+i))
		b.WriteString(name + ": &" + name + " [" + strings.Repeat(prev+", ", 8) + prev + "]\n")
	}
	return b.String()
}

func TestYAMLFeatures(t *testing.T) {
	t.Parallel()
	doc := `
defaults: &hc
  interval: 5s
  path: /ready
backends: [http://a, http://b]
health_check:
  <<: *hc
  path: /live
`
	// "defaults" is not a key of the schema: anchors must live somewhere
	// valid, so this reports it...
	_, err := Parse([]byte(doc), "yaml", nil)
	assertProblem(t, err, "defaults", "unknown key")

	// ...while a merge from an anchor defined inside a valid key works, and
	// explicit keys win over merged ones.
	doc = `
backends:
  - &b1 {url: "http://a", weight: 2}
  - {<<: *b1, url: "http://b"}
health_check:
  type: http
  path: /live
  expected_status: 204
`
	cfg := mustParse(t, doc, "yaml", nil)
	bs := cfg.Pools[0].Backends
	if len(bs) != 2 || bs[1].Host != "b:80" || bs[1].Weight != 2 {
		t.Errorf("merge: backends = %+v", bs)
	}
	hc := cfg.Pools[0].HealthCheck
	if hc.Path != "/live" || !reflect.DeepEqual(hc.ExpectedStatus, []StatusRange{{204, 204}}) {
		t.Errorf("health check = %+v", hc)
	}

	// Empty documents are an empty configuration file (see TestEmptyFile).
	for _, empty := range []string{"", "# nothing\n", "---\n", "~\n"} {
		_, err := Parse([]byte(empty), "yaml", nil)
		var ve *ValidationError
		if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Msg != "empty configuration file" {
			t.Errorf("empty doc %q: got %v", empty, err)
		}
	}

	// YAML 1.1 booleans such as "yes" are strings in yaml.v3, so they are
	// type errors for boolean keys rather than silently true.
	_, err = Parse([]byte("backends: [http://a]\naccess_log: yes\n"), "yaml", nil)
	assertProblem(t, err, "access_log", "must be true or false")

	// Hex and octal integers, and unquoted durations.
	cfg = mustParse(t, "backends: [http://a]\nretries: 0x3\nmax_conns: 0o17\nconnect_timeout: 1m30s\n", "yaml", nil)
	if cfg.Pools[0].Retries != 3 || cfg.Listeners[0].Limits.MaxConns != 15 || cfg.Pools[0].ConnectTimeout != 90*time.Second {
		t.Errorf("got retries=%d max_conns=%d", cfg.Pools[0].Retries, cfg.Listeners[0].Limits.MaxConns)
	}

	// An unquoted 30 is a number, not a duration.
	_, err = Parse([]byte("backends: [http://a]\nhealth_check_interval: 30\n"), "yaml", nil)
	assertProblem(t, err, "health_check_interval", `must be a duration like "30s" or "1m30s", got number 30`)

	// Non-finite floats are not numbers.
	_, err = Parse([]byte("backends: [http://a]\nrate_limit: {requests_per_second: .inf}\n"), "yaml", nil)
	assertProblem(t, err, "rate_limit.requests_per_second", "must be a number > 0")
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"a.json", "b.JSON"} {
		p := filepath.Join(dir, name)
		writeFile(t, p, seedJSON)
		cfg, err := Load(p, nil)
		if err != nil {
			t.Fatalf("Load(%s): %v", name, err)
		}
		assertConfig(t, cfg, seedExpected())
	}
	for _, name := range []string{"c.yaml", "d.yml"} {
		p := filepath.Join(dir, name)
		writeFile(t, p, seedYAML)
		cfg, err := Load(p, nil)
		if err != nil {
			t.Fatalf("Load(%s): %v", name, err)
		}
		assertConfig(t, cfg, seedExpected())
	}

	// JSON content in a .yaml file works: YAML is a superset of JSON.
	p := filepath.Join(dir, "seed-as.yaml")
	writeFile(t, p, seedJSON)
	if cfg, err := Load(p, nil); err != nil {
		t.Errorf("JSON in .yaml: %v", err)
	} else {
		assertConfig(t, cfg, seedExpected())
	}

	errTests := []struct{ name, content, want string }{
		{"x.toml", "", `unsupported extension ".toml"`},
		{"noext", "", "has no extension"},
		{"bad.json", "{\n\"backends\": [}\n", "bad.json: line 2, column 14: invalid character '}'"},
		{"bad.yaml", "retries: 1\nbackends: [\n", "config: line 2: did not find expected node content (in "},
	}
	for _, tt := range errTests {
		p := filepath.Join(dir, tt.name)
		writeFile(t, p, tt.content)
		_, err := Load(p, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Load(%s) = %v, want error containing %q", tt.name, err, tt.want)
		}
		if err != nil && !strings.Contains(err.Error(), tt.name) {
			t.Errorf("Load(%s) error does not name the file: %v", tt.name, err)
		}
	}

	missing := filepath.Join(dir, "missing.json")
	_, err := Load(missing, nil)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) = %v; want ErrNotExist naming the file", err)
	}

	// Validation errors come back as *ValidationError.
	p = filepath.Join(dir, "invalid.json")
	writeFile(t, p, `{"backends": ["http://a"], "retries": -1}`)
	_, err = Load(p, nil)
	assertProblem(t, err, "retries", "must be >= 0")
}

func TestAdminTokenFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tok"), "\n\ttok-123 \n")
	writeFile(t, filepath.Join(dir, "empty"), " \n")
	writeFile(t, filepath.Join(dir, "big"), strings.Repeat("x", 5000))
	cfgPath := filepath.Join(dir, "c.json")

	load := func(extra string) (*Config, error) {
		writeFile(t, cfgPath, `{"backends": ["http://a"], "admin_addr": ":9090", `+extra+`}`)
		return Load(cfgPath, nil)
	}
	cfg, err := load(`"admin_token_file": "tok"`) // relative to the config file
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminToken != "tok-123" {
		t.Errorf("AdminToken = %q", cfg.AdminToken)
	}
	cfg, err = load(`"admin_token_file": ` + quoteJSON(filepath.Join(dir, "tok")))
	if err != nil || cfg.AdminToken != "tok-123" {
		t.Errorf("absolute path: cfg=%v err=%v", cfg, err)
	}
	_, err = load(`"admin_token_file": "empty"`)
	assertProblem(t, err, "admin_token_file", "is empty")
	_, err = load(`"admin_token_file": "big"`)
	assertProblem(t, err, "admin_token_file", "larger than")
	_, err = load(`"admin_token_file": "nope"`)
	assertProblem(t, err, "admin_token_file", "cannot read token")
	// An unreadable file is reported once, not also as "requires admin_token".
	var ve *ValidationError
	if errors.As(err, &ve) && len(ve.Problems) != 1 {
		t.Errorf("want exactly one problem, got:\n%v", err)
	}
}

func quoteJSON(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}

func ptr[T any](v T) *T { return &v }

func TestFromFlags(t *testing.T) {
	t.Parallel()
	want := defaultConfig(
		Backend{URL: "http://localhost:8081", Scheme: "http", Host: "localhost:8081", Weight: 1},
		Backend{URL: "http://localhost:8082", Scheme: "http", Host: "localhost:8082", Weight: 1},
		Backend{URL: "http://localhost:8083", Scheme: "http", Host: "localhost:8083", Weight: 1},
	)
	for _, ov := range []*Overrides{nil, {}} {
		cfg, err := FromFlags(ov)
		if err != nil {
			t.Fatal(err)
		}
		assertConfig(t, cfg, want)
	}

	cfg, err := FromFlags(&Overrides{
		Listen:              ptr("127.0.0.1:9000"),
		Strategy:            ptr("least_connections"),
		HealthCheckInterval: ptr("5s"),
		MaxFailCount:        ptr(4),
		Backends:            ptr(" http://x:1 , https://y "),
	})
	if err != nil {
		t.Fatal(err)
	}
	want = defaultConfig(
		Backend{URL: "http://x:1", Scheme: "http", Host: "x:1", Weight: 1},
		Backend{URL: "https://y", Scheme: "https", Host: "y:443", Weight: 1},
	)
	want.Listeners[0].Listen = "127.0.0.1:9000"
	s := &want.Pools[0]
	s.Strategy = "least_connections"
	s.HealthCheck.Interval = 5 * time.Second
	s.HealthCheck.UnhealthyThreshold = 4
	s.Passive.MaxFails = 4
	assertConfig(t, cfg, want)
}

func TestBadFlagValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ov   Overrides
		path string
		msg  string
	}{
		{"strategy", Overrides{Strategy: ptr("fast")}, "-strategy", "unknown strategy"},
		{"listen", Overrides{Listen: ptr("8080")}, "-listen", "host:port"},
		{"interval", Overrides{HealthCheckInterval: ptr("30")}, "-health-check-interval", `like "30s"`},
		{"max fail", Overrides{MaxFailCount: ptr(0)}, "-max-fail-count", "must be >= 1, got 0"},
		{"empty backends", Overrides{Backends: ptr(" ")}, "-backends", "at least one backend"},
		{"empty backend item", Overrides{Backends: ptr("http://a,,http://b")}, "-backends[1]", "must not be empty"},
		{"duplicate backends", Overrides{Backends: ptr("http://a,http://a:80")}, "-backends[1]", "duplicate of backends[0]"},
		{"public admin", Overrides{Admin: ptr("0.0.0.0:9090")}, "-admin", "requires admin_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := FromFlags(&tt.ov)
			if cfg != nil {
				t.Error("got a Config with an error")
			}
			assertProblem(t, err, tt.path, tt.msg)
		})
	}
}

func TestOverridesOnFile(t *testing.T) {
	t.Parallel()
	ov := &Overrides{
		Listen:       ptr(":9999"),
		Strategy:     ptr("random"),
		MaxFailCount: ptr(9),
		Backends:     ptr("http://c"),
	}
	cfg := mustParse(t, seedJSON, "json", ov)
	s := cfg.Pools[0]
	if cfg.Listeners[0].Listen != ":9999" || s.Strategy != "random" || s.HealthCheck.UnhealthyThreshold != 9 {
		t.Errorf("overrides not applied: %+v", s)
	}
	if want := []Backend{{URL: "http://c", Scheme: "http", Host: "c:80", Weight: 1}}; !reflect.DeepEqual(s.Backends, want) {
		t.Errorf("backends = %+v", s.Backends)
	}

	// -backends satisfies the required key when the file has none.
	cfg = mustParse(t, `{"strategy": "random"}`, "json", &Overrides{Backends: ptr("http://z")})
	if len(cfg.Pools[0].Backends) != 1 {
		t.Errorf("backends = %+v", cfg.Pools[0].Backends)
	}

	// With a health_check object, -health-check-interval sets its interval.
	cfg = mustParse(t, `{"backends": ["http://a"], "health_check": {"interval": "20s"}}`, "json",
		&Overrides{HealthCheckInterval: ptr("7s")})
	if got := cfg.Pools[0].HealthCheck.Interval; got != 7*time.Second {
		t.Errorf("interval = %v, want 7s", got)
	}
	_, err := Parse([]byte(`{"backends": ["http://a"], "health_check": {}}`), "json",
		&Overrides{HealthCheckInterval: ptr("0s")})
	assertProblem(t, err, "-health-check-interval", "greater than 0")

	// An override on a file with other problems: all are reported.
	_, err = Parse([]byte(`{"backends": ["http://a"], "retries": -1}`), "json", &Overrides{Strategy: ptr("nope")})
	assertProblem(t, err, "-strategy", "unknown strategy")
	assertProblem(t, err, "retries", "must be >= 0")
}

// TestParseDoesNotMutateOverrides guards against the overrides (shared with
// the flag package) being modified.
func TestParseDoesNotMutateOverrides(t *testing.T) {
	t.Parallel()
	ov := &Overrides{}
	if _, err := FromFlags(ov); err != nil {
		t.Fatal(err)
	}
	if ov.Backends != nil {
		t.Error("FromFlags wrote the default backends into the caller's Overrides")
	}
}
