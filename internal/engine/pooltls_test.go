package engine_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/engine"
	"fulcrum/internal/testutil"
)

// tlsBackend is an https backend whose answer tells what it saw of the
// connection: "conn=ADDR resumed=BOOL client=CN".
type tlsBackend struct {
	url string
	mu  sync.Mutex
	// conns are the client addresses of the connections requests came on.
	conns map[string]bool
}

// startTLSBackend serves HTTPS with leaf; clientCAs, when set, requires a
// client certificate signed by one of them. A request for /close asks
// fulcrum to close the connection after the answer.
func startTLSBackend(t *testing.T, leaf *testutil.Leaf, clientCAs *x509.CertPool) *tlsBackend {
	t.Helper()
	b := &tlsBackend{conns: map[string]bool{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.conns[r.RemoteAddr] = true
		b.mu.Unlock()
		cn := ""
		if len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		if r.URL.Path == "/close" {
			w.Header().Set("Connection", "close")
		}
		fmt.Fprintf(w, "conn=%s resumed=%v client=%s", r.RemoteAddr, r.TLS.DidResume, cn)
	}))
	// Failed handshakes (the wrong-CA cases, TCP health checks) are on purpose.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	cert, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		srv.TLS.ClientCAs = clientCAs
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

func (b *tlsBackend) connCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// btlsCfg is a flat config over one backend with backend_tls block ("" = none).
func btlsCfg(url, block string) string {
	if block != "" {
		block = `, "backend_tls": ` + block
	}
	return fmt.Sprintf(`{"admin_addr": "", "listen_addr": "127.0.0.1:0", "retries": 0, "health_check_interval": "1h",
 "backends": [%q]%s}`, url, block)
}

