package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
)

// ParseHashKey parses a key spec that says where an affinity or rate-limit
// key is taken from:
//
//	header:NAME   the value of request header NAME (stored canonical, e.g. "X-User-Id")
//	cookie:NAME   the value of cookie NAME
//	query:NAME    the value of query parameter NAME
//	path          the request path
//	client_ip     the client address (valid for rate_limit.key only)
//
// NAME must be an HTTP token for headers and cookies (RFC 9110 section 5.6.2,
// RFC 6265 section 4.1.1) and must be non-empty without control characters
// for query parameters. Kinds are lower case.
func ParseHashKey(s string) (HashKey, error) {
	kind, name, hasName := strings.Cut(s, ":")
	switch kind {
	case "path", "client_ip":
		if hasName {
			return HashKey{}, fmt.Errorf("invalid key %q: %q takes no name", clip(s), kind)
		}
		if kind == "path" {
			return HashKey{Kind: KindPath}, nil
		}
		return HashKey{Kind: KindClientIP}, nil
	case "header", "cookie", "query":
		if name == "" {
			return HashKey{}, fmt.Errorf("invalid key %q: missing name after %q", clip(s), kind+":")
		}
		switch kind {
		case "header":
			if !isToken(name) {
				return HashKey{}, fmt.Errorf("invalid key %q: %q is not a valid header name", clip(s), clip(name))
			}
			return HashKey{Kind: KindHeader, Name: textproto.CanonicalMIMEHeaderKey(name)}, nil
		case "cookie":
			if !isToken(name) {
				return HashKey{}, fmt.Errorf("invalid key %q: %q is not a valid cookie name", clip(s), clip(name))
			}
			return HashKey{Kind: KindCookie, Name: name}, nil
		default:
			if hasCtl(name) {
				return HashKey{}, fmt.Errorf("invalid key %q: query parameter name contains a control character", clip(s))
			}
			return HashKey{Kind: KindQuery, Name: name}, nil
		}
	}
	return HashKey{}, fmt.Errorf(`invalid key %q: want "header:NAME", "cookie:NAME", "query:NAME", "path" or "client_ip"`, clip(s))
}

// ParseStatusRanges parses a comma-separated list of HTTP status codes and
// inclusive ranges, such as "200-399" or "200,204,300-302". Every code must
// be between 100 and 599 and every range must have lo <= hi. Spaces around
// items are allowed.
func ParseStatusRanges(s string) ([]StatusRange, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New(`empty status list: want codes or ranges like "200-399" or "200,204"`)
	}
	var out []StatusRange
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		loS, hiS, isRange := strings.Cut(item, "-")
		lo, err := statusCode(strings.TrimSpace(loS))
		if err != nil {
			return nil, err
		}
		hi := lo
		if isRange {
			if hi, err = statusCode(strings.TrimSpace(hiS)); err != nil {
				return nil, err
			}
			if lo > hi {
				return nil, fmt.Errorf("invalid status range %q: %d is greater than %d", clip(item), lo, hi)
			}
		}
		out = append(out, StatusRange{Lo: lo, Hi: hi})
	}
	return out, nil
}

func statusCode(s string) (int, error) {
	if len(s) != 3 || !allDigits(s) {
		return 0, fmt.Errorf("invalid status code %q: want a three-digit code between 100 and 599", clip(s))
	}
	n, _ := strconv.Atoi(s)
	if n < 100 || n > 599 {
		return 0, fmt.Errorf("status code %d out of range: want 100 to 599", n)
	}
	return n, nil
}

// sizeUnits maps lower-cased unit suffixes to their multipliers. Decimal
// units are powers of 1000 and binary units (KiB, ...) powers of 1024, as in
// IEC 80000-13. A bare "K" or "M" is rejected as ambiguous.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// ParseSize parses a size in bytes. v may be any Go integer type, a float64
// or json.Number holding a whole number, or a string made of digits with an
// optional unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB
// (powers of 1024), case-insensitive, optionally separated from the number by
// spaces. Examples: 512, "512", "64KiB" (65536), "1MiB" (1048576), "10MB"
// (10000000). Negative sizes, fractions and values above math.MaxInt64 are
// errors.
func ParseSize(v any) (int64, error) {
	switch x := v.(type) {
	case int:
		return sizeFromInt(int64(x))
	case int8:
		return sizeFromInt(int64(x))
	case int16:
		return sizeFromInt(int64(x))
	case int32:
		return sizeFromInt(int64(x))
	case int64:
		return sizeFromInt(x)
	case uint:
		return sizeFromUint(uint64(x))
	case uint8:
		return sizeFromUint(uint64(x))
	case uint16:
		return sizeFromUint(uint64(x))
	case uint32:
		return sizeFromUint(uint64(x))
	case uint64:
		return sizeFromUint(x)
	case float32:
		return sizeFromFloat(float64(x))
	case float64:
		return sizeFromFloat(x)
	case json.Number:
		if i, ok := integer(string(x)); ok {
			return sizeFromInt(i)
		}
		return 0, fmt.Errorf("invalid size %s: want a whole number of bytes", clip(string(x)))
	case string:
		return parseSizeString(x)
	}
	return 0, fmt.Errorf(`invalid size of type %T: want a number of bytes or a string like "64KiB"`, v)
}

func sizeFromInt(i int64) (int64, error) {
	if i < 0 {
		return 0, fmt.Errorf("invalid size %d: must not be negative", i)
	}
	return i, nil
}

