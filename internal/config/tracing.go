package config

import (
	"net/url"
	"strings"
)

// Defaults of the tracing block.
const (
	defaultSampleRatio = 0.01
	defaultServiceName = "fulcrum"
)

// Tracing is the OpenTelemetry tracing block (top level; nil = off).
type Tracing struct {
	// OTLPEndpoint is the collector's base URL ("http://127.0.0.1:4318");
	// spans are POSTed to OTLPEndpoint + "/v1/traces" (OTLP/HTTP).
	OTLPEndpoint string
	// SampleRatio is the share of requests without a sampled parent that
	// are traced, 0 to 1. A client's traceparent decides for its request.
	SampleRatio float64
	// ServiceName is the service.name resource attribute.
	ServiceName string
}

// TracesURL is the OTLP/HTTP traces URL under the endpoint.
func (t *Tracing) TracesURL() string {
	return strings.TrimSuffix(t.OTLPEndpoint, "/") + "/v1/traces"
}

// buildTracing checks the tracing object.
func buildTracing(c *checker, path string, v *value) *Tracing {
	o := c.object(path, v)
	if o.v == nil {
		return nil
	}
	t := &Tracing{SampleRatio: defaultSampleRatio}
	if ev := o.take("otlp_endpoint"); ev == nil {
		c.add(o.at("otlp_endpoint"), `required: the collector's base URL, e.g. "http://127.0.0.1:4318"`)
	} else if s, ok := c.str(o.at("otlp_endpoint"), ev); ok {
		if msg := checkOTLPEndpoint(s); msg != "" {
			c.add(o.at("otlp_endpoint"), "%s, got %q", msg, clip(s))
		} else {
			t.OTLPEndpoint = s
		}
	}
	if rv := o.take("sample_ratio"); rv != nil {
		if rv.kind != kindNumber {
			c.typeProblem(o.at("sample_ratio"), "a number from 0 to 1", rv)
		} else if f, ok := number(rv.s); !ok || f < 0 || f > 1 {
			c.add(o.at("sample_ratio"), "must be a number from 0 to 1, got %s", clip(rv.s))
		} else {
			t.SampleRatio = f
		}
	}
	if name, ok := o.str("service_name", defaultServiceName); ok {
		if strings.TrimSpace(name) == "" {
			c.add(o.at("service_name"), "must not be empty")
		}
		t.ServiceName = name
	}
	o.done()
	return t
}

// checkOTLPEndpoint returns what is wrong with an otlp_endpoint, "" if nothing.
func checkOTLPEndpoint(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return "must be an http:// or https:// URL with a host"
	case u.Scheme != "http" && u.Scheme != "https":
		return "must be an http:// or https:// URL"
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "must not have user info, a query or a fragment"
	case strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), "/v1/traces"):
		return `is the collector's base URL: leave out "/v1/traces" (fulcrum adds it)`
	}
	return ""
}
