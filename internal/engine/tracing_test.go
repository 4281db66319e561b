package engine_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/testutil"
)

// TestTracingFollowsReload: a reload turns tracing on, replaces the
// pipeline when the block changes (the old one flushes the spans of the
// requests it traced) and turns it off again (flushing too).
func TestTracingFollowsReload(t *testing.T) {
	t.Parallel()
	rcv := testutil.StartOTLPReceiver(t)
	bs := startBackends(t, "a")
	plain := cfgJSON("", "round_robin", bs, nil)
	traced := func(service string) string {
		return strings.Replace(plain, "{", fmt.Sprintf(`{"tracing": {"otlp_endpoint": %q, "sample_ratio": 1, "service_name": %q}, `,
			rcv.URL, service), 1)
	}
	h := start(t, plain)
	h.get()
	reload := func(doc string) {
		t.Helper()
		writeFile(t, h.path, doc)
		if _, err := h.eng.Reload(context.Background()); err != nil {
			t.Fatalf("reload: %v", err)
		}
	}
	reload(traced("one"))
	h.get()
	reload(traced("one")) // unchanged: the same pipeline keeps running
	h.get()
	if spans, _ := rcv.Spans(); len(spans) != 0 {
		// The default batch timeout is 5s: nothing was flushed yet.
		t.Fatalf("%d spans exported before the pipeline was replaced", len(spans))
	}
	reload(traced("two"))
	rcv.WaitSpans(t, 2, 10*time.Second)
	h.get()
	reload(plain)
	rcv.WaitSpans(t, 3, 10*time.Second)
	h.get() // not traced
	_, services := rcv.Spans()
	if got := strings.Join(services, ","); got != "one,one,two" {
		t.Errorf("spans of services %s, want one,one,two", got)
	}
}

// TestReloadBadTracingRefused: an invalid tracing block fails the reload
// naming the key, and the running config stays.
func TestReloadBadTracingRefused(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a")
	h := start(t, cfgJSON("", "round_robin", bs, nil))
	before := h.eng.Config()
	writeFile(t, h.path, strings.Replace(cfgJSON("", "round_robin", bs, nil), "{",
		`{"tracing": {"otlp_endpoint": "127.0.0.1:4318", "sample_ratio": 2}, `, 1))
	_, err := h.eng.Reload(context.Background())
	if err == nil || !strings.Contains(err.Error(), "tracing.otlp_endpoint") || !strings.Contains(err.Error(), "tracing.sample_ratio") {
		t.Fatalf("Reload error %v; want it to name tracing.otlp_endpoint and tracing.sample_ratio", err)
	}
	if h.eng.Config() != before {
		t.Fatal("running config changed after a refused reload")
	}
}
