package route

import (
	"strings"
	"testing"
)

func TestNormalPath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/", "/"},
		{"", "/"},
		{"a/b", "/a/b"},
		{"/a/b/c", "/a/b/c"},
		{"/public/../admin", "/admin"},
		{"/public/%2e%2e/admin", "/admin"},
		{"/public/%2E%2e/admin", "/admin"},
		{"/public/.%2e/admin", "/admin"},
		{"/a/./b", "/a/b"},
		{"/a/.", "/a/"},
		{"/a/..", "/"},
		{"/..", "/"},
		{"/../../x", "/x"},
		{"/.", "/"},
		{"/a/b/../../..", "/"},
		{"/a//..", "/a/"},
		{"//a", "//a"},
		{"/a/...", "/a/..."},
		{"/a/..b", "/a/..b"},
		{"/%61%62c", "/abc"},
		{"/%7e%5F%2D", "/~_-"},
		{"/a%2fb", "/a%2Fb"},
		{"/a%2Fb/..", "/"},
		{"/a%20b", "/a%20b"},
		{"/%zz/%4", "/%25zz/%254"},
		{"/%", "/%25"},
		{"/%7%30", "/%2570"},
		{"/x/%2e", "/x/"},
		{"/a/b/../c/./d", "/a/c/d"},
	} {
		if got := string(NormalPath(nil, []byte(c.in))); got != c.want {
			t.Errorf("NormalPath(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := string(NormalPath([]byte("keep"), []byte(c.in))); got != "keep"+c.want {
			t.Errorf("NormalPath(dst, %q) = %q, want prefix kept", c.in, got)
		}
	}
}

// refNormal is RFC 3986 written out plainly: decode unreserved
// percent-encodings (upper-casing the others), then the remove_dot_segments
// algorithm of section 5.2.4, step by step as the RFC words it.
func refNormal(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && ishex(p[i+1]) && ishex(p[i+2]) {
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if unreserved(d) {
				b.WriteByte(d)
			} else {
				b.WriteString("%" + strings.ToUpper(p[i+1:i+3]))
			}
			i += 2
			continue
		}
		if p[i] == '%' {
			b.WriteString("%25")
			continue
		}
		b.WriteByte(p[i])
	}
	in, out := b.String(), ""
	pop := func() {
		if i := strings.LastIndex(out, "/"); i >= 0 {
			out = out[:i]
		} else {
			out = ""
		}
	}
	for in != "" {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = "/" + in[3:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = "/" + in[4:]
			pop()
		case in == "/..":
			in = "/"
			pop()
		case in == "." || in == "..":
			in = ""
		default:
			j := strings.IndexByte(in[1:], '/')
			if j < 0 {
				out, in = out+in, ""
			} else {
				out, in = out+in[:j+1], in[j+1:]
			}
		}
	}
	return out
}

func FuzzNormalPath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/%2E/x", "//..//.", "a/./b/", "/%41%zz%", "/.../..a/.b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		out := NormalPath(nil, []byte(p))
		if len(out) == 0 || out[0] != '/' {
			t.Fatalf("NormalPath(%q) = %q: does not start at the root", p, out)
		}
		for _, seg := range strings.Split(string(out), "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("NormalPath(%q) = %q: has a dot segment", p, out)
			}
		}
		if again := NormalPath(nil, out); string(again) != string(out) {
			t.Fatalf("not idempotent: %q -> %q -> %q", p, out, again)
		}
		if !pathIsNormal(out) {
			t.Fatalf("pathIsNormal(%q) = false for NormalPath's own output", out)
		}
		if pathIsNormal([]byte(p)) && string(out) != p {
			t.Fatalf("pathIsNormal(%q) but NormalPath gives %q", p, out)
		}
		if want := refNormal(p); string(out) != want {
			t.Fatalf("NormalPath(%q) = %q, RFC 3986 reference gives %q", p, out, want)
		}
	})
}
