package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fulcrum/internal/testutil"
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
	tp := startProxy(t, []string{testutil.ClosedAddr(t), testutil.ClosedAddr(t), live.Addr()}, nil)
	for i := 0; i < 30; i++ {
		c := dialProxy(t, tp.Addr)
		resp, body := c.get("/")
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

// A backend that answers (413) and closes while the client is still
// streaming a large body: the client gets the answer and its connection is
// closed, so the unread rest of the body can never be read as a next request.
func TestEarlyAnswerClosesClientConnection(t *testing.T) {
	// The backend reads the head only, answers 413 and closes without
	// reading the body.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var heads []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(conn)
			if head, err := readHead(br); err == nil {
				mu.Lock()
				heads = append(heads, string(head))
				mu.Unlock()
				conn.Write([]byte("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbig!"))
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	tp := startProxy(t, []string{ln.Addr().String()}, map[string]any{"retry_buffer": 1024})
	nc, err := net.Dial("tcp", tp.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Content-Length well above retry_buffer: streamed. The body hides a
	// second request that must never be parsed.
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	body := smuggled + string(make([]byte, 4<<20))
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		nc.Write([]byte("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body))
	}()
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	if resp, err := http.ReadResponse(br, nil); err == nil {
		if resp.StatusCode != 413 {
			t.Fatalf("status %d, want 413 (or a closed connection)", resp.StatusCode)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// The connection must then be closed by fulcrum (EOF or reset), not
	// kept waiting for a next request.
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Fatalf("client connection kept open with an unread body (err %v)", err)
	}
	nc.Close()
	<-wdone
	mu.Lock()
	defer mu.Unlock()
	for _, h := range heads {
		if strings.Contains(h, "/smuggled") {
			t.Fatal("the body was parsed as a request")
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// An HTTP/1.0 request without Host reaches the backend as HTTP/1.1 with an
// empty Host field (RFC 9112 3.2), never without one.
func TestHTTP10WithoutHostGetsEmptyHost(t *testing.T) {
	b := newRawBackend(t, func(head []byte) ([]byte, bool) { return okResponse("ok"), false })
	tp := startProxy(t, []string{b.Addr()}, nil)
	c := dialProxy(t, tp.Addr)
	c.write("GET / HTTP/1.0\r\n\r\n")
	if resp, _ := c.read("GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	heads := b.Heads()
	if len(heads) != 1 || !strings.Contains(string(heads[0]), "\r\nHost: \r\n") {
		t.Fatalf("backend head %q, want an empty Host field", heads)
	}
}
