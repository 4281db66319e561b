package route

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	ok := Spec{Pool: "p"}
	with := func(f func(*Spec)) Spec { s := ok; f(&s); return s }
	for _, c := range []struct {
		spec Spec
		want string // one expected message, located
	}{
		{Spec{}, "routes[1]: no action"},
		{with(func(s *Spec) { s.Respond = &Respond{} }), "routes[1]: pool and respond are set"},
		{with(func(s *Spec) { s.Match.PathRegex = "(" }), "routes[1].match.path_regex: error parsing regexp: missing closing ): `(`"},
		{with(func(s *Spec) { s.Match.Host = []string{"ok.com", "a.com:80"} }), "routes[1].match.host[1]: \"a.com:80\": must not have a port"},
		{with(func(s *Spec) { s.Match.Host = []string{"a.*.com"} }), "routes[1].match.host[0]: \"*\" may only stand"},
		{with(func(s *Spec) { s.Match.Host = []string{"*"} }), "routes[1].match.host[0]: \"*\" is not a host pattern"},
		{with(func(s *Spec) { s.Match.Host = []string{"a b"} }), "routes[1].match.host[0]"},
		{with(func(s *Spec) { s.Match.PathPrefix = "api" }), "routes[1].match.path_prefix: \"api\": must start with \"/\""},
		{with(func(s *Spec) { s.Match.PathPrefix = "/a/../b/" }), "routes[1].match.path_prefix: \"/a/../b/\" is not a normalised path and would never match; use \"/b/\""},
		{with(func(s *Spec) { s.Match.Path = "/%61" }), "routes[1].match.path: \"/%61\" is not a normalised path"},
		{with(func(s *Spec) { s.Match.Path = "/a b" }), "routes[1].match.path: \"/a b\": character ' ' must be percent-encoded"},
		{with(func(s *Spec) { s.Match.Path = "/a?b" }), "routes[1].match.path: \"/a?b\": a path cannot contain '?'"},
		{with(func(s *Spec) { s.Match.PathPrefix, s.Match.Path = "/a/", "/b" }), "routes[1].match.path: \"/b\" is outside match.path_prefix"},
		{with(func(s *Spec) { s.Match.Method = []string{"get"} }), "routes[1].match.method[0]: \"get\" never matches: methods are case-sensitive (did you mean \"GET\"?)"},
		{with(func(s *Spec) { s.Match.Method = []string{"G T"} }), "routes[1].match.method[0]: \"G T\" is not a method"},
		{with(func(s *Spec) { s.Match.Headers = map[string]string{"X-A": "1", "x-a": "2"} }), "routes[1].match.headers.x-a: duplicate of match.headers.X-A"},
		{with(func(s *Spec) { s.Match.Headers = map[string]string{"X A": "1"} }), "routes[1].match.headers.X A: \"X A\" is not a header field name"},
		{with(func(s *Spec) { s.Match.Headers = map[string]string{"X-A": "1\r\n"} }), "routes[1].match.headers.X-A: \"1\\r\\n\": control character"},
		{with(func(s *Spec) { s.Match.Cookies = map[string]string{"c": "a;b"} }), "routes[1].match.cookies.c: \"a;b\" is not a cookie value"},
		{with(func(s *Spec) { s.Match.Query = map[string]string{"": "1"} }), "routes[1].match.query.: empty query parameter name"},
		{with(func(s *Spec) { s.Match.ClientIP = []netip.Prefix{{}} }), "routes[1].match.client_ip[0]: not a CIDR prefix"},
		{Spec{Split: []SplitTarget{{Pool: "a", Weight: 1}, {Pool: "a", Weight: 0}}}, "routes[1].split[1].pool: \"a\" is already split[0]"},
		{Spec{Split: []SplitTarget{{Pool: "a", Weight: 1}, {Pool: "b", Weight: 0}}}, "routes[1].split[1].weight: must be 1-1000, got 0"},
		{Spec{Split: []SplitTarget{{Weight: 1}}}, "routes[1].split[0].pool: required"},
		{Spec{Redirect: &Redirect{Path: "/x", Status: 200}}, "routes[1].redirect.status: must be 301, 302, 303, 307 or 308, got 200"},
		{Spec{Redirect: &Redirect{}}, "routes[1].redirect: sets nothing"},
		{Spec{Redirect: &Redirect{Scheme: "ftp"}}, "routes[1].redirect.scheme: must be http or https"},
		{Spec{Redirect: &Redirect{Port: 70000}}, "routes[1].redirect.port: must be 1-65535"},
		{Spec{Redirect: &Redirect{Host: "a.com:80"}}, "routes[1].redirect.host"},
		{Spec{Redirect: &Redirect{Path: "x"}}, "routes[1].redirect.path"},
		{Spec{Respond: &Respond{Status: 99}}, "routes[1].respond.status: must be 200-599, got 99"},
		{Spec{Respond: &Respond{Status: 204, Body: "x"}}, "routes[1].respond.body: a 204 response has no body"},
		{Spec{Respond: &Respond{ContentType: "a\nb"}}, "routes[1].respond.content_type"},
		{Spec{Respond: &Respond{}, StripPrefix: "/a"}, "routes[1].strip_prefix: applies only to routes with pool or split, not respond"},
		{Spec{Redirect: &Redirect{Path: "/"}, RequestHeaders: HeaderOps{Remove: []string{"X"}}}, "routes[1].request_headers: applies only to routes with pool or split, not redirect"},
		{with(func(s *Spec) { s.StripPrefix = "/" }), "routes[1].strip_prefix: \"/\" strips nothing"},
		{with(func(s *Spec) { s.StripPrefix = "v1" }), "routes[1].strip_prefix: \"v1\": must start with \"/\""},
		{with(func(s *Spec) { s.AddPrefix = "/a/./b" }), "routes[1].add_prefix: \"/a/./b\" is not a normalised path"},
		{with(func(s *Spec) { s.HostRewrite = "a.com:0" }), "routes[1].host_rewrite: \"a.com:0\": port must be 1-65535"},
		{with(func(s *Spec) { s.RequestHeaders.Set = map[string]string{"Connection": "close"} }), "routes[1].request_headers.set.Connection: Connection is a hop-by-hop or framing header"},
		{with(func(s *Spec) { s.RequestHeaders.Add = map[string]string{"transfer-encoding": "chunked"} }), "routes[1].request_headers.add.transfer-encoding: transfer-encoding is a hop-by-hop or framing header"},
		{with(func(s *Spec) { s.ResponseHeaders.Remove = []string{"Content-Length"} }), "routes[1].response_headers.remove[0]: Content-Length is a hop-by-hop or framing header"},
		{with(func(s *Spec) { s.RequestHeaders.Set = map[string]string{"HOST": "x"} }), "routes[1].request_headers.set.HOST: HOST is a hop-by-hop or framing header"},
		{with(func(s *Spec) {
			s.ResponseHeaders = HeaderOps{Remove: []string{"x-a"}, Set: map[string]string{"X-A": "1"}}
		}), "routes[1].response_headers.set.X-A: X-A is already changed by response_headers.remove[0]"},
		{with(func(s *Spec) { s.ResponseHeaders.Add = map[string]string{"X-A": " 1"} }), "routes[1].response_headers.add.X-A: \" 1\": leading or trailing whitespace"},
		{with(func(s *Spec) { s.Name = "a/b" }), "routes[1].name: \"a/b\": a name may not contain '/'"},
		{with(func(s *Spec) { s.Name = "first" }), "routes[1].name: \"first\" is already the name of routes[0]"},
	} {
		specs := []Spec{{Name: "first", Pool: "p"}, c.spec}
		_, err := Compile(specs)
		if err == nil {
			t.Errorf("want error %q, got none", c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %q\nwant it to contain %q", err, c.want)
		}
		var e *Error
		if !errors.As(err, &e) || e.Route != 1 {
			t.Errorf("error %q: not an *Error for route 1", err)
		}
	}
}

