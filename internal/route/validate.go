package route

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Limits that keep a compiled table small and every lookup bounded.
const (
	maxSplitTargets = 100
	maxSplitWeight  = 1000
	maxHostLen      = 253
)

// checker collects the problems of one route.
type checker struct {
	route int
	errs  []error
}

func (c *checker) errf(field, format string, args ...any) {
	c.errs = append(c.errs, &Error{Route: c.route, Field: field, Err: fmt.Errorf(format, args...)})
}

func (c *checker) err(field string, err error) {
	c.errs = append(c.errs, &Error{Route: c.route, Field: field, Err: err})
}

// hostPattern validates a match.host entry and returns its index key: lower
// case, one trailing dot removed, a wildcard "*.example.com" as
// ".example.com", an IPv6 literal in brackets and canonical form.
func hostPattern(h string) (string, error) {
	if h == "" {
		return "", errors.New("empty host")
	}
	if h == "*" {
		return "", errors.New(`"*" is not a host pattern (leave host out to match every host)`)
	}
	if strings.HasPrefix(h, "*.") {
		name, err := canonicalHost(h[2:])
		if err != nil {
			return "", err
		}
		if name[0] == '[' {
			return "", errors.New("a wildcard cannot cover an IP literal")
		}
		return "." + name, nil
	}
	if strings.Contains(h, "*") {
		return "", errors.New(`"*" may only stand as the whole first label ("*.example.com")`)
	}
	return canonicalHost(h)
}

// canonicalHost validates a DNS name or IP literal without port and returns its
// canonical form (lower case, no trailing dot, IPv6 in brackets).
func canonicalHost(h string) (string, error) {
	if strings.HasPrefix(h, "[") {
		if !strings.HasSuffix(h, "]") {
			return "", fmt.Errorf("%q: an IPv6 literal must be in brackets and without port", h)
		}
		a, err := netip.ParseAddr(h[1 : len(h)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", fmt.Errorf("%q: not an IPv6 address", h)
		}
		return "[" + a.String() + "]", nil
	}
	if strings.Contains(h, ":") {
		return "", fmt.Errorf("%q: must not have a port (the port is ignored when matching)", h)
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "" || len(h) > maxHostLen {
		return "", fmt.Errorf("%q: not a host name", h)
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("%q: empty or overlong label", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("%q: invalid character %q", h, c)
			}
		}
	}
	return h, nil
}

// hostPort validates host_rewrite: a host name or IP literal, optionally
// with a port.
func hostPort(s string) error {
	host, port := s, ""
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.HasSuffix(s, "]") {
		host, port = s[:i], s[i+1:]
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return fmt.Errorf("%q: port must be 1-65535", s)
		}
	}
	_, err := canonicalHost(host)
	return err
}

// checkPath validates a configured path (prefix, exact path, rewrite
// prefix): it must start with "/", use only characters a request target
// carries, and (when normal is set) be normalised, since it is compared with
// normalised request paths and would otherwise never match.
func checkPath(p string, normal bool) error {
	if p == "" || p[0] != '/' {
		return fmt.Errorf("%q: must start with \"/\"", p)
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c <= ' ' || c >= 0x7f:
			return fmt.Errorf("%q: character %q must be percent-encoded", p, c)
		case c == '?' || c == '#':
			return fmt.Errorf("%q: a path cannot contain %q", p, c)
		case c == '%' && !(i+2 < len(p) && ishex(p[i+1]) && ishex(p[i+2])):
			return fmt.Errorf("%q: invalid percent-encoding", p)
		}
	}
	if normal {
		if n := string(NormalPath(nil, []byte(p))); n != p {
			return fmt.Errorf("%q is not a normalised path and would never match; use %q", p, n)
		}
	}
	return nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// checkFieldValue validates a header value (RFC 9110 section 5.5): visible
// characters, spaces and tabs inside, no leading or trailing whitespace.
func checkFieldValue(v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return fmt.Errorf("%q: control character %q", v, c)
		}
	}
	if strings.TrimSpace(v) != v {
		return fmt.Errorf("%q: leading or trailing whitespace", v)
	}
	return nil
}

// forbiddenHeader reports the hop-by-hop and framing fields that modifiers
// may never set, add or remove: they belong to fulcrum's own connection and
// message handling (RFC 9110 section 7.6.1, RFC 9112 section 6).
func forbiddenHeader(lower string) bool {
	switch lower {
	case "connection", "keep-alive", "proxy-connection", "te", "trailer",
		"transfer-encoding", "upgrade", "content-length", "host":
		return true
	}
	return false
}

// standardMethod reports the methods of RFC 9110 section 9 and PATCH, to
// catch a configured "get" that would never match (methods are
// case-sensitive).
func standardMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
		return true
	}
	return false
}

// compilePairs validates a headers/query/cookies map and returns it sorted by
// name. kind selects the name rules.
func (c *checker) compilePairs(field string, m map[string]string, kind string) []pair {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]pair, 0, len(m))
	seen := map[string]string{}
	for _, n := range names {
		v := m[n]
		f := field + "." + n
		key := n
		switch kind {
		case "header":
			if !isToken(n) {
				c.errf(f, "%q is not a header field name", n)
				continue
			}
			key = strings.ToLower(n)
			if prev, ok := seen[key]; ok {
				c.errf(f, "duplicate of %s.%s (header names are case-insensitive)", field, prev)
				continue
			}
			seen[key] = n
			if v != "*" {
				if err := checkFieldValue(v); err != nil {
					c.err(f, err)
					continue
				}
			}
		case "cookie":
			if !isToken(n) {
				c.errf(f, "%q is not a cookie name", n)
				continue
			}
			if v != "*" && (strings.ContainsAny(v, ";, \t\"\\") || checkFieldValue(v) != nil) {
				c.errf(f, "%q is not a cookie value", v)
				continue
			}
		default: // query: any decoded name and value
			if n == "" {
				c.errf(f, "empty query parameter name")
				continue
			}
		}
		out = append(out, pair{name: key, value: v, any: v == "*"})
	}
	return out
}

// compileOps validates request_headers / response_headers.
func (c *checker) compileOps(field string, h HeaderOps) Ops {
	var ops Ops
	owner := map[string]string{} // lower name -> where it was first used
	use := func(f, name string) bool {
		if !isToken(name) {
			c.errf(f, "%q is not a header field name", name)
			return false
		}
		l := strings.ToLower(name)
		if forbiddenHeader(l) {
			c.errf(f, "%s is a hop-by-hop or framing header that fulcrum manages itself", name)
			return false
		}
		if prev, ok := owner[l]; ok {
			c.errf(f, "%s is already changed by %s", name, prev)
			return false
		}
		owner[l] = f
		return true
	}
	for i, n := range h.Remove {
		if use(fmt.Sprintf("%s.remove[%d]", field, i), n) {
			ops.Remove = append(ops.Remove, strings.ToLower(n))
		}
	}
	for _, kind := range []string{"set", "add"} {
		m := h.Set
		if kind == "add" {
			m = h.Add
		}
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			f := field + "." + kind + "." + n
			if !use(f, n) {
				continue
			}
			if err := checkFieldValue(m[n]); err != nil {
				c.err(f, err)
				continue
			}
			fl := Field{Name: n, Value: m[n]}
			if kind == "set" {
				ops.Set = append(ops.Set, fl)
			} else {
				ops.Add = append(ops.Add, fl)
			}
		}
	}
	return ops
}
