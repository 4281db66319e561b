package desync

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// find returns the corpus case with the given file, name and method.
func find(t *testing.T, cases []Case, file, name, method string) Case {
	t.Helper()
	for _, c := range cases {
		if c.File == file && c.Name == name && c.Method == method {
			return c
		}
	}
	t.Fatalf("no case %s %q %s", file, name, method)
	return Case{}
}

func TestLoadCorpusCounts(t *testing.T) {
	cases := LoadOrSkip(t)
	// The corpus README's table, without single-case.yaml.
	wantFiles := map[string]int{
		"acceptable.yaml":              9,
		"ambiguous.yaml":               37,
		"bad-header-characters.yaml":   15,
		"edge-cases.yaml":              8,
		"more-compliant-tests.yaml":    10,
		"real-life-test-cases.yaml":    24,
		"rfc-compliant.yaml":           14,
		"severe.yaml":                  27,
		"uri-specific-test-cases.yaml": 14,
	}
	// README: 28 Compliant, 15 Acceptable, 57 Ambiguous without the
	// duplicate, 58 Severe.
	wantTiers := map[Tier]int{Compliant: 28, Acceptable: 15, Ambiguous: 57, Severe: 58}
	gotFiles := map[string]int{}
	gotTiers := map[Tier]int{}
	for _, c := range cases {
		gotFiles[c.File]++
		gotTiers[c.Tier]++
	}
	if len(gotFiles) != len(wantFiles) {
		t.Errorf("files: got %v, want %v", gotFiles, wantFiles)
	}
	for f, n := range wantFiles {
		if gotFiles[f] != n {
			t.Errorf("%s: %d cases, want %d", f, gotFiles[f], n)
		}
	}
	for tier, n := range wantTiers {
		if gotTiers[tier] != n {
			t.Errorf("%s: %d cases, want %d", tier, gotTiers[tier], n)
		}
	}
	if len(cases) != 158 {
		t.Errorf("%d cases, want 158", len(cases))
	}
	for _, c := range cases {
		if c.Renderable != (c.Name != "Empty URI") {
			t.Errorf("%s %q: Renderable = %v", c.File, c.Name, c.Renderable)
		}
		if string(c.Raw) != string(Render(c)) {
			t.Errorf("%s %q: Raw differs from Render", c.File, c.Name)
		}
	}
}

