package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// previewRun runs the binary with FULCRUM_ADMIN_TOKEN removed from the
// environment and env added, bounded by 30 s; it returns the exit status,
// stdout and stderr.
func previewRun(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FULCRUM_ADMIN_TOKEN=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("fulcrum %v did not exit within 30s\nstdout:\n%s\nstderr:\n%s", args, stdout.String(), stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("fulcrum %v: %v", args, err)
	}
	coreNoPanic(t, stdout.String()+stderr.String())
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// previewSetup starts fulcrum with an admin token (from a file) over
// consistent_hash on X-User with a sticky cookie, backends a and b, and
// writes a NEW file beside it that adds c, gives b weight 2, changes the
// sticky secret and log_level. It returns the process, the token file, the
// NEW file and the backends.
func previewSetup(t *testing.T) (*Fulcrum, string, string, [3]*Backend) {
	t.Helper()
	var bs [3]*Backend
	for i, name := range []string{"a", "b", "c"} {
		bs[i] = StartBackend(t, name, 0, nil)
	}
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte("preview-token-0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := func(sticky, extra string, backends ...string) string {
		return fmt.Sprintf(`{"admin_token_file": %q, "strategy": "consistent_hash", "hash_key": "header:X-User", "retries": 0,
 "health_check_interval": "1h", "sticky": {"type": "cookie", "secret": %q}%s, "backends": [%s]}`, tokenFile, sticky, extra, strings.Join(backends, ", "))
	}
	f := StartFulcrum(t, doc("first-secret", "", strconv.Quote(bs[0].URL), strconv.Quote(bs[1].URL)))
	next := doc("second-secret", `, "log_level": "debug"`, strconv.Quote(bs[0].URL), fmt.Sprintf(`{"url": %q, "weight": 2}`, bs[1].URL), strconv.Quote(bs[2].URL))
	next = strings.Replace(next, "{", fmt.Sprintf(`{"listen_addr": %q, "admin_addr": %q, `, f.Addr, f.Admin), 1)
	newPath := filepath.Join(dir, "new.json")
	if err := os.WriteFile(newPath, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	return f, tokenFile, newPath, bs
}

// placements sends n requests with keys user-0 ... user-(n-1) and returns
// the backend each went to.
func placements(t *testing.T, f *Fulcrum, n int) []string {
	t.Helper()
	c := tokenClient()
	out := make([]string, n)
	for i := range out {
		req, _ := http.NewRequest("GET", f.URL("/"), nil)
		req.Header.Set("X-User", fmt.Sprintf("user-%d", i))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = resp.Header.Get("X-Backend")
		resp.Body.Close()
	}
	return out
}

// TestValidateAgainstRunning drives `fulcrum validate -config NEW -against
// URL` against a running fulcrum: the lines it prints, its exit statuses,
// the token it needs; then applies NEW and checks that the share of keys the
// preview said would move is the share that moved in real traffic.
func TestValidateAgainstRunning(t *testing.T) {
	t.Parallel()
	f, tokenFile, newPath, bs := previewSetup(t)
	url := "http://" + f.Admin

	code, stdout, stderr := previewRun(t, nil, "validate", "-config", newPath, "-against", url, "-token-file", tokenFile)
	if code != 0 {
		t.Fatalf("validate -against: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	want := []string{
		`^log_level info -> debug$`,
		`^pool default: sticky secret changed: every pinned client moves \(and every FULCRUM_SPLIT pin to this pool\)$`,
		`^pool default: backend ` + regexp.QuoteMeta(bs[2].URL) + ` added \(weight 1\)$`,
		`^pool default: backend ` + regexp.QuoteMeta(bs[1].URL) + ` weight 1 -> 2$`,
		`^pool default: hash backends changed: (\d+\.\d)% of keys move \(table of 65537 slots\)$`,
	}
	if len(lines) != len(want) {
		t.Fatalf("validate -against printed %d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	var predicted float64
	for i, w := range want {
		m := regexp.MustCompile(w).FindStringSubmatch(lines[i])
		if m == nil {
			t.Fatalf("line %d = %q, want %s\nall:\n%s", i, lines[i], w, stdout)
		}
		if len(m) > 1 {
			predicted, _ = strconv.ParseFloat(m[1], 64)
		}
	}
	if !strings.Contains(stderr, "is valid (3 backends, strategy consistent_hash") {
		t.Errorf("stderr lacks the validity line:\n%s", stderr)
	}
	for _, secret := range []string{"first-secret", "second-secret", "preview-token-0123"} {
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("the output shows %q", secret)
		}
	}

	// The same token from the environment; no token at all; a wrong one.
	if code, out, errOut := previewRun(t, []string{"FULCRUM_ADMIN_TOKEN=preview-token-0123"}, "validate", "-config", newPath, "-against", url); code != 0 || out != stdout {
		t.Errorf("token from FULCRUM_ADMIN_TOKEN: exit %d\n%s\n%s", code, out, errOut)
	}
	needs := "fulcrum validate: the admin API at " + url + " needs a token: pass -token-file or set FULCRUM_ADMIN_TOKEN"
	if code, out, errOut := previewRun(t, nil, "validate", "-config", newPath, "-against", url); code != 1 || out != "" || !strings.Contains(errOut, needs) {
		t.Errorf("without a token: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and %q", code, out, errOut, needs)
	}
	if code, _, errOut := previewRun(t, []string{"FULCRUM_ADMIN_TOKEN=wrong"}, "validate", "-config", newPath, "-against", url); code != 1 ||
		!strings.Contains(errOut, "needs a token and refused the one from $FULCRUM_ADMIN_TOKEN") {
		t.Errorf("wrong token: exit %d, stderr:\n%s", code, errOut)
	}

	// Apply NEW; the keys that move in real traffic are the share predicted.
	const n = 600
	before := placements(t, f, n)
	if err := os.Rename(newPath, f.ConfigPath); err != nil {
		t.Fatal(err)
	}
	if code, _, body := adminDo(t, "POST", f.AdminURL("/admin/reload"), "Bearer preview-token-0123"); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	after := placements(t, f, n)
	moved := 0
	for i := range before {
		if before[i] == "" || after[i] == "" {
			t.Fatalf("request %d had no X-Backend (before %q, after %q)", i, before[i], after[i])
		}
		if before[i] != after[i] {
			moved++
		}
	}
	real := 100 * float64(moved) / n
	t.Logf("preview: %.1f%% of keys move; real traffic: %.1f%% of %d keys moved", predicted, real, n)
	// 600 keys measure a share to within about ±2 points (one standard
	// error); allow four.
	if d := real - predicted; d > 8 || d < -8 {
		t.Errorf("preview said %.1f%% of keys move, %.1f%% of %d keys moved in real traffic", predicted, real, n)
	}
	// Now NEW is what runs.
	if code, out, errOut := previewRun(t, nil, "validate", "-config", f.ConfigPath, "-against", url, "-token-file", tokenFile); code != 0 || out != "no changes\n" {
		t.Errorf("validate -against with the running file: exit %d, stdout %q\n%s", code, out, errOut)
	}
}

// TestValidateAgainstFailures: an invalid NEW is exit 1 without asking the
// server; an unreachable server, or a NEW the server would refuse, is exit 1
// with a clear message; a malformed URL is a usage error (2).
func TestValidateAgainstFailures(t *testing.T) {
	t.Parallel()
	f, tokenFile, newPath, _ := previewSetup(t)
	url := "http://" + f.Admin
	closed := "http://" + coreFreeAddr(t)
	data, err := os.ReadFile(newPath)
	if err != nil {
		t.Fatal(err)
	}
	bad := coreWriteFile(t, "bad.json", strings.Replace(string(data), `"weight": 2`, `"weight": 0`, 1))
	refused := coreWriteFile(t, "refused.json", strings.Replace(string(data), "{", `{"log_format": "json", `, 1))
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		stderr  string
		without string
	}{
		{"invalid NEW", []string{"-config", bad, "-against", closed, "-token-file", tokenFile}, 1,
			"config: backends[1].weight: must be >= 1, got 0", "cannot reach"},
		{"unreachable", []string{"-config", newPath, "-against", closed, "-token-file", tokenFile}, 1,
			"fulcrum validate: cannot reach the admin API at " + closed + ": dial tcp", "panic"},
		{"refused", []string{"-config", refused, "-against", url, "-token-file", tokenFile}, 1,
			`would refuse a reload to ` + refused + `: log_format: cannot change on reload (running "text", file says "json"); restart fulcrum`, "panic"},
		{"malformed URL", []string{"-config", newPath, "-against", f.Admin}, 2, "-against: want the admin API's URL, like http://127.0.0.1:9090", "panic"},
		{"token file without -against", []string{"-config", newPath, "-token-file", tokenFile}, 2, "-token-file goes with -against URL", "panic"},
		{"missing token file", []string{"-config", newPath, "-against", url, "-token-file", tokenFile + ".nope"}, 1, "-token-file: open ", "panic"},
	} {
		code, stdout, stderr := previewRun(t, nil, append([]string{"validate"}, tc.args...)...)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) || strings.Contains(stderr, tc.without) {
			t.Errorf("%s: exit %d, want %d with %q (and no %q)\nstdout:\n%s\nstderr:\n%s", tc.name, code, tc.code, tc.stderr, tc.without, stdout, stderr)
		}
	}
}

// TestReloadDryRunEndpoint: POST /admin/reload?dry_run=1 answers the
// changes as JSON and applies none: /admin/backends and traffic are as
// before, and no reload is counted. An invalid file is a 400 naming the key.
func TestReloadDryRunEndpoint(t *testing.T) {
	t.Parallel()
	f, _, newPath, bs := previewSetup(t)
	const auth = "Bearer preview-token-0123"
	_, _, backendsBefore := adminDo(t, "GET", f.AdminURL("/admin/backends"), auth)
	if err := os.Rename(newPath, f.ConfigPath); err != nil {
		t.Fatal(err)
	}
	if code, _, body := adminDo(t, "POST", f.AdminURL("/admin/reload?dry_run=1"), ""); code != 401 {
		t.Errorf("dry run without the token: %d %s, want 401", code, body)
	}
	code, _, body := adminDo(t, "POST", f.AdminURL("/admin/reload?dry_run=1"), auth)
	var got struct {
		Valid   bool `json:"valid"`
		Changes []struct {
			Kind, Pool, Backend, Message string
			Moved                        *struct{ Percent float64 }
		} `json:"changes"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 || !got.Valid {
		t.Fatalf("dry run: %d %s (%v)", code, body, err)
	}
	var kinds []string
	for _, c := range got.Changes {
		kinds = append(kinds, c.Kind)
	}
	if want := "setting_changed sticky_reset backend_added weight_changed hash_keys_moved"; strings.Join(kinds, " ") != want {
		t.Errorf("dry run kinds %q, want %q\n%s", strings.Join(kinds, " "), want, body)
	}
	if c := got.Changes[len(got.Changes)-1]; c.Moved == nil || c.Moved.Percent < 25 || c.Moved.Percent > 60 {
		t.Errorf("hash_keys_moved = %+v: at least a quarter of the keys must move (a keeps 1/4 of 1/2), far from all", c)
	}
	// Nothing applied.
	if _, _, after := adminDo(t, "GET", f.AdminURL("/admin/backends"), auth); stripCounters(after) != stripCounters(backendsBefore) {
		t.Errorf("/admin/backends changed after the dry run:\nbefore %s\nafter %s", backendsBefore, after)
	}
	placements(t, f, 50)
	if h := bs[2].Hits.Load(); h != 0 {
		t.Errorf("backend c, only in the previewed file, got %d requests", h)
	}
	if _, _, m := adminDo(t, "GET", f.AdminURL("/metrics"), auth); strings.Contains(m, `fulcrum_reloads_total{result="success"} 1`) ||
		strings.Contains(m, `fulcrum_reloads_total{result="failure"} 1`) {
		t.Errorf("a dry run was counted as a reload")
	}
	// An invalid file: 400, the key named, still nothing applied.
	data, _ := os.ReadFile(f.ConfigPath)
	f.WriteConfig(strings.Replace(string(data), `"weight": 2`, `"weight": 0`, 1))
	code, _, body = adminDo(t, "POST", f.AdminURL("/admin/reload?dry_run=true"), auth)
	var refusal struct {
		Valid bool   `json:"valid"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &refusal); err != nil || code != 400 || refusal.Valid ||
		!strings.Contains(refusal.Error, "backends[1].weight: must be >= 1, got 0") {
		t.Errorf("dry run of an invalid file: %d %s", code, body)
	}
	if _, _, after := adminDo(t, "GET", f.AdminURL("/admin/backends"), auth); stripCounters(after) != stripCounters(backendsBefore) {
		t.Errorf("/admin/backends changed after the invalid dry run:\n%s", after)
	}
	if code, _, body := adminDo(t, "POST", f.AdminURL("/admin/reload?dry_run=maybe"), auth); code != 400 || !strings.Contains(body, `"error": "dry_run: want 1, true, 0 or false, got \"maybe\""`) {
		t.Errorf("dry_run=maybe: %d %s", code, body)
	}
}

// stripCounters keeps what configuration decides in /admin/backends (pool,
// url, weight), not the counters traffic and health checks move.
func stripCounters(body string) string {
	var bs []struct {
		Pool, URL string
		Weight    int
	}
	if err := json.Unmarshal([]byte(body), &bs); err != nil {
		return "unparsable: " + body
	}
	return fmt.Sprint(bs)
}