func TestCompileReportsEveryProblem(t *testing.T) {
	_, err := Compile([]Spec{
		{Match: Match{PathRegex: "["}, Pool: "p"},
		{Pool: "p"},
		{Redirect: &Redirect{Status: 200, Path: "/"}, Pool: "p"},
		{Split: []SplitTarget{{Pool: "a", Weight: -1}}},
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"routes[0].match.path_regex", "routes[2]: pool and redirect", "routes[3].split[0].weight"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q missing from\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "routes[1]") {
		t.Errorf("routes[1] is valid, yet reported:\n%v", err)
	}
}

func TestCompileDefaults(t *testing.T) {
	tab := mustCompile(t, []Spec{
		{Redirect: &Redirect{Scheme: "HTTPS", Host: "WWW.Example.com."}},
		{Respond: &Respond{Body: "pong\n"}},
		{Match: Match{Host: []string{"a.com"}}, Split: []SplitTarget{{Pool: "a", Weight: 1}}, StripPrefix: "/v1/", AddPrefix: "/api/",
			RequestHeaders: HeaderOps{Set: map[string]string{"X-B": "2", "X-A": "1"}, Remove: []string{"X-Drop"}}},
	})
	rs := tab.Routes()
	if d := rs[0].Redirect(); d.Status != 301 || d.Scheme != "https" || d.Host != "www.example.com" || rs[0].Action() != ActionRedirect {
		t.Errorf("redirect defaults: %+v %v", d, rs[0].Action())
	}
	if d := rs[1].Respond(); d.Status != 200 || d.ContentType != "text/plain; charset=utf-8" || d.Body != "pong\n" {
		t.Errorf("respond defaults: %+v", d)
	}
	ops := rs[2].RequestHeaders()
	if len(ops.Set) != 2 || ops.Set[0].Name != "X-A" || ops.Set[1].Name != "X-B" || len(ops.Remove) != 1 || ops.Remove[0] != "x-drop" {
		t.Errorf("ops not compiled in name order: %+v", ops)
	}
	if !rs[2].ResponseHeaders().Empty() || rs[2].PickPool() != "a" || rs[2].Pool() != "" || rs[2].Action() != ActionSplit {
		t.Errorf("split route: %+v", rs[2])
	}
}
