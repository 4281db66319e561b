package config

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"fulcrum/internal/route"
)

// Defaults of the flat form. The reference table is in doc.go.
const (
	defaultListen         = ":8080"
	defaultStrategy       = "round_robin"
	defaultHCInterval     = 30 * time.Second
	defaultMaxFailCount   = 3
	defaultAdminAddr      = "127.0.0.1:9090"
	defaultBackends       = "http://localhost:8081,http://localhost:8082,http://localhost:8083"
	defaultStickyCookie   = "FULCRUM_BACKEND"
	maxBackendWeight      = 1000
	maxRetries            = 10
	maxRetryBuffer        = 16 << 20 // each request in flight may buffer this much body for replay
	maxRequestsPerSecond  = 1e9
	maxAdminTokenFileSize = 4096
)

// build walks the decoded tree against the schema, adding every problem to c
// and returning the compiled Config. The result is meaningful only when c
// holds no problems. baseDir resolves a relative admin_token_file.
func build(root *value, c *checker, baseDir string) *Config {
	if root.kind != kindObject {
		c.typeProblem("", "an object (the top level of the configuration)", root)
		return nil
	}
	top := c.object("", root)
	var cfg *Config
	if top.present("pools") || top.present("listeners") {
		cfg = buildFull(c, top)
	} else {
		l := buildListener(c, top, "default")
		if ft := buildFlatTLS(c, top); ft != nil {
			if l.TLS != nil {
				c.add("tls_cert_file", "conflicts with tls; give the certificate in one of them")
			}
			l.TLS = ft
		}
		l.Routes = []route.Spec{{Pool: "default"}}
		p := buildPool(c, top, "default")
		// "tls" at the top of the flat form is the listener's.
		p.TLS = buildPoolTLS(c, top, "backend_tls", p.Backends)
		cfg = &Config{Listeners: []Listener{l}, Pools: []Pool{p}, Flat: true}
	}
	listen := ""
	if len(cfg.Listeners) > 0 {
		listen = cfg.Listeners[0].Listen
	}
	buildAdmin(c, top, cfg, listen, baseDir)
	resolveTLSFiles(cfg, baseDir)
	checkACMEListeners(c, cfg)
	resolvePoolTLSFiles(cfg, baseDir)
	if !cfg.Flat && cfg.AdminAddr != "" {
		for i := 1; i < len(cfg.Listeners); i++ {
			if sameListener(cfg.AdminAddr, cfg.Listeners[i].Listen) {
				c.add("admin_addr", "conflicts with listeners[%d].listen_addr %q", i, clip(cfg.Listeners[i].Listen))
			}
		}
	}

	cfg.ShutdownTimeout, _ = top.duration("shutdown_timeout", 30*time.Second, false)
	if lvl, ok := top.enum("log_level", "info", []string{"debug", "info", "warn", "error"}); ok {
		cfg.LogLevel = map[string]slog.Level{
			"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError,
		}[lvl]
	}
	cfg.LogFormat, _ = top.enum("log_format", "text", []string{"text", "json"})
	cfg.AccessLog, _ = top.boolean("access_log", false)
	// The access log keeps the look of the other log lines unless told
	// otherwise: text lines with log_format text, JSON with json.
	cfg.AccessLogFormat, _ = top.enum("access_log_format", cfg.LogFormat, AccessLogFormats)
	cfg.Tracing = buildTracing(c, "tracing", top.take("tracing"))

	top.done()
	return cfg
}

// unequalWeights reports whether the backends do not all have one weight.
func unequalWeights(bs []Backend) bool {
	for _, b := range bs[min(1, len(bs)):] {
		if b.Weight != bs[0].Weight {
			return true
		}
	}
	return false
}

func knownStrategy(s string) bool {
	for _, k := range Strategies {
		if s == k {
			return true
		}
	}
	return false
}

