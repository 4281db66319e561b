// Package tracing owns fulcrum's OpenTelemetry tracing: the TracerProvider
// built from the tracing block (OTLP/HTTP exporter, batch span processor,
// parent-based ratio sampler) and the shape of the one SERVER span a
// request gets (its name, attributes and retry events), so that every
// protocol front records the same span.
//
// Nothing here is global: the engine holds a Provider and hands each
// listener a *Tracer; a nil *Tracer means tracing is off, and the request
// path then never calls into OpenTelemetry.
package tracing

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"fulcrum/internal/config"
)

// Attribute keys of the request span.
const (
	KeyListener   = attribute.Key("fulcrum.listener")
	KeyRoute      = attribute.Key("fulcrum.route")
	KeyPool       = attribute.Key("fulcrum.pool")
	KeyBackend    = attribute.Key("fulcrum.backend")
	KeyRetries    = attribute.Key("fulcrum.retries")
	KeyAttempt    = attribute.Key("fulcrum.attempt")
	KeyServerAddr = attribute.Key("server.address")
	KeyMethod     = attribute.Key("http.request.method")
	KeyPath       = attribute.Key("url.path")
	KeyStatus     = attribute.Key("http.response.status_code")
	KeyErrorType  = attribute.Key("error.type")
)

// EventRetry is the name of the span event recorded for each retry.
const EventRetry = "retry"

// instrumentation is the tracer's instrumentation scope.
const instrumentation = "fulcrum"

// Options tune a Provider; the zero value is what fulcrum runs with.
type Options struct {
	// BatchTimeout is the longest a finished span waits before it is
	// exported; 0 keeps the SDK's default (5s, or OTEL_BSP_SCHEDULE_DELAY).
	BatchTimeout time.Duration
}

// Provider is a running tracing pipeline for one tracing block.
type Provider struct {
	cfg config.Tracing
	tp  *sdktrace.TracerProvider
}

// New builds the pipeline for cfg. It does not connect: the exporter
// connects when it first sends spans, and export failures are retried and
// then dropped by the SDK, never felt by requests.
func New(cfg *config.Tracing, opt Options) (*Provider, error) {
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(cfg.TracesURL()), otlptracehttp.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("tracing.otlp_endpoint: %w", err)
	}
	res, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName)))
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	var bopts []sdktrace.BatchSpanProcessorOption
	if opt.BatchTimeout > 0 {
		bopts = append(bopts, sdktrace.WithBatchTimeout(opt.BatchTimeout))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, bopts...),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	return &Provider{cfg: *cfg, tp: tp}, nil
}

// Config is the tracing block the provider was built from.
func (p *Provider) Config() config.Tracing { return p.cfg }

// Tracer returns the tracer of one listener's requests.
func (p *Provider) Tracer(listener string) *Tracer {
	return &Tracer{tr: p.tp.Tracer(instrumentation), listener: KeyListener.String(listener)}
}

// Shutdown exports the spans still queued and stops the pipeline; it
// returns when they are sent or ctx ends. Spans started afterwards are
// dropped.
func (p *Provider) Shutdown(ctx context.Context) error { return p.tp.Shutdown(ctx) }

// Tracer starts request spans for one listener. Safe for concurrent use.
type Tracer struct {
	tr       trace.Tracer
	listener attribute.KeyValue
}

// Start starts the SERVER span of a request whose headers carrier reads.
// A valid incoming traceparent makes the client's span the parent, and
// its sampled flag decides (parent-based sampling); otherwise the
// configured ratio does. The span of an unsampled request does not
// record but still has a span context to propagate; it gets no attributes
// (the sampler, parent-based over a trace-ID ratio, reads none), so an
// unsampled request does not pay for them.
func (t *Tracer) Start(carrier propagation.TextMapCarrier, method string, path []byte) (context.Context, trace.Span) {
	ctx := propagation.TraceContext{}.Extract(context.Background(), carrier)
	ctx, span := t.tr.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		span.SetAttributes(t.listener, KeyMethod.String(method), KeyPath.String(string(path)))
	}
	return ctx, span
}

// Inject writes the span's traceparent (and tracestate, when it has one)
// into carrier: what the backend receives instead of the client's.
func Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	propagation.TraceContext{}.Inject(ctx, carrier)
}

// Retry records that attempt (1 for the first) failed on backend with an
// error of kind and that the request is being retried.
func Retry(span trace.Span, attempt int, backend, kind string) {
	if !span.IsRecording() {
		return
	}
	span.AddEvent(EventRetry, trace.WithAttributes(
		KeyAttempt.Int(attempt), KeyBackend.String(backend), KeyErrorType.String(kind)))
}

// Outcome is what became of a traced request.
type Outcome struct {
	Method string
	// Route is the route's label (its name, or LISTENER/INDEX); "" when
	// no route matched.
	Route string
	// Pool is the pool the route chose; "" for fulcrum's own answers.
	Pool string
	// Backend is the backend (host:port) that answered or was tried last;
	// "" when none was.
	Backend string
	// Status is the status the client got.
	Status  int
	Retries int
}

// End records o on the span and ends it. A matched route renames the span
// "METHOD route" (it started as "METHOD"); a 5xx status marks it an error.
func End(span trace.Span, o *Outcome) {
	if span.IsRecording() {
		if o.Route != "" {
			span.SetName(o.Method + " " + o.Route)
			span.SetAttributes(KeyRoute.String(o.Route))
		}
		if o.Pool != "" {
			span.SetAttributes(KeyPool.String(o.Pool))
		}
		if o.Backend != "" {
			span.SetAttributes(KeyBackend.String(o.Backend), KeyServerAddr.String(o.Backend))
		}
		span.SetAttributes(KeyStatus.Int(o.Status), KeyRetries.Int(o.Retries))
		if o.Status >= 500 {
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}
