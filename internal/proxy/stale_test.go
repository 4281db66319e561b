package proxy_test

import (
	"testing"
)

// A backend that closes every connection right after answering, without
// saying "Connection: close" (as a backend whose keep-alive timeout races
// with a new request does). Idempotent requests on the stale pooled
// connection are repeated on a fresh connection to the same backend, and the
// backend is not blamed for it: with passive max_fails 1 it is never ejected.
func TestStaleReusedConnectionRetriedOnFreshConnection(t *testing.T) {
	b := newRawBackend(t, func(head []byte) ([]byte, bool) { return okResponse("ok"), true })
	tp := startProxy(t, []string{b.Addr()}, map[string]any{
		"passive": map[string]any{"max_fails": 1, "fail_window": "10s", "eject_for": "30s"},
	})
	c := dialProxy(t, tp.Addr)
	for i := 0; i < 20; i++ {
		resp, body := c.get("/")
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if got := len(b.Heads()); got != 20 {
		t.Fatalf("backend saw %d requests, want exactly 20 (one per client request)", got)
	}
	if st := tp.Pool.Statuses(); st[0].Ejected || !st[0].Up {
		t.Fatalf("backend blamed for stale connections: %+v", st[0])
	}
}

// An HTTP/1.0 client that asks for keep-alive is told the connection stays open.
func TestHTTP10KeepAliveAnnounced(t *testing.T) {
	b := newRawBackend(t, func(head []byte) ([]byte, bool) { return okResponse("ok"), false })
	tp := startProxy(t, []string{b.Addr()}, nil)
	c := dialProxy(t, tp.Addr)
	for i := 0; i < 2; i++ {
		c.write("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		resp, body := c.read("GET")
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if got := resp.Header.Get("Connection"); got != "keep-alive" {
			t.Fatalf("request %d: Connection = %q, want keep-alive", i, got)
		}
	}
}

// With two dead backends and one live, retries (2) avoid every backend
// already tried, so each GET reaches the live one within its attempts.
func TestRetriesAvoidAllTriedBackends(t *testing.T) {
	live := newRawBackend(t, func(head []byte) ([]byte, bool) { return okResponse("ok"), false })
	tp := startProxy(t, []string{deadPort(t), deadPort(t), live.Addr()}, nil)
	for i := 0; i < 30; i++ {
		c := dialProxy(t, tp.Addr)
		resp, body := c.get("/")
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}
