package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fulcrum/internal/admin"
	"fulcrum/internal/config"
	"fulcrum/internal/engine"
	"fulcrum/internal/metrics"
	"fulcrum/internal/testutil"
)

// TestMain fails the package when a goroutine running fulcrum code (servers,
// connections, pools, health checkers) outlives the tests (STYLE.md P14).
func TestMain(m *testing.M) { testutil.VerifyNoFulcrumLeaks(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// backendSrv is a real loopback backend answering its name.
type backendSrv struct {
	name string
	url  string
}

func startBackends(t *testing.T, names ...string) []backendSrv {
	t.Helper()
	var out []backendSrv
	for _, name := range names {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, name)
		}))
		t.Cleanup(ts.Close)
		out = append(out, backendSrv{name: name, url: ts.URL})
	}
	return out
}

// cfgJSON is a flat config over bs; weights (may be nil) and listen ("" =
// 127.0.0.1:0) as given.
func cfgJSON(listen, strategy string, bs []backendSrv, weights []int) string {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	var items []string
	for i, b := range bs {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		items = append(items, fmt.Sprintf(`{"url": %q, "weight": %d}`, b.url, w))
	}
	return fmt.Sprintf(`{"listen_addr": %q, "admin_addr": "", "strategy": %q, "retries": 0,
 "health_check_interval": "1h", "backends": [%s]}`, listen, strategy, strings.Join(items, ", "))
}

