package route

import (
	"net/netip"
	"testing"
)

func TestLookup(t *testing.T) {
	type probe struct {
		r    *Request
		want int // route index, -1 for no match
	}
	for _, c := range []struct {
		name   string
		specs  []Spec
		probes []probe
	}{
		{
			name:  "host exact, case, port, trailing dot",
			specs: []Spec{{Match: Match{Host: []string{"Api.Example.com"}}, Pool: "p"}},
			probes: []probe{
				{req("GET", "api.example.com", "/"), 0},
				{req("GET", "API.EXAMPLE.COM:8080", "/"), 0},
				{req("GET", "api.example.com.", "/"), 0},
				{req("GET", "api.example.com.:80", "/"), 0},
				{req("GET", "example.com", "/"), -1},
				{req("GET", "xapi.example.com", "/"), -1},
				{req("GET", "", "/"), -1},
			},
		},
		{
			name:  "wildcard",
			specs: []Spec{{Match: Match{Host: []string{"*.example.com"}}, Pool: "p"}},
			probes: []probe{
				{req("GET", "a.example.com", "/"), 0},
				{req("GET", "a.b.example.com:1", "/"), 0},
				{req("GET", "A.Example.COM", "/"), 0},
				{req("GET", "example.com", "/"), -1},
				{req("GET", ".example.com", "/"), -1},
				{req("GET", "xexample.com", "/"), -1},
				{req("GET", "example.com.evil", "/"), -1},
			},
		},
		{
			name: "order across exact, wildcard and hostless routes",
			specs: []Spec{
				{Match: Match{Host: []string{"*.example.com"}, PathPrefix: "/a/"}, Pool: "wild-a"},
				{Match: Match{PathPrefix: "/x"}, Pool: "any-x"},
				{Match: Match{Host: []string{"api.example.com"}}, Pool: "api"},
				{Match: Match{Host: []string{"*.b.example.com"}}, Pool: "wild-b"},
				{Match: Match{Host: []string{"*.example.com"}}, Pool: "wild"},
				{Pool: "default"},
			},
			probes: []probe{
				{req("GET", "api.example.com", "/a/1"), 0},
				{req("GET", "api.example.com", "/x/1"), 1},
				{req("GET", "api.example.com", "/y"), 2},
				{req("GET", "q.b.example.com", "/y"), 3},
				{req("GET", "q.b.example.com", "/a/"), 0},
				{req("GET", "b.example.com", "/y"), 4},
				{req("GET", "other.org", "/x"), 1},
				{req("GET", "other.org", "/a/"), 5},
				{req("GET", "", "/"), 5},
			},
		},
		{
			name: "path_prefix boundaries",
			specs: []Spec{
				{Match: Match{PathPrefix: "/api"}, Pool: "api"},
				{Match: Match{PathPrefix: "/static/"}, Pool: "static"},
				{Match: Match{PathPrefix: "/"}, Pool: "root"},
			},
			probes: []probe{
				{req("GET", "h", "/api"), 0},
				{req("GET", "h", "/api/"), 0},
				{req("GET", "h", "/api/x/y"), 0},
				{req("GET", "h", "/apix"), 2},
				{req("GET", "h", "/api?x=/"), 0},
				{req("GET", "h", "/static/"), 1},
				{req("GET", "h", "/static/a.css"), 1},
				{req("GET", "h", "/static"), 2},
				{req("GET", "h", "*"), -1},
			},
		},
		{
			name: "normalisation",
			specs: []Spec{
				{Match: Match{PathPrefix: "/public/"}, Pool: "public"},
				{Match: Match{Path: "/admin"}, Pool: "admin"},
				{Match: Match{Path: "/a%2Fb"}, Pool: "slash"},
			},
			probes: []probe{
				{req("GET", "h", "/public/x"), 0},
				{req("GET", "h", "/public/../admin"), 1},
				{req("GET", "h", "/public/%2e%2e/admin"), 1},
				{req("GET", "h", "/public/./../admin?x=1"), 1},
				{req("GET", "h", "/%70ublic/x"), 0},
				{req("GET", "h", "/%61dmin"), 1},
				{req("GET", "h", "/public%2F..%2Fadmin"), -1},
				{req("GET", "h", "/a%2fb"), 2},
				{req("GET", "h", "/a/b"), -1},
				{req("GET", "h", "/../../admin"), 1},
				{req("GET", "h", "http://h/public/x?q"), 0},
				{req("GET", "h", "http://h"), -1},
			},
		},
		{
			name: "path, path_regex and prefix together",
			specs: []Spec{
				{Match: Match{PathPrefix: "/v1/", Path: "/v1/ping"}, Pool: "ping"},
				{Match: Match{PathRegex: "/v[0-9]+"}, Pool: "re"},
				{Match: Match{PathPrefix: "/v2", PathRegex: `/v2/\w+`}, Pool: "re2"},
			},
			probes: []probe{
				{req("GET", "h", "/v1/ping"), 0},
				{req("GET", "h", "/v1/ping/"), -1},
				{req("GET", "h", "/v12"), 1},
				{req("GET", "h", "/v12/x"), -1},
				{req("GET", "h", "/xv12"), -1},
				{req("GET", "h", "/v2/abc"), 2},
				{req("GET", "h", "/v2/a/b"), -1},
			},
		},
		{
			name: "method, headers, query, cookies, client_ip",
			specs: []Spec{
				{Match: Match{Method: []string{"POST", "PUT"}}, Pool: "write"},
				{Match: Match{Headers: map[string]string{"X-Canary": "1"}}, Pool: "canary"},
				{Match: Match{Headers: map[string]string{"x-debug": "*"}}, Pool: "debug"},
				{Match: Match{Query: map[string]string{"v": "2 b"}}, Pool: "query"},
				{Match: Match{Query: map[string]string{"flag": "*"}}, Pool: "flag"},
				{Match: Match{Cookies: map[string]string{"sid": "abc"}}, Pool: "cookie"},
				{Match: Match{Cookies: map[string]string{"beta": "*"}}, Pool: "beta"},
				{Match: Match{ClientIP: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}}, Pool: "ip"},
			},
			probes: []probe{
				{req("PUT", "h", "/"), 0},
				{req("put", "h", "/"), -1},
				{req("GET", "h", "/", "x-canary: 1"), 1},
				{req("GET", "h", "/", "X-Canary: 2", "X-CANARY: 1"), 1},
				{req("GET", "h", "/", "X-Canary: 1, 2"), -1},
				{req("GET", "h", "/", "X-Debug: "), 2},
				{req("GET", "h", "/?v=2+b"), 3},
				{req("GET", "h", "/?a=1&v=2%20b"), 3},
				{req("GET", "h", "/?v=2"), -1},
				{req("GET", "h", "/?flag"), 4},
				{req("GET", "h", "/?flags=1"), -1},
				{req("GET", "h", "/", "Cookie: a=1; sid=abc"), 5},
				{req("GET", "h", "/", "Cookie: a=1", "cookie: sid=\"abc\""), 5},
				{req("GET", "h", "/", "Cookie: SID=abc"), -1},
				{req("GET", "h", "/", "Cookie: beta="), 6},
				{req("GET", "h", "/", "X-Sid: sid=abc"), -1},
				{withIP(req("GET", "h", "/"), "10.1.2.3"), 7},
				{withIP(req("GET", "h", "/"), "::ffff:10.1.2.3"), 7},
				{withIP(req("GET", "h", "/"), "2001:db8::1"), 7},
				{withIP(req("GET", "h", "/"), "11.1.2.3"), -1},
				{req("GET", "h", "/"), -1},
			},
		},
		{
			name: "conditions are ANDed",
			specs: []Spec{
				{Match: Match{Host: []string{"a.com"}, PathPrefix: "/x", Method: []string{"GET"}, Headers: map[string]string{"A": "1"}}, Pool: "all"},
				{Match: Match{Host: []string{"a.com", "b.com"}}, Pool: "hosts"},
			},
			probes: []probe{
				{req("GET", "a.com", "/x", "A: 1"), 0},
				{req("POST", "a.com", "/x", "A: 1"), 1},
				{req("GET", "a.com", "/y", "A: 1"), 1},
				{req("GET", "a.com", "/x"), 1},
				{req("GET", "b.com", "/x", "A: 1"), 1},
				{req("GET", "c.com", "/x", "A: 1"), -1},
			},
		},
		{
			name:   "IPv6 literal host",
			specs:  []Spec{{Match: Match{Host: []string{"[2001:DB8::1]"}}, Pool: "v6"}},
			probes: []probe{{req("GET", "[2001:db8::1]:8080", "/"), 0}, {req("GET", "[2001:db8::2]", "/"), -1}},
		},
		{
			name:   "empty table",
			probes: []probe{{req("GET", "h", "/"), -1}},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			tab := mustCompile(t, c.specs)
			for _, p := range c.probes {
				if got := index(tab.Lookup(p.r)); got != p.want {
					t.Errorf("%s %s %s: route %d, want %d", p.r.Method, p.r.Host, p.r.Target, got, p.want)
				}
			}
		})
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tab := mustCompile(t, []Spec{
		{Match: Match{Host: []string{"*.example.com"}, PathRegex: "/r/.*"}, Pool: "r"},
		{Match: Match{Host: []string{"a.example.com"}, PathPrefix: "/x/", Cookies: map[string]string{"c": "1"}, Query: map[string]string{"q": "1"}}, Pool: "x"},
		{Match: Match{Headers: map[string]string{"X-A": "*"}}, Pool: "h"},
	})
	for _, r := range []*Request{
		req("GET", "a.example.com", "/x/y?q=1", "Cookie: c=1"),
		req("GET", "A.EXAMPLE.COM", "/x/../x/%79?q=1", "Cookie: c=1"),
		req("GET", "b.example.com", "/r/%61"),
		req("GET", "none", "/z", "X-A: 1"),
	} {
		want := tab.Lookup(r)
		if want == nil {
			t.Fatalf("%s%s: no route", r.Host, r.Target)
		}
		if n := testing.AllocsPerRun(100, func() {
			if tab.Lookup(r) != want {
				t.Fatal("unstable lookup")
			}
		}); n != 0 {
			t.Errorf("%s%s: %v allocs per Lookup", r.Host, r.Target, n)
		}
	}
}
