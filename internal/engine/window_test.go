package engine_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"fulcrum/internal/testutil"
)

// TestLastMinuteStats sends traffic through the engine to a slow backend, a
// failing one and an address that refuses connections, and reads each
// backend's last minute from Backends(), before and after a reload.
func TestLastMinuteStats(t *testing.T) {
	t.Parallel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, "slow")
	}))
	t.Cleanup(slow.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	closed := "http://" + testutil.ClosedAddr(t)
	cfg := func(weight int) string {
		return fmt.Sprintf(`{"listen_addr": "127.0.0.1:0", "admin_addr": "", "strategy": "round_robin", "retries": 0,
 "health_check_interval": "1h", "passive": {"max_fails": 0},
 "backends": [{"url": %q, "weight": %d}, %q, %q]}`, slow.URL, weight, failing.URL, closed)
	}
	h := start(t, cfg(1))
	for range 30 {
		resp, err := h.cl.Get("http://" + h.eng.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	check := func(when string) {
		t.Helper()
		st := h.eng.Backends()
		if len(st) != 3 {
			t.Fatalf("%s: %d backends", when, len(st))
		}
		// Latencies are of a loaded test machine: the slow backend's
		// p50 is at least its 20 ms, the failing one's below that. The
		// window reports a bucket's lower bound (buckets are an eighth of
		// a power of two wide: 20 ms reads as 18.87 ms), hence 17 ms.
		want := []struct {
			name       string
			errors     uint64
			minP, maxP time.Duration // of p50
		}{{"slow", 0, 17 * time.Millisecond, time.Second}, {"failing", 10, 1, 17 * time.Millisecond}, {"closed", 10, 0, 0}}
		for i, w := range want {
			lm := st[i].LastMinute
			if lm.Requests != 10 || lm.Errors != w.errors {
				t.Errorf("%s: %s: requests %d errors %d, want 10 and %d", when, w.name, lm.Requests, lm.Errors, w.errors)
			}
			if lm.P50 < w.minP || lm.P50 > w.maxP || lm.P99 < lm.P50 || (w.maxP == 0) != (lm.P99 == 0) {
				t.Errorf("%s: %s: p50 %v p99 %v, want p50 within [%v, %v] and p99 >= p50", when, w.name, lm.P50, lm.P99, w.minP, w.maxP)
			}
			if rps := lm.RPS(); rps <= 0 {
				t.Errorf("%s: %s: rps %v", when, w.name, rps)
			}
		}
	}
	check("before reload")
	// A reload that keeps the backends keeps their last minute.
	writeFile(t, h.path, cfg(2))
	if _, err := h.eng.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("after reload")
}

// TestLastMinuteBrokenBodyCountsOnce: a response that breaks after its head
// is one request in the backend's last minute, not two.
func TestLastMinuteBrokenBodyCountsOnce(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.Read(make([]byte, 4096))
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
			}()
		}
	}()
	h := start(t, fmt.Sprintf(`{"listen_addr": "127.0.0.1:0", "admin_addr": "", "retries": 0,
 "health_check_interval": "1h", "passive": {"max_fails": 0}, "backends": ["http://%s"]}`, ln.Addr()))
	resp, err := h.cl.Get("http://" + h.eng.Addr().String() + "/")
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	testutil.WaitFor(t, 5*time.Second, "the request in the last minute", func() bool {
		return h.eng.Backends()[0].LastMinute.Requests > 0
	})
	if lm := h.eng.Backends()[0].LastMinute; lm.Requests != 1 {
		t.Errorf("requests %d errors %d, want 1 request", lm.Requests, lm.Errors)
	}
}