// harness is a started engine reading its config from a temp file.
type harness struct {
	t    *testing.T
	path string
	eng  *engine.Engine
	reg  *prometheus.Registry
	cl   *http.Client
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func start(t *testing.T, cfg string) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "fulcrum.json"), reg: prometheus.NewRegistry()}
	writeFile(t, h.path, cfg)
	c, err := config.Load(h.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(h.reg, nil)
	h.eng, err = engine.New(c, engine.Options{
		Logger: quiet, Metrics: m,
		Loader: func() (*config.Config, error) { return config.Load(h.path, nil) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.eng.Start(context.Background())
	tr := &http.Transport{}
	h.cl = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.eng.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return h
}

// get fetches / through the engine and returns the answering backend's name.
func (h *harness) get() string {
	h.t.Helper()
	resp, err := h.cl.Get("http://" + h.eng.Addr().String() + "/")
	if err != nil {
		h.t.Fatalf("GET through the engine: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		h.t.Fatalf("GET through the engine: %d %q", resp.StatusCode, b)
	}
	return string(b)
}

func (h *harness) seq(n int) string {
	h.t.Helper()
	var s []string
	for range n {
		s = append(s, h.get())
	}
	return strings.Join(s, "")
}

// reloads reads fulcrum_reloads_total{result}.
func (h *harness) reloads(result string) float64 {
	h.t.Helper()
	return testutil.Counter(h.t, h.reg, "fulcrum_reloads_total", "result", result)
}

func TestReloadAppliesStrategyAndBackends(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a", "b", "c")
	h := start(t, cfgJSON("", "round_robin", bs[:2], nil))
	if got := h.seq(4); got != "abab" {
		t.Fatalf("before reload: %q, want abab", got)
	}
	before := h.eng.Config()

	writeFile(t, h.path, cfgJSON("", "weighted_round_robin", bs, []int{1, 1, 2}))
	summary, err := h.eng.Reload(context.Background())
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if !strings.Contains(summary, "3 backends") || !strings.Contains(summary, "weighted_round_robin") || strings.Contains(summary, "\n") {
		t.Errorf("summary %q, want one line naming 3 backends and the strategy", summary)
	}
	after := h.eng.Config()
	if after == before || after.Pools[0].Strategy != "weighted_round_robin" || len(after.Pools[0].Backends) != 3 {
		t.Fatalf("Config() after reload: strategy %q, %d backends", after.Pools[0].Strategy, len(after.Pools[0].Backends))
	}
	// nginx smooth WRR over weights 1,1,2 repeats "c a b c".
	if got := h.seq(8); got != "cabccabc" {
		t.Fatalf("after reload: %q, want cabccabc", got)
	}
	st := h.eng.Backends()
	if len(st) != 3 || st[2].URL != bs[2].url || st[2].Weight != 2 {
		t.Fatalf("Backends() after reload: %+v", st)
	}
	// Kept backends keep their counters across the reload: a and b served 2
	// before and 2 after, c 4 after.
	if st[0].Requests != 4 || st[1].Requests != 4 || st[2].Requests != 4 {
		t.Errorf("requests a=%d b=%d c=%d, want 4 each", st[0].Requests, st[1].Requests, st[2].Requests)
	}
	if h.reloads("success") != 1 || h.reloads("failure") != 0 {
		t.Errorf("reload metrics success=%v failure=%v, want 1 and 0", h.reloads("success"), h.reloads("failure"))
	}

	// Removing backends: only the remaining one gets traffic.
	writeFile(t, h.path, cfgJSON("", "least_connections", bs[1:2], nil))
	if _, err := h.eng.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := h.seq(3); got != "bbb" {
		t.Fatalf("after removing a and c: %q, want bbb", got)
	}
	if st := h.eng.Backends(); len(st) != 1 || st[0].URL != bs[1].url {
		t.Fatalf("Backends() = %+v, want only b", st)
	}
}

func TestReloadInvalidKeepsRunningConfig(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a", "b")
	h := start(t, cfgJSON("", "round_robin", bs, nil))
	before := h.eng.Config()
	invalid := []struct{ name, data, want string }{
		{"unknown strategy", strings.Replace(cfgJSON("", "round_robin", bs[:1], nil), "round_robin", "fastest", 1), "strategy"},
		{"bad weight", cfgJSON("", "round_robin", bs[:1], []int{0}), "backends[0].weight"},
		{"unknown key", strings.Replace(cfgJSON("", "random", bs[:1], nil), "{", `{"colour": 1, `, 1), "colour"},
		{"syntax", `{"backends": [`, "parse"},
		{"empty", ``, ""},
	}
	for i, inv := range invalid {
		writeFile(t, h.path, inv.data)
		summary, err := h.eng.Reload(context.Background())
		if err == nil {
			t.Fatalf("%s: Reload accepted an invalid file (summary %q)", inv.name, summary)
		}
		if !strings.Contains(err.Error(), inv.want) {
			t.Errorf("%s: error %q does not mention %q", inv.name, err, inv.want)
		}
		if h.eng.Config() != before {
			t.Fatalf("%s: Config() changed after a rejected reload", inv.name)
		}
		if got := h.seq(2); got != "ab" && got != "ba" {
			t.Fatalf("%s: traffic after a rejected reload: %q, want both running backends", inv.name, got)
		}
		if st := h.eng.Backends(); len(st) != 2 {
			t.Fatalf("%s: Backends() = %+v, want the 2 running ones", inv.name, st)
		}
		if f := h.reloads("failure"); f != float64(i+1) {
			t.Errorf("%s: reload failures = %v, want %d", inv.name, f, i+1)
		}
	}
	// Removing the file is an error too.
	os.Remove(h.path)
	if _, err := h.eng.Reload(context.Background()); err == nil || h.eng.Config() != before {
		t.Fatalf("Reload with the file gone: err=%v, config changed=%v", err, h.eng.Config() != before)
	}
	// A later valid file still applies: a rejected reload leaves nothing stuck.
	writeFile(t, h.path, cfgJSON("", "round_robin", bs[1:], nil))
	if _, err := h.eng.Reload(context.Background()); err != nil {
		t.Fatalf("valid reload after rejected ones: %v", err)
	}
	if got := h.seq(2); got != "bb" {
		t.Fatalf("after the valid reload: %q, want bb", got)
	}
}

// A reload may move the listener: the new address is bound before the old
// one closes. A busy new address refuses the whole reload and changes
// nothing.
func TestReloadMovesListener(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a", "b")
	h := start(t, cfgJSON("", "round_robin", bs, nil))
	old := h.eng.Addr().String()

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	before := h.eng.Config()
	writeFile(t, h.path, cfgJSON(busy.Addr().String(), "random", bs[:1], nil))
	_, err = h.eng.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "listen_addr") || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("reload onto a busy port: %v, want a listen_addr error wrapping EADDRINUSE", err)
	}
	if h.eng.Config() != before || h.eng.Addr().String() != old {
		t.Fatal("a refused reload changed the running config or listener")
	}
	if got := h.seq(2); got != "ab" && got != "ba" {
		t.Fatalf("traffic after the refused reload: %q", got)
	}

	next := testutil.ClosedAddr(t)
	writeFile(t, h.path, cfgJSON(next, "round_robin", bs[1:], nil))
	if _, err := h.eng.Reload(context.Background()); err != nil {
		t.Fatalf("reload to %s: %v", next, err)
	}
	if got := h.eng.Addr().String(); got != next {
		t.Fatalf("Addr after the move: %s, want %s", got, next)
	}
	if got := h.seq(2); got != "bb" {
		t.Fatalf("traffic on the new address: %q, want bb", got)
	}
	// The old address stops accepting once its connections drained.
	h.cl.Transport.(*http.Transport).CloseIdleConnections()
	testutil.WaitFor(t, 5*time.Second, "the old address to close", func() bool {
		c, err := net.DialTimeout("tcp", old, time.Second)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if h.reloads("failure") != 1 || h.reloads("success") != 1 {
		t.Errorf("reload metrics success=%v failure=%v, want 1 and 1", h.reloads("success"), h.reloads("failure"))
	}
}

func TestReloadWithoutLoader(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a")
	c, err := config.Parse([]byte(cfgJSON("", "round_robin", bs, nil)), "json", nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(c, engine.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e.Start(context.Background())
	defer e.Shutdown(context.Background())
	if _, err := e.Reload(context.Background()); err == nil {
		t.Fatal("Reload without a Loader succeeded")
	}
	if e.Config() != c {
		t.Fatal("Config() changed")
	}
}

// TestReloadConcurrent reloads from several goroutines while traffic flows
// and the admin views are read; under -race this checks the swap.
func TestReloadConcurrent(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a", "b", "c")
	h := start(t, cfgJSON("", "round_robin", bs, nil))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	// Traffic.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := h.cl.Get("http://" + h.eng.Addr().String() + "/")
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("status %d during reloads", resp.StatusCode)
					return
				}
			}
		}()
	}
	// Readers.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if len(h.eng.Backends()) == 0 || h.eng.Config() == nil {
				errs <- errors.New("empty view during reloads")
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	// Reloaders: each writes its own file content under the shared path's
	// lock-free rename, so every Reload sees some complete valid file.
	strategies := []string{"round_robin", "least_connections", "random", "power_of_two"}
	var rwg sync.WaitGroup
	for w := range 3 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for i := range 10 {
				n := 1 + (w+i)%3
				writeFileConcurrent(h.path, cfgJSON("", strategies[(w+i)%len(strategies)], bs[:n], nil), w)
				if _, err := h.eng.Reload(context.Background()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	rwg.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if s := h.reloads("success"); s != 30 {
		t.Fatalf("%v successful reloads, want 30", s)
	}
}

// writeFileConcurrent replaces path atomically via a writer-specific temp file.
func writeFileConcurrent(path, data string, writer int) {
	tmp := fmt.Sprintf("%s.%d.tmp", path, writer)
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		panic(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		panic(err)
	}
}

func parse(t *testing.T, data string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(data), "json", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNewPortBusy: New fails with a listen_addr error when its port is taken
// and releases every listener it had already bound.
func TestNewPortBusy(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	bs := startBackends(t, "a")

	t.Run("single service", func(t *testing.T) {
		c := parse(t, cfgJSON(busy.Addr().String(), "round_robin", bs, nil))
		e, err := engine.New(c, engine.Options{Logger: quiet})
		if err == nil {
			e.Shutdown(context.Background())
			t.Fatal("New succeeded on a busy port")
		}
		if e != nil {
			t.Error("New returned an engine along with its error")
		}
		if !strings.Contains(err.Error(), "listen_addr") || !strings.Contains(err.Error(), busy.Addr().String()) {
			t.Errorf("error %q does not name listen_addr and the address", err)
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("error %v does not wrap EADDRINUSE", err)
		}
	})

	t.Run("second service", func(t *testing.T) {
		// Two services: the first binds, the second fails; the first's
		// listener must be closed again.
		free := testutil.ClosedAddr(t)
		c := parse(t, cfgJSON(free, "round_robin", bs, nil))
		svc2 := c.Listeners[0]
		svc2.Name, svc2.Listen = "second", busy.Addr().String()
		c.Listeners = append(c.Listeners, svc2)
		c.Pools = append(c.Pools, c.Pools[0])
		e, err := engine.New(c, engine.Options{Logger: quiet})
		if err == nil {
			e.Shutdown(context.Background())
			t.Fatal("New succeeded with one port busy")
		}
		ln, err := net.Listen("tcp", free)
		if err != nil {
			t.Fatalf("the first service's address %s is still bound after New failed: %v", free, err)
		}
		ln.Close()
	})
}

// TestShutdown: after Shutdown the listener is closed and health checks stop.
func TestShutdown(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a")
	c := parse(t, cfgJSON("", "round_robin", bs, nil))
	e, err := engine.New(c, engine.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e.Start(context.Background())
	addr := e.Addr().String()
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("listener still accepting after Shutdown")
	}
	select {
	case err := <-e.Done():
		if err != nil {
			t.Fatalf("Done() reported %v after a clean shutdown", err)
		}
	default:
		// Shutdown already consumed the serve result; nothing else may arrive.
	}
}

// TestShutdownWithoutStart: an engine that was built but never started (the
// admin listener failed to bind, say) releases its listeners on Shutdown,
// promptly.
func TestShutdownWithoutStart(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a")
	addr := testutil.ClosedAddr(t)
	e, err := engine.New(parse(t, cfgJSON(addr, "round_robin", bs, nil)), engine.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(begin); d > 800*time.Millisecond { // it used to wait 1s for a serve result that never comes
		t.Errorf("Shutdown of an unstarted engine took %v", d)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listener %s still bound after Shutdown of an unstarted engine: %v", addr, err)
	}
	ln.Close()
}

// The engine is what cmd/fulcrum hands to the admin API.
var (
	_ admin.Controller  = (*engine.Engine)(nil)
	_ admin.TokenSource = (*engine.Engine)(nil)
)

// TestAdminTokenFollowsReload: AdminToken reports the running config's
// token, so the admin API can rotate it on POST /admin/reload.
func TestAdminTokenFollowsReload(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a")
	withToken := func(tok string) string {
		return strings.Replace(cfgJSON("", "round_robin", bs, nil), "{", fmt.Sprintf(`{"admin_token": %q, `, tok), 1)
	}
	h := start(t, withToken("first"))
	if got := h.eng.AdminToken(); got != "first" {
		t.Fatalf("AdminToken = %q, want first", got)
	}
	writeFile(t, h.path, withToken("second"))
	if _, err := h.eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := h.eng.AdminToken(); got != "second" {
		t.Fatalf("AdminToken after reload = %q, want second", got)
	}
	writeFile(t, h.path, withToken("has space"))
	if _, err := h.eng.Reload(context.Background()); err == nil {
		t.Fatal("reload with an invalid token succeeded")
	}
	if got := h.eng.AdminToken(); got != "second" {
		t.Fatalf("AdminToken after a rejected reload = %q, want second", got)
	}
}
