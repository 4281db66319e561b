package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Pebble is a running pebble ACME server (Debian's pebble package) and its
// DNS (pebble-challtestsrv), which resolves every name to 127.0.0.1 unless
// told otherwise (SetA).
type Pebble struct {
	// Directory is the ACME directory URL; CAFile trusts its HTTPS.
	Directory, CAFile string
	// HTTPPort and TLSPort are where pebble validates http-01 and
	// tls-alpn-01 challenges (on 127.0.0.1, via its DNS).
	HTTPPort, TLSPort int
	mgmt, dnsMgmt     string
	client            *http.Client
	t                 testing.TB
}

// PebbleOptions configure StartPebble.
type PebbleOptions struct {
	HTTPPort, TLSPort int
	// Validity is the lifetime of issued certificates (0: pebble's default
	// of about 5 years).
	Validity time.Duration
}

// StartPebble starts pebble and its DNS for t; they stop when t ends. It
// fails t when pebble is not installed (.ci/run installs it).
func StartPebble(t testing.TB, opt PebbleOptions) *Pebble {
	t.Helper()
	for _, bin := range []string{"pebble", "pebble-challtestsrv"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is not installed (Debian: apt-get install pebble): %v", bin, err)
		}
	}
	dir := t.TempDir()
	ca := NewCA(t)
	certFile, keyFile := ca.issueIP(dir, "pebble")
	p := &Pebble{HTTPPort: opt.HTTPPort, TLSPort: opt.TLSPort, CAFile: ca.CAFile, t: t}
	p.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}

	dnsAddr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	p.dnsMgmt = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	startProcess(t, dir, "challtestsrv", nil, "pebble-challtestsrv",
		"-dns01", dnsAddr, "-http01", "", "-https01", "", "-tlsalpn01", "",
		"-management", p.dnsMgmt, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	WaitListening(t, p.dnsMgmt)

	listen := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	p.mgmt = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": p.mgmt,
		"certificate": certFile, "privateKey": keyFile,
		"httpPort": opt.HTTPPort, "tlsPort": opt.TLSPort, "ocspResponderURL": "",
		"externalAccountBindingRequired": false,
		"certificateValidityPeriod":      uint64(opt.Validity / time.Second),
	}}
	b, _ := json.Marshal(conf)
	confFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(confFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"}
	startProcess(t, dir, "pebble", env, "pebble", "-config", confFile, "-dnsserver", dnsAddr)
	WaitListening(t, listen)
	p.Directory = "https://" + listen + "/dir"
	return p
}

// Root is the PEM of the root that signs pebble's certificates (a new one
// each time pebble starts).
func (p *Pebble) Root() []byte {
	p.t.Helper()
	resp, err := p.client.Get("https://" + p.mgmt + "/roots/0")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		p.t.Fatalf("pebble root: %d %v", resp.StatusCode, err)
	}
	return b
}

// RootPool is Root as a pool, to verify issued certificates with.
func (p *Pebble) RootPool() *x509.CertPool {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.Root()) {
		p.t.Fatal("pebble root: no PEM")
	}
	return pool
}

// SetA makes pebble's DNS resolve host to addr (an address in 127.0.0.0/8).
func (p *Pebble) SetA(host, addr string) {
	p.t.Helper()
	fqdn := strings.TrimSuffix(host, ".") + "."
	for _, call := range []struct{ path, body string }{
		{"/clear-a", fmt.Sprintf(`{"host": %q}`, fqdn)},
		{"/add-a", fmt.Sprintf(`{"host": %q, "addresses": [%q]}`, fqdn, addr)},
	} {
		resp, err := http.Post("http://"+p.dnsMgmt+call.path, "application/json", strings.NewReader(call.body))
		if err != nil {
			p.t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			p.t.Fatalf("challtestsrv %s: %d", call.path, resp.StatusCode)
		}
	}
}

// issueIP signs a leaf for 127.0.0.1 and localhost and writes its files
// into dir.
func (ca *CA) issueIP(dir, base string) (certFile, keyFile string) {
	t := ca.t
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, base+".pem"), filepath.Join(dir, base+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	return certFile, keyFile
}

// startProcess runs name with args in dir; its output goes to t's log when
// t fails. It is stopped (SIGTERM, then SIGKILL) by PID when t ends.
func startProcess(t testing.TB, dir, label string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out := &LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", label, out.String())
		}
	})
}

// FreePort is a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	_, p, _ := net.SplitHostPort(ClosedAddr(t))
	n, _ := strconv.Atoi(p)
	return n
}

func freeUDPPort(t testing.TB) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}
