package engine_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/engine"
	"fulcrum/internal/testutil"
)

func tlsCfg(backend string, leaf *testutil.Leaf) string {
	return fmt.Sprintf(`{"admin_addr": "", "health_check_interval": "1h", "backends": [%q],
 "listen_addr": "127.0.0.1:0", "tls_cert_file": %q, "tls_key_file": %q}`, backend, leaf.CertFile, leaf.KeyFile)
}

// An HTTPS listener terminates TLS, tells the backend X-Forwarded-Proto:
// https, and a reload with a broken certificate keeps the old one serving.
func TestTLSListenerEndToEnd(t *testing.T) {
	t.Parallel()
	proto := make(chan string, 8)
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case proto <- r.Header.Get("X-Forwarded-Proto"):
		default:
		}
		io.WriteString(w, "hello")
	}))
	defer be.Close()
	ca := testutil.NewCA(t)
	leaf := ca.Issue("site", []string{"site.test"}, time.Now().Add(30*24*time.Hour), false)
	h := start(t, tlsCfg(be.URL, leaf))
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "site.test"}}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := "https://" + h.eng.Addr().String() + "/"
	get := func() (string, *tls.ConnectionState) { return getBody(t, cl, url) }
	body, st := get()
	if body != "hello" || st == nil || st.Version != tls.VersionTLS13 {
		t.Fatalf("body %q, TLS %+v", body, st)
	}
	if p := <-proto; p != "https" {
		t.Errorf("X-Forwarded-Proto %q, want https", p)
	}
	testutil.WaitFor(t, 5*time.Second, "handshake counted", func() bool {
		return testutil.Counter(t, h.reg, "fulcrum_tls_handshakes_total", "result", "ok") >= 1
	})
	// Plain HTTP on the TLS port is refused and counted, and never reaches the backend.
	resp, err := http.Get("http://" + h.eng.Addr().String() + "/")
	if err != nil {
		t.Fatal("plain HTTP on the TLS listener:", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("plain HTTP on the TLS listener: %d, want 400", resp.StatusCode)
	}
	select {
	case p := <-proto:
		t.Errorf("a plain request on the TLS port reached the backend (%q)", p)
	default:
	}

	// A reload whose certificate is broken fails and keeps the old one.
	os.WriteFile(leaf.CertFile, []byte("garbage"), 0o600)
	if _, err := h.eng.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), leaf.CertFile) {
		t.Fatalf("reload with a broken certificate: %v, want an error naming %s", err, leaf.CertFile)
	}
	if n := testutil.Counter(t, h.reg, "fulcrum_tls_certificate_reload_errors_total", "listener", "default"); n != 1 {
		t.Errorf("reload errors of listener default: %v, want 1", n)
	}
	tr.CloseIdleConnections()
	if body, _ := get(); body != "hello" {
		t.Fatalf("after the failed reload: %q", body)
	}
	// A good new certificate on reload: new handshakes get it.
	next := ca.Issue("site", []string{"site.test"}, time.Now().Add(60*24*time.Hour), false)
	if _, err := h.eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	tr.CloseIdleConnections()
	if _, st := get(); !st.PeerCertificates[0].Equal(next.Cert) {
		t.Error("after the reload the old certificate is still served")
	}
	var kinds []string
	for _, ev := range h.eng.Events().Since(0, 100) {
		if ev.Kind == "certificate" {
			kinds = append(kinds, ev.Message)
		}
	}
	if got := strings.Join(kinds, "\n"); !strings.Contains(got, "loaded at start: site.test until") ||
		!strings.Contains(got, "certificate load failed, the old certificates keep serving: tls: cert_file "+leaf.CertFile) ||
		!strings.Contains(got, "1 certificate reloaded: site.test until") {
		t.Errorf("certificate events:\n%s", got)
	}
	if v := testutil.Gauge(t, h.reg, "fulcrum_tls_certificate_not_after_seconds", "name", "site.test"); int64(v) != next.Cert.NotAfter.Unix() {
		t.Errorf("not_after gauge %v, want %d", v, next.Cert.NotAfter.Unix())
	}
}

