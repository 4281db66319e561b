package testutil

import (
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// OTLPReceiver is an OTLP/HTTP trace collector on 127.0.0.1: it accepts
// POST /v1/traces with a protobuf ExportTraceServiceRequest and keeps the
// spans. Close it (or let the test's cleanup) when done.
type OTLPReceiver struct {
	// URL is the collector's base URL (what tracing.otlp_endpoint names).
	URL string
	srv *http.Server
	ln  net.Listener

	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string // service.name of each span's resource
	changed  chan struct{}
	done     chan struct{}
}

// StartOTLPReceiver starts a receiver and closes it at the end of the test.
func StartOTLPReceiver(tb testing.TB) *OTLPReceiver {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &OTLPReceiver{URL: "http://" + ln.Addr().String(), ln: ln, changed: make(chan struct{}), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { defer close(r.done); r.srv.Serve(ln) }()
	tb.Cleanup(r.Close)
	return r
}

// Close stops the receiver.
func (r *OTLPReceiver) Close() {
	r.srv.Close()
	<-r.done
}

func (r *OTLPReceiver) export(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 16<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	for _, rs := range msg.ResourceSpans {
		svc := AttrString(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				r.spans = append(r.spans, sp)
				r.services = append(r.services, svc)
			}
		}
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// Spans returns the spans received so far and the service.name of each.
func (r *OTLPReceiver) Spans() ([]*tracepb.Span, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*tracepb.Span(nil), r.spans...), append([]string(nil), r.services...)
}

// WaitSpans waits until at least n spans arrived and returns them; it fails
// the test after timeout.
func (r *OTLPReceiver) WaitSpans(tb testing.TB, n int, timeout time.Duration) []*tracepb.Span {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		got, ch := len(r.spans), r.changed
		r.mu.Unlock()
		if got >= n {
			s, _ := r.Spans()
			return s
		}
		select {
		case <-ch:
		case <-deadline.C:
			tb.Fatalf("OTLP receiver: %d spans after %v, want %d", got, timeout, n)
			return nil
		}
	}
}

// AttrString returns the string value of attribute key, "" if absent.
func AttrString(attrs []*commonpb.KeyValue, key string) string {
	for _, a := range attrs {
		if a.Key == key {
			return a.GetValue().GetStringValue()
		}
	}
	return ""
}

// AttrInt returns the integer value of attribute key and whether it is there.
func AttrInt(attrs []*commonpb.KeyValue, key string) (int64, bool) {
	for _, a := range attrs {
		if a.Key == key {
			if v, ok := a.GetValue().GetValue().(*commonpb.AnyValue_IntValue); ok {
				return v.IntValue, true
			}
		}
	}
	return 0, false
}
