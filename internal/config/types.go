package config

import (
	"log/slog"
	"net/netip"
	"time"

	"fulcrum/internal/route"
)

// Config is a loaded, defaulted and validated configuration. It is the
// compiled form: no JSON tags, no runtime state. The flat file form is a
// shorthand for one listener named "default" on listen_addr, one pool named
// "default" and one catch-all route from the listener to the pool.
type Config struct {
	// AdminAddr is where the admin listener binds ("" = no admin listener).
	AdminAddr string
	// AdminToken, when non-empty, is the bearer token the admin API requires.
	AdminToken string
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration
	LogLevel        slog.Level
	// LogFormat is "text" or "json".
	LogFormat string
	AccessLog bool
	// AccessLogFormat is one of AccessLogFormats; it defaults to LogFormat.
	AccessLogFormat string
	// Tracing is the OpenTelemetry tracing block; nil = tracing off.
	Tracing *Tracing
	// Listeners in document order; exactly one, "default", in the flat form.
	Listeners []Listener
	// Pools in document order; exactly one, "default", in the flat form.
	Pools []Pool
	// Flat is true when the file (or the flags) used the flat form.
	Flat bool
	// Warnings are things in the configuration that do not stop it from
	// loading but are probably mistakes, such as "round_robin" with unequal
	// weights. validate prints them; the engine logs them at start-up and
	// on reload.
	Warnings []Problem
}

// Listener is one address fulcrum accepts clients on, with its routes.
type Listener struct {
	Name   string // unique; "default" for the flat form
	Listen string // listen_addr
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// RequestID: fulcrum gives each request an X-Request-Id towards the
	// backend, keeping a client's own only from TrustedProxies.
	RequestID bool
	Limits    Limits
	RateLimit *RateLimit // nil = off
	// TLS terminates HTTPS on this listener; nil = plain HTTP.
	TLS *TLS
	// Routes in order, at least one. Every pool a route names (Pool or a
	// Split target) exists in Config.Pools; route.Compile accepts them.
	Routes []route.Spec
}

// Pool returns the pool named name, or nil.
func (c *Config) Pool(name string) *Pool {
	for i := range c.Pools {
		if c.Pools[i].Name == name {
			return &c.Pools[i]
		}
	}
	return nil
}

// Limits protects the listener from hostile or broken clients.
type Limits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration // 0 = none
	WriteTimeout      time.Duration // 0 = none
	// IdleTimeout is how long a client keep-alive connection may stay idle.
	IdleTimeout    time.Duration
	MaxHeaderBytes int
	MaxBodyBytes   int64 // 0 = unlimited
	MaxConns       int   // 0 = unlimited
	MaxConnsPerIP  int   // 0 = unlimited
}

// RateLimit is a token bucket per key.
type RateLimit struct {
	RequestsPerSecond float64
	Burst             int
	Key               HashKey // KindClientIP or KindHeader
}

// Pool is a group of backends and how traffic is spread over them.
type Pool struct {
	Name     string  // unique; "default" for the flat form
	Strategy string  // one of Strategies
	HashKey  HashKey // for consistent_hash
	Backends []Backend

	HealthCheck HealthCheck
	Passive     Passive
	// PanicThreshold is the percentage of usable backends below which traffic
	// is spread over all backends (0 disables panic mode).
	PanicThreshold int

	Retries     int
	RetryBuffer int64

	ConnectTimeout        time.Duration
	ResponseHeaderTimeout time.Duration
	// IdleTimeout is how long a pooled upstream connection may stay idle.
	IdleTimeout time.Duration

	// MaxConnections per backend (0 = unlimited).
	MaxConnections int
	QueueTimeout   time.Duration
	SlowStart      time.Duration

	Sticky *Sticky // nil = off

	// TLS is how the pool's https:// backends are dialled; nil = system
	// roots, each backend's host as the server name.
	TLS *PoolTLS
}

// Backend is one configured upstream.
type Backend struct {
	URL    string // as written
	Scheme string // "http" or "https"
	Host   string // host:port, port filled in from the scheme if absent
	Weight int
}

// HealthCheck is the active check.
type HealthCheck struct {
	Type               string // "tcp", "http" or "grpc"
	Path               string
	Interval           time.Duration
	Timeout            time.Duration
	ExpectedStatus     []StatusRange
	HealthyThreshold   int
	UnhealthyThreshold int
	Host               string            // Host header (http) or :authority (grpc)
	Headers            map[string]string // request headers (http) or metadata (grpc)
	Service            string            // grpc: the service name asked about ("" = the server as a whole)
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }

// Passive is outlier detection from real traffic.
type Passive struct {
	MaxFails   int
	FailWindow time.Duration
	EjectFor   time.Duration
	// MaxEjectFor caps the exponential growth of EjectFor on repeated ejection.
	MaxEjectFor time.Duration
	// Consider5xx counts 5xx responses as failures.
	Consider5xx bool
}

// Sticky is session persistence.
type Sticky struct {
	Type       string // "cookie", "source_ip", "app_cookie"
	CookieName string
	TTL        time.Duration // 0 = session cookie
	Secure     string        // "auto", "true", "false"
	HTTPOnly   bool
	SameSite   string // "lax", "strict", "none", ""
	// MaxEntries bounds the app_cookie table.
	MaxEntries int
	// Secret keys the hash that names a backend in the cookie ("" = unkeyed).
	Secret string
}

// HashKeyKind says where an affinity or rate-limit key comes from.
type HashKeyKind int

const (
	KindNone HashKeyKind = iota
	KindHeader
	KindCookie
	KindQuery
	KindPath
	KindClientIP
)

// HashKey is a parsed key spec such as "header:X-User" or "path".
type HashKey struct {
	Kind HashKeyKind
	Name string // header name (canonical), cookie or query parameter name
}

// AccessLogFormats lists the accepted access_log_format values.
var AccessLogFormats = []string{"json", "text", "combined"}

// Strategies lists the accepted strategy names.
var Strategies = []string{
	"round_robin", "weighted_round_robin", "least_connections",
	"least_response_time", "ip_hash", "random", "power_of_two", "consistent_hash",
}
