package tlsfront_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/metrics"
	"fulcrum/internal/testutil"
	"fulcrum/internal/tlsfront"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// serve runs TLS handshakes with f on a loopback listener until the test
// ends; each server-side handshake result goes to results.
func serve(t *testing.T, f *tlsfront.Front) (addr string, results chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	results = make(chan string, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, f.Config())
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				err := tc.Handshake()
				select {
				case results <- tlsfront.Result(err):
				default:
				}
				if err == nil {
					tc.Write([]byte("x"))
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), results
}

func dial(addr string, conf *tls.Config) (*tls.ConnectionState, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		return nil, err
	}
	st := c.ConnectionState()
	return &st, nil
}

func newFront(t *testing.T, spec *config.TLS) *tlsfront.Front {
	t.Helper()
	c, err := tlsfront.Load(spec)
	if err != nil {
		t.Fatal(err)
	}
	f := tlsfront.New("public", c, tlsfront.Options{Log: quiet})
	t.Cleanup(f.Close)
	return f
}

func served(st *tls.ConnectionState) *x509.Certificate { return st.PeerCertificates[0] }

func TestSNIChoosesCertificate(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	week := time.Now().Add(30 * 24 * time.Hour)
	a := ca.Issue("a", []string{"a.test"}, week, false)
	wild := ca.Issue("wild", []string{"*.wild.test"}, week, false)
	exact := ca.Issue("exact", []string{"x.wild.test"}, week, false)
	rsaA := ca.Issue("a-rsa", []string{"a.test"}, week, true)
	spec := &config.TLS{MinVersion: "1.2", Certificates: []config.CertFiles{
		{CertFile: a.CertFile, KeyFile: a.KeyFile}, {CertFile: wild.CertFile, KeyFile: wild.KeyFile},
		{CertFile: exact.CertFile, KeyFile: exact.KeyFile}, {CertFile: rsaA.CertFile, KeyFile: rsaA.KeyFile},
	}}
	addr, _ := serve(t, newFront(t, spec))
	for _, tc := range []struct {
		sni  string
		want *testutil.Leaf
	}{
		{"a.test", a}, {"A.TEST", a}, {"y.wild.test", wild}, {"x.wild.test", exact},
		{"deep.y.wild.test", a}, {"other.test", a}, {"", a},
	} {
		conf := &tls.Config{ServerName: tc.sni, RootCAs: ca.Pool, InsecureSkipVerify: true}
		st, err := dial(addr, conf)
		if err != nil {
			t.Fatalf("SNI %q: %v", tc.sni, err)
		}
		if got := served(st); !got.Equal(tc.want.Cert) {
			t.Errorf("SNI %q: served %v, want %v", tc.sni, got.DNSNames, tc.want.Cert.DNSNames)
		}
	}
	// A TLS 1.2 client that accepts only RSA gets the RSA certificate.
	conf := &tls.Config{ServerName: "a.test", RootCAs: ca.Pool, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}
	st, err := dial(addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	if got := served(st); !got.Equal(rsaA.Cert) {
		t.Errorf("RSA-only client got %v key, want the RSA certificate", got.PublicKeyAlgorithm)
	}
	// Defaults: TLS 1.3 is negotiated, and TLS 1.1 is refused.
	st, err = dial(addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool})
	if err != nil || st.Version != tls.VersionTLS13 {
		t.Fatalf("default client: %v, version %x", err, st.Version)
	}
	if _, err := dial(addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
}

func TestStrictSNIAndMinVersion(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	a := ca.Issue("a", []string{"a.test"}, time.Now().Add(30*24*time.Hour), false)
	spec := &config.TLS{MinVersion: "1.3", StrictSNI: true, Certificates: []config.CertFiles{{CertFile: a.CertFile, KeyFile: a.KeyFile}}}
	addr, results := serve(t, newFront(t, spec))
	if _, err := dial(addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool}); err != nil {
		t.Fatal(err)
	}
	if r := <-results; r != metrics.HandshakeOK {
		t.Errorf("result %q, want ok", r)
	}
	_, err := dial(addr, &tls.Config{ServerName: "b.test", RootCAs: ca.Pool})
	if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Fatalf("unknown SNI under strict_sni: %v, want alert unrecognized_name", err)
	}
	if r := <-results; r != metrics.HandshakeUnknownSNI {
		t.Errorf("result %q, want unknown_sni", r)
	}
	if _, err := dial(addr, &tls.Config{InsecureSkipVerify: true}); err == nil {
		t.Error("no SNI under strict_sni was served")
	}
	<-results
	if _, err := dial(addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("TLS 1.2 served with min_version 1.3")
	}
	if r := <-results; r != metrics.HandshakeBadClientHello {
		t.Errorf("result %q, want bad_client_hello", r)
	}
}