// fetch GETs path through the engine.
func (h *harness) fetch(path string) (int, string) {
	h.t.Helper()
	resp, err := h.cl.Get("http://" + h.eng.Addr().String() + path)
	if err != nil {
		h.t.Fatalf("GET %s through the engine: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (h *harness) wantOK(path string) string {
	h.t.Helper()
	code, body := h.fetch(path)
	if code != 200 {
		h.t.Fatalf("GET %s: %d %q, want 200", path, code, body)
	}
	return body
}

func (h *harness) want502(path string) {
	h.t.Helper()
	if code, body := h.fetch(path); code != 502 {
		h.t.Fatalf("GET %s: %d %q, want 502", path, code, body)
	}
}

func days(n int) time.Time { return time.Now().Add(time.Duration(n) * 24 * time.Hour) }

// ca_file verifies the backend; keep-alive requests share one TLS
// connection, and a new connection resumes the session.
func TestPoolTLSCAFileAndResumption(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	be := startTLSBackend(t, ca.Issue("be", []string{"127.0.0.1"}, days(30), false), nil)
	h := start(t, btlsCfg(be.url, fmt.Sprintf(`{"ca_file": %q}`, ca.CAFile)))
	first := h.wantOK("/")
	if !strings.Contains(first, "resumed=false") {
		t.Errorf("first connection: %q, want a full handshake", first)
	}
	if second := h.wantOK("/"); strings.Fields(second)[0] != strings.Fields(first)[0] {
		t.Errorf("keep-alive: %q then %q, want one connection", first, second)
	}
	// The backend closes the connection; the next request dials anew and
	// resumes the TLS session.
	h.wantOK("/close")
	third := h.wantOK("/")
	if strings.Fields(third)[0] == strings.Fields(first)[0] || !strings.Contains(third, "resumed=true") {
		t.Errorf("after the backend closed: %q, want a new connection that resumed the session", third)
	}
	if n := be.connCount(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
	// A reload that changes nothing keeps the pooled TLS connection.
	if _, err := h.eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if again := h.wantOK("/"); strings.Fields(again)[0] != strings.Fields(third)[0] {
		t.Errorf("after an unchanged reload: %q, want the connection of %q", again, third)
	}
}

// The system roots (no ca_file) and a wrong ca_file do not trust the test
// CA: 502, never a 200.
func TestPoolTLSUntrusted(t *testing.T) {
	t.Parallel()
	ca, other := testutil.NewCA(t), testutil.NewCA(t)
	be := startTLSBackend(t, ca.Issue("be", []string{"127.0.0.1"}, days(30), false), nil)
	for _, block := range []string{"", fmt.Sprintf(`{"ca_file": %q}`, other.CAFile)} {
		h := start(t, btlsCfg(be.url, block))
		for range 3 {
			h.want502("/")
		}
	}
	if n := be.connCount(); n != 0 {
		t.Errorf("%d requests reached the untrusted backend", n)
	}
}

// The active HTTP health check uses the pool's TLS: with the wrong CA it
// marks the backend down with the certificate error; with the right one it
// stays up.
func TestPoolTLSHealthCheck(t *testing.T) {
	t.Parallel()
	ca, other := testutil.NewCA(t), testutil.NewCA(t)
	be := startTLSBackend(t, ca.Issue("be", []string{"127.0.0.1"}, days(30), false), nil)
	cfg := func(caFile string) string {
		return fmt.Sprintf(`{"admin_addr": "", "listen_addr": "127.0.0.1:0", "retries": 0, "backends": [%q],
 "health_check": {"type": "http", "path": "/", "interval": "100ms", "timeout": "100ms", "unhealthy_threshold": 1, "healthy_threshold": 1},
 "backend_tls": {"ca_file": %q}}`, be.url, caFile)
	}
	bad := start(t, cfg(other.CAFile))
	testutil.WaitFor(t, 5*time.Second, "backend marked down", func() bool {
		st := bad.eng.Backends()[0]
		return !st.Healthy && st.LastCheck != nil && strings.Contains(st.LastCheck.Info, "certificate")
	})
	if st := bad.eng.Backends()[0]; st.DownReason == nil || !strings.Contains(*st.DownReason, "TLS error") {
		t.Errorf("down reason %v, want the TLS error", st.DownReason)
	}
	good := start(t, cfg(ca.CAFile))
	testutil.WaitFor(t, 5*time.Second, "a passed check", func() bool {
		st := good.eng.Backends()[0]
		return st.LastCheck != nil && st.LastCheck.OK && st.Healthy
	})
}

// server_name: a certificate for api.test on a backend dialled at
// 127.0.0.1 verifies only under server_name api.test.
func TestPoolTLSServerName(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	be := startTLSBackend(t, ca.Issue("be", []string{"api.test"}, days(30), false), nil)
	without := start(t, btlsCfg(be.url, fmt.Sprintf(`{"ca_file": %q}`, ca.CAFile)))
	without.want502("/")
	with := start(t, btlsCfg(be.url, fmt.Sprintf(`{"ca_file": %q, "server_name": "api.test"}`, ca.CAFile)))
	with.wantOK("/")
}

// insecure_skip_verify accepts a certificate nothing trusts.
func TestPoolTLSInsecureSkipVerify(t *testing.T) {
	t.Parallel()
	be := startTLSBackend(t, testutil.NewCA(t).Issue("be", []string{"elsewhere.test"}, days(30), false), nil)
	h := start(t, btlsCfg(be.url, `{"insecure_skip_verify": true}`))
	h.wantOK("/")
}

// A backend that requires a client certificate refuses fulcrum without
// cert_file and key_file, and sees the certificate's subject with them.
func TestPoolTLSClientCertificate(t *testing.T) {
	t.Parallel()
	ca, clients := testutil.NewCA(t), testutil.NewCA(t)
	be := startTLSBackend(t, ca.Issue("be", []string{"127.0.0.1"}, days(30), false), clients.Pool)
	client := clients.Issue("fulcrum", []string{"fulcrum.client"}, days(30), true)
	without := start(t, btlsCfg(be.url, fmt.Sprintf(`{"ca_file": %q}`, ca.CAFile)))
	without.want502("/")
	with := start(t, btlsCfg(be.url, fmt.Sprintf(`{"ca_file": %q, "cert_file": %q, "key_file": %q}`,
		ca.CAFile, client.CertFile, client.KeyFile)))
	if body := with.wantOK("/"); !strings.Contains(body, "client=fulcrum.client") {
		t.Errorf("backend saw %q, want client=fulcrum.client", body)
	}
	// Sessions resume with a client certificate too, and keep it.
	with.wantOK("/close")
	if body := with.wantOK("/"); !strings.Contains(body, "resumed=true client=fulcrum.client") {
		t.Errorf("second connection: %q, want a resumed session with the client certificate", body)
	}
}

// Files that do not load stop start-up (and validate) with an error naming
// the key and the file.
func TestPoolTLSFileErrors(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	a := ca.Issue("a", []string{"a.test"}, days(30), false)
	b := ca.Issue("b", []string{"b.test"}, days(30), false)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, "not PEM\n")
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct{ block, want string }{
		{fmt.Sprintf(`{"ca_file": %q}`, missing), "backend_tls.ca_file: open " + missing},
		{fmt.Sprintf(`{"ca_file": %q}`, garbage), "backend_tls.ca_file: " + garbage + ": no PEM certificate"},
		{fmt.Sprintf(`{"cert_file": %q, "key_file": %q}`, a.CertFile, b.KeyFile),
			"backend_tls.cert_file and key_file: " + a.CertFile + " with " + b.KeyFile + ": tls: private key does not match public key"},
		{fmt.Sprintf(`{"cert_file": %q, "key_file": %q}`, a.CertFile, missing), "backend_tls.key_file: open " + missing},
	} {
		path := filepath.Join(t.TempDir(), "fulcrum.json")
		writeFile(t, path, btlsCfg("https://127.0.0.1:9", tc.block))
		c, err := config.Load(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := engine.CheckCertificates(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate %s: %v, want %q", tc.block, err, tc.want)
		}
		if _, err := engine.New(c, engine.Options{Logger: quiet}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("start-up %s: %v, want %q", tc.block, err, tc.want)
		}
	}
}

// A reload (and its dry run) with a broken ca_file fails and the old
// configuration keeps serving; fixing the file and reloading again works.
func TestPoolTLSReloadBrokenCAFile(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	be := startTLSBackend(t, ca.Issue("be", []string{"127.0.0.1"}, days(30), false), nil)
	caPath := filepath.Join(t.TempDir(), "ca.pem")
	writeFile(t, caPath, string(ca.PEM))
	h := start(t, fmt.Sprintf(`{"admin_addr": "", "health_check_interval": "1h", "retries": 0,
 "pools": {"api": {"backends": [%q], "tls": {"ca_file": %q}}},
 "listeners": [{"name": "l", "listen_addr": "127.0.0.1:0", "routes": [{"pool": "api"}]}]}`, be.url, caPath))
	h.wantOK("/")
	if err := os.WriteFile(caPath, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := "pools.api.tls.ca_file: " + caPath + ": no PEM certificate"
	if _, _, err := h.eng.DryRun(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("dry run: %v, want %q", err, want)
	}
	if _, err := h.eng.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("reload: %v, want %q", err, want)
	}
	h.wantOK("/")
	h.wantOK("/close")
	h.wantOK("/") // a new dial with the old configuration still verifies
	writeFile(t, caPath, string(ca.PEM))
	if _, err := h.eng.Reload(context.Background()); err != nil {
		t.Fatalf("reload after the fix: %v", err)
	}
	h.wantOK("/")
}
