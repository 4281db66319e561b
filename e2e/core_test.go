package e2e

// Helpers shared by the TestCore... tests (the "core" issue: config, CLI,
// strategies, admin API, reload, shutdown, health). The tests themselves are
// in core_cli_test.go, core_strategy_test.go and core_admin_test.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// coreClient returns a client with an overall timeout, so that no request
// can hang a test; its idle connections are closed at cleanup.
func coreClient(t testing.TB) *http.Client {
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// coreFetch is a non-fatal GET, usable from any goroutine.
func coreFetch(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// coreSeq sends n sequential GETs and returns the bodies; every answer must be 200.
func coreSeq(t testing.TB, c *http.Client, url string, n int) []string {
	t.Helper()
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		code, body := Get(t, c, url)
		if code != http.StatusOK {
			t.Fatalf("request %d to %s: status %d, body %q", i, url, code, body)
		}
		out = append(out, body)
	}
	return out
}

// coreCount tallies bodies.
func coreCount(bodies []string) map[string]int {
	m := map[string]int{}
	for _, b := range bodies {
		m[b]++
	}
	return m
}

// coreStartBackends starts one default backend per name (answering its name).
func coreStartBackends(t testing.TB, names ...string) []*Backend {
	t.Helper()
	out := make([]*Backend, len(names))
	for i, n := range names {
		out[i] = StartBackend(t, n, 0, nil)
	}
	return out
}

// coreBackendList renders a "backends" JSON list; weights may be nil (all 1,
// written as plain URL strings).
func coreBackendList(bs []*Backend, weights []int) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		if weights == nil {
			parts[i] = strconv.Quote(b.URL)
		} else {
			parts[i] = fmt.Sprintf(`{"url": %q, "weight": %d}`, b.URL, weights[i])
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// coreStatus is one element of GET /admin/backends.
type coreStatus struct {
	Pool     string `json:"pool"`
	URL      string `json:"url"`
	Weight   int    `json:"weight"`
	Up       bool   `json:"up"`
	Active   int64  `json:"active"`
	Requests uint64 `json:"requests"`
	Failures uint64 `json:"failures"`
}

// coreAdminBackends fetches GET /admin/backends; it checks that every
// element carries the documented keys.
func coreAdminBackends(t testing.TB, f *Fulcrum) []coreStatus {
	t.Helper()
	code, body := Get(t, coreAdminClient, f.AdminURL("/admin/backends"))
	if code != http.StatusOK {
		t.Fatalf("GET /admin/backends: status %d, body %q", code, body)
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("GET /admin/backends: not a JSON array: %v\n%s", err, body)
	}
	for i, el := range raw {
		for _, k := range []string{"pool", "url", "weight", "up", "active", "requests", "failures"} {
			if _, ok := el[k]; !ok {
				t.Fatalf("GET /admin/backends: element %d lacks %q: %s", i, k, body)
			}
		}
	}
	var out []coreStatus
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("GET /admin/backends: %v\n%s", err, body)
	}
	return out
}

// coreAdminClient is used for admin calls; admin answers are small and fast.
var coreAdminClient = &http.Client{Timeout: 15 * time.Second}

// coreByURL indexes statuses by URL.
func coreByURL(ss []coreStatus) map[string]coreStatus {
	m := make(map[string]coreStatus, len(ss))
	for _, s := range ss {
		m[s.URL] = s
	}
	return m
}

// coreReload POSTs /admin/reload and returns status and body.
func coreReload(t testing.TB, f *Fulcrum) (int, string) {
	t.Helper()
	resp, err := coreAdminClient.Post(f.AdminURL("/admin/reload"), "text/plain", nil)
	if err != nil {
		t.Fatalf("POST /admin/reload: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// coreMetrics is a parsed Prometheus text exposition: series key -> value,
// where the key is the metric name followed by its labels sorted by name,
// e.g. `x{a="1",b="2"}`.
type coreMetrics map[string]float64

// coreScrape fetches and parses GET /metrics from the admin listener.
func coreScrape(t testing.TB, f *Fulcrum) coreMetrics {
	t.Helper()
	code, body := Get(t, coreAdminClient, f.AdminURL("/metrics"))
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", code)
	}
	m, err := coreParseMetrics(body)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	return m
}

func coreParseMetrics(text string) (coreMetrics, error) {
	m := coreMetrics{}
	for ln, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, labels, rest, err := coreParseSeries(line)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %v", ln+1, line, err)
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("line %d %q: no value", ln+1, line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: %v", ln+1, line, err)
		}
		m[coreSeriesKey(name, labels)] = v
	}
	return m, nil
}

// coreParseSeries splits `name{k="v",...} rest`.
func coreParseSeries(line string) (name string, labels map[string]string, rest string, err error) {
	i := strings.IndexAny(line, "{ ")
	if i < 0 {
		return "", nil, "", errors.New("no value")
	}
	name, labels = line[:i], map[string]string{}
	if line[i] == ' ' {
		return name, labels, line[i:], nil
	}
	s := line[i+1:]
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return name, labels, s[1:], nil
		}
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return "", nil, "", errors.New("bad label")
		}
		key := strings.TrimSpace(s[:eq])
		s = s[eq+2:]
		var val strings.Builder
		j := 0
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' && j+1 < len(s) {
				j++
				switch s[j] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[j])
				}
				continue
			}
			val.WriteByte(s[j])
		}
		if j >= len(s) {
			return "", nil, "", errors.New("unterminated label value")
		}
		labels[key] = val.String()
		s = s[j+1:]
	}
}

