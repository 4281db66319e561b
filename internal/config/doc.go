// Package config loads, validates and compiles fulcrum's configuration.
//
// Loading is a pure function from bytes (plus command-line Overrides) to a
// validated *Config: decode the JSON or YAML document into a generic tree,
// apply the overrides to that tree, then walk it against the schema once,
// filling in defaults and collecting every problem with its path. Either the
// whole configuration is valid and a Config is returned, or nothing is
// returned and a *ValidationError lists all problems, one per line:
//
//	config: backends[1].weight: must be >= 1, got 0
//	config: health_check.intervall: unknown key (did you mean "interval"?)
//
// In a YAML document each problem also carries its line (Problem.Line), and
// renders as "config: line 5: backends[1].weight: ...". A YAML syntax error
// names the line where the problem is, which is not always the line yaml.v3
// reports.
//
// Invalid values are never replaced by defaults. The admin API's dry-run
// validation and hot reload are expected to call the same functions.
//
// Some valid configurations are probably mistakes, such as "round_robin"
// over backends of unequal weights (it ignores weights). They load, and
// Config.Warnings lists them in the same form as problems.
//
// # Formats
//
// JSON and YAML describe the same tree. Keys are case-sensitive. Unknown keys
// and duplicate keys are errors at every level. null is not a way to ask for
// the default: omit the key instead. YAML anchors, aliases and merge keys
// ("<<") work; a file must hold a single YAML document. In YAML, quote values
// that look like numbers but are strings.
//
// Durations are strings in Go syntax: "250ms", "30s", "1m30s", "2h". A bare
// number such as 30 or "30" is rejected (only "0" may omit the unit).
// Sizes are a whole number of bytes or a string with a unit: "512", "64KiB",
// "1MiB" (powers of 1024) or "10MB" (powers of 1000); see ParseSize.
//
// # Flat form
//
// The flat form describes one service named "default" with one pool. This is
// the original design's file and it loads unchanged:
//
//	{"listen_addr": ":8080", "health_check_interval": "30s", "max_fail_count": 3,
//	 "strategy": "weighted_round_robin",
//	 "backends": [{"url": "http://backend1:8081", "weight": 3},
//	              {"url": "http://backend2:8082", "weight": 2}]}
//
// All keys are optional except backends (which -backends can supply).
//
// Listener and pool:
//
//	listen_addr            ":8080"        host:port; port 0-65535; empty host = all interfaces
//	backends               (required)     list of {"url", "weight"} or plain URL strings
//	  url                  (required)     http:// or https:// with a host; no path, query,
//	                                      fragment or user info; port defaults to 80/443
//	  weight               1              1-1000
//	strategy               "round_robin"  one of Strategies
//	hash_key               none           "header:NAME", "cookie:NAME", "query:NAME" or "path";
//	                                      required by consistent_hash, an error with the others
//	health_check_interval  "30s"          > 0; only without a health_check object
//	max_fail_count         3              >= 1
//	panic_threshold        50             0-100 (percent of usable backends; 0 disables)
//	retries                2              0-10
//	retry_buffer           65536          size, at most 16MiB; request bodies up to this are replayable
//	connect_timeout        "5s"           > 0
//	response_header_timeout "60s"         > 0
//	idle_timeout           "60s"          > 0; client keep-alive and pooled upstream conns
//	max_connections        0              per backend; 0 = unlimited
//	queue_timeout          "0s"           >= 0
//	slow_start             "0s"           >= 0
//
// Without a health_check object, backends get a TCP connect check every
// health_check_interval with timeout min(2s, interval), marked down after
// max_fail_count consecutive failures and up after one success.
//
// health_check (an object; when present it replaces the implicit TCP check):
//
//	type                   "http"         "http", "tcp" or "grpc" (grpc.health.v1.Health/Check)
//	path                   "/health"      must start with "/" (http only)
//	interval               "10s"          > 0
//	timeout                min(2s, interval)  > 0 and <= interval
//	expected_status        "200-399"      codes and ranges, 100-599: "200,204,300-302" (http only)
//	healthy_threshold      2              >= 1 consecutive passes to mark up
//	unhealthy_threshold    3              >= 1 consecutive failures to mark down
//	host                   ""             Host header (http) or :authority (grpc) of probes
//	headers                {}             extra probe headers (http) or metadata (grpc); names
//	                                      must be HTTP tokens, values without CR, LF or NUL;
//	                                      grpc: [0-9a-z._-] names, printable ASCII values
//	                                      (any for names ending in -bin), no grpc-*, te,
//	                                      content-type or user-agent
//	service                ""             grpc only: the service asked about; "" = the server
//
// passive (outlier detection from real traffic):
//
//	max_fails              max_fail_count failures within fail_window that eject a backend;
//	                                      0 disables passive ejection
//	fail_window            "10s"          > 0
//	eject_for              "30s"          > 0; first ejection, doubled on repeats
//	max_eject_for          max("5m", eject_for)  >= eject_for
//	fail_on_5xx            true           count 5xx responses as failures
//
// sticky (session persistence; absent = off):
//
//	type                   (required)     "cookie", "source_ip" or "app_cookie"
//	cookie_name            "FULCRUM_BACKEND" for cookie; required for app_cookie (RFC 6265 token)
//	ttl                    "0s" (cookie: session cookie) / "1h" (app_cookie: entry expiry)
//	secure                 "auto"         cookie only: "auto", "true", "false" or a boolean
//	http_only              true           cookie only
//	same_site              "lax"          cookie only: "lax", "strict" or "none"
//	max_entries            100000         app_cookie only: >= 1
//	secret                 ""             cookie only: key of the HMAC that names the backend in the cookie
//
// source_ip takes no other keys.
//
// tls (how the pool dials its https:// backends; in the flat form the key
// is backend_tls, as tls there is the listener's; absent = system roots):
//
//	ca_file                system roots   PEM CA certificates that sign the backends' certificates
//	server_name            backend host   sent in SNI and verified in the certificate; no port
//	insecure_skip_verify   false          accept any certificate; an error together with ca_file
//	cert_file, key_file    none           client certificate and key (mTLS); both or neither
//
// Relative file names are relative to the config file. A tls block on a
// pool with no https:// backend is an error. It is not inherited from the
// top level of the full form.
//
// rate_limit (token bucket per key; absent = off):
//
//	requests_per_second    (required)     number > 0 (fractions allowed)
//	burst                  ceil(requests_per_second)  >= 1
//	key                    "client_ip"    "client_ip" or "header:NAME"
//
// Client-facing limits:
//
//	trusted_proxies        []             CIDRs or bare IPs whose X-Forwarded-For is believed
//	request_id             true           set X-Request-Id towards the backend (a client's own
//	                                      is kept only from trusted_proxies)
//	read_header_timeout    "10s"          > 0
//	read_timeout           "60s"          inactivity timeout; "0s" = none
//	write_timeout          "60s"          inactivity timeout; "0s" = none
//	max_header_bytes       65536          size, >= 1024
//	max_body_bytes         0              size; 0 = unlimited
//	max_conns              50000          0 = unlimited
//	max_conns_per_ip       0              0 = unlimited
//
// Process:
//
//	admin_addr             "127.0.0.1:9090"  "" disables the admin listener; a non-loopback
//	                                      address requires admin_token or admin_token_file
//	admin_token            ""             bearer token for the admin API
//	admin_token_file       ""             file holding the token (trimmed); relative paths are
//	                                      relative to the config file; not with admin_token
//	shutdown_timeout       "30s"          >= 0
//	log_level              "info"         "debug", "info", "warn" or "error"
//	log_format             "text"         "text" or "json"
//	access_log             false
//	access_log_format      log_format     "json", "text" or "combined"
//
// tracing (OpenTelemetry, top level only; absent = off):
//
//	otlp_endpoint          (required)     http:// or https:// base URL of an OTLP/HTTP collector;
//	                                      spans go to <otlp_endpoint>/v1/traces
//	sample_ratio           0.01           0-1, for requests without a client trace context
//	service_name           "fulcrum"      service.name of the spans
//
// # Full form
//
// A file with a "listeners" list and a "pools" map is the full form: many
// listeners, named pools and ordered routes. Every pool key of the flat form
// (strategy through sticky, health_check, passive) may stand inside a pool;
// every listener key (the client-facing limits, rate_limit and request_id) inside a
// listener, which also needs "name" (unique) and "routes" (at least one). The
// same keys at the top level are the defaults for every pool or listener
// that does not set them; listen_addr and backends at the top level are
// errors with listeners, and so are the -listen, -backends and -strategy
// flags.
//
//	{"pools": {"web": {"backends": ["http://10.0.0.1:8080"]},
//	           "api": {"strategy": "least_connections", "backends": ["http://10.0.0.2:8080"]}},
//	 "listeners": [{"name": "public", "listen_addr": ":8080", "routes": [
//	     {"name": "api-v1", "match": {"host": ["api.example.com"], "path_prefix": "/v1/"}, "pool": "api"},
//	     {"match": {"path": "/ping"}, "respond": {"status": 200, "body": "pong\n"}},
//	     {"pool": "web"}]}]}
//
// A route has an optional "name" and "match" (host, path_prefix, path,
// path_regex, method, headers, query, cookies, client_ip: conditions AND,
// list entries OR), exactly one action (pool, split, redirect, respond) and
// optional modifiers (strip_prefix, add_prefix, host_rewrite,
// request_headers, response_headers); route.Compile checks them and its
// errors are reported as listeners[i].routes[j].FIELD. A route naming an
// unknown pool is an error with a did-you-mean suggestion; a pool no route
// uses is a warning. Two listeners may not share a name or an address. The
// README's Routing section documents every key with its default.
package config