// buildBackends checks the backends list. Each element is a URL string or an
// object {"url": ..., "weight": ...}.
func buildBackends(c *checker, path string, v *value) []Backend {
	switch {
	case v == nil:
		c.add(path, `required: list at least one backend, e.g. ["http://10.0.0.1:8080"]`)
		return nil
	case v.kind != kindList:
		c.typeProblem(path, "a list of backends", v)
		return nil
	case len(v.items) == 0:
		c.add(path, "must list at least one backend")
		return nil
	}
	out := make([]Backend, 0, len(v.items))
	seen := make(map[string]int) // scheme://host:port -> index
	for i, item := range v.items {
		p := indexPath(path, i)
		var raw string
		urlPath := p
		weight, ok := 1, true
		switch item.kind {
		case kindString:
			raw = item.s
		case kindObject:
			o := c.object(p, item)
			urlPath = childPath(p, "url")
			if uv := o.take("url"); uv == nil {
				c.add(urlPath, "required")
				ok = false
			} else {
				raw, ok = c.str(urlPath, uv)
			}
			var wok bool
			weight, wok = o.integer("weight", 1, 1, maxBackendWeight)
			ok = ok && wok
			o.done()
		default:
			c.typeProblem(p, `a URL string or an object like {"url": "http://host:port", "weight": 1}`, item)
			continue
		}
		if !ok && raw == "" {
			continue
		}
		b, err := parseBackendURL(raw)
		if err != nil {
			c.add(urlPath, "%v", err)
			continue
		}
		key := b.Scheme + "://" + b.Host
		if j, dup := seen[key]; dup {
			c.add(urlPath, "duplicate of backends[%d] (both are %s)", j, key)
			continue
		}
		seen[key] = i
		b.Weight = weight
		out = append(out, b)
	}
	return out
}

// buildHealthCheck checks an explicit health_check object.
func buildHealthCheck(c *checker, path string, v *value) HealthCheck {
	o := c.object(path, v)
	hc := HealthCheck{}
	hc.Type, _ = o.enum("type", "http", []string{"http", "tcp", "grpc"})
	hc.Path, _ = o.str("path", "/health")
	if o.present("path") && !validProbePath(hc.Path) {
		c.add(o.at("path"), `must start with "/" and contain no spaces, control characters or "#", got %q`, clip(hc.Path))
	}
	var ok bool
	hc.Interval, ok = o.duration("interval", 10*time.Second, true)
	if tv := o.take("timeout"); tv != nil {
		t, tok := c.duration(o.at("timeout"), tv, true)
		hc.Timeout = t
		if tok && ok && t > hc.Interval {
			c.add(o.at("timeout"), "must not exceed health_check.interval (%v), got %v", hc.Interval, t)
		}
	} else {
		hc.Timeout = min(2*time.Second, hc.Interval)
	}
	hc.ExpectedStatus = []StatusRange{{200, 399}}
	if sv := o.take("expected_status"); sv != nil {
		p := o.at("expected_status")
		var s string
		switch sv.kind {
		case kindString:
			s = sv.s
		case kindNumber: // "expected_status: 200" in YAML
			s = sv.s
		default:
			c.typeProblem(p, `a status list like "200-399" or "200,204"`, sv)
		}
		if sv.kind == kindString || sv.kind == kindNumber {
			if r, err := ParseStatusRanges(s); err != nil {
				c.add(p, "%v", err)
			} else {
				hc.ExpectedStatus = r
			}
		}
	}
	hc.HealthyThreshold, _ = o.integer("healthy_threshold", 2, 1, noMax)
	hc.UnhealthyThreshold, _ = o.integer("unhealthy_threshold", 3, 1, noMax)
	hc.Host, _ = o.str("host", "")
	if hc.Host != "" && !validHostHeader(hc.Host) {
		c.add(o.at("host"), "must be a host name or host:port, got %q", clip(hc.Host))
	}
	hc.Headers = buildHeaders(c, o.at("headers"), o.take("headers"))
	hc.Service, _ = o.str("service", "")
	if hasCtl(hc.Service) {
		c.add(o.at("service"), "must not contain control characters, got %q", clip(hc.Service))
	}
	switch hc.Type {
	case "tcp":
		for _, k := range []string{"path", "expected_status", "host", "headers"} {
			if o.present(k) {
				c.add(o.at(k), `only applies to health checks of type "http" or "grpc"`)
			}
		}
	case "grpc":
		// A gRPC check calls grpc.health.v1.Health/Check: it has no path
		// and its answer is a serving status, not an HTTP status.
		for _, k := range []string{"path", "expected_status"} {
			if o.present(k) {
				c.add(o.at(k), `only applies to health checks of type "http"`)
			}
		}
		for name, val := range hc.Headers {
			if msg := grpcMetadataProblem(name, val); msg != "" {
				c.add(childPath(o.at("headers"), name), "%s", msg)
			}
		}
	}
	if hc.Type != "grpc" && o.present("service") {
		c.add(o.at("service"), `only applies to health checks of type "grpc"`)
	}
	o.done()
	return hc
}

