package requestid

import (
	"regexp"
	"strings"
	"sync"
	"testing"
)

var generated = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestGeneratedShape(t *testing.T) {
	g := New()
	for i := 0; i < 1000; i++ {
		id := g.Append(nil)
		if len(id) != Len || !generated.Match(id) {
			t.Fatalf("id %q: want 32 lowercase hex digits", id)
		}
		if !Valid(id) {
			t.Fatalf("generated id %q is not Valid", id)
		}
	}
}

func TestGeneratedUnique(t *testing.T) {
	g := New()
	const workers, each = 4, 20000
	ids := make([][]string, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for range each {
				buf = g.Append(buf[:0])
				ids[w] = append(ids[w], string(buf))
			}
		}()
	}
	wg.Wait()
	seen := make(map[string]bool, workers*each)
	for _, list := range ids {
		for _, id := range list {
			if seen[id] {
				t.Fatalf("id %s generated twice", id)
			}
			seen[id] = true
		}
	}
	// Consecutive IDs share the prefix but not a visible sequence.
	a, b := g.Append(nil), g.Append(nil)
	if string(a[:16]) != string(b[:16]) || string(a[16:30]) == string(b[16:30]) {
		t.Errorf("consecutive ids %s %s: want the same prefix and unrelated tails", a, b)
	}
	if h := New().Append(nil); string(h[:16]) == string(a[:16]) {
		t.Errorf("two generators share the prefix %s", a[:16])
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	g := New()
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(1000, func() { buf = g.Append(buf[:0]) }); n != 0 {
		t.Errorf("Append allocates %.1f times per call", n)
	}
}

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"0123456789abcdef0123456789abcdef", true},
		{"f47ac10b-58cc-4372-a567-0e02b2c3d479", true},
		{"01ARZ3NDEKTSV4RRFFQ69G5FAV", true},
		{"Root=1-5759e988-bd862e3fe1be46a994272793", true},
		{"a+b/c=d@e~f_g.h:i", true},
		{"x", true},
		{strings.Repeat("a", MaxLen), true},
		{strings.Repeat("a", MaxLen+1), false},
		{"", false},
		{"has space", false},
		{`quo"te`, false},
		{`back\slash`, false},
		{"comma,separated", false},
		{"semi;colon", false},
		{"tab\there", false},
		{"new\nline", false},
		{"nul\x00", false},
		{"caf\xc3\xa9", false},
		{"<script>", false},
	} {
		if got := Valid([]byte(tc.id)); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

// validRef is the specification of Valid as a regular expression.
var validRef = regexp.MustCompile(`^[A-Za-z0-9._~:@/+=-]{1,200}$`)

// FuzzValid checks the sanitizer against its specification, and that what
// it keeps can go into a header field line and a log line unescaped.
func FuzzValid(f *testing.F) {
	for _, s := range []string{"", "abc", "f47ac10b-58cc-4372-a567-0e02b2c3d479", "a b", "a\r\nX-Evil: 1", strings.Repeat("z", 201), "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := Valid(b)
		if want := validRef.Match(b); got != want {
			t.Fatalf("Valid(%q) = %v, specification says %v", b, got, want)
		}
		if got && strings.ContainsAny(string(b), " \t\r\n\"\\,;\x00") {
			t.Fatalf("Valid kept %q, which is unsafe in a header or log line", b)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	g := New()
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = g.Append(buf[:0])
	}
}
