package route

import (
	"bytes"
	"net/netip"
	"regexp"
)

// Request is the protocol-neutral view of a request that Lookup needs. The
// HTTP/1.1 front fills it from its parsed head, an HTTP/2 front from the
// pseudo-header fields. Lookup neither keeps nor modifies anything it is
// given; the slices may alias a connection's read buffer.
type Request struct {
	Method []byte
	// Scheme is "http" or "https" as the client used it; empty means "http".
	// Only redirects read it.
	Scheme []byte
	// Host is the request's authority: the Host field (HTTP/1.1) or
	// :authority (HTTP/2). A port, a trailing dot and upper case are allowed.
	// For an absolute-form target the front must pass the target's
	// authority here, as RFC 9112 section 3.2.2 requires.
	Host []byte
	// Target is the request target as sent: origin-form path[?query],
	// absolute-form (only its path and query are used) or "*".
	Target []byte
	// ClientIP is the client address as trusted_proxies defines it.
	ClientIP netip.Addr
	// Fields gives access to the header fields; nil means none.
	Fields Fields
}

// Fields is the header section of a request, as a list of field lines in the
// order received. Implement it on a pointer type (for example a pointer to
// the front's parsed head): converting a pointer to an interface does not
// allocate, converting a slice does. Lookup calls it on the caller's
// goroutine only, and only during the call.
type Fields interface {
	// Len returns the number of field lines.
	Len() int
	// At returns the name and value of field line i (0 <= i < Len()), the
	// value without leading or trailing whitespace. HTTP/2 cookie crumbs may
	// be separate "cookie" lines; they are all read.
	At(i int) (name, value []byte)
}

// view is a Request prepared for matching: the path normalised and the query
// split off.
type view struct {
	method []byte
	path   []byte
	query  []byte // without the '?'; nil when the target has none
	fields Fields
	ip     netip.Addr
}

// pair is one name -> value condition; any means the value was "*".
type pair struct {
	name, value string
	any         bool
}

// matcher holds the compiled conditions of one route other than host, which
// only the index checks.
type matcher struct {
	hosts     []string // lower case; wildcards as ".example.com"
	path      string
	hasPath   bool
	prefix    string
	hasPrefix bool
	re        *regexp.Regexp // path_regex, anchored; kept for the index even when fast is set
	fast      *fastRe        // re's matcher without the regexp engine; nil when re's shape needs regexp
	methods   []string
	headers   []pair // names lower case
	query     []pair
	cookies   []pair
	clientIP  []netip.Prefix
}

// matchesAll reports whether the matcher has no condition at all.
func (m *matcher) matchesAll() bool {
	return len(m.hosts) == 0 && !m.hasPath && !m.hasPrefix && m.re == nil && len(m.methods) == 0 &&
		len(m.headers) == 0 && len(m.query) == 0 && len(m.cookies) == 0 && len(m.clientIP) == 0
}

// matchRest checks every condition the index does not guarantee. The index
// guarantees the host and, for a route with Path, the path (so PathPrefix is
// checked here); for a route with only PathPrefix, the prefix.
func (m *matcher) matchRest(v *view) bool {
	if m.hasPath && m.hasPrefix && !prefixMatch(v.path, m.prefix) {
		return false
	}
	if len(m.methods) > 0 && !m.methodMatch(v.method) {
		return false
	}
	if len(m.clientIP) > 0 && !m.ipMatch(v.ip) {
		return false
	}
	for i := range m.headers {
		if !headerMatch(v.fields, &m.headers[i]) {
			return false
		}
	}
	for i := range m.query {
		if !queryMatch(v.query, &m.query[i]) {
			return false
		}
	}
	for i := range m.cookies {
		if !cookieMatch(v.fields, &m.cookies[i]) {
			return false
		}
	}
	if m.fast != nil {
		if !m.fast.match(v.path) {
			return false
		}
	} else if m.re != nil && !m.re.Match(v.path) {
		return false
	}
	return true
}

func (m *matcher) methodMatch(method []byte) bool {
	for _, x := range m.methods {
		if string(method) == x {
			return true
		}
	}
	return false
}

