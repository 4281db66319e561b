package proxy_test

import (
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestResponseTransferCodingsKept: a backend's transfer codings other than
// the final chunked reach an HTTP/1.1 client unchanged (the body's bytes
// are in them); an HTTP/1.0 client, which cannot receive them, gets 502.
func TestResponseTransferCodingsKept(t *testing.T) {
	const gz = "\x1f\x8b\x08\x00fake-gzip-bytes"
	chunkLen := strconv.FormatInt(int64(len(gz)), 16) + "\r\n"
	cases := []struct {
		name, resp, wantTE string
	}{
		{"gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" +
			chunkLen + gz + "\r\n0\r\n\r\n", "gzip, chunked"},
		{"two fields", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" +
			chunkLen + gz + "\r\n0\r\n\r\n", "gzip, chunked"},
		{"gzip until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n" + gz, "gzip, chunked"},
		{"plain chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkLen + gz + "\r\n0\r\n\r\n", "chunked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			be := newRawBackend(t, func([]byte) ([]byte, bool) { return []byte(tc.resp), true })
			tp := startProxy(t, []string{be.Addr()}, nil)

			c := dialProxy(t, tp.Addr)
			c.write("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			head := c.readRawHead()
			if got := headerValue([]byte(head), "Transfer-Encoding"); got != tc.wantTE {
				t.Fatalf("Transfer-Encoding %q, want %q; head:\n%s", got, tc.wantTE, head)
			}
			// The body is the backend's coded bytes, framed by fulcrum's chunking.
			body, err := io.ReadAll(httputilChunked(c.br))
			if err != nil || string(body) != gz {
				t.Fatalf("body %q (%v), want the coded bytes %q", body, err, gz)
			}

			c10 := dialProxy(t, tp.Addr)
			resp, _ := c10.do("GET", "GET / HTTP/1.0\r\nHost: h\r\n\r\n")
			want := 502
			if tc.wantTE == "chunked" {
				want = 200
			}
			if resp.StatusCode != want {
				t.Errorf("HTTP/1.0 client: %d, want %d", resp.StatusCode, want)
			}
		})
	}
}

// TestOwnAnswersKeepHTTP10Alive: fulcrum's own answers to an HTTP/1.0
// keep-alive client say "Connection: keep-alive" when the connection stays
// open (else the client waits for EOF), as relayed responses do.
func TestOwnAnswersKeepHTTP10Alive(t *testing.T) {
	release := make(chan struct{})
	addrs := streamingBackends(t, 1, release)
	t.Cleanup(func() { close(release) }) // runs before the backends' Close
	tp := startProxy(t, addrs, map[string]any{"max_connections": 1, "retries": 0})
	startSlow(t, tp.Addr) // holds the only slot

	c := dialProxy(t, tp.Addr)
	for i := 0; i < 2; i++ { // the second answer proves the connection stayed open
		c.write("GET /who HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
		head := c.readRawHead()
		if !strings.HasPrefix(head, "HTTP/1.1 503 ") || headerValue([]byte(head), "Connection") != "keep-alive" {
			t.Fatalf("answer %d to an HTTP/1.0 keep-alive client:\n%s", i, head)
		}
		cl := headerValue([]byte(head), "Content-Length")
		buf := make([]byte, len("all backends are busy\n"))
		if _, err := io.ReadFull(c.br, buf); err != nil || cl != "22" {
			t.Fatalf("body %q (Content-Length %s): %v", buf, cl, err)
		}
	}
	// Without keep-alive an HTTP/1.0 answer closes, and says so.
	d := dialProxy(t, tp.Addr)
	d.write("GET /who HTTP/1.0\r\nHost: h\r\n\r\n")
	head := d.readRawHead()
	if headerValue([]byte(head), "Connection") != "close" {
		t.Errorf("HTTP/1.0 without keep-alive:\n%s", head)
	}

	t.Run("429", func(t *testing.T) {
		be := newRawBackend(t, func([]byte) ([]byte, bool) { return okResponse("ok"), false })
		tp := startProxy(t, []string{be.Addr()}, map[string]any{
			"rate_limit": map[string]any{"requests_per_second": 0.001, "burst": 1},
		})
		c := dialProxy(t, tp.Addr)
		if resp, _ := c.do("GET", "GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"); resp.StatusCode != 200 {
			t.Fatalf("first request: %d", resp.StatusCode)
		}
		for i := 0; i < 2; i++ {
			c.write("GET / HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
			head := c.readRawHead()
			if !strings.HasPrefix(head, "HTTP/1.1 429 ") || headerValue([]byte(head), "Connection") != "keep-alive" ||
				headerValue([]byte(head), "Retry-After") == "" {
				t.Fatalf("429 %d to an HTTP/1.0 keep-alive client:\n%s", i, head)
			}
			buf := make([]byte, len("rate limit exceeded\n"))
			if _, err := io.ReadFull(c.br, buf); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestConnect405HasAllow: RFC 9110 requires Allow on a 405.
func TestConnect405HasAllow(t *testing.T) {
	be := newRawBackend(t, func([]byte) ([]byte, bool) { return okResponse("ok"), false })
	tp := startProxy(t, []string{be.Addr()}, nil)
	c := dialProxy(t, tp.Addr)
	c.write("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n")
	head := c.readRawHead()
	allow := headerValue([]byte(head), "Allow")
	if !strings.HasPrefix(head, "HTTP/1.1 405 ") || !strings.Contains(allow, "GET") || strings.Contains(allow, "CONNECT") {
		t.Fatalf("405 head:\n%s", head)
	}
	if len(be.Heads()) != 0 {
		t.Error("CONNECT reached the backend")
	}
}

// TestClientBodyFailureStatus: a request whose client stops sending its body
// gets 408 after read_timeout; one whose client went away is counted (and
// logged) as 499, never with no status.
func TestClientBodyFailureStatus(t *testing.T) {
	be := newRawBackend(t, func([]byte) ([]byte, bool) { return okResponse("ok"), false })
	tp := startProxy(t, []string{be.Addr()}, map[string]any{"read_timeout": "200ms"})
	for _, size := range []int{10, 1 << 20} { // buffered for replay, and streamed
		c := dialProxy(t, tp.Addr)
		c.write("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + itoa(size) + "\r\n\r\nabc")
		resp, _ := c.read("POST")
		if resp.StatusCode != 408 || !resp.Close {
			t.Errorf("stalled body of %d bytes: %d %v, want 408 and close", size, resp.StatusCode, resp.Header)
		}
		if !c.closed(2 * time.Second) {
			t.Error("connection kept after 408")
		}
	}
	if n := tp.counter(t, "loadbalancer_request_count_total", map[string]string{"status": "408"}); n != 2 {
		t.Errorf("requests counted with status 408: %v, want 2", n)
	}
	for _, size := range []int{10, 1 << 20} {
		c := dialProxy(t, tp.Addr)
		c.write("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + itoa(size) + "\r\n\r\nabc")
		c.c.Close()
	}
	waitFor(t, 5*time.Second, "two requests counted as 499", func() bool {
		return tp.counter(t, "loadbalancer_request_count_total", map[string]string{"status": "499"}) == 2
	})
}

// TestOwnAnswerClosesWhileShuttingDown: an answer fulcrum writes itself while
// the server shuts down says "Connection: close", as a relayed response
// does, instead of promising a keep-alive the server will not keep.
func TestOwnAnswerClosesWhileShuttingDown(t *testing.T) {
	release := make(chan struct{})
	addrs := streamingBackends(t, 1, release)
	t.Cleanup(func() { close(release) })
	tp := startProxy(t, addrs, map[string]any{"max_connections": 1, "queue_timeout": "1s", "retries": 0})
	slow := startSlow(t, tp.Addr) // holds the only slot
	c := dialProxy(t, tp.Addr)
	c.write("GET /who HTTP/1.1\r\nHost: h\r\n\r\n")
	waitFor(t, 5*time.Second, "the request to wait in the queue", func() bool { return tp.Pool.Queued() == 1 })
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- tp.Srv.Shutdown(ctx)
	}()
	resp, _ := c.read("GET")
	if resp.StatusCode != 503 || !resp.Close {
		t.Fatalf("queued request during shutdown: %d, Close %v; want 503 with Connection: close", resp.StatusCode, resp.Close)
	}
	if !c.closed(2 * time.Second) {
		t.Error("connection kept after the answer")
	}
	slow.c.Close()
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}
