package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/testutil"
)

// The built binary obtains a certificate from a real ACME server (pebble)
// over http-01, serves it, renews a 90-second certificate with the default
// renewal check (10 s; certmagic renews when less than 5 checks are left), and after a restart serves the stored one without ordering.
func TestACMEBinary(t *testing.T) {
	t.Parallel()
	p := testutil.StartPebble(t, testutil.PebbleOptions{
		HTTPPort: freePort(t), TLSPort: freePort(t), Validity: 90 * time.Second,
	})
	be := StartBackend(t, "app", 0, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app %s", r.Header.Get("X-Forwarded-Proto"))
	})
	dir := t.TempDir()
	storage := filepath.Join(dir, "acme-data")
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", p.TLSPort)
	cfg := fmt.Sprintf(`{
	  "listeners": [
	    {"name": "web", "listen_addr": "127.0.0.1:%d",
	     "routes": [{"redirect": {"scheme": "https"}}]},
	    {"name": "secure", "listen_addr": %q, "routes": [{"pool": "app"}],
	     "tls": {"acme": {"domains": ["shop.example.test"], "email": "ops@example.test", "directory": %q,
	                      "ca_file": %q, "storage_dir": %q, "challenges": ["http-01"]}}}
	  ],
	  "pools": {"app": {"backends": [%q]}}
	}`, p.HTTPPort, tlsAddr, p.Directory, p.CAFile, storage, "http://"+be.Addr())

	// validate accepts it and changes nothing on disk.
	cfgPath := filepath.Join(dir, "fulcrum.json")
	os.WriteFile(cfgPath, []byte(strings.Replace(cfg, "{", `{"admin_addr": "127.0.0.1:1", `, 1)), 0o600)
	if code, out := runValidate(t, cfgPath); code != 0 {
		t.Fatalf("validate: %d %s", code, out)
	}
	if _, err := os.Stat(storage); err == nil {
		t.Error("validate created storage_dir")
	}

	f := StartFulcrum(t, cfg)
	roots := p.RootPool()
	dial := func() (*x509.Certificate, error) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", tlsAddr,
			&tls.Config{ServerName: "shop.example.test", RootCAs: roots})
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0], nil
	}
	var first *x509.Certificate
	WaitFor(t, 30*time.Second, "the ACME certificate", func() bool {
		first, _ = dial()
		return first != nil
	})
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", tlsAddr)
		},
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := cl.Get("https://shop.example.test/")
	if err != nil {
		t.Fatalf("HTTPS GET: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "app https" {
		t.Errorf("HTTPS GET: %d %q", resp.StatusCode, b)
	}
	// The plain listener still redirects everything else to HTTPS.
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if r, err := noFollow.Get(fmt.Sprintf("http://127.0.0.1:%d/cart", p.HTTPPort)); err != nil || r.StatusCode/100 != 3 ||
		!strings.HasPrefix(r.Header.Get("Location"), "https://") {
		t.Errorf("plain listener: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	if m := coreScrape(t, f); m.val("fulcrum_acme_orders_total", "result", "ok") != 1 ||
		m.val("fulcrum_tls_certificate_not_after_seconds", "listener", "secure", "name", "shop.example.test") != float64(first.NotAfter.Unix()) {
		t.Errorf("metrics after the first order: orders ok %v, not_after %v (want %d)",
			m.val("fulcrum_acme_orders_total", "result", "ok"),
			m.val("fulcrum_tls_certificate_not_after_seconds", "listener", "secure", "name", "shop.example.test"), first.NotAfter.Unix())
	}

	// Renewal with less than 50 s left, found by the default 10 s check.
	var renewed *x509.Certificate
	WaitFor(t, 70*time.Second, "the renewed certificate", func() bool {
		if c, err := dial(); err == nil && c.SerialNumber.Cmp(first.SerialNumber) != 0 {
			renewed = c
		}
		return renewed != nil
	})
	if !renewed.NotBefore.Before(first.NotAfter) || time.Since(first.NotAfter) > 0 && renewed.NotBefore.After(first.NotAfter) {
		t.Errorf("renewed certificate from %v; the first expired at %v", renewed.NotBefore, first.NotAfter)
	}
	f.Stop()

	// Restart: the stored certificate serves at once, and nothing is ordered.
	f2 := StartFulcrum(t, cfg)
	again, err := dial()
	if err != nil {
		t.Fatalf("after restart: %v\n%s", err, f2.Logs.String())
	}
	if again.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Errorf("after restart serial %v, want the stored %v", again.SerialNumber, renewed.SerialNumber)
	}
	time.Sleep(2 * time.Second)
	if m := coreScrape(t, f2); m.sum("fulcrum_acme_orders_total") != 0 {
		t.Errorf("%v orders after restart, want 0\n%s", m.sum("fulcrum_acme_orders_total"), f2.Logs.String())
	}
}
