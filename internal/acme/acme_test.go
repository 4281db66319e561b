package acme_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fulcrum/internal/config"
	"fulcrum/internal/engine"
	"fulcrum/internal/metrics"
	"fulcrum/internal/testutil"
)

// lb is an engine with a plain listener on 127.0.0.1:HTTPPort and a TLS
// listener on 127.0.0.1:TLSPort whose certificates come from pebble.
type lb struct {
	t       *testing.T
	eng     *engine.Engine
	reg     *prometheus.Registry
	path    string
	logs    *testutil.LogBuffer
	pebble  *testutil.Pebble
	storage string
	tlsAddr string
	webAddr string
	stopFn  func()
}

// acmeConfig is a two-listener configuration obtaining a certificate for
// domains with challenges.
func acmeConfig(p *testutil.Pebble, storage, backend string, challenges string, domains ...string) string {
	return fmt.Sprintf(`{
	  "listeners": [
	    {"name": "web", "listen_addr": "127.0.0.1:%d", "routes": [{"pool": "app"}]},
	    {"name": "secure", "listen_addr": "127.0.0.1:%d", "routes": [{"pool": "app"}],
	     "tls": {"acme": {"domains": [%s], "email": "ops@example.test", "directory": %q, "ca_file": %q,
	                      "storage_dir": %q, "challenges": [%s]}}}
	  ],
	  "pools": {"app": {"backends": ["http://%s"]}}
	}`, p.HTTPPort, p.TLSPort, quoteAll(domains), p.Directory, p.CAFile, storage, challenges, backend)
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func startLB(t *testing.T, p *testutil.Pebble, cfg, storage string, renewCheck time.Duration) *lb {
	t.Helper()
	h := &lb{t: t, reg: prometheus.NewRegistry(), path: filepath.Join(t.TempDir(), "fulcrum.json"),
		logs: &testutil.LogBuffer{}, pebble: p, storage: storage,
		tlsAddr: fmt.Sprintf("127.0.0.1:%d", p.TLSPort), webAddr: fmt.Sprintf("127.0.0.1:%d", p.HTTPPort)}
	if err := os.WriteFile(h.path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(h.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.eng, err = engine.New(c, engine.Options{
		Logger: log, Metrics: metrics.New(h.reg, nil), ACMERenewCheck: renewCheck,
		Loader: func() (*config.Config, error) { return config.Load(h.path, nil) },
	})
	if err != nil {
		t.Fatal(err)
	}
	h.eng.Start(context.Background())
	stopped := false
	h.stopFn = func() {
		if stopped {
			return
		}
		stopped = true
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.eng.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("fulcrum log:\n%s", h.logs.String())
		}
	})
	return h
}

func (h *lb) stop() { h.stopFn() }

// handshake connects to the TLS listener with SNI name and returns the
// served leaf, verified against pebble's root (or the error).
func (h *lb) handshake(name string) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", h.tlsAddr, &tls.Config{ServerName: name, RootCAs: h.pebble.RootPool()})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// waitCert waits up to d for a handshake for name that verifies.
func (h *lb) waitCert(name string, d time.Duration) *x509.Certificate {
	h.t.Helper()
	var leaf *x509.Certificate
	testutil.WaitFor(h.t, d, "a certificate for "+name, func() bool {
		l, err := h.handshake(name)
		leaf = l
		return err == nil
	})
	return leaf
}

func (h *lb) orders(result string) float64 {
	return testutil.Counter(h.t, h.reg, "fulcrum_acme_orders_total", "result", result)
}

// get sends an HTTPS request with SNI name through the TLS listener.
func (h *lb) get(name string) (int, string) {
	h.t.Helper()
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: name, RootCAs: h.pebble.RootPool()},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", h.tlsAddr)
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get("https://" + name + "/")
	if err != nil {
		h.t.Fatalf("GET https://%s/: %v", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func backend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s via %s", r.Host, r.Header.Get("X-Forwarded-Proto"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func newPebble(t *testing.T, validity time.Duration) *testutil.Pebble {
	return testutil.StartPebble(t, testutil.PebbleOptions{
		HTTPPort: testutil.FreePort(t), TLSPort: testutil.FreePort(t), Validity: validity,
	})
}

// First issuance over each challenge type, then a restart that reuses the
// stored certificate without a new order.
func TestIssueAndReuse(t *testing.T) {
	for _, ch := range []string{"http-01", "tls-alpn-01"} {
		t.Run(ch, func(t *testing.T) {
			t.Parallel()
			// Names of their own per subtest: certmagic keeps the
			// challenges being solved per name, process-wide, so two
			// parallel orders of one name would clobber each other's.
			sub := strings.ReplaceAll(ch, "-", "")
			site, www := "site."+sub+".example.test", "www."+sub+".example.test"
			p := newPebble(t, 0)
			storage := filepath.Join(t.TempDir(), "data")
			be := backend(t)
			cfg := acmeConfig(p, storage, be, fmt.Sprintf("%q", ch), site, www)
			h := startLB(t, p, cfg, storage, 0)

			// Until the certificate exists, handshakes fail cleanly and the
			// plain listener keeps serving.
			leaf := h.waitCert(site, 30*time.Second)
			h.waitCert(www, 30*time.Second)
			if code, body := h.get(site); code != 200 || body != "hello "+site+" via https" {
				t.Errorf("GET over HTTPS: %d %q", code, body)
			}
			testutil.WaitFor(t, 5*time.Second, "two orders counted ok", func() bool { return h.orders("ok") == 2 })
			// A tls-alpn-01 handshake with no challenge being solved is an
			// ordinary failed handshake, not an error line in the log.
			if c, err := tls.Dial("tcp", h.tlsAddr, &tls.Config{ServerName: site, NextProtos: []string{"acme-tls/1"}, InsecureSkipVerify: true}); err == nil {
				c.Close()
				t.Error("an acme-tls/1 handshake with no challenge active succeeded")
			}
			if strings.Contains(h.logs.String(), "tls-alpn challenge") {
				t.Error("a stray acme-tls/1 handshake was logged as an error")
			}
			if v := testutil.Gauge(t, h.reg, "fulcrum_tls_certificate_not_after_seconds", "name", site); int64(v) != leaf.NotAfter.Unix() {
				t.Errorf("not_after gauge %v, want %d", v, leaf.NotAfter.Unix())
			}
			// Storage: every file 0600, every directory 0700.
			files := 0
			filepath.WalkDir(storage, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				fi, _ := d.Info()
				want := fs.FileMode(0o600)
				if d.IsDir() {
					want = 0o700
				}
				if strings.HasSuffix(path, ".lock") || strings.Contains(path, "/locks") {
					return nil
				}
				if fi.Mode().Perm() != want {
					t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
				}
				if !d.IsDir() {
					files++
				}
				return nil
			})
			if files < 4 { // account key + registration, certificate, key, metadata
				t.Errorf("%d files in storage, want the account and the certificates", files)
			}
			h.stop()

			// A restart serves the stored certificate at once, with no order.
			h2 := startLB(t, p, cfg, storage, 0)
			again, err := h2.handshake(site)
			if err != nil {
				t.Fatalf("after restart: %v", err)
			}
			if again.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
				t.Errorf("after restart serial %v, want the stored %v", again.SerialNumber, leaf.SerialNumber)
			}
			time.Sleep(2 * time.Second) // an order, if one were started, would have finished
			if n := h2.orders("ok") + h2.orders("error"); n != 0 {
				t.Errorf("%v orders after restart, want 0", n)
			}
		})
	}
}

