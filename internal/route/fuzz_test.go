package route

import (
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// refLookup is the plain first-match scan the index must agree with,
// written from the wording and not sharing the matcher's code
// (only NormalPath, which FuzzNormalPath checks against RFC 3986).
func refLookup(specs []Spec, r *Request) int {
	for i := range specs {
		if refMatch(&specs[i].Match, r) {
			return i
		}
	}
	return -1
}

func refMatch(m *Match, r *Request) bool {
	host := strings.ToLower(string(r.Host))
	if !strings.HasPrefix(host, "[") {
		host, _, _ = strings.Cut(host, ":")
		host = strings.TrimSuffix(host, ".")
	} else if i := strings.IndexByte(host, ']'); i >= 0 {
		host = host[:i+1]
	}
	if len(m.Host) > 0 {
		ok := false
		for _, h := range m.Host {
			h = strings.ToLower(h)
			if w, isWild := strings.CutPrefix(h, "*"); isWild {
				ok = ok || strings.HasSuffix(host, w) && len(host) > len(w)
			} else {
				ok = ok || host == h
			}
		}
		if !ok {
			return false
		}
	}
	target := string(r.Target)
	if i := strings.Index(target, "://"); i >= 0 && !strings.HasPrefix(target, "/") {
		rest := target[i+3:]
		if j := strings.IndexAny(rest, "/?"); j >= 0 {
			target = rest[j:]
		} else {
			target = ""
		}
	}
	rawPath, rawQuery, hasQuery := strings.Cut(target, "?")
	path := rawPath
	if path != "*" {
		path = string(NormalPath(nil, []byte(rawPath)))
	}
	if p := m.PathPrefix; p != "" {
		if strings.HasSuffix(p, "/") {
			if !strings.HasPrefix(path, p) {
				return false
			}
		} else if path != p && !strings.HasPrefix(path, p+"/") {
			return false
		}
	}
	if m.Path != "" && path != m.Path {
		return false
	}
	if m.PathRegex != "" && !regexp.MustCompile("^(?:"+m.PathRegex+")$").MatchString(path) {
		return false
	}
	if len(m.Method) > 0 && !contains(m.Method, string(r.Method)) {
		return false
	}
	var fields [][2]string
	if r.Fields != nil {
		for i := 0; i < r.Fields.Len(); i++ {
			n, v := r.Fields.At(i)
			fields = append(fields, [2]string{string(n), string(v)})
		}
	}
	for name, want := range m.Headers {
		ok := false
		for _, f := range fields {
			ok = ok || strings.EqualFold(f[0], name) && (want == "*" || f[1] == want)
		}
		if !ok {
			return false
		}
	}
	for name, want := range m.Cookies {
		ok := false
		for _, f := range fields {
			if !strings.EqualFold(f[0], "cookie") {
				continue
			}
			for _, kv := range strings.Split(f[1], ";") {
				n, v, eq := strings.Cut(strings.TrimSpace(kv), "=")
				v = strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`)
				ok = ok || eq && n == name && (want == "*" || v == want)
			}
		}
		if !ok {
			return false
		}
	}
	for name, want := range m.Query {
		ok := false
		if hasQuery {
			for _, kv := range strings.Split(rawQuery, "&") {
				if kv == "" {
					continue
				}
				n, v, _ := strings.Cut(kv, "=")
				n, _ = url.QueryUnescape(n)
				v, _ = url.QueryUnescape(v)
				ok = ok || n == name && (want == "*" || v == want)
			}
		}
		if !ok {
			return false
		}
	}
	if len(m.ClientIP) > 0 {
		ok := false
		for _, p := range m.ClientIP {
			ok = ok || p.Contains(r.ClientIP.Unmap())
		}
		if !ok {
			return false
		}
	}
	return true
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// gen draws choices from fuzz input; exhausted input reads as zeros.
type gen struct{ b []byte }

func (g *gen) n(k int) int {
	if len(g.b) == 0 {
		return 0
	}
	v := int(g.b[0])
	g.b = g.b[1:]
	return v % k
}

func (g *gen) pick(l ...string) string { return l[g.n(len(l))] }

func (g *gen) some(l ...string) []string {
	var out []string
	for range g.n(3) {
		out = append(out, g.pick(l...))
	}
	return out
}

// Alphabets small enough that routes and requests often meet. Query
// encodings are valid, since url.QueryUnescape rejects the others.
var (
	fzHosts    = []string{"a.com", "B.com", "x.a.com", "*.a.com", "*.x.a.com", "*.com", "[::1]"}
	fzReqHosts = []string{"a.com", "A.COM:80", "x.a.com", "y.x.a.com", "Y.X.A.com.", "b.com", "c.org", "", "a.com.", "[::1]:8080", "com"}
	fzPrefixes = []string{"/", "/a", "/a/", "/a/b", "/b/", "/a/b/", "//"}
	fzPaths    = []string{"/", "/a", "/a/", "/a/b", "/b", "/%2F"}
	fzRegexes  = []string{"/a.*", "/[ab]/c", "/(a|b)/?", ".*b", "/[^/]+/c", "/[a-c]{1,2}"} // the first two, last two by the fast path
	fzSegs     = []string{"a", "b", "c", "..", ".", "%61", "", "%2e%2E", "%2F", "A"}
	fzQueries  = []string{"q=1", "q=2", "q", "q=%31", "r=1", "q=1+2", "", "%71=1"}
	fzIPs      = []string{"10.1.1.1", "192.168.1.5", "::ffff:10.0.0.1", "2001:db8::1", "8.8.8.8"}
)

func genSpec(g *gen) Spec {
	var s Spec
	s.Pool = "p"
	if g.n(2) == 0 {
		s.Match.Host = g.some(fzHosts...)
	}
	switch g.n(4) {
	case 1:
		s.Match.PathPrefix = g.pick(fzPrefixes...)
	case 2:
		s.Match.Path = g.pick(fzPaths...)
	case 3:
		s.Match.PathPrefix = "/a"
		s.Match.Path = g.pick("/a", "/a/b")
	}
	if g.n(6) == 0 {
		s.Match.PathRegex = g.pick(fzRegexes...)
	}
	if g.n(4) == 0 {
		s.Match.Method = g.some("GET", "POST")
	}
	if g.n(4) == 0 {
		s.Match.Headers = map[string]string{g.pick("X-A", "x-b"): g.pick("1", "*")}
	}
	if g.n(5) == 0 {
		s.Match.Query = map[string]string{"q": g.pick("1", "*", "1 2")}
	}
	if g.n(5) == 0 {
		s.Match.Cookies = map[string]string{"c": g.pick("1", "*")}
	}
	if g.n(5) == 0 {
		s.Match.ClientIP = []netip.Prefix{netip.MustParsePrefix(g.pick("10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32"))}
	}
	return s
}

func genRequest(g *gen) *Request {
	var target strings.Builder
	if g.n(8) == 0 {
		target.WriteString("http://h")
	}
	for range g.n(5) {
		target.WriteString("/" + g.pick(fzSegs...))
	}
	if target.Len() == 0 || g.n(10) == 0 {
		target.WriteString("/")
	}
	if g.n(3) == 0 {
		target.WriteString("?" + g.pick(fzQueries...))
		if g.n(2) == 0 {
			target.WriteString("&" + g.pick(fzQueries...))
		}
	}
	t := target.String()
	if g.n(20) == 0 {
		t = "*"
	}
	var hdr []string
	for range g.n(4) {
		hdr = append(hdr, g.pick("X-A", "x-a", "X-B", "Cookie", "cookie")+": "+g.pick("1", "2", "c=1", "d=2; c=\"1\"", "c=2"))
	}
	r := req(g.pick("GET", "POST", "get"), g.pick(fzReqHosts...), t, hdr...)
	if g.n(2) == 0 {
		r.ClientIP = netip.MustParseAddr(g.pick(fzIPs...))
	}
	return r
}

func FuzzLookupMatchesScan(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("routes and requests"))
	f.Add([]byte{5, 0, 3, 1, 2, 9, 0, 0, 1, 4, 3, 3, 3, 7, 1, 1, 0, 2, 200, 100, 50, 25, 12, 6, 3, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &gen{b: data}
		specs := make([]Spec, 1+g.n(30))
		for i := range specs {
			specs[i] = genSpec(g)
		}
		tab, err := Compile(specs)
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		for range 1 + g.n(16) {
			r := genRequest(g)
			got, want := index(tab.Lookup(r)), refLookup(specs, r)
			if got != want {
				t.Fatalf("%s %q %q: Lookup gives route %d, the scan %d\nroutes: %+v", r.Method, r.Host, r.Target, got, want, specs)
			}
		}
	})
}
