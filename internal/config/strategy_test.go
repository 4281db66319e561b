package config

import (
	"strings"
	"testing"
)

// TestHashKeyNeedsConsistentHash: hash_key with any other strategy is an
// error (it used to be ignored silently), except when the strategy itself is
// wrong, which is reported once.
func TestHashKeyNeedsConsistentHash(t *testing.T) {
	t.Parallel()
	for _, strategy := range []string{"", "round_robin", "ip_hash", "least_connections"} {
		doc := `{"backends": ["http://a"], "hash_key": "path"`
		if strategy != "" {
			doc += `, "strategy": "` + strategy + `"`
		}
		_, err := Parse([]byte(doc+"}"), "json", nil)
		want := strategy
		if want == "" {
			want = "round_robin"
		}
		assertProblem(t, err, "hash_key", `only applies to strategy "consistent_hash", but strategy is "`+want+`"`)
	}
	_, err := Parse([]byte(`{"backends": ["http://a"], "hash_key": "path", "strategy": "fastest"}`), "json", nil)
	if ve, ok := err.(*ValidationError); !ok || len(ve.Problems) != 1 || ve.Problems[0].Path != "strategy" {
		t.Errorf("unknown strategy with hash_key: %v, want only the strategy problem", err)
	}
	c := mustParse(t, `{"backends": ["http://a"], "hash_key": "path", "strategy": "consistent_hash"}`, "json", nil)
	if c.Pools[0].HashKey != (HashKey{Kind: KindPath}) || c.Warnings != nil {
		t.Errorf("consistent_hash: HashKey %+v, warnings %v", c.Pools[0].HashKey, c.Warnings)
	}
}

// TestRoundRobinWeightsWarning: round_robin with unequal weights loads, with
// a warning that names weighted_round_robin; equal weights, a single backend
// and other strategies give none.
func TestRoundRobinWeightsWarning(t *testing.T) {
	t.Parallel()
	const unequal = `"backends": [{"url": "http://a", "weight": 3}, "http://b"]`
	for _, doc := range []string{`{` + unequal + `}`, `{"strategy": "round_robin", ` + unequal + `}`} {
		c := mustParse(t, doc, "json", nil)
		if len(c.Warnings) != 1 || c.Warnings[0].Path != "strategy" || !strings.Contains(c.Warnings[0].Msg, `"weighted_round_robin"`) {
			t.Errorf("%s: warnings %v, want one at strategy naming weighted_round_robin", doc, c.Warnings)
			continue
		}
		if got := c.Warnings[0].String(); !strings.HasPrefix(got, `config: strategy: "round_robin" ignores backend weights`) {
			t.Errorf("warning renders as %q", got)
		}
	}
	for _, doc := range []string{
		`{"backends": [{"url": "http://a", "weight": 3}, {"url": "http://b", "weight": 3}]}`,
		`{"backends": [{"url": "http://a", "weight": 3}]}`,
		`{"strategy": "weighted_round_robin", ` + unequal + `}`,
		`{"strategy": "least_connections", ` + unequal + `}`,
	} {
		if c := mustParse(t, doc, "json", nil); c.Warnings != nil {
			t.Errorf("%s: warnings %v, want none", doc, c.Warnings)
		}
	}
	// A warning does not hide the problems of an invalid file, and an invalid
	// file gives no Config (so no warnings either).
	if _, err := Parse([]byte(`{"retries": -1, `+unequal+`}`), "json", nil); err == nil {
		t.Error("invalid file with a warning parsed")
	}
}