func (m *matcher) ipMatch(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range m.clientIP {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// prefixMatch implements path_prefix: a prefix ending in "/" matches paths
// starting with it; any other matches the path equal to it or followed by "/".
func prefixMatch(p []byte, prefix string) bool {
	if len(p) < len(prefix) || string(p[:len(prefix)]) != prefix {
		return false
	}
	return prefix[len(prefix)-1] == '/' || len(p) == len(prefix) || p[len(prefix)] == '/'
}

// headerMatch holds when some field line named c.name (case-insensitively)
// has exactly the value c.value, or any value when c.any.
func headerMatch(f Fields, c *pair) bool {
	if f == nil {
		return false
	}
	for i, n := 0, f.Len(); i < n; i++ {
		name, value := f.At(i)
		if equalFold(name, c.name) && (c.any || string(value) == c.value) {
			return true
		}
	}
	return false
}

// cookieMatch holds when some cookie named c.name (case-sensitively) in any
// Cookie field line has the value c.value (surrounding DQUOTEs removed, as
// RFC 6265 section 4.1.1 allows them), or any value when c.any.
func cookieMatch(f Fields, c *pair) bool {
	if f == nil {
		return false
	}
	for i, n := 0, f.Len(); i < n; i++ {
		name, value := f.At(i)
		if !equalFold(name, "cookie") {
			continue
		}
		for len(value) > 0 {
			var kv []byte
			if j := bytes.IndexByte(value, ';'); j >= 0 {
				kv, value = value[:j], value[j+1:]
			} else {
				kv, value = value, nil
			}
			kv = trimSpace(kv)
			j := bytes.IndexByte(kv, '=')
			if j < 0 || string(kv[:j]) != c.name {
				continue
			}
			if c.any {
				return true
			}
			val := kv[j+1:]
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			if string(val) == c.value {
				return true
			}
		}
	}
	return false
}

// queryMatch holds when some parameter of the query whose name, decoded
// (percent-encoding and "+" as space, like an HTML form), equals c.name has
// the decoded value c.value, or any value when c.any. A parameter without
// "=" has the empty value.
func queryMatch(q []byte, c *pair) bool {
	for len(q) > 0 {
		var kv []byte
		if j := bytes.IndexByte(q, '&'); j >= 0 {
			kv, q = q[:j], q[j+1:]
		} else {
			kv, q = q, nil
		}
		name, value := kv, []byte(nil)
		if j := bytes.IndexByte(kv, '='); j >= 0 {
			name, value = kv[:j], kv[j+1:]
		}
		if !equalDecoded(name, c.name) {
			continue
		}
		if c.any || equalDecoded(value, c.value) {
			return true
		}
	}
	return false
}

// equalDecoded reports whether the query component enc, decoded, equals s.
// It decodes on the fly, so it never allocates.
func equalDecoded(enc []byte, s string) bool {
	j := 0
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch {
		case c == '+':
			c = ' '
		case c == '%' && i+2 < len(enc) && ishex(enc[i+1]) && ishex(enc[i+2]):
			c = unhex(enc[i+1])<<4 | unhex(enc[i+2])
			i += 2
		}
		if j >= len(s) || s[j] != c {
			return false
		}
		j++
	}
	return j == len(s)
}

// equalFold compares b with s, which is lower case, ASCII case-insensitively.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// hostName returns the name part of an authority: the port and one trailing
// dot removed; an IPv6 literal keeps its brackets.
func hostName(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i >= 0 {
			return h[:i+1]
		}
		return h
	}
	if i := bytes.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	if len(h) > 0 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	return h
}

func hasUpper(b []byte) bool {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// splitTarget returns the path and query of a request target. For the
// absolute form the scheme and authority are skipped (the path may then be
// empty, which normalises to "/");
// "*" and the authority form are returned whole as the path.
// slash is the path of an absolute-form target without one. Read-only.
var slash = []byte{'/'}

func splitTarget(t []byte) (path, query []byte) {
	if len(t) > 0 && t[0] != '/' {
		i := bytes.Index(t, []byte("://"))
		if i < 0 {
			return t, nil
		}
		t = t[i+3:]
		j := bytes.IndexAny(t, "/?")
		if j < 0 {
			return slash, nil // "http://h" means "/" (RFC 9112 section 3.2.2)
		}
		t = t[j:]
		if t[0] == '?' {
			return slash, t[1:]
		}
	}
	if i := bytes.IndexByte(t, '?'); i >= 0 {
		return t[:i], t[i+1:]
	}
	return t, nil
}
