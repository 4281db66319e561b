package proxy_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"fulcrum/internal/config"
	"fulcrum/internal/testutil"
	"fulcrum/internal/tracing"
)

// traceBackend answers 200 (or the status in X-Status) and records the
// trace context fields of each request it gets.
type traceBackend struct {
	*httptest.Server
	mu     sync.Mutex
	parent []string
	state  []string
}

func newTraceBackend(t *testing.T) *traceBackend {
	b := &traceBackend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.parent = append(b.parent, strings.Join(r.Header.Values("Traceparent"), "|"))
		b.state = append(b.state, strings.Join(r.Header.Values("Tracestate"), "|"))
		b.mu.Unlock()
		if r.Header.Get("X-Status") == "503" {
			w.WriteHeader(503)
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(b.Close)
	return b
}

// last returns the trace context fields of the latest request.
func (b *traceBackend) last(t *testing.T) (traceparent, tracestate string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.parent) == 0 {
		t.Fatal("the backend got no request")
	}
	return b.parent[len(b.parent)-1], b.state[len(b.state)-1]
}

// tracedProxy starts a proxy in front of backends whose spans go to a
// fresh receiver, sampling ratio of the requests without a parent.
func tracedProxy(t *testing.T, ratio float64, backends ...string) (*testProxy, *testutil.OTLPReceiver) {
	t.Helper()
	rcv := testutil.StartOTLPReceiver(t)
	tp := startProxyWith(t, proxySetup{Backends: backends, Tracer: testTracer(t, rcv.URL, ratio)})
	return tp, rcv
}

