package proxy_test

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// serveGoroutines counts goroutines serving a client connection.
func serveGoroutines() int {
	buf := make([]byte, 8<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "proxy.(*clientConn).serve(")
}

// Idle keep-alive connections park without a goroutine (Linux: the lot), and
// wake for their next request.
func TestIdleConnectionsParkWithoutGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the idle-connection lot uses epoll")
	}
	be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.URL.Path)
	}))
	tp := startProxy(t, []string{hostPort(be.URL)}, nil)
	const n = 200
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = dialProxy(t, tp.Addr)
		if resp, body := clients[i].get("/first"); resp.StatusCode != 200 || string(body) != "ok /first" {
			t.Fatalf("conn %d: %d %q", i, resp.StatusCode, body)
		}
	}
	waitFor(t, 5*time.Second, "idle connections to give up their goroutines", func() bool {
		return serveGoroutines() == 0
	})
	if got := tp.Srv.Conns(); got != n {
		t.Fatalf("open connections: %d, want %d", got, n)
	}
	// Every parked connection wakes for its next request, pipelined or not.
	for i, c := range clients {
		if i%2 == 0 {
			if resp, body := c.get("/second"); resp.StatusCode != 200 || string(body) != "ok /second" {
				t.Fatalf("conn %d: %d %q", i, resp.StatusCode, body)
			}
			continue
		}
		c.write("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
		for _, want := range []string{"ok /a", "ok /b"} {
			if resp, body := c.read("GET"); resp.StatusCode != 200 || string(body) != want {
				t.Fatalf("conn %d: %d %q, want %q", i, resp.StatusCode, body, want)
			}
		}
	}
	// A client that closes a parked connection frees it.
	for _, c := range clients[:n/2] {
		c.c.Close()
	}
	waitFor(t, 5*time.Second, "closed connections to be released", func() bool {
		return tp.Srv.Conns() == n-n/2
	})
}

// idle_timeout closes a keep-alive connection that stays idle, and only one
// that stays idle.
func TestIdleTimeoutClosesKeepAliveConnection(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"idle_timeout": "400ms"})

	busy := dialProxy(t, tp.Addr)
	idle := dialProxy(t, tp.Addr)
	idle.get("/")
	start := time.Now()
	// The busy connection sends a request every 100 ms for 1.2 s: never idle
	// for 400 ms, so it must stay open throughout.
	for i := 0; i < 12; i++ {
		if resp, _, err := busy.tryReadAfter("/"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("busy connection, request %d after %v: %v", i, time.Since(start), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// By now (1.2 s) the idle connection is gone, the busy one is not.
	if !idle.closed(time.Second) {
		t.Fatal("idle connection not closed by idle_timeout")
	}
	if resp, _, err := busy.tryReadAfter("/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("busy connection closed: %v", err)
	}
	if got := tp.Srv.Conns(); got != 1 {
		t.Errorf("open connections: %d, want 1", got)
	}
	// Left idle, the busy connection goes too, no sooner than idle_timeout.
	idleFrom := time.Now()
	if !busy.closed(3 * time.Second) {
		t.Fatal("connection not closed by idle_timeout")
	}
	if took := time.Since(idleFrom); took < 390*time.Millisecond {
		t.Errorf("connection closed after %v idle, before idle_timeout (400ms)", took)
	}
	waitFor(t, 2*time.Second, "closed connections to be released", func() bool { return tp.Srv.Conns() == 0 })
}

// tryReadAfter sends a GET and reads its response, returning errors instead of
// failing the test.
func (c *client) tryReadAfter(path string) (*http.Response, []byte, error) {
	if _, err := io.WriteString(c.c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n"); err != nil {
		return nil, nil, err
	}
	return c.tryRead("GET")
}

// A connection kept busy for longer than read_header_timeout and read_timeout
// is not cut: the deadline for the first request's head ends with that head,
// and a body's read deadline with that body, even when the connection never
// waits again (which would re-arm its timeouts).
func TestBusyConnectionOutlivesRequestDeadlines(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"read_header_timeout": "300ms", "read_timeout": "300ms"})
	t.Run("first request a GET", func(t *testing.T) { busyFor(t, tp, "") })
	t.Run("first request a POST with a body", func(t *testing.T) {
		busyFor(t, tp, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
	})
}

// busyFor sends first (if any), then keeps the connection busy for 1 s.
func busyFor(t *testing.T, tp *testProxy, first string) {
	c := dialProxy(t, tp.Addr)
	if first != "" {
		if resp, body := c.do("POST", first); resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("first request: %d %q", resp.StatusCode, body)
		}
	}
	// Requests of exactly 64 bytes, written 16 at a time, so every read the
	// server makes (4 KiB buffer) ends on a request boundary: no head ever
	// arrives in pieces. The writer stays up to 256 requests ahead of the
	// responses, so the server always has the next one; after 1 s (over three
	// times the timeout) a last request closes the connection.
	one := "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: " + strings.Repeat("p", 28) + "\r\n\r\n"
	if len(one) != 64 {
		t.Fatalf("request is %d bytes", len(one))
	}
	batch := []byte(strings.Repeat(one, 16))
	credit := make(chan struct{}, 256)
	for range cap(credit) {
		credit <- struct{}{}
	}
	wrote := make(chan int, 1)
	go func() {
		n := 0
		for start := time.Now(); time.Since(start) < time.Second; n += 16 {
			for range 16 {
				select {
				case <-credit:
				case <-time.After(10 * time.Second):
					wrote <- n
					return
				}
			}
			if _, err := c.c.Write(batch); err != nil {
				wrote <- n
				return
			}
		}
		io.WriteString(c.c, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		wrote <- n + 1
	}()
	start := time.Now()
	read := 0
	for {
		resp, body, err := c.tryRead("GET")
		if err != nil || resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("response %d after %v: %v", read, time.Since(start), err)
		}
		read++
		if resp.Close {
			break
		}
		select {
		case credit <- struct{}{}:
		default:
		}
	}
	if n := <-wrote; read != n {
		t.Errorf("%d responses to %d requests", read, n)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("the exchange lasted %v, not over the timeout", d)
	}
}

// A backend connection reused for longer than response_header_timeout is not
// failed by a read deadline armed on an earlier exchange: reads that find the
// answer at once (without waiting) must see a fresh deadline too.
func TestReusedBackendConnectionOutlivesResponseHeaderTimeout(t *testing.T) {
	big := strings.Repeat("b", 256<<10)
	be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, "ok")
	}))
	tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"response_header_timeout": "300ms", "retries": 0})
	c := dialProxy(t, tp.Addr)
	// The large body is read through the backend connection's timed reads,
	// which arm its read deadline.
	if resp, body := c.get("/big"); resp.StatusCode != 200 || len(body) != len(big) {
		t.Fatalf("/big: %d, %d bytes", resp.StatusCode, len(body))
	}
	start := time.Now()
	for i := 0; time.Since(start) < time.Second && i < 100000; i++ {
		if resp, body := c.get("/"); resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d after %v: %d %q", i, time.Since(start), resp.StatusCode, body)
		}
	}
}
