package route

import (
	"net/netip"
	"strings"
	"testing"
)

// fieldList is a Fields over name/value pairs; a pointer, as the Fields
// contract advises, so that using it does not allocate.
type fieldList struct{ f [][2][]byte }

func (l *fieldList) Len() int                      { return len(l.f) }
func (l *fieldList) At(i int) (name, value []byte) { return l.f[i][0], l.f[i][1] }

// req builds a Request; hdr is "Name: value" lines.
func req(method, host, target string, hdr ...string) *Request {
	r := &Request{Method: []byte(method), Host: []byte(host), Target: []byte(target)}
	if len(hdr) > 0 {
		l := &fieldList{}
		for _, h := range hdr {
			n, v, _ := strings.Cut(h, ":")
			l.f = append(l.f, [2][]byte{[]byte(n), []byte(strings.TrimSpace(v))})
		}
		r.Fields = l
	}
	return r
}

func withIP(r *Request, ip string) *Request {
	r.ClientIP = netip.MustParseAddr(ip)
	return r
}

func mustCompile(t testing.TB, specs []Spec) *Table {
	t.Helper()
	tab, err := Compile(specs)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tab
}

func index(r *Route) int {
	if r == nil {
		return -1
	}
	return r.Index()
}
