package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConfigHashKeyAndWeightsWarning: hash_key without consistent_hash is an
// error naming hash_key; round_robin over unequal weights validates (exit 0)
// with a warning naming weighted_round_robin, which is also logged at
// start-up and answered and logged on reload.
func TestConfigHashKeyAndWeightsWarning(t *testing.T) {
	t.Parallel()
	listen := coreFreeAddr(t)
	bad := coreWriteFile(t, "hash.json", fmt.Sprintf(`{"listen_addr": %q, "admin_addr": "", "strategy": "least_connections", "hash_key": "header:X-User", "backends": ["http://127.0.0.1:1"]}`, listen))
	code, stdout, stderr := coreRun(t, 30*time.Second, "validate", "-config", bad)
	if code != 1 || !strings.Contains(stderr, `config: hash_key: only applies to strategy "consistent_hash", but strategy is "least_connections"`) {
		t.Errorf("hash_key with least_connections: exit %d, want 1 naming hash_key\n%s%s", code, stdout, stderr)
	}

	const warning = `warning: config: strategy: "round_robin" ignores backend weights`
	weighted := coreWriteFile(t, "rr.yaml", fmt.Sprintf("listen_addr: %q\nadmin_addr: \"\"\nbackends:\n  - {url: \"http://127.0.0.1:1\", weight: 3}\n  - http://127.0.0.1:2\n", listen))
	code, stdout, stderr = coreRun(t, 30*time.Second, "validate", "-config", weighted)
	if code != 0 || !strings.Contains(stderr, warning) || !strings.Contains(stderr, "weighted_round_robin") ||
		!strings.Contains(stdout, "is valid") || !strings.Contains(stdout, "with 1 warning") {
		t.Errorf("round_robin with weights 3,1: exit %d, want 0 with a warning naming weighted_round_robin\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}

	a := StartBackend(t, "a", 0, nil)
	b := StartBackend(t, "b", 0, nil)
	cfg := fmt.Sprintf(`{"backends": [{"url": %q, "weight": 3}, %q]}`, a.URL, b.URL)
	f := StartFulcrum(t, cfg)
	WaitFor(t, 10*time.Second, "the warning logged at start-up", func() bool {
		return strings.Contains(f.Logs.String(), "configuration warning") && strings.Contains(f.Logs.String(), "weighted_round_robin")
	})
	code, body := coreReload(t, f)
	if code != http.StatusOK || !strings.HasPrefix(body, "reloaded: 2 backends") || !strings.Contains(body, "\n"+warning) {
		t.Fatalf("reload with the warning: %d %q, want 200 with the warning after the summary", code, body)
	}
	WaitFor(t, 10*time.Second, "the warning logged again on reload", func() bool {
		return strings.Count(f.Logs.String(), "configuration warning") == 2
	})
}