// A certificate that cannot be loaded stops start-up with an error naming it.
func TestTLSStartupError(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	leaf := ca.Issue("site", []string{"site.test"}, time.Now().Add(30*24*time.Hour), false)
	other := ca.Issue("other", []string{"other.test"}, time.Now().Add(30*24*time.Hour), false)
	path := t.TempDir() + "/fulcrum.json"
	writeFile(t, path, fmt.Sprintf(`{"admin_addr": "", "backends": ["http://127.0.0.1:9"], "listen_addr": "127.0.0.1:0",
 "tls_cert_file": %q, "tls_key_file": %q}`, leaf.CertFile, other.KeyFile))
	c, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.New(c, engine.Options{Logger: quiet}); err == nil || !strings.Contains(err.Error(), other.KeyFile) {
		t.Fatalf("mismatched key: %v, want an error naming %s", err, other.KeyFile)
	}
}

// A client that never finishes its handshake is cut off at
// read_header_timeout and counted as a timeout.
func TestTLSHandshakeTimeout(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	leaf := ca.Issue("site", []string{"site.test"}, time.Now().Add(30*24*time.Hour), false)
	cfg := strings.Replace(tlsCfg("http://127.0.0.1:9", leaf), `"listen_addr"`, `"read_header_timeout": "300ms", "listen_addr"`, 1)
	h := start(t, cfg)
	c, err := net.Dial("tcp", h.eng.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte{0x16, 0x03, 0x01}) // the start of a ClientHello record, then silence
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	startAt := time.Now()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the server did not close the connection: %v", err)
	}
	if d := time.Since(startAt); d > 3*time.Second {
		t.Errorf("closed after %v, want about read_header_timeout (300ms)", d)
	}
	testutil.WaitFor(t, 5*time.Second, "timeout counted", func() bool {
		return testutil.Counter(t, h.reg, "fulcrum_tls_handshakes_total", "result", "timeout") == 1
	})
}

// A reload that turns a plain listener into a TLS one keeps its open plain
// connections working; new connections speak TLS.
func TestTLSReloadPlainToTLS(t *testing.T) {
	t.Parallel()
	be := startBackends(t, "web")
	ca := testutil.NewCA(t)
	leaf := ca.Issue("site", []string{"site.test"}, time.Now().Add(30*24*time.Hour), false)
	plain := fmt.Sprintf(`{"admin_addr": "", "health_check_interval": "1h", "backends": [%q], "listen_addr": "127.0.0.1:0"}`, be[0].url)
	h := start(t, plain)
	addr := h.eng.Addr().String()
	get := func(cl *http.Client, url string) string { b, _ := getBody(t, cl, url); return b }
	if b := get(h.cl, "http://"+addr+"/"); b != "web" {
		t.Fatalf("plain: %q", b)
	}
	writeFile(t, h.path, tlsCfg(be[0].url, leaf))
	if _, err := h.eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The same keep-alive connection (h.cl keeps it) still speaks plain HTTP.
	if b := get(h.cl, "http://"+addr+"/"); b != "web" {
		t.Fatalf("open plain connection after the reload: %q", b)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "site.test"}}
	defer tr.CloseIdleConnections()
	if b := get(&http.Client{Transport: tr, Timeout: 5 * time.Second}, "https://"+addr+"/"); b != "web" {
		t.Fatalf("new TLS connection: %q", b)
	}
}

// getBody GETs url and returns the body and the TLS state (nil over plain HTTP).
func getBody(t *testing.T, cl *http.Client, url string) (string, *tls.ConnectionState) {
	t.Helper()
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.TLS
}

// A sticky cookie under secure "auto" is Secure on a TLS listener.
func TestTLSStickyCookieSecure(t *testing.T) {
	t.Parallel()
	be := startBackends(t, "web")
	ca := testutil.NewCA(t)
	leaf := ca.Issue("site", []string{"site.test"}, time.Now().Add(30*24*time.Hour), false)
	cfg := strings.Replace(tlsCfg(be[0].url, leaf), `"listen_addr"`, `"sticky": {"type": "cookie"}, "listen_addr"`, 1)
	h := start(t, cfg)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "site.test"}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + h.eng.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if len(cs) != 1 || !cs[0].Secure {
		t.Fatalf("sticky cookie on a TLS listener: %v, want one Secure cookie", resp.Header["Set-Cookie"])
	}
}