// A short-lived certificate is renewed at two thirds of its lifetime.
func TestRenewal(t *testing.T) {
	t.Parallel()
	p := newPebble(t, 30*time.Second)
	storage := filepath.Join(t.TempDir(), "data")
	h := startLB(t, p, acmeConfig(p, storage, backend(t), `"tls-alpn-01"`, "short.example.test"), storage, time.Second)
	first := h.waitCert("short.example.test", 30*time.Second)
	if life := first.NotAfter.Sub(first.NotBefore); life > time.Minute {
		t.Fatalf("pebble issued a %v certificate, want about 30 s", life)
	}
	var next *x509.Certificate
	testutil.WaitFor(t, 40*time.Second, "a renewed certificate", func() bool {
		l, err := h.handshake("short.example.test")
		if err == nil && l.SerialNumber.Cmp(first.SerialNumber) != 0 {
			next = l
		}
		return next != nil
	})
	if !time.Now().Before(first.NotAfter) {
		t.Errorf("renewed only after the old certificate expired (%v)", first.NotAfter)
	}
	if renewedAt := next.NotBefore; renewedAt.Before(first.NotBefore.Add(15 * time.Second)) {
		t.Errorf("renewed at %v, before two thirds of the lifetime from %v", renewedAt, first.NotBefore)
	}
	if n := h.orders("ok"); n < 2 {
		t.Errorf("%v orders ok, want the first and the renewal", n)
	}
}