func TestLoadDecodesCorpus(t *testing.T) {
	cases := LoadOrSkip(t)
	tests := []struct {
		file, name, method string
		check              func(c Case) (got, want any)
	}{
		// YAML double-quoted \x01 in the method.
		{"severe.yaml", "Bad method", "bad_method\x01", func(c Case) (any, any) {
			return c.Headers, [][2]string{{"Host", "localhost"}}
		}},
		// YAML \x88 is one octet, not UTF-8 C2 88.
		{"ambiguous.yaml", "Transfer-Encoding with arbitrary non-ASCII chars", "POST", func(c Case) (any, any) {
			return c.Headers[0][0], "Transfer-Encoding\x88"
		}},
		{"ambiguous.yaml", "Content-Length with arbitrary non-ASCII chars", "POST", func(c Case) (any, any) {
			return c.Headers, [][2]string{{"\xa0Content-Length", "100"}}
		}},
		// Literal UTF-8 stays UTF-8.
		{"ambiguous.yaml", "Transfer-Encoding Latin Small Letter Long S", "POST", func(c Case) (any, any) {
			return c.Headers[0][0], "Tran\xc5\xbffer-Encoding"
		}},
		// Corpus-level \t in a plain YAML scalar; octet \x80 in a value.
		{"edge-cases.yaml", "Bad URI does not shadow essential bad headers", "POST", func(c Case) (any, any) {
			return []string{c.URI, c.Headers[1][1], c.Headers[2][1]}, []string{"/foo/bar\t/baz", "chunked\x80", "$9000"}
		}},
		// YAML \\\" leaves \" for the corpus level, which makes it ".
		{"rfc-compliant.yaml", "Compliant URL", "POST", func(c Case) (any, any) {
			return c.URI, "/user:pass123@www.example.com:8080/site/index.php?action=login%20++~!@#$%^&*()_+:<>?,./;'[]{}`~\"|&prev=index#form"
		}},
		{"rfc-compliant.yaml", "Valid Transfer-Encoding (chunked) + custom header (non-ascii)", "POST", func(c Case) (any, any) {
			return c.Headers[1][1], "\t\t\tCustom-Value;`\x85\x93\xa0"
		}},
		{"severe.yaml", "Multiline headers are deprecated", "POST", func(c Case) (any, any) {
			return c.Headers[1][1], "Multi-line values\r\n are \n deprecated. E.g. it may contain \n Transfer-Encoding: chunked\r\n"
		}},
		// Names are labels: YAML level only. The header name is decoded.
		{"severe.yaml", `\r in name is bad`, "POST", func(c Case) (any, any) {
			return c.Headers, [][2]string{{"Some-Bad-Header\r", "1000"}}
		}},
		{"ambiguous.yaml", "Only white-spaces header name", "POST", func(c Case) (any, any) {
			return c.Headers[0][0], "   \t\t  "
		}},
		{"ambiguous.yaml", "Empty header name", "POST", func(c Case) (any, any) {
			return c.Headers[0], [2]string{"", "chunked"}
		}},
		// Unquoted YAML integers keep their text.
		{"severe.yaml", "Multiple Content-Length", "POST", func(c Case) (any, any) {
			return c.Headers, [][2]string{{"Content-Length", "1000"}, {"Content-Length", "100"}}
		}},
		{"acceptable.yaml", "Empty version, which means HTTP/0.9", "GET", func(c Case) (any, any) {
			return []string{c.Version, c.Reason, string(c.Tier)}, []string{"", "NonCompliantVersion", "Acceptable"}
		}},
		{"uri-specific-test-cases.yaml", `\0 at the start of URI`, "GET", func(c Case) (any, any) {
			return c.URI, "\x00/endpoint_aHTTP/1.1"
		}},
		{"rfc-compliant.yaml", "Empty URI", "GET", func(c Case) (any, any) {
			return []any{c.URI, c.Renderable}, []any{"", false}
		}},
		{"rfc-compliant.yaml", "No headers", "GET", func(c Case) (any, any) {
			return len(c.Headers), 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := tt.check(find(t, cases, tt.file, tt.name, tt.method))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", `
- name: one
  uri: /a\x41
  method: GET
  version: HTTP/1.1
  headers:
    - name: "X\xff"
      value: 7
      tier: Compliant
  expected:
    tier: Compliant
    reason: Compliant
- name: same request, spelt differently
  uri: "/a\\x41"
  method: GET
  version: HTTP/1.1
  headers:
    - name: "X\xff"
      value: "7"
  expected:
    tier: Compliant
`)
	write("b.yaml", `
- name: two
  uri: /b
  method: POST
  version: ""
  headers:
  expected:
    tier: Severe
`)
	write("single-case.yaml", `
- name: ignored
  uri: /c
  method: GET
  version: HTTP/1.1
  expected:
    tier: Compliant
`)
	cases, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 {
		t.Fatalf("got %d cases, want 2: %+v", len(cases), cases)
	}
	one := cases[0]
	if one.URI != "/aA" || one.Headers[0] != [2]string{"X\xff", "7"} || one.File != "a.yaml" {
		t.Errorf("case one: %+v", one)
	}
	if two := cases[1]; two.Name != "two" || two.Version != "" || two.Tier != Severe || two.Headers != nil {
		t.Errorf("case two: %+v", two)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := map[string]string{
		"not a list":   "name: x\n",
		"unknown tier": "- {name: x, uri: /, method: GET, version: HTTP/1.1, expected: {tier: Fine}}\n",
		"no method":    "- {name: x, uri: /, version: HTTP/1.1, expected: {tier: Severe}}\n",
		"no expected":  "- {name: x, uri: /, method: GET, version: HTTP/1.1}\n",
		"bad escape":   "- {name: x, uri: /\\xZZ, method: GET, version: HTTP/1.1, expected: {tier: Severe}}\n",
		"bad yaml":     "- [\n",
		"header list":  "- {name: x, uri: /, method: GET, version: HTTP/1.1, headers: {a: b}, expected: {tier: Severe}}\n",
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "x.yaml"), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(dir); err == nil {
				t.Error("Load succeeded")
			}
		})
	}
	t.Run("empty dir", func(t *testing.T) {
		if _, err := Load(t.TempDir()); err == nil {
			t.Error("Load succeeded")
		}
	})
}

func TestCorpusDirMissing(t *testing.T) {
	dir := t.TempDir()
	mod := filepath.Join(dir, "repo")
	if err := os.MkdirAll(filepath.Join(mod, "internal", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(mod, "internal", "x"))
	_, err := CorpusDir()
	if !errors.Is(err, ErrNoCorpus) {
		t.Fatalf("CorpusDir() error = %v, want ErrNoCorpus", err)
	}
	want := filepath.Join(dir, "shared", "conformance", "http-desync-guardian")
	if err := os.MkdirAll(want, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := CorpusDir()
	if err != nil || got != want {
		t.Fatalf("CorpusDir() = %q, %v; want %q", got, err, want)
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{`plain`, "plain"},
		{`/foo\t/bar`, "/foo\t/bar"},
		{`\x00\xff\x41`, "\x00\xffA"},
		{`\r\n\b\f\v\a\0`, "\r\n\b\f\v\a\x00"},
		{`\\x41`, `\x41`},
		{`a\"b\'c`, `a"b'c`},
	}
	for _, tt := range tests {
		if got, err := unescape(tt.in); err != nil || got != tt.want {
			t.Errorf("unescape(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`abc\`, `\x4`, `\xZZ`} {
		if got, err := unescape(bad); err == nil {
			t.Errorf("unescape(%q) = %q, want error", bad, got)
		}
	}
}

func TestDecodeDoubleQuoted(t *testing.T) {
	tests := []struct{ src, octets, text string }{
		{`a\xa0b" # comment`, "a\xa0b", "a\u00a0b"},
		{`\u017f\x01"`, "\u017f\x01", "\u017f\x01"},
		{`\\x41"`, `\x41`, `\x41`},
		{`\"q\t\0"`, "\"q\t\x00", "\"q\t\x00"},
		{`"`, "", ""},
	}
	for _, tt := range tests {
		o, x, err := decodeDoubleQuoted([]byte(tt.src))
		if err != nil || o != tt.octets || x != tt.text {
			t.Errorf("decodeDoubleQuoted(%q) = %q, %q, %v; want %q, %q", tt.src, o, x, err, tt.octets, tt.text)
		}
	}
	for _, bad := range []string{`abc`, `\q"`, `\x4"`, `\xZZ"`, `ab\`} {
		if _, _, err := decodeDoubleQuoted([]byte(bad)); err == nil {
			t.Errorf("decodeDoubleQuoted(%q) succeeded", bad)
		}
	}
}
