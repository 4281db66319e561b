package engine_test

import (
	"context"
	"strings"
	"testing"
)

// TestReloadLogFormatRefused: the log handler is built at start-up, so a
// reload that changes log_format is refused (naming the key) and nothing of
// it applies; log_level does apply.
func TestReloadLogFormatRefused(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a", "b")
	h := start(t, cfgJSON("", "round_robin", bs, nil))
	before := h.eng.Config()
	json := strings.Replace(cfgJSON("", "round_robin", bs[:1], nil), "{", `{"log_format": "json", `, 1)
	writeFile(t, h.path, json)
	summary, err := h.eng.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "log_format: cannot change on reload") {
		t.Fatalf("Reload = %q, %v; want an error naming log_format", summary, err)
	}
	if h.eng.Config() != before {
		t.Fatal("running config changed after a refused reload")
	}
	if got := h.seq(2); got != "ab" && got != "ba" {
		t.Fatalf("traffic after the refused reload: %q, want both running backends", got)
	}
	level := strings.Replace(cfgJSON("", "round_robin", bs[:1], nil), "{", `{"log_level": "debug", `, 1)
	writeFile(t, h.path, level)
	if _, err := h.eng.Reload(context.Background()); err != nil {
		t.Fatalf("reload changing log_level: %v", err)
	}
}
