// Benchmarks of Lookup over issue 11's scale: 1,000 hosts × 20 routes each
// (prefixes, exact paths with a method, prefixes with a header, regexes),
// then a wildcard and a catch-all, 20,002 routes in all; the Host is one in
// the middle. Measured with
// go test -run '^$' -bench Lookup -benchmem -count 5 ./internal/route/ (Go
// 1.26, 2 shared vCPU AMD EPYC, linux/amd64, other jobs running on the
// machine); ranges over five runs, each interleaved with a run of the code
// before the path_regex fast path (regexfast.go), whose figures follow "was":
//
//	BenchmarkLookup/prefix      127-174 ns/op  0 B/op  0 allocs/op  (path_prefix route of a host in the middle; was 134-197)
//	BenchmarkLookup/header      161-179 ns/op  0 B/op  0 allocs/op  (prefix + headers condition; was 164-246)
//	BenchmarkLookup/regex       146-201 ns/op  0 B/op  0 allocs/op  ("/svc19/[0-9]+" by the fast path; was 300-368 with RE2)
//	BenchmarkLookup/normalise   225-335 ns/op  0 B/op  0 allocs/op  (upper-case Host with port, "/x/../" in the path; was 206-281)
//	BenchmarkLookup/wildcard    109-147 ns/op  0 B/op  0 allocs/op  (was 106-138)
//	BenchmarkLookup/catch-all   104-133 ns/op  0 B/op  0 allocs/op  (was 97-131)
//	BenchmarkPickPool           ~21 ns/op      0 B/op  0 allocs/op  (the same with the old code)
//	BenchmarkCompile            118-148 ms/op for the 20,002 routes (was 90-106: each regex is parsed once more)
//
// Only regex differs beyond the noise: a lone -count 5 run gave 177-232 ns,
// and a round under heavier load 195-528 ns against 405-987 ns for the old
// code. BenchmarkRegexFast (regexfast_test.go), four shapes on matching
// paths of 12-24 bytes: 16-48 ns a fast match, 245-700 ns a regexp one.
//
// The bound is 300 ns and 0 allocations per lookup: met for host
// and path routes and for path_regex routes of the shapes the fast path
// takes (literals and repeated classes); any other regex pays for the RE2
// match on top.
package route

import (
	"fmt"
	"testing"
)

func benchSpecs() []Spec {
	var specs []Spec
	for h := range 1000 {
		host := fmt.Sprintf("site%d.example.com", h)
		for j := range 20 {
			s := Spec{Match: Match{Host: []string{host}}, Pool: fmt.Sprintf("pool%d", j%7)}
			switch j % 4 {
			case 0:
				s.Match.PathPrefix = fmt.Sprintf("/svc%d/", j)
			case 1:
				s.Match.Path = fmt.Sprintf("/svc%d/health", j)
				s.Match.Method = []string{"GET", "HEAD"}
			case 2:
				s.Match.PathPrefix = fmt.Sprintf("/svc%d", j)
				s.Match.Headers = map[string]string{"X-Canary": "1"}
			case 3:
				s.Match.PathRegex = fmt.Sprintf(`/svc%d/[0-9]+`, j)
			}
			specs = append(specs, s)
		}
	}
	specs = append(specs,
		Spec{Match: Match{Host: []string{"*.example.com"}}, Pool: "wild"},
		Spec{Pool: "default"})
	return specs
}

func BenchmarkLookup(b *testing.B) {
	tab := mustCompile(b, benchSpecs())
	for _, c := range []struct {
		name string
		r    *Request
		want int
	}{
		{"prefix", req("GET", "site500.example.com", "/svc16/users?id=7", "Accept: */*", "User-Agent: bench"), 500*20 + 16},
		{"header", req("GET", "site500.example.com", "/svc18/users", "Accept: */*", "X-Canary: 1"), 500*20 + 18},
		{"regex", req("GET", "site500.example.com", "/svc19/12345", "Accept: */*"), 500*20 + 19},
		{"normalise", req("GET", "Site500.Example.com:8080", "/svc16/x/../users", "Accept: */*"), 500*20 + 16},
		{"wildcard", req("GET", "other.example.com", "/svc16/users"), 20000},
		{"catch-all", req("GET", "example.org", "/svc16/users"), 20001},
	} {
		if got := index(tab.Lookup(c.r)); got != c.want {
			b.Fatalf("%s: route %d, want %d", c.name, got, c.want)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tab.Lookup(c.r)
			}
		})
	}
}

func BenchmarkPickPool(b *testing.B) {
	r := mustCompile(b, []Spec{{Split: []SplitTarget{{"api", 95}, {"canary", 5}}}}).Routes()[0]
	b.ReportAllocs()
	for b.Loop() {
		r.PickPool()
	}
}

func BenchmarkCompile(b *testing.B) {
	specs := benchSpecs()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(specs); err != nil {
			b.Fatal(err)
		}
	}
}