func TestClientAuth(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	a := ca.Issue("a", []string{"a.test"}, time.Now().Add(30*24*time.Hour), false)
	client := ca.Issue("client", []string{"client.test"}, time.Now().Add(30*24*time.Hour), false)
	spec := &config.TLS{MinVersion: "1.2", Certificates: []config.CertFiles{{CertFile: a.CertFile, KeyFile: a.KeyFile}},
		ClientAuth: &config.ClientAuth{CAFile: ca.CAFile, Mode: "require"}}
	addr, results := serve(t, newFront(t, spec))
	if _, err := dial(addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool}); err == nil {
		t.Error("a client without a certificate was served under mode require")
	}
	if r := <-results; r != metrics.HandshakeClientAuth {
		t.Errorf("result %q, want client_auth", r)
	}
	kp, err := tls.X509KeyPair(client.CertPEM, client.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool, Certificates: []tls.Certificate{kp}}); err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
	// verify_if_given: no certificate is fine, a certificate from another CA is not.
	spec.ClientAuth.Mode = "verify_if_given"
	addr, _ = serve(t, newFront(t, spec))
	if _, err := dial(addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool}); err != nil {
		t.Errorf("verify_if_given without a client certificate: %v", err)
	}
	other := testutil.NewCA(t).Issue("stranger", []string{"stranger.test"}, time.Now().Add(24*time.Hour), false)
	okp, err := tls.X509KeyPair(other.CertPEM, other.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dial(addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool, Certificates: []tls.Certificate{okp}}); err == nil {
		t.Error("verify_if_given accepted a client certificate from an unknown CA")
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	a := ca.Issue("a", []string{"a.test"}, time.Now().Add(30*24*time.Hour), false)
	b := ca.Issue("b", []string{"b.test"}, time.Now().Add(30*24*time.Hour), false)
	garbage := a.CertFile + ".garbage"
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		cf   config.CertFiles
		want string
	}{
		{config.CertFiles{CertFile: a.CertFile + ".missing", KeyFile: a.KeyFile}, a.CertFile + ".missing"},
		{config.CertFiles{CertFile: a.CertFile, KeyFile: b.KeyFile}, b.KeyFile},
		{config.CertFiles{CertFile: garbage, KeyFile: a.KeyFile}, garbage},
	} {
		_, err := tlsfront.Load(&config.TLS{Certificates: []config.CertFiles{tc.cf}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one naming %s", tc.cf, err, tc.want)
		}
	}
}

// Files replaced on disk are picked up by themselves; a broken file keeps
// the old certificate serving.
func TestFileChangeReloads(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	a := ca.Issue("a", []string{"a.test"}, time.Now().Add(30*24*time.Hour), false)
	spec := &config.TLS{MinVersion: "1.2", Certificates: []config.CertFiles{{CertFile: a.CertFile, KeyFile: a.KeyFile}}}
	f := newFront(t, spec)
	addr, _ := serve(t, f)
	conf := &tls.Config{ServerName: "a.test", RootCAs: ca.Pool}

	// A broken certificate file: the old one keeps serving, the error counts.
	os.WriteFile(a.CertFile, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), 0o600)
	testutil.WaitFor(t, 15*time.Second, "the broken certificate file noticed", func() bool { return f.ReloadErrors() > 0 })
	st, err := dial(addr, conf)
	if err != nil || !served(st).Equal(a.Cert) {
		t.Fatalf("after a broken file: %v; the old certificate must serve", err)
	}

	// A new certificate written in place is served within the watch period.
	next := ca.Issue("a", []string{"a.test"}, time.Now().Add(60*24*time.Hour), false)
	testutil.WaitFor(t, 15*time.Second, "the replaced certificate served", func() bool {
		st, err := dial(addr, conf)
		return err == nil && served(st).Equal(next.Cert)
	})
}

func TestResultClasses(t *testing.T) {
	if r := tlsfront.Result(nil); r != metrics.HandshakeOK {
		t.Errorf("nil: %q", r)
	}
	if r := tlsfront.Result(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}); r != metrics.HandshakeBadClientHello {
		t.Errorf("record header: %q", r)
	}
	if r := tlsfront.Result(errors.New("EOF")); r != metrics.HandshakeOther {
		t.Errorf("EOF: %q", r)
	}
}
