package config

import (
	"errors"
	"strings"
	"testing"
)

// TestYAMLSyntaxErrorLine: a YAML syntax error names the line where the
// problem is. yaml.v3 names the line where the enclosing block began (line
// 1, 2, 5 or 6 below) or no line at all.
func TestYAMLSyntaxErrorLine(t *testing.T) {
	t.Parallel()
	const head = "listen_addr: \":8080\"\nstrategy: random\nretries: 1\nconnect_timeout: 1s\nidle_timeout: 9s\nmax_conns: 5\n"
	for _, tc := range []struct{ doc, want string }{
		{"backends:\n  - http://a:1\n  - http://b:1\n bad: x\n", "config: line 4: did not find expected key"},
		{"backends:\n  - url: http://a:1\n    weight: 2\n   name: x\n", "config: line 4: did not find expected '-' indicator"},
		{head + "\tbackends: []\n", "config: line 7: found a tab character that violates indentation"},
		{head + "backends: [http://a, http://b\nretries: 2\n", "config: line 7: did not find expected ',' or ']'"},
		{head + "backends: \"http://a\nretries: 2\n", "config: line 7: found unexpected end of stream"},
		{head + "backends: *nope\n", "config: line 7: unknown anchor 'nope' referenced"},
		{head + "backends: @a\n", "config: line 7: found character that cannot start any token"},
		{"sticky:\n  type: cookie\n  ttl: 1h\n  same_site: lax\n  secure: auto\n  http_only: true\n  cookie_name: a: b\n", "config: line 7: mapping values are not allowed in this context"},
		{head + "---\nretries: [\n", "config: line 8: did not find expected node content"},
	} {
		_, err := Parse([]byte(tc.doc), "yaml", nil)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.doc, err, tc.want)
		}
		var ve *ValidationError
		if errors.As(err, &ve) {
			t.Errorf("%q: a syntax error as a *ValidationError", tc.doc)
		}
	}
}

// TestYAMLProblemLines: every problem of a YAML file names its line: the
// line of the key or list item, or for a missing key the line of the object
// that lacks it. JSON problems, problems in flag values and keys missing at
// the top level have none.
func TestYAMLProblemLines(t *testing.T) {
	t.Parallel()
	doc := `# fulcrum.yaml
listen_addr: nope
backends:
  - http://a:1
  - {url: "http://b:1", weight: 0}
  - weight: 2
health_check:
  interval: 5s
  intervall: 5s
retries: 1
retries: 2
access_log: !!bool maybe
`
	_, err := Parse([]byte(doc), "yaml", &Overrides{Strategy: ptr("fastest")})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("want a *ValidationError, got %v", err)
	}
	want := map[string]int{
		"listen_addr":            2,
		"backends[1].weight":     5,
		"backends[2].url":        6, // missing: the line of its object
		"health_check.intervall": 9,
		"retries":                11, // the duplicate
		"access_log":             12,
		"-strategy":              0,
	}
	seen := map[string]bool{}
	for _, p := range ve.Problems {
		line, ok := want[p.Path]
		if !ok {
			t.Errorf("unexpected problem %v", p)
			continue
		}
		if p.Line != line {
			t.Errorf("%s: line %d, want %d (%v)", p.Path, p.Line, line, p)
		}
		seen[p.Path] = true
	}
	if len(seen) != len(want) {
		t.Errorf("problems at %v, want at all of %v; got:\n%v", seen, want, err)
	}
	for _, line := range []string{
		`config: line 2: listen_addr: must be host:port`,
		`config: line 5: backends[1].weight: must be >= 1, got 0`,
		`config: line 11: retries: duplicate key (first on line 10)`,
		`config: line 12: access_log: invalid boolean "maybe"`,
		`-strategy: unknown strategy "fastest"`,
	} {
		if !strings.Contains(err.Error(), "\n"+line) && !strings.HasPrefix(err.Error(), line) {
			t.Errorf("output lacks a line starting %q:\n%v", line, err)
		}
	}

	// A key missing at the top level has no line; a warning has one.
	_, err = Parse([]byte("# nothing else\nretries: 1\n"), "yaml", nil)
	if !errors.As(err, &ve) || len(ve.Problems) != 1 || ve.Problems[0].Line != 0 || ve.Problems[0].Path != "backends" {
		t.Errorf("missing backends: %v", err)
	}
	cfg := mustParse(t, "backends:\n  - http://a\n  - {url: http://b, weight: 2}\nstrategy: round_robin\n", "yaml", nil)
	if len(cfg.Warnings) != 1 || !strings.HasPrefix(cfg.Warnings[0].String(), `config: line 4: strategy: "round_robin" ignores`) {
		t.Errorf("warnings %v, want one on line 4", cfg.Warnings)
	}
	// JSON problems carry no line.
	_, err = Parse([]byte("{\n\"backends\": [\n{\"url\": \"http://a\", \"weight\": 0}]}"), "json", nil)
	if !errors.As(err, &ve) || ve.Problems[0].Line != 0 || err.Error() != "config: backends[0].weight: must be >= 1, got 0" {
		t.Errorf("JSON problem: %v", err)
	}
}
