package e2e

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"fulcrum/internal/testutil"
)

// TestTracingBinary drives the built binary with tracing on: requests get
// a span each at the collector, a client's sampled traceparent is
// continued, the backend sees fulcrum's span as its parent, and SIGTERM
// exports the spans still queued (the batch timeout, 5s, has not passed).
func TestTracingBinary(t *testing.T) {
	t.Parallel()
	rcv := testutil.StartOTLPReceiver(t)
	var mu sync.Mutex
	var parents []string
	be := StartBackend(t, "a", 0, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		parents = append(parents, r.Header.Get("Traceparent"))
		mu.Unlock()
		w.Write([]byte("a"))
	})
	f := StartFulcrum(t, fmt.Sprintf(`{"backends": [%q], "health_check_interval": "1h",
 "tracing": {"otlp_endpoint": %q, "sample_ratio": 1, "service_name": "e2e-fulcrum"}}`, be.URL, rcv.URL))
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if code, _ := Get(t, cl, f.URL("/plain")); code != 200 {
		t.Fatalf("status %d", code)
	}
	const clientTrace, clientSpan = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
	req, _ := http.NewRequest("GET", f.URL("/continued"), nil)
	req.Header.Set("Traceparent", "00-"+clientTrace+"-"+clientSpan+"-01")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	f.Signal(syscall.SIGTERM)
	if code := f.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, f.Logs.String())
	}
	// Every span was exported before the process exited.
	spans, services := rcv.Spans()
	if len(spans) != 2 {
		t.Fatalf("%d spans at the collector after exit, want 2\n%s", len(spans), f.Logs.String())
	}
	for i, sp := range spans {
		if services[i] != "e2e-fulcrum" {
			t.Errorf("span %d service.name %q", i, services[i])
		}
		path := testutil.AttrString(sp.Attributes, "url.path")
		if st, _ := testutil.AttrInt(sp.Attributes, "http.response.status_code"); st != 200 {
			t.Errorf("%s: status %d", path, st)
		}
		if got := testutil.AttrString(sp.Attributes, "fulcrum.backend"); got != be.Addr() {
			t.Errorf("%s: fulcrum.backend %q, want %q", path, got, be.Addr())
		}
		if path != "/continued" {
			continue
		}
		if hex.EncodeToString(sp.TraceId) != clientTrace || hex.EncodeToString(sp.ParentSpanId) != clientSpan {
			t.Errorf("span trace %x parent %x, want the client's", sp.TraceId, sp.ParentSpanId)
		}
		mu.Lock()
		got := parents[len(parents)-1]
		mu.Unlock()
		if want := "00-" + clientTrace + "-" + hex.EncodeToString(sp.SpanId) + "-01"; got != want {
			t.Errorf("backend got traceparent %q, want %q", got, want)
		}
	}
}

// TestTracingValidate: validate names the tracing keys it refuses.
func TestTracingValidate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fulcrum.yaml")
	doc := "backends: [\"http://127.0.0.1:1\"]\ntracing: {otlp_endpoint: \"localhost:4318\", sample_ratio: 1.5}\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binPath, "validate", "-config", path).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("validate: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{"config: line 2: tracing.otlp_endpoint: must be an http:// or https:// URL",
		"config: line 2: tracing.sample_ratio: must be a number from 0 to 1, got 1.5"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}
