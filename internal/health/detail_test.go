package health_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/backend"
	"fulcrum/internal/health"
	"fulcrum/internal/testutil"
)

// TestDownDetail runs real failing checks and checks the detail a down
// transition carries: the request and its answer, without the dial address.
func TestDownDetail(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()
	cases := []struct {
		name, scheme, host string
		typ                string
		want               string // prefix
	}{
		{"refused http", "http", testutil.ClosedAddr(t), "http", "connect: connection refused"},
		{"refused tcp", "http", testutil.ClosedAddr(t), "tcp", "connect: connection refused"},
		// The test server's certificate is not trusted by the checker.
		{"tls", "https", tlsSrv.Listener.Addr().String(), "http", "TLS error: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := httpCfg(time.Hour, 1, 1)
			cfg.Type = c.typ
			tg := health.Target{Key: "b", Host: c.host, Scheme: c.scheme, State: backend.NewState(epoch)}
			_, clk, rec := startChecker(t, cfg, tg)
			park(t, clk, 1)
			clk.Advance(500 * time.Millisecond)
			if e := rec.nextCheck("b"); e.ok {
				t.Fatalf("check passed: %+v", e)
			}
			tr := rec.next()
			if tr.check || tr.ok {
				t.Fatalf("want a down transition, got %+v", tr)
			}
			if !strings.HasPrefix(tr.detail, c.want) || strings.Contains(tr.detail, c.host) {
				t.Fatalf("detail %q, want prefix %q and no address", tr.detail, c.want)
			}
			if got := tg.State.DownReason(clk.Now()); got != tr.detail {
				t.Fatalf("DownReason %q, detail %q", got, tr.detail)
			}
		})
	}
}

// TestDownDetailFollowsChecks: while a backend stays down, its down reason
// is the latest failing check's.
func TestDownDetailFollowsChecks(t *testing.T) {
	srv := newScripted(t, 503)
	tg := srv.target("b")
	c, clk, rec := startChecker(t, httpCfg(time.Hour, 1, 1), tg)
	park(t, clk, 1)
	clk.Advance(500 * time.Millisecond)
	rec.nextCheck("b")
	if tr := rec.next(); tr.ok || tr.detail != "GET /health returned 503" {
		t.Fatalf("%+v", tr)
	}
	srv.set(500)
	park(t, clk, 1)
	c.ProbeNow("b")
	rec.nextCheck("b")
	park(t, clk, 1)
	if got := tg.State.DownReason(clk.Now()); got != "GET /health returned 500" {
		t.Fatalf("DownReason %q after a second failing check, want the latest", got)
	}
}
