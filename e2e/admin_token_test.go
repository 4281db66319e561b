package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tokenClient is an HTTP client without keep-alives (nothing lingers after
// the test) and with a bounded wait.
func tokenClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// adminDo sends method url with an optional Authorization header and returns
// status, WWW-Authenticate and body.
func adminDo(t *testing.T, method, url, auth string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := tokenClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// checkAdminToken asserts that every admin endpoint but /healthz requires
// exactly `Bearer token`, and that traffic does not.
func checkAdminToken(t *testing.T, f *Fulcrum, token string) {
	t.Helper()
	endpoints := []struct{ method, path string }{
		{"GET", "/metrics"},
		{"GET", "/admin/backends"},
		{"POST", "/admin/reload"},
	}
	for _, ep := range endpoints {
		for _, auth := range []string{"", "Bearer wrong-" + token, "Basic " + token, token} {
			code, challenge, body := adminDo(t, ep.method, f.AdminURL(ep.path), auth)
			if code != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: %d, want 401\n%s", ep.method, ep.path, auth, code, body)
			}
			if !strings.HasPrefix(challenge, "Bearer") {
				t.Errorf("%s %s with Authorization %q: WWW-Authenticate %q, want a Bearer challenge", ep.method, ep.path, auth, challenge)
			}
		}
		code, _, body := adminDo(t, ep.method, f.AdminURL(ep.path), "Bearer "+token)
		if code != http.StatusOK {
			t.Errorf("%s %s with the token: %d, want 200\n%s", ep.method, ep.path, code, body)
		}
		if ep.path == "/metrics" && !strings.Contains(body, "loadbalancer_request_count_total") && !strings.Contains(body, "fulcrum_") {
			t.Errorf("/metrics with the token does not look like fulcrum metrics:\n%.500s", body)
		}
		if ep.path == "/admin/backends" && !strings.HasPrefix(strings.TrimSpace(body), "[") {
			t.Errorf("/admin/backends with the token: %q, want a JSON array", body)
		}
	}
	for _, auth := range []string{"", "Bearer wrong"} {
		if code, _, body := adminDo(t, "GET", f.AdminURL("/healthz"), auth); code != http.StatusOK {
			t.Errorf("/healthz with Authorization %q: %d %q, want 200", auth, code, body)
		}
	}
	if code, body := Get(t, tokenClient(), f.URL("/")); code != http.StatusOK {
		t.Errorf("traffic without a token: %d %q, want 200 (the token guards only the admin API)", code, body)
	}
}

func TestAdminTokenInline(t *testing.T) {
	t.Parallel()
	b := StartBackend(t, "a", 0, nil)
	const token = "e2e-Token_0123456789"
	f := StartFulcrum(t, fmt.Sprintf(`{"admin_token": %q, "backends": [%q]}`, token, b.URL))
	checkAdminToken(t, f, token)
	if strings.Contains(f.Logs.String(), token) {
		t.Errorf("the admin token appears in the logs:\n%s", f.Logs.String())
	}
}

func TestAdminTokenFile(t *testing.T) {
	t.Parallel()
	b := StartBackend(t, "a", 0, nil)
	const token = "from-a-file-42"
	path := filepath.Join(t.TempDir(), "admin.token")
	// A trailing newline, as editors and `echo` leave, is not part of the token.
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := StartFulcrum(t, fmt.Sprintf(`{"admin_token_file": %q, "backends": [%q]}`, path, b.URL))
	checkAdminToken(t, f, token)
}

// TestAdminTokenRotateOnSIGHUP: a new token in the file takes effect on
// reload; the old one stops working.
func TestAdminTokenRotateOnSIGHUP(t *testing.T) {
	t.Parallel()
	b := StartBackend(t, "a", 0, nil)
	f := StartFulcrum(t, fmt.Sprintf(`{"admin_token": "old-token", "backends": [%q]}`, b.URL))
	if code, _, _ := adminDo(t, "GET", f.AdminURL("/admin/backends"), "Bearer old-token"); code != 200 {
		t.Fatalf("old token before rotation: %d", code)
	}
	f.WriteConfig(fmt.Sprintf(`{"admin_token": "new-token", "backends": [%q]}`, b.URL))
	f.Signal(syscall.SIGHUP)
	WaitFor(t, 10*time.Second, "the new admin token to be accepted", func() bool {
		code, _, _ := adminDo(t, "GET", f.AdminURL("/admin/backends"), "Bearer new-token")
		return code == 200
	})
	if code, _, _ := adminDo(t, "GET", f.AdminURL("/admin/backends"), "Bearer old-token"); code != 401 {
		t.Fatalf("old token after rotation: %d, want 401", code)
	}
}

// TestAdminTokenRotateOnAdminReload: POST /admin/reload applies a new token
// just as SIGHUP does.
func TestAdminTokenRotateOnAdminReload(t *testing.T) {
	t.Parallel()
	b := StartBackend(t, "a", 0, nil)
	f := StartFulcrum(t, fmt.Sprintf(`{"admin_token": "old-token", "backends": [%q]}`, b.URL))
	f.WriteConfig(fmt.Sprintf(`{"admin_token": "new-token", "backends": [%q]}`, b.URL))
	if code, _, body := adminDo(t, "POST", f.AdminURL("/admin/reload"), "Bearer old-token"); code != 200 {
		t.Fatalf("reload: %d %q", code, body)
	}
	if code, _, _ := adminDo(t, "GET", f.AdminURL("/admin/backends"), "Bearer new-token"); code != 200 {
		t.Errorf("new token after POST /admin/reload: %d, want 200", code)
	}
	if code, _, _ := adminDo(t, "GET", f.AdminURL("/admin/backends"), "Bearer old-token"); code != 401 {
		t.Errorf("old token after POST /admin/reload: %d, want 401", code)
	}
}

// runValidate runs `fulcrum validate -config path` with a bounded wait.
func runValidate(t *testing.T, path string) (int, string) {
	t.Helper()
	cmd := exec.Command(binPath, "validate", "-config", path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("fulcrum validate did not finish in 30s\n%s", out.String())
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

// TestValidatePublicAdminNeedsToken: an admin listener that is reachable
// from other machines must have a token; validate (which binds nothing)
// says so and names admin_addr.
func TestValidatePublicAdminNeedsToken(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	dir := t.TempDir()
	write := func(name, cfg string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	for _, admin := range []string{fmt.Sprintf("0.0.0.0:%d", port), fmt.Sprintf(":%d", port), fmt.Sprintf("[::]:%d", port)} {
		path := write("public.json", fmt.Sprintf(`{"listen_addr": %q, "admin_addr": %q, "backends": ["http://127.0.0.1:1"]}`, listen, admin))
		code, out := runValidate(t, path)
		if code != 1 {
			t.Errorf("admin_addr %q without a token: validate exit %d, want 1\n%s", admin, code, out)
		}
		if !strings.Contains(out, "admin_addr") || !strings.Contains(out, "admin_token") {
			t.Errorf("admin_addr %q without a token: output does not name admin_addr and admin_token:\n%s", admin, out)
		}
		if strings.Contains(out, "panic") {
			t.Errorf("validate panicked:\n%s", out)
		}

		path = write("public-token.json", fmt.Sprintf(`{"listen_addr": %q, "admin_addr": %q, "admin_token": "tok", "backends": ["http://127.0.0.1:1"]}`, listen, admin))
		if code, out := runValidate(t, path); code != 0 {
			t.Errorf("admin_addr %q with a token: validate exit %d, want 0\n%s", admin, code, out)
		}
	}
	// Loopback needs no token.
	for _, admin := range []string{fmt.Sprintf("127.0.0.1:%d", port), fmt.Sprintf("localhost:%d", port), fmt.Sprintf("[::1]:%d", port)} {
		path := write("loopback.json", fmt.Sprintf(`{"listen_addr": %q, "admin_addr": %q, "backends": ["http://127.0.0.1:1"]}`, listen, admin))
		if code, out := runValidate(t, path); code != 0 {
			t.Errorf("admin_addr %q without a token: validate exit %d, want 0\n%s", admin, code, out)
		}
	}
}
