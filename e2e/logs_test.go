package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLogsNameBackendsByHost: every log line about a backend names it with
// the key "backend" and the value of its metrics label, host:port; a backend
// added by reload is logged like one removed.
func TestLogsNameBackendsByHost(t *testing.T) {
	t.Parallel()
	a := StartBackend(t, "a", 0, nil)
	b := StartBackend(t, "b", 0, nil)
	c := StartBackend(t, "c", 0, nil)
	cfg := func(bs ...*Backend) string {
		var urls []string
		for _, be := range bs {
			urls = append(urls, fmt.Sprintf("%q", be.URL))
		}
		return fmt.Sprintf(`{"health_check_interval": "100ms", "max_fail_count": 1, "backends": [%s]}`, strings.Join(urls, ", "))
	}
	f := StartFulcrum(t, cfg(a, b))
	f.WriteConfig(cfg(a, c))
	if code, body := coreReload(t, f); code != http.StatusOK {
		t.Fatalf("reload: %d %q", code, body)
	}
	a.Close()
	WaitFor(t, 10*time.Second, "a marked down", func() bool { return strings.Contains(f.Logs.String(), `msg="backend down"`) })
	logs := f.Logs.String()
	for _, want := range []string{
		`level=INFO msg="backend added" backend=` + c.Addr() + " inflight=0\n",
		`level=INFO msg="backend removed" backend=` + b.Addr() + " inflight=0\n",
		`level=WARN msg="backend down" backend=` + a.Addr() + " ",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "backend=http") {
		t.Errorf("a log line names a backend by URL:\n%s", logs)
	}
}
