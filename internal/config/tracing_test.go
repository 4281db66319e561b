package config

import (
	"reflect"
	"testing"
)

func TestTracing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc string
		want      *Tracing
	}{
		{"absent", `{"backends": ["http://a"]}`, nil},
		{"defaults", `{"backends": ["http://a"], "tracing": {"otlp_endpoint": "http://127.0.0.1:4318"}}`,
			&Tracing{OTLPEndpoint: "http://127.0.0.1:4318", SampleRatio: 0.01, ServiceName: "fulcrum"}},
		{"every key", `{"backends": ["http://a"], "tracing": {"otlp_endpoint": "https://otel.example:4318/base/",
			"sample_ratio": 1, "service_name": "edge"}}`,
			&Tracing{OTLPEndpoint: "https://otel.example:4318/base/", SampleRatio: 1, ServiceName: "edge"}},
		{"ratio zero", `{"backends": ["http://a"], "tracing": {"otlp_endpoint": "http://c:4318", "sample_ratio": 0}}`,
			&Tracing{OTLPEndpoint: "http://c:4318", SampleRatio: 0, ServiceName: "fulcrum"}},
		{"full form", `{"pools": {"p": {"backends": ["http://a"]}}, "listeners": [{"name": "l", "listen_addr": ":1", "routes": [{"pool": "p"}]}],
			"tracing": {"otlp_endpoint": "http://c:4318", "sample_ratio": 0.5}}`,
			&Tracing{OTLPEndpoint: "http://c:4318", SampleRatio: 0.5, ServiceName: "fulcrum"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, tc.doc, "json", nil)
			if !reflect.DeepEqual(cfg.Tracing, tc.want) {
				t.Errorf("Tracing = %+v, want %+v", cfg.Tracing, tc.want)
			}
		})
	}
}

func TestTracingYAML(t *testing.T) {
	t.Parallel()
	cfg := mustParse(t, "backends: [\"http://a\"]\ntracing: {otlp_endpoint: \"http://127.0.0.1:4318\", sample_ratio: 0.01, service_name: fulcrum}\n", "yaml", nil)
	want := &Tracing{OTLPEndpoint: "http://127.0.0.1:4318", SampleRatio: 0.01, ServiceName: "fulcrum"}
	if !reflect.DeepEqual(cfg.Tracing, want) {
		t.Errorf("Tracing = %+v, want %+v", cfg.Tracing, want)
	}
	if got := want.TracesURL(); got != "http://127.0.0.1:4318/v1/traces" {
		t.Errorf("TracesURL = %q", got)
	}
	if got := (&Tracing{OTLPEndpoint: "http://c/base/"}).TracesURL(); got != "http://c/base/v1/traces" {
		t.Errorf("TracesURL with a path = %q", got)
	}
}

func TestTracingProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, tracing, path, msg string }{
		{"not an object", `true`, "tracing", "an object"},
		{"no endpoint", `{}`, "tracing.otlp_endpoint", "required"},
		{"endpoint not a string", `{"otlp_endpoint": 4318}`, "tracing.otlp_endpoint", "a string"},
		{"endpoint no scheme", `{"otlp_endpoint": "127.0.0.1:4318"}`, "tracing.otlp_endpoint", "http:// or https://"},
		{"endpoint grpc scheme", `{"otlp_endpoint": "grpc://c:4317"}`, "tracing.otlp_endpoint", "http:// or https://"},
		{"endpoint no host", `{"otlp_endpoint": "http://"}`, "tracing.otlp_endpoint", "with a host"},
		{"endpoint with traces path", `{"otlp_endpoint": "http://c:4318/v1/traces"}`, "tracing.otlp_endpoint", "base URL"},
		{"endpoint with query", `{"otlp_endpoint": "http://c:4318/?a=b"}`, "tracing.otlp_endpoint", "query"},
		{"ratio above one", `{"otlp_endpoint": "http://c", "sample_ratio": 1.5}`, "tracing.sample_ratio", "from 0 to 1, got 1.5"},
		{"ratio negative", `{"otlp_endpoint": "http://c", "sample_ratio": -0.1}`, "tracing.sample_ratio", "from 0 to 1"},
		{"ratio a string", `{"otlp_endpoint": "http://c", "sample_ratio": "0.5"}`, "tracing.sample_ratio", "a number"},
		{"empty service name", `{"otlp_endpoint": "http://c", "service_name": " "}`, "tracing.service_name", "must not be empty"},
		{"unknown key", `{"otlp_endpoint": "http://c", "sample_rate": 1}`, "tracing.sample_rate", `did you mean "sample_ratio"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(`{"backends": ["http://a"], "tracing": `+tc.tracing+`}`), "json", nil)
			if cfg != nil {
				t.Fatalf("got a Config together with problems: %+v", cfg)
			}
			assertProblem(t, err, tc.path, tc.msg)
		})
	}
}
