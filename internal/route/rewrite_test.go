package route

import "testing"

func TestAppendTarget(t *testing.T) {
	for _, c := range []struct {
		strip, add, in, want string
	}{
		{"", "", "/v1/../x?a=%2e", "/v1/../x?a=%2e"}, // no rewrite: the client's own target
		{"/v1", "", "/v1/users?id=1", "/users?id=1"},
		{"/v1", "", "/v1", "/"},
		{"/v1", "", "/v1/", "/"},
		{"/v1", "", "/v1?x", "/?x"},
		{"/v1", "", "/v1x/y", "/v1x/y"},
		{"/v1", "", "/other", "/other"},
		{"/v1/", "", "/v1/a", "/a"},
		{"/v1", "", "/%76%31/a", "/a"},
		{"/v1", "", "/v1/../v1/secret", "/secret"},
		{"/v1", "", "/v1/a?", "/a?"},
		{"", "/api", "/users?x=1", "/api/users?x=1"},
		{"", "/api/", "/users", "/api/users"},
		{"", "/api", "/", "/api/"},
		{"/v1", "/v2", "/v1/x?q=1&r", "/v2/x?q=1&r"},
		{"/v1", "", "http://h/v1/x?q", "/x?q"},
		{"/v1", "", "*", "*"},
	} {
		r := mustCompile(t, []Spec{{Pool: "p", StripPrefix: c.strip, AddPrefix: c.add}}).Routes()[0]
		if got := string(r.AppendTarget([]byte("GET "), []byte(c.in))); got != "GET "+c.want {
			t.Errorf("strip %q add %q %q: %q, want %q", c.strip, c.add, c.in, got, "GET "+c.want)
		}
		if r.Rewrites() != (c.strip != "" || c.add != "") {
			t.Errorf("Rewrites() = %v", r.Rewrites())
		}
	}
}

func TestAppendLocation(t *testing.T) {
	for _, c := range []struct {
		d      Redirect
		scheme string
		host   string
		target string
		want   string
	}{
		{Redirect{Path: "/new/"}, "", "a.com", "/old/x?q=1", "http://a.com/new/?q=1"},
		{Redirect{Path: "/new/"}, "", "a.com:8080", "/old/x", "http://a.com:8080/new/"},
		{Redirect{Scheme: "https"}, "", "a.com:8080", "/x?y", "https://a.com/x?y"},
		{Redirect{Scheme: "https"}, "", "a.com:80", "/x", "https://a.com/x"},
		{Redirect{Scheme: "https", Port: 8443}, "", "a.com", "/x", "https://a.com:8443/x"},
		{Redirect{Scheme: "https", Port: 443}, "", "a.com", "/x", "https://a.com/x"},
		{Redirect{Host: "b.com"}, "https", "a.com:8443", "/x", "https://b.com:8443/x"},
		{Redirect{Host: "b.com"}, "", "a.com:80", "/x", "http://b.com/x"},
		{Redirect{Port: 8080}, "", "[::1]:80", "/", "http://[::1]:8080/"},
		{Redirect{Path: "/p"}, "", "a.com.", "/", "http://a.com/p"},
		{Redirect{Path: "/p"}, "", "", "/x?q", "/p?q"},
		{Redirect{Host: "b.com"}, "", "", "/x", "http://b.com/x"},
		{Redirect{Host: "b.com"}, "", "a.com", "http://a.com/x?q", "http://b.com/x?q"},
		{Redirect{Host: "b.com"}, "", "a.com", "*", "http://b.com/"},
		{Redirect{Host: "b.com"}, "", "a.com", "/a\r\nb", "http://b.com/a%0D%0Ab"},
		{Redirect{Path: "/p"}, "", "evil.com/x", "/", "/p"},
	} {
		r := mustCompile(t, []Spec{{Redirect: &c.d}}).Routes()[0]
		in := &Request{Scheme: []byte(c.scheme), Host: []byte(c.host), Target: []byte(c.target)}
		if got := string(r.AppendLocation(nil, in)); got != c.want {
			t.Errorf("%+v %s %s %s: %q, want %q", c.d, c.scheme, c.host, c.target, got, c.want)
		}
	}
}