// grpcMetadataProblem says why name: val cannot be sent as gRPC request
// metadata ("" if it can): names are lowercased and limited to [0-9a-z._-],
// values are printable ASCII unless the name ends in "-bin" (binary, sent
// base64-encoded), and gRPC's own fields are not the operator's to set.
func grpcMetadataProblem(name, val string) string {
	lower := strings.ToLower(name)
	for i := 0; i < len(lower); i++ {
		if ch := lower[i]; !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return fmt.Sprintf("not a valid gRPC metadata name (letters, digits, '-', '_' and '.' only), got %q", clip(name))
		}
	}
	switch {
	case strings.HasPrefix(lower, "grpc-"), lower == "te", lower == "content-type", lower == "user-agent":
		return fmt.Sprintf("%q is set by gRPC itself and cannot be given in a gRPC check", name)
	}
	if !strings.HasSuffix(lower, "-bin") {
		for i := 0; i < len(val); i++ {
			if val[i] < 0x20 || val[i] > 0x7e {
				return fmt.Sprintf("gRPC metadata values must be printable ASCII (or the name must end in \"-bin\"), got %q", clip(val))
			}
		}
	}
	return ""
}

// validProbePath accepts an origin-form request target ("/health",
// "/status?full=1").
func validProbePath(p string) bool {
	return strings.HasPrefix(p, "/") && !hasCtl(p) && !strings.ContainsAny(p, " #")
}

// validHostHeader accepts "name", "name:port", "1.2.3.4:80" and "[::1]:80".
func validHostHeader(h string) bool {
	if host, port, err := net.SplitHostPort(h); err == nil {
		if !allDigits(port) || len(port) > 5 {
			return false
		}
		h = host
	}
	return validHostname(h) || validIP(h)
}

func validIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// buildHeaders checks a map of extra probe headers. Names are stored in
// canonical form; names that collide after canonicalization are reported.
func buildHeaders(c *checker, path string, v *value) map[string]string {
	if v == nil {
		return nil
	}
	o := c.object(path, v)
	if o.v == nil {
		return nil
	}
	out := make(map[string]string, len(o.v.keys))
	orig := make(map[string]string, len(o.v.keys))
	for _, name := range o.v.keys {
		hv := o.take(name)
		p := o.at(name)
		s, ok := c.str(p, hv)
		if !isToken(name) {
			c.add(p, "%q is not a valid header name", clip(name))
			continue
		}
		if strings.ContainsAny(s, "\r\n\x00") {
			c.add(p, "header value must not contain CR, LF or NUL")
			continue
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if canon == "Host" {
			c.add(p, "set health_check.host instead of a Host header")
			continue
		}
		if prev, dup := orig[canon]; dup {
			c.add(p, "duplicate header (same as %q)", clip(prev))
			continue
		}
		orig[canon] = name
		if ok {
			out[canon] = s
		}
	}
	o.done()
	return out
}

// buildPassive checks the passive object; maxFailCount is the default of
// passive.max_fails.
func buildPassive(c *checker, path string, v *value, maxFailCount int) Passive {
	o := c.object(path, v)
	var p Passive
	p.MaxFails, _ = o.integer("max_fails", int64(maxFailCount), 0, noMax)
	p.FailWindow, _ = o.duration("fail_window", 10*time.Second, true)
	eject, ejectOK := o.duration("eject_for", 30*time.Second, true)
	p.EjectFor = eject
	if mv := o.take("max_eject_for"); mv != nil {
		m, ok := c.duration(o.at("max_eject_for"), mv, true)
		if ok && ejectOK && m < eject {
			c.add(o.at("max_eject_for"), "must be >= passive.eject_for (%v), got %v", eject, m)
		}
		p.MaxEjectFor = m
	} else {
		p.MaxEjectFor = max(5*time.Minute, eject)
	}
	p.Consider5xx, _ = o.boolean("fail_on_5xx", true)
	o.done()
	return p
}

func buildTrustedProxies(c *checker, path string, v *value) []netip.Prefix {
	if v == nil {
		return nil
	}
	if v.kind != kindList {
		c.typeProblem(path, `a list of CIDRs like ["10.0.0.0/8"]`, v)
		return nil
	}
	var out []netip.Prefix
	for i, item := range v.items {
		p := indexPath(path, i)
		s, ok := c.str(p, item)
		if !ok {
			continue
		}
		pfx, err := parseProxy(s)
		if err != nil {
			c.add(p, "%v", err)
			continue
		}
		out = append(out, pfx)
	}
	return out
}

// buildAdmin checks admin_addr, admin_token and admin_token_file.
func buildAdmin(c *checker, top *object, cfg *Config, listen, baseDir string) {
	addr, addrOK := top.str("admin_addr", defaultAdminAddr)
	var host string
	if addrOK && addr != "" {
		var err error
		if host, err = checkListenAddr(addr); err != nil {
			c.add("admin_addr", "%v", err)
			addrOK = false
		} else if sameListener(addr, listen) {
			c.add("admin_addr", "conflicts with listen_addr %q", clip(listen))
		}
	}
	cfg.AdminAddr = addr

	tokenGiven := top.present("admin_token") || top.present("admin_token_file")
	if tv := top.take("admin_token"); tv != nil {
		if s, ok := c.str("admin_token", tv); ok {
			if err := checkToken(s); err != nil {
				c.add("admin_token", "%v", err)
			}
			cfg.AdminToken = s
		}
	}
	if fv := top.take("admin_token_file"); fv != nil {
		if top.present("admin_token") {
			c.add("admin_token_file", "cannot be combined with admin_token; set only one")
		} else if name, ok := c.str("admin_token_file", fv); ok {
			tok, err := readTokenFile(name, baseDir)
			if err == nil {
				err = checkToken(tok)
			}
			if err != nil {
				c.add("admin_token_file", "%v", err)
			}
			cfg.AdminToken = tok
		}
	}
	if addrOK && addr != "" && !isLoopback(host) && !tokenGiven {
		c.add("admin_addr", "admin listener on a non-loopback address requires admin_token or admin_token_file")
	}
}

// sameListener reports whether two listen addresses would collide: the same
// non-zero port on the same host, or on any host when either is a wildcard.
func sameListener(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil {
		return false
	}
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	if na == 0 || na != nb {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return wild(ha) || wild(hb) || strings.EqualFold(ha, hb)
}

func checkToken(s string) error {
	if s == "" {
		return fmt.Errorf("admin token must not be empty")
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return fmt.Errorf("admin token must not contain spaces or control characters")
		}
	}
	return nil
}

// readTokenFile reads an admin token file (relative paths are relative to
// baseDir) and trims surrounding whitespace.
func readTokenFile(name, baseDir string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("must not be empty")
	}
	if !filepath.IsAbs(name) && baseDir != "" {
		name = filepath.Join(baseDir, name)
	}
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("cannot read token: %w", err)
	}
	defer f.Close()
	// Bounded read: a token is short, and the path might be a device or a
	// huge file by mistake.
	data, err := io.ReadAll(io.LimitReader(f, maxAdminTokenFileSize+1))
	if err != nil {
		return "", fmt.Errorf("cannot read token from %s: %w", name, err)
	}
	if len(data) > maxAdminTokenFileSize {
		return "", fmt.Errorf("%s is larger than %d bytes; is it the right file?", name, maxAdminTokenFileSize)
	}
	tok := string(bytes.TrimSpace(data))
	if tok == "" {
		return "", fmt.Errorf("%s is empty", name)
	}
	return tok, nil
}