func sizeFromUint(u uint64) (int64, error) {
	if u > math.MaxInt64 {
		return 0, fmt.Errorf("invalid size %d: too large", u)
	}
	return int64(u), nil
}

func sizeFromFloat(f float64) (int64, error) {
	// Every float64 at or above 2^63 overflows int64; 2^63 itself is exact.
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || f >= 1<<63 {
		return 0, fmt.Errorf("invalid size %v: want a whole number of bytes", f)
	}
	return sizeFromInt(int64(f))
}

func parseSizeString(s string) (int64, error) {
	bad := func() (int64, error) {
		return 0, fmt.Errorf(`invalid size %q: want a whole number of bytes with an optional unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), like "65536" or "64KiB"`, clip(s))
	}
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		if strings.HasPrefix(t, "-") {
			return 0, fmt.Errorf("invalid size %q: must not be negative", clip(s))
		}
		return bad()
	}
	mult, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return bad()
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("invalid size %q: too large", clip(s))
	}
	return n * mult, nil
}

// isToken reports whether s is a non-empty HTTP token (RFC 9110 section
// 5.6.2), which is also what RFC 6265 requires of cookie names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// hasCtl reports whether s contains an ASCII control character or DEL.
func hasCtl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// validHostname reports whether h is a syntactically valid DNS name:
// dot-separated labels of 1 to 63 letters, digits, '-' or '_' (the latter is
// common in container and service-discovery names), not starting or ending
// with '-', 253 characters at most, with an optional trailing dot.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// checkListenAddr validates a "host:port" listen address: the host may be
// empty (all interfaces), an IP address or a host name; the port must be a
// number from 0 to 65535 (0 asks the kernel for a free port). It returns the
// host part.
func checkListenAddr(s string) (string, error) {
	if s == "" {
		return "", errors.New(`must not be empty; want host:port like ":8080" or "127.0.0.1:8080"`)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf(`must be host:port like ":8080" or "127.0.0.1:8080", got %q`, clip(s))
	}
	if !allDigits(port) || len(port) > 5 {
		return "", fmt.Errorf("port must be a number from 0 to 65535, got %q", clip(port))
	}
	if p, _ := strconv.Atoi(port); p > 65535 {
		return "", fmt.Errorf("port must be a number from 0 to 65535, got %d", p)
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
			return "", fmt.Errorf("invalid host %q: want an IP address or a host name", clip(host))
		}
	}
	return host, nil
}

// isLoopback reports whether host names only the local machine. An empty
// host (":9090") binds every interface and is not loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// parseBackendURL validates a backend URL and fills in Scheme and Host.
func parseBackendURL(raw string) (Backend, error) {
	b := Backend{URL: raw}
	switch {
	case raw == "":
		return b, errors.New("must not be empty")
	case strings.TrimSpace(raw) != raw || hasCtl(raw):
		return b, fmt.Errorf("%q must not contain spaces or control characters", clip(raw))
	case !strings.Contains(raw, "://"):
		return b, fmt.Errorf(`%q is not an absolute URL: want "http://host:port" or "https://host:port"`, clip(raw))
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return b, fmt.Errorf("invalid URL %q: %v", clip(raw), err)
	}
	var defPort string
	switch u.Scheme {
	case "http":
		defPort = "80"
	case "https":
		defPort = "443"
	default:
		return b, fmt.Errorf(`unsupported scheme %q in %q: want "http" or "https"`, clip(u.Scheme), clip(raw))
	}
	switch {
	case u.User != nil:
		return b, fmt.Errorf("%q must not contain user info (credentials)", clip(raw))
	case u.Host == "":
		return b, fmt.Errorf("%q has no host", clip(raw))
	case u.Path != "" && u.Path != "/" || u.RawPath != "":
		return b, fmt.Errorf("backend URL must not have a path, got %q in %q (the request path is forwarded unchanged)", clip(u.Path), clip(raw))
	case u.RawQuery != "" || u.ForceQuery:
		return b, fmt.Errorf("backend URL must not have a query, got %q", clip(raw))
	case strings.Contains(raw, "#"):
		return b, fmt.Errorf("backend URL must not have a fragment, got %q", clip(raw))
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return b, fmt.Errorf("%q has an empty port", clip(raw))
		}
		port = defPort
	}
	pn, err := strconv.Atoi(port)
	if err != nil || pn < 1 || pn > 65535 {
		return b, fmt.Errorf("port in %q must be a number from 1 to 65535", clip(raw))
	}
	port = strconv.Itoa(pn) // "080" and "80" are the same port
	// Canonical host for duplicate detection: IP addresses in their standard
	// form ("[0:0::1]" and "[::1]" are the same backend), names lower-cased.
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String()
	} else if validHostname(host) {
		host = strings.ToLower(host)
	} else {
		return b, fmt.Errorf("invalid host %q in %q", clip(host), clip(raw))
	}
	b.Scheme = u.Scheme
	b.Host = net.JoinHostPort(host, port)
	return b, nil
}

// parseProxy parses one trusted_proxies entry: a CIDR prefix or a bare IP
// address (which means /32 for IPv4 and /128 for IPv6). The result is masked,
// and IPv4-mapped IPv6 prefixes ("::ffff:10.0.0.0/104") become IPv4 prefixes
// so they match IPv4 clients.
func parseProxy(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, fmt.Errorf("invalid CIDR %q: want an address or prefix like \"10.0.0.0/8\" or \"fd00::/8\"", clip(s))
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return p, fmt.Errorf("invalid CIDR %q: want an address or prefix like \"10.0.0.0/8\" or \"fd00::/8\"", clip(s))
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}