// testTracer is the "default" listener's tracer of a pipeline exporting
// to the collector at url within 20 ms of a span's end.
func testTracer(tb testing.TB, url string, ratio float64) *tracing.Tracer {
	tb.Helper()
	p, err := tracing.New(&config.Tracing{OTLPEndpoint: url, SampleRatio: ratio, ServiceName: "fulcrum-test"},
		tracing.Options{BatchTimeout: 20 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	return p.Tracer("default")
}

// traceGet sends one GET with the given extra header lines and returns the status.
func traceGet(t *testing.T, addr, target string, headers ...string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + target + " HTTP/1.1\r\nHost: traced.example\r\nConnection: close\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := c.Write([]byte(req + "\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// parseTraceparent splits a version 00 traceparent into its parts.
func parseTraceparent(t *testing.T, v string) (traceID, parentID, flags string) {
	t.Helper()
	p := strings.Split(v, "-")
	if len(p) != 4 || p[0] != "00" || len(p[1]) != 32 || len(p[2]) != 16 || len(p[3]) != 2 {
		t.Fatalf("traceparent %q is not version 00", v)
	}
	return p[1], p[2], p[3]
}

const (
	clientTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpan  = "00f067aa0ba902b7"
)

func TestTraceSpanPerRequest(t *testing.T) {
	be := newTraceBackend(t)
	host := strings.TrimPrefix(be.URL, "http://")
	tp, rcv := tracedProxy(t, 1, host)
	if st := traceGet(t, tp.Addr, "/a/b?q=1"); st != 200 {
		t.Fatalf("status %d", st)
	}
	spans := rcv.WaitSpans(t, 1, 10*time.Second)
	sp := spans[0]
	if sp.Kind != tracepb.Span_SPAN_KIND_SERVER || sp.Name != "GET default/0" {
		t.Errorf("span kind %v name %q, want SERVER \"GET default/0\"", sp.Kind, sp.Name)
	}
	for k, want := range map[string]string{
		"fulcrum.listener": "default", "fulcrum.route": "default/0", "fulcrum.pool": "default",
		"fulcrum.backend": host, "server.address": host, "http.request.method": "GET", "url.path": "/a/b",
	} {
		if got := testutil.AttrString(sp.Attributes, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if st, _ := testutil.AttrInt(sp.Attributes, "http.response.status_code"); st != 200 {
		t.Errorf("http.response.status_code = %d", st)
	}
	if n, ok := testutil.AttrInt(sp.Attributes, "fulcrum.retries"); !ok || n != 0 {
		t.Errorf("fulcrum.retries = %d (%v), want 0", n, ok)
	}
	if len(sp.ParentSpanId) != 0 {
		t.Errorf("a request without traceparent got parent %x", sp.ParentSpanId)
	}
	if sp.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("a 200 is marked an error")
	}
	if _, svc := rcv.Spans(); svc[0] != "fulcrum-test" {
		t.Errorf("service.name = %q", svc[0])
	}
	// The backend's traceparent names fulcrum's span as its parent.
	tpv, _ := be.last(t)
	tid, pid, flags := parseTraceparent(t, tpv)
	if tid != hex.EncodeToString(sp.TraceId) || pid != hex.EncodeToString(sp.SpanId) || flags != "01" {
		t.Errorf("backend got traceparent %q; span is %x/%x", tpv, sp.TraceId, sp.SpanId)
	}

	// A 5xx marks the span an error.
	if st := traceGet(t, tp.Addr, "/fail", "X-Status: 503"); st != 503 {
		t.Fatalf("status %d, want 503", st)
	}
	sp = rcv.WaitSpans(t, 2, 10*time.Second)[1]
	if sp.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("a 503's span has status %v, want error", sp.Status)
	}
}

func TestTraceContinuesSampledClientTrace(t *testing.T) {
	be := newTraceBackend(t)
	// Ratio 0: only the client's sampled flag can make this span export.
	tp, rcv := tracedProxy(t, 0, strings.TrimPrefix(be.URL, "http://"))
	traceGet(t, tp.Addr, "/", "traceparent: 00-"+clientTrace+"-"+clientSpan+"-01", "tracestate: vendor=abc")
	sp := rcv.WaitSpans(t, 1, 10*time.Second)[0]
	if hex.EncodeToString(sp.TraceId) != clientTrace || hex.EncodeToString(sp.ParentSpanId) != clientSpan {
		t.Errorf("span trace %x parent %x, want the client's %s/%s", sp.TraceId, sp.ParentSpanId, clientTrace, clientSpan)
	}
	tpv, ts := be.last(t)
	tid, pid, flags := parseTraceparent(t, tpv)
	if tid != clientTrace || pid != hex.EncodeToString(sp.SpanId) || flags != "01" {
		t.Errorf("backend got traceparent %q, want trace %s with parent %x, sampled", tpv, clientTrace, sp.SpanId)
	}
	if ts != "vendor=abc" {
		t.Errorf("backend got tracestate %q, want the client's", ts)
	}
}

func TestTraceUnsampledClientPropagatesWithoutSpan(t *testing.T) {
	be := newTraceBackend(t)
	tp, rcv := tracedProxy(t, 1, strings.TrimPrefix(be.URL, "http://"))
	traceGet(t, tp.Addr, "/unsampled", "traceparent: 00-"+clientTrace+"-"+clientSpan+"-00")
	tpv, _ := be.last(t)
	tid, pid, flags := parseTraceparent(t, tpv)
	if tid != clientTrace || pid == clientSpan || flags != "00" {
		t.Errorf("backend got traceparent %q, want trace %s, a new parent id, not sampled", tpv, clientTrace)
	}
	// A sampled request after it: the only span to arrive must be its own.
	traceGet(t, tp.Addr, "/marker")
	spans := rcv.WaitSpans(t, 1, 10*time.Second)
	if len(spans) != 1 || testutil.AttrString(spans[0].Attributes, "url.path") != "/marker" {
		t.Fatalf("got %d spans (first %q), want only /marker's", len(spans), testutil.AttrString(spans[0].Attributes, "url.path"))
	}
}

func TestTraceRatioZeroExportsNothing(t *testing.T) {
	be := newTraceBackend(t)
	tp, rcv := tracedProxy(t, 0, strings.TrimPrefix(be.URL, "http://"))
	for range 5 {
		traceGet(t, tp.Addr, "/quiet", "traceparent: junk")
		tpv, _ := be.last(t)
		if _, _, flags := parseTraceparent(t, tpv); flags != "00" {
			t.Errorf("backend got traceparent %q, want one not sampled", tpv)
		}
	}
	traceGet(t, tp.Addr, "/marker", "traceparent: 00-"+clientTrace+"-"+clientSpan+"-01")
	spans := rcv.WaitSpans(t, 1, 10*time.Second)
	if len(spans) != 1 || testutil.AttrString(spans[0].Attributes, "url.path") != "/marker" {
		t.Fatalf("got %d spans, want only /marker's", len(spans))
	}
}

func TestTraceRetryEvent(t *testing.T) {
	be := newTraceBackend(t)
	dead := testutil.ClosedAddr(t)
	tp, rcv := tracedProxy(t, 1, dead, strings.TrimPrefix(be.URL, "http://"))
	// Round robin starts on one of the two; within two requests one tries
	// the dead backend first.
	traceGet(t, tp.Addr, "/r1")
	traceGet(t, tp.Addr, "/r2")
	spans := rcv.WaitSpans(t, 2, 10*time.Second)
	var retried *tracepb.Span
	for _, sp := range spans {
		if n, _ := testutil.AttrInt(sp.Attributes, "fulcrum.retries"); n == 1 {
			retried = sp
		}
	}
	if retried == nil {
		t.Fatal("no span with fulcrum.retries 1")
	}
	if len(retried.Events) != 1 || retried.Events[0].Name != "retry" {
		t.Fatalf("events %v, want one retry", retried.Events)
	}
	ev := retried.Events[0]
	if n, _ := testutil.AttrInt(ev.Attributes, "fulcrum.attempt"); n != 1 {
		t.Errorf("retry event attempt %d, want 1", n)
	}
	if got := testutil.AttrString(ev.Attributes, "fulcrum.backend"); got != dead {
		t.Errorf("retry event backend %q, want the dead %q", got, dead)
	}
	if got := testutil.AttrString(ev.Attributes, "error.type"); got != "connect" {
		t.Errorf("retry event error.type %q, want connect", got)
	}
	if got := testutil.AttrString(retried.Attributes, "fulcrum.backend"); got != strings.TrimPrefix(be.URL, "http://") {
		t.Errorf("span backend %q, want the one that answered", got)
	}
}

func TestTracingOffPassesTraceContextThrough(t *testing.T) {
	be := newTraceBackend(t)
	tp := startProxy(t, []string{strings.TrimPrefix(be.URL, "http://")}, nil)
	in := "00-" + clientTrace + "-" + clientSpan + "-01"
	traceGet(t, tp.Addr, "/", "traceparent: "+in, "tracestate: a=b")
	if tpv, ts := be.last(t); tpv != in || ts != "a=b" {
		t.Errorf("backend got %q / %q, want the client's fields unchanged", tpv, ts)
	}
}
