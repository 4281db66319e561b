package pool

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/health/healthtest"
	"fulcrum/internal/testutil"
)

// TestLogsNameBackendsByHost: the pool's log lines name a backend with the
// key "backend" and its metrics label, host:port (never scheme://host:port),
// and a backend added by reload is logged like one removed: same level, same
// keys. Backends present at start-up are not logged as added.
func TestLogsNameBackendsByHost(t *testing.T) {
	var logs testutil.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	hosts := hostsN(4)
	p := New(testCfg(hosts[:3], func(c *config.Pool) { c.PanicThreshold = 0 }), time.Minute, nil,
		Options{Logger: log, Rand: fixedRand{}, Clock: healthtest.NewClock(epoch)})
	t.Cleanup(p.Stop)
	if strings.Contains(logs.String(), "backend added") {
		t.Fatalf("start-up logged backends as added:\n%s", logs.String())
	}

	m := p.Snapshot().Members[0]
	for range 3 {
		p.Observe(m, true)
	}
	p.Update(testCfg([]string{hosts[0], hosts[1], hosts[3]}, func(c *config.Pool) { c.PanicThreshold = 0 }), time.Minute, nil)

	got := logs.String()
	for _, want := range []string{
		`level=WARN msg="backend ejected by passive checks" backend=` + hosts[0] + ` until=`,
		`level=INFO msg="backend added" backend=` + hosts[3] + " inflight=0\n",
		`level=INFO msg="backend removed" backend=` + hosts[2] + " inflight=0\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "http://") {
		t.Errorf("a log line names a backend by its scheme://host:port key:\n%s", got)
	}
}
