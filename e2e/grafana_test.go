package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

const dashboardPath = "../contrib/grafana/fulcrum.json"

// dashboardExprs returns every "expr" string anywhere in the dashboard.
func dashboardExprs(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if s, ok := c.(string); ok && k == "expr" {
				*out = append(*out, s)
			} else {
				dashboardExprs(c, out)
			}
		}
	case []any:
		for _, c := range v {
			dashboardExprs(c, out)
		}
	}
}

// grafanaVars replaces Grafana's variables by what they expand to at query
// time, so that the expression can be parsed as PromQL. The dashboard uses
// none outside label matchers today; this keeps the test honest if one is
// added ([$__rate_interval] is not PromQL until Grafana expands it).
var grafanaVars = regexp.MustCompile(`\$\{?__(rate_)?interval\}?|\$__range`)

// exportedFamilies scrapes a running fulcrum's /metrics and returns the
// family names with their types.
func exportedFamilies(t *testing.T, url string) map[string]dto.MetricType {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	out := map[string]dto.MetricType{}
	for name, f := range fams {
		out[name] = f.GetType()
	}
	return out
}

// metricName maps a selector's name to its family: a histogram's _bucket,
// _sum and _count series belong to the histogram.
func metricName(name string, fams map[string]dto.MetricType) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && fams[base] == dto.MetricType_HISTOGRAM {
			return base
		}
	}
	return name
}

// TestGrafanaDashboard: contrib/grafana/fulcrum.json is a Grafana dashboard
// whose every expression parses as PromQL and names only metric families
// that a running fulcrum exports (scraped from the binary, so the list
// cannot drift), and which covers what the dashboard is for.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s is not JSON: %v", dashboardPath, err)
	}
	if sv, _ := dash["schemaVersion"].(float64); sv < 36 || dash["title"] == "" || dash["uid"] == "" {
		t.Errorf("dashboard header: schemaVersion %v, title %q, uid %q", dash["schemaVersion"], dash["title"], dash["uid"])
	}
	checkPanels(t, dash)

	// A fulcrum that has served (over TLS, so the TLS families are there),
	// retried, rejected, reloaded and failed a certificate reload, so every
	// family with labels has a series.
	good := StartBackend(t, "good", 0, nil)
	dead := StartBackend(t, "dead", 0, nil)
	dead.Close()
	certFile, keyFile := grafanaTestCert(t)
	cfg := fmt.Sprintf(`{"health_check_interval": "1h", "retries": 1, "max_body_bytes": 10,
	  "tls_cert_file": %q, "tls_key_file": %q,
	  "sticky": {"type": "cookie"}, "backends": [%q, %q]}`, certFile, keyFile, dead.URL, good.URL)
	f := StartFulcrum(t, cfg)
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the self-signed certificate above
	}}
	url := "https://" + f.Addr + "/"
	for range 4 {
		Get(t, cl, url)
	}
	if resp, err := cl.Post(url, "text/plain", strings.NewReader("more than ten bytes")); err == nil {
		resp.Body.Close()
	}
	if code, body := coreReload(t, f); code != http.StatusOK {
		t.Fatalf("reload: %d %s", code, body)
	}
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, body := coreReload(t, f); code == http.StatusOK {
		t.Fatalf("reload with a broken key file: %d %s", code, body)
	}
	fams := exportedFamilies(t, f.AdminURL("/metrics"))

	var exprs []string
	dashboardExprs(dash, &exprs)
	if len(exprs) < 20 {
		t.Fatalf("only %d expressions in the dashboard", len(exprs))
	}
	p := parser.NewParser(parser.Options{})
	used := map[string]bool{}
	for _, e := range exprs {
		ast, err := p.ParseExpr(grafanaVars.ReplaceAllString(e, "5m"))
		if err != nil {
			t.Errorf("not PromQL: %s\n  %v", e, err)
			continue
		}
		names := 0
		for _, sel := range parser.ExtractSelectors(ast) {
			for _, m := range sel {
				if m.Name != labels.MetricName {
					continue
				}
				names++
				if m.Type != labels.MatchEqual {
					t.Errorf("%s: metric name matched by %v, not named", e, m.Type)
					continue
				}
				fam := metricName(m.Value, fams)
				if _, ok := fams[fam]; !ok {
					t.Errorf("%s: %s is not exported by fulcrum", e, m.Value)
				}
				used[fam] = true
			}
		}
		if names == 0 {
			t.Errorf("%s names no metric", e)
		}
	}
	// What the dashboard is for: requests, errors and latency per route and
	// backend, backends up, retries, rejections.
	for _, want := range []string{"loadbalancer_request_count_total", "loadbalancer_request_duration_seconds",
		"loadbalancer_backend_up", "loadbalancer_backend_response_seconds", "fulcrum_retries_total",
		"fulcrum_rejected_requests_total", "fulcrum_tls_handshakes_total", "fulcrum_tls_certificate_not_after_seconds",
		"fulcrum_tls_certificate_reload_errors_total", "fulcrum_acme_orders_total"} {
		if !used[want] {
			t.Errorf("no panel uses %s", want)
		}
	}
	// Every fulcrum family (not the Go runtime's) is on the dashboard.
	var missing []string
	for name := range fams {
		if (strings.HasPrefix(name, "loadbalancer_") || strings.HasPrefix(name, "fulcrum_")) && !used[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("families fulcrum exports that no panel shows: %v", missing)
	}
}

// checkPanels checks the panels' structure: unique ids, a grid position,
// the datasource variable on every query, a ref id per target.
func checkPanels(t *testing.T, dash map[string]any) {
	t.Helper()
	panels, _ := dash["panels"].([]any)
	if len(panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[float64]bool{}
	for _, pv := range panels {
		p := pv.(map[string]any)
		id, _ := p["id"].(float64)
		if ids[id] {
			t.Errorf("panel id %v twice", id)
		}
		ids[id] = true
		if _, ok := p["gridPos"].(map[string]any); !ok {
			t.Errorf("panel %q has no gridPos", p["title"])
		}
		targets, _ := p["targets"].([]any)
		for _, tv := range targets {
			tg := tv.(map[string]any)
			ds, _ := tg["datasource"].(map[string]any)
			if ds["type"] != "prometheus" || ds["uid"] != "${datasource}" || tg["refId"] == "" {
				t.Errorf("panel %q target %v: datasource %v, refId %v", p["title"], tg["expr"], ds, tg["refId"])
			}
		}
	}
	vars, _ := dash["templating"].(map[string]any)["list"].([]any)
	found := false
	for _, v := range vars {
		if m := v.(map[string]any); m["name"] == "datasource" && m["type"] == "datasource" && m["query"] == "prometheus" {
			found = true
		}
	}
	if !found {
		t.Error("no datasource variable of type prometheus")
	}
}

// grafanaTestCert writes a self-signed ECDSA P-256 certificate for
// grafana.test and its key to a temp dir and returns the two file names.
func grafanaTestCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "grafana.test"},
		DNSNames:     []string{"grafana.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
