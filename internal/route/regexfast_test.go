package route

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// describe renders a fastRe for the tables: literals quoted, classes as
// byte ranges with their count, `"/svc/" [0-9]{1,}`; "nil" when refused.
func describe(f *fastRe) string {
	if f == nil {
		return "nil"
	}
	var parts []string
	for _, it := range f.items {
		if it.lit != "" {
			parts = append(parts, fmt.Sprintf("%q", it.lit))
			continue
		}
		var b strings.Builder
		b.WriteByte('[')
		for c := 0; c < 256; c++ {
			if !it.set.has(byte(c)) {
				continue
			}
			d := c
			for d+1 < 256 && it.set.has(byte(d+1)) {
				d++
			}
			b.WriteString(byteName(byte(c)))
			if d > c {
				b.WriteString("-" + byteName(byte(d)))
			}
			c = d
		}
		b.WriteByte(']')
		if it.max < 0 {
			fmt.Fprintf(&b, "{%d,}", it.min)
		} else {
			fmt.Fprintf(&b, "{%d,%d}", it.min, it.max)
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, " ")
}

func byteName(c byte) string {
	if c > ' ' && c < 0x7f {
		return string(rune(c))
	}
	return fmt.Sprintf(`\x%02x`, c)
}

func TestCompileFastShapes(t *testing.T) {
	for _, c := range []struct{ pattern, want string }{
		// Accepted.
		{`/svc19/[0-9]+`, `"/svc19/" [0-9]{1,}`},
		{`/users/[^/]+/orders`, `"/users/" [\x00-.0-\xff]{1,} "/orders"`},
		{`/static/.*`, `"/static/" [\x00-\x09\x0b-\xff]{0,}`},
		{`/v[0-9]/items`, `"/v" [0-9]{1,1} "/items"`},
		{`/api/[a-z0-9-]{3,}`, `"/api/" [-0-9a-z]{3,}`},
		{`/api/[a-z0-9-]{3,8}`, `"/api/" [-0-9a-z]{3,8}`},
		{`/id/[0-9]{0,4}`, `"/id/" [0-9]{0,4}`},
		{`/id/[0-9][0-9]+`, `"/id/" [0-9]{2,}`},
		{`/id/[0-9]?`, `"/id/" [0-9]{0,1}`},
		{`/id/(?:[0-9]?)+`, `"/id/" [0-9]{0,}`},
		{`/a/b`, `"/a/b"`},
		{`^/a/b$`, `"/a/b"`},
		{`\A/a\z`, `"/a"`},
		{`^^/a$$`, `"/a"`},
		{`(/users)/([0-9]+)`, `"/users/" [0-9]{1,}`},
		{`(?:/a(?:/b))(/c)`, `"/a/b/c"`},
		{`/aa+`, `"/a" [a]{1,}`},
		{`/a{2,}`, `"/a" [a]{1,}`},
		{`/x+?y`, `"/" [x]{1,} "y"`},
		{`(?s)/f/.+`, `"/f/" [\x00-\xff]{1,}`},
		{`/[\x{80}-\x{10FFFF}]*`, `"/" [\x80-\xff]{0,}`},
		{`/café/[0-9]+`, `"/café/" [0-9]{1,}`},
		{`/[0-9]+é`, `"/" [0-9]{1,} "é"`},
		{`(?i)[a-c]+/`, `[A-Ca-c]{1,} "/"`}, // ASCII-only fold: the class's ranges are exact
		{`/[0-9]{0}x`, `"/x"`},
		{`/[^/]+/`, `"/" [\x00-.0-\xff]{1,} "/"`},
		{`(?:)`, ``},
		{`^$`, ``},
		// Refused.
		{`/ab|/cd`, `nil`},
		{`/(ab|cd)`, `nil`},
		{`/a|/b`, `"/" [a-b]{1,1}`}, // the parser makes it a class
		{`/(a|b)`, `"/" [a-b]{1,1}`},
		{`(?i)/1/`, `"/1/"`},     // no letter to fold
		{`/[0-9]+[a-z]+`, `nil`}, // two classes in a row
		{`/[a-z]+a`, `nil`},      // literal starts inside the class
		{`/.*x`, `nil`},          // . eats x
		{`/.{3}`, `nil`},         // counted rune class: bytes != runes
		{`/[^/]{1,8}`, `nil`},    // bounded
		{`/[^/]{2,}`, `nil`},     // min 2
		{`/.+.+`, `nil`},         // joined to min 2
		{`/.?`, `nil`},           // bounded at 1
		{`/[é]+`, `nil`},         // some non-ASCII runes, not all
		{`/\pL+`, `nil`},         // likewise
		{`(?i)/abc`, `nil`},      // folded literal
		{`(?i)[k]+`, `nil`},      // folds to the Kelvin sign
		{`/\x{FFFD}`, `nil`},     // U+FFFD also matches invalid bytes
		{`/\x{D800}`, `nil`},     // a surrogate never matches
		{`/a$/b`, `nil`},         // $ inside
		{`/a^b`, `nil`},          // ^ inside
		{`$^`, `nil`},
		{`(?m)^/a$`, `nil`},       // line anchors
		{`/\b[0-9]+`, `nil`},      // word boundary
		{`/(?:[0-9]{2})*`, `nil`}, // even counts only
		{`/(?:[0-9]{2,3})?`, `nil`},
		{`/(?:ab)+`, `nil`},
		{`[^\x00-\x{10FFFF}]`, `nil`}, // matches nothing
		{`/a(`, `nil`},                // not a regex
	} {
		got := describe(compileFast(c.pattern))
		if got != c.want {
			t.Errorf("compileFast(%q) = %s\nwant %s", c.pattern, got, c.want)
		}
	}
}

// fastAlphabet holds bytes that sit on every boundary the fast path cares
// about: the classes' edges, '/', '\n', a two-byte rune (é = c3 a9), a lone
// continuation byte and an invalid byte.
var fastAlphabet = []byte{'/', 'a', 'x', '0', '9', '-', '\n', 0xc3, 0xa9, 0xff}

// TestFastMatchesRegexp compares the fast path with regexp on every string
// of up to 5 bytes over fastAlphabet, after the literal part of the pattern
// so that the interesting bytes meet the classes.
func TestFastMatchesRegexp(t *testing.T) {
	for _, p := range []string{
		`/[0-9]+`, `/[^/]+`, `/[^/]+/a`, `/.*`, `(?s)/.*`, `/.+`, `/[0-9]{2,3}`,
		`/[a-z0-9-]{1,}/x`, `/[0-9]?a`, `/[\x{80}-\x{10FFFF}]+`, `/[^/]*/[0-9]+`,
		`/[^a]+a`, `/café`, `/x*`, `/a`, `/`, `/(?:[a-z]?)+9`,
	} {
		f := compileFast(p)
		if f == nil {
			t.Fatalf("%q: refused", p)
		}
		re := regexp.MustCompile(`^(?:` + p + `)$`)
		var walk func(s []byte)
		walk = func(s []byte) {
			for _, path := range [][]byte{s, append([]byte("/"), s...)} {
				if got, want := f.match(path), re.Match(path); got != want {
					t.Fatalf("%q on %q: fast %v, regexp %v", p, path, got, want)
				}
			}
			if len(s) == 5 {
				return
			}
			for _, c := range fastAlphabet {
				walk(append(s, c))
			}
		}
		walk(make([]byte, 0, 8))
	}
}

func TestFastUsedByLookup(t *testing.T) {
	tab := mustCompile(t, []Spec{
		{Match: Match{PathRegex: `/svc19/[0-9]+`}, Pool: "fast"},
		{Match: Match{PathRegex: `/(ab|cd)/[0-9]+`}, Pool: "slow"},
	})
	rs := tab.Routes()
	if rs[0].m.fast == nil || rs[1].m.fast != nil || rs[0].m.re == nil || rs[1].m.re == nil {
		t.Fatalf("fast paths: %s, %s", describe(rs[0].m.fast), describe(rs[1].m.fast))
	}
	for path, want := range map[string]int{"/svc19/12": 0, "/svc19/": -1, "/svc19/1x": -1, "/ab/1": 1, "/cd/2": 1, "/c/1": -1} {
		if got := index(tab.Lookup(req("GET", "h", path))); got != want {
			t.Errorf("%s: route %d, want %d", path, got, want)
		}
	}
	path := []byte("/svc19/12345")
	if n := testing.AllocsPerRun(100, func() { rs[0].m.fast.match(path) }); n != 0 {
		t.Errorf("match allocates %v times", n)
	}
}

// witness builds, from the entropy in e, a path near the language of f:
// each literal (sometimes cut or with a byte changed), each class run at a
// count around its bounds made of bytes of the class or, now and then, of e.
// Random paths seldom get past a pattern's first literal; these do.
func witness(f *fastRe, e []byte) []byte {
	g := &gen{b: e}
	var out []byte
	for _, it := range f.items {
		if it.lit != "" {
			lit := []byte(it.lit)
			switch g.n(8) {
			case 0:
				lit = lit[:g.n(len(lit))]
			case 1:
				lit[g.n(len(lit))] = byte(g.n(256))
			}
			out = append(out, lit...)
			continue
		}
		n := it.min - 1 + g.n(4)
		if it.max >= 0 && g.n(2) == 0 {
			n = it.max - 1 + g.n(3)
		}
		var members []byte
		for c := 0; c < 256; c++ {
			if it.set.has(byte(c)) {
				members = append(members, byte(c))
			}
		}
		for range n {
			if g.n(6) == 0 {
				out = append(out, byte(g.n(256)))
			} else {
				out = append(out, members[g.n(len(members))])
			}
		}
	}
	if g.n(6) == 0 {
		out = append(out, byte(g.n(256)))
	}
	return out
}

// FuzzRegexFast checks the fast path against regexp: whenever the pattern
// is a valid path_regex and compileFast accepts it, both must agree on the
// given path and on paths built near the pattern's language.
func FuzzRegexFast(f *testing.F) {
	for _, p := range []string{
		`/svc19/[0-9]+`, `/users/[^/]+/orders`, `/static/.*`, `/v[0-9]/items`, `/api/[a-z0-9-]{3,}`,
		`/id/[0-9]{2,4}`, `^/a$`, `/a$`, `^/[^/]*$`, `(?s)/f/.+`, `/café/[^/]+`, `/[\x{80}-\x{10FFFF}]*x`,
		`(/u)/([0-9]+)`, `/x+?y`, `/[0-9]{0,1000}`, `/a{2,}`, `(?i)[a-c]+/`, `/\n+\x00`, `/[^\n]+`,
		`/.{3}`, `/[^/]{1,8}`, `/(?:[0-9]{2})*`, `/a|/b`, `/\x{FFFD}`, `(?m)^/a$`,
	} {
		for _, path := range []string{"", "/", "/svc19/12345", "/users/é/orders", "/static/\n", "/caf\xc3\xa9/x",
			"/\xff", "/\xc3", "/\xa9\xa9", "/api/abc-9", "/id/123", "/a\n", "/\xef\xbf\xbd", "/f/\x00\x80"} {
			f.Add(p, []byte(path))
		}
	}
	f.Fuzz(func(t *testing.T, pattern string, path []byte) {
		if _, err := regexp.Compile(pattern); err != nil {
			return
		}
		re, err := regexp.Compile(`^(?:` + pattern + `)$`)
		if err != nil {
			return
		}
		fr := compileFast(pattern)
		if fr == nil {
			return
		}
		for _, p := range [][]byte{path, witness(fr, path)} {
			if got, want := fr.match(p), re.Match(p); got != want {
				t.Fatalf("%q (%s) on %q: fast %v, regexp %v", pattern, describe(fr), p, got, want)
			}
		}
	})
}

// BenchmarkRegexFast compares one match by the fast path with one by
// regexp, for the shapes routes use, on a matching path.
func BenchmarkRegexFast(b *testing.B) {
	for _, c := range []struct{ name, pattern, path string }{
		{"digits", `/svc19/[0-9]+`, "/svc19/12345"},
		{"segment", `/users/[^/]+/orders`, "/users/u-8812/orders"},
		{"rest", `/static/.*`, "/static/css/site.min.css"},
		{"counted", `/api/[a-z0-9-]{3,}`, "/api/user-profile-v2"},
	} {
		f := compileFast(c.pattern)
		if f == nil {
			b.Fatalf("%q: refused", c.pattern)
		}
		re := regexp.MustCompile(`^(?:` + c.pattern + `)$`)
		path := []byte(c.path)
		if !f.match(path) || !re.Match(path) {
			b.Fatalf("%q does not match %q", c.pattern, c.path)
		}
		b.Run(c.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.match(path)
			}
		})
		b.Run(c.name+"/regexp", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				re.Match(path)
			}
		})
	}
}
