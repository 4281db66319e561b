package tracing

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"fulcrum/internal/config"
	"fulcrum/internal/testutil"
)

// FuzzStart feeds arbitrary trace context fields to a request span: Start
// never fails, the backend always gets a well-formed traceparent of the
// span's own, and a valid sampled client parent is continued.
func FuzzStart(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "vendor=abc")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "")
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01", "a=1,b=2")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-extra", "bad state ,,=")
	f.Add("junk", "")
	rcv := testutil.StartOTLPReceiver(f)
	p, err := New(&config.Tracing{OTLPEndpoint: rcv.URL, SampleRatio: 0, ServiceName: "fuzz"}, Options{BatchTimeout: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	tr := p.Tracer("l")
	f.Fuzz(func(t *testing.T, parent, state string) {
		in := propagation.MapCarrier{"traceparent": parent, "tracestate": state}
		ctx, span := tr.Start(in, "GET", []byte("/"))
		out := propagation.MapCarrier{}
		Inject(ctx, out)
		sc := span.SpanContext()
		tp := out.Get("traceparent")
		want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-"
		if !sc.IsValid() || !strings.HasPrefix(tp, want) || len(tp) != len(want)+2 {
			t.Fatalf("traceparent %q for span %v (client sent %q)", tp, sc, parent)
		}
		client := propagation.TraceContext{}.Extract(context.Background(), in)
		if csc := spanContextOf(client); csc.IsValid() {
			if sc.TraceID() != csc.TraceID() || sc.IsSampled() != csc.IsSampled() {
				t.Fatalf("span %v does not continue the client's %v", sc, csc)
			}
		} else if sc.IsSampled() {
			t.Fatalf("sample_ratio 0 sampled a request without a valid parent (%q)", parent)
		}
		End(span, &Outcome{Method: "GET", Route: "r", Pool: "p", Backend: "b:1", Status: 200})
	})
}

func spanContextOf(ctx context.Context) trace.SpanContext { return trace.SpanContextFromContext(ctx) }

// TestMain fails the package when a goroutine running fulcrum code (the
// test collector) outlives the tests.
func TestMain(m *testing.M) { testutil.VerifyNoFulcrumLeaks(m) }