func coreSeriesKey(name string, labels map[string]string) string {
	if len(labels) == 0 {
		return name
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, labels[k])
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// get returns the value of the series with exactly these labels
// (alternating name, value) and whether it exists.
func (m coreMetrics) get(name string, kv ...string) (float64, bool) {
	labels := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		labels[kv[i]] = kv[i+1]
	}
	v, ok := m[coreSeriesKey(name, labels)]
	return v, ok
}

// val is get with 0 for a missing series.
func (m coreMetrics) val(name string, kv ...string) float64 {
	v, _ := m.get(name, kv...)
	return v
}

// sum adds every series of name whose labels include the given ones.
func (m coreMetrics) sum(name string, kv ...string) float64 {
	var total float64
	for key, v := range m {
		if key != name && !strings.HasPrefix(key, name+"{") {
			continue
		}
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			if !strings.Contains(key, fmt.Sprintf("%s=%q", kv[i], kv[i+1])) {
				match = false
				break
			}
		}
		if match {
			total += v
		}
	}
	return total
}

// hasPrefix reports whether any series name starts with p.
func (m coreMetrics) hasPrefix(p string) bool {
	for key := range m {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// coreProc starts the fulcrum binary with args (no config file handling) and
// stops it at cleanup. stdout and stderr both go to Logs.
func coreProc(t testing.TB, args ...string) *Fulcrum {
	t.Helper()
	f := &Fulcrum{t: t, Logs: &syncBuffer{}, exited: make(chan struct{})}
	f.Cmd = exec.Command(binPath, args...)
	f.Cmd.Stdout, f.Cmd.Stderr = f.Logs, f.Logs
	if err := f.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.exitErr = f.Cmd.Wait(); close(f.exited) }()
	t.Cleanup(f.Stop)
	return f
}

// coreRun runs the binary to completion (bounded by timeout) and returns its
// exit code, stdout and stderr.
func coreRun(t testing.TB, timeout time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("fulcrum %v did not exit within %v\nstdout:\n%s\nstderr:\n%s", args, timeout, stdout.String(), stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("fulcrum %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// coreWriteFile writes content to a new file in a temp dir and returns its path.
func coreWriteFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// coreFreeAddr returns "127.0.0.1:PORT" for a port that was free a moment ago.
func coreFreeAddr(t testing.TB) string {
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}

// coreListening reports whether something accepts TCP connections on addr.
func coreListening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// coreRefused reports whether err says the connection was refused.
func coreRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// coreNoPanic fails if the output looks like a Go panic or crash.
func coreNoPanic(t testing.TB, out string) {
	t.Helper()
	for _, s := range []string{"panic:", "goroutine ", "fatal error:", "DATA RACE"} {
		if strings.Contains(out, s) {
			t.Fatalf("output contains %q:\n%s", s, out)
		}
	}
}

// coreHold makes backends that block requests to /hold until released, so
// a test controls exactly how many requests are in flight where.
type coreHold struct {
	entered chan string // receives the backend name when a /hold request arrives
	release chan struct{}
	once    sync.Once
	delay   time.Duration // applied to every request that is not /hold
}

func newCoreHold(t testing.TB) *coreHold {
	h := &coreHold{entered: make(chan string, 64), release: make(chan struct{})}
	t.Cleanup(h.Release)
	return h
}

// Release unblocks every held request (now and later).
func (h *coreHold) Release() { h.once.Do(func() { close(h.release) }) }

// handler answers name; /hold blocks first (bounded by 30 s and the request's context).
func (h *coreHold) handler(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			h.entered <- name
			select {
			case <-h.release:
			case <-r.Context().Done():
				return
			case <-time.After(30 * time.Second):
			}
		} else if h.delay > 0 {
			time.Sleep(h.delay)
		}
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name)
	}
}

// coreResult is the outcome of one request made in the background.
type coreResult struct {
	code int
	body string
	err  error
}

// coreGoHold sends GET /hold in the background, waits until a backend has
// received it and returns that backend's name and a channel with the result.
func coreGoHold(t testing.TB, h *coreHold, c *http.Client, f *Fulcrum) (string, <-chan coreResult) {
	t.Helper()
	res := make(chan coreResult, 1)
	go func() {
		code, body, err := coreFetch(c, f.URL("/hold"))
		res <- coreResult{code, body, err}
	}()
	select {
	case name := <-h.entered:
		return name, res
	case r := <-res:
		t.Fatalf("hold request finished before reaching a backend: %+v", r)
	case <-time.After(15 * time.Second):
		t.Fatal("hold request did not reach a backend within 15s")
	}
	return "", nil
}

// coreWaitResult waits (bounded) for a background request's result.
func coreWaitResult(t testing.TB, ch <-chan coreResult) coreResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("background request did not finish within 20s")
	}
	return coreResult{}
}

// coreAlive reports whether the process is still running.
func coreAlive(f *Fulcrum) bool {
	select {
	case <-f.exited:
		return false
	default:
		return true
	}
}