// A challenge that fails leaves the listener up, fails handshakes for the
// name cleanly, is counted, and is retried with back-off until it works.
func TestFailingChallengeRetries(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for certmagic's first retry (1 minute)")
	}
	t.Parallel()
	p := newPebble(t, 0)
	// pebble validates at 127.0.0.2, where nothing listens.
	p.SetA("fail.example.test", "127.0.0.2")
	storage := filepath.Join(t.TempDir(), "data")
	h := startLB(t, p, acmeConfig(p, storage, backend(t), `"http-01"`, "fail.example.test"), storage, 0)
	testutil.WaitFor(t, 30*time.Second, "a failed order", func() bool { return h.orders("error") >= 1 })
	_, err := h.handshake("fail.example.test")
	if err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Errorf("handshake without a certificate: %v, want a TLS alert", err)
	}
	if v := testutil.Counter(t, h.reg, "fulcrum_tls_handshakes_total", "result", "no_certificate"); v < 1 {
		t.Errorf("no_certificate handshakes %v, want at least 1", v)
	}
	resp, err := http.Get("http://" + h.webAddr + "/")
	if err != nil {
		t.Fatalf("plain listener down after a failed order: %v", err)
	}
	resp.Body.Close()
	// Fixed: the next attempt (certmagic waits a minute) succeeds.
	p.SetA("fail.example.test", "127.0.0.1")
	h.waitCert("fail.example.test", 100*time.Second)
	if n := h.orders("ok"); n != 1 {
		t.Errorf("orders ok %v, want 1", n)
	}
	var evs []string
	for _, ev := range h.eng.Events().Since(0, 100) {
		if ev.Kind == "certificate" {
			evs = append(evs, ev.Message)
		}
	}
	got := strings.Join(evs, "\n")
	if !strings.Contains(got, "acme: certificate for fail.example.test failed (retried with back-off)") ||
		!strings.Contains(got, "acme: certificate for fail.example.test obtained") {
		t.Errorf("certificate events:\n%s", got)
	}
}

// One name on two TLS listeners sharing storage_dir: one order, and both
// listeners serve the certificate (certmagic's storage lock lets one manager
// order it and the other load it).
func TestSameNameTwoListeners(t *testing.T) {
	t.Parallel()
	p := newPebble(t, 0)
	storage := filepath.Join(t.TempDir(), "data")
	second := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	acme := fmt.Sprintf(`{"acme": {"domains": ["shared.example.test"], "email": "ops@example.test", "directory": %q,
	  "ca_file": %q, "storage_dir": %q, "challenges": ["http-01"]}}`, p.Directory, p.CAFile, storage)
	cfg := fmt.Sprintf(`{
	  "listeners": [
	    {"name": "web", "listen_addr": "127.0.0.1:%d", "routes": [{"pool": "app"}]},
	    {"name": "secure", "listen_addr": "127.0.0.1:%d", "routes": [{"pool": "app"}], "tls": %s},
	    {"name": "secure2", "listen_addr": %q, "routes": [{"pool": "app"}], "tls": %s}
	  ],
	  "pools": {"app": {"backends": ["http://%s"]}}
	}`, p.HTTPPort, p.TLSPort, acme, second, acme, backend(t))
	h := startLB(t, p, cfg, storage, 0)
	first := h.waitCert("shared.example.test", 60*time.Second)
	h2 := *h
	h2.tlsAddr = second
	other := h2.waitCert("shared.example.test", 60*time.Second)
	if first.SerialNumber.Cmp(other.SerialNumber) != 0 {
		t.Errorf("the listeners serve different certificates (serials %v and %v), want one", first.SerialNumber, other.SerialNumber)
	}
	time.Sleep(2 * time.Second) // a second order, if one were started, would have finished
	if ok, bad := h.orders("ok"), h.orders("error"); ok != 1 || bad != 0 {
		t.Errorf("orders ok=%v error=%v, want exactly one successful order", ok, bad)
	}
}
