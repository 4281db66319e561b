package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// streamingBackends starts n backends whose /slow answer sends its head and a
// first chunk, then waits for release before finishing; other paths answer
// the backend's name at once.
func streamingBackends(t *testing.T, n int, release chan struct{}) []string {
	t.Helper()
	var addrs []string
	for i := 0; i < n; i++ {
		name := string(rune('a' + i))
		be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/slow" {
				io.WriteString(w, name)
				return
			}
			io.WriteString(w, "first-")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
			io.WriteString(w, name)
		}))
		addrs = append(addrs, hostPort(be.URL))
	}
	return addrs
}

// inflight lists the requests in flight of each backend, in config order.
func (tp *testProxy) inflight() []int64 {
	var out []int64
	for _, m := range tp.Pool.Snapshot().Members {
		out = append(out, m.State.Inflight())
	}
	return out
}

func sumOf(v []int64) (s int64) {
	for _, x := range v {
		s += x
	}
	return s
}

// startSlow sends GET /slow and reads the response head and the first chunk,
// leaving the rest of the body (and the backend's slot) in progress.
func startSlow(t *testing.T, addr string) *client {
	t.Helper()
	c := dialProxy(t, addr)
	c.write("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
	head := c.readRawHead()
	if !strings.HasPrefix(head, "HTTP/1.1 200 ") {
		t.Fatalf("slow head:\n%s", head)
	}
	// Chunked: "6\r\nfirst-\r\n".
	buf := make([]byte, len("6\r\nfirst-\r\n"))
	if _, err := io.ReadFull(c.br, buf); err != nil || !bytes.Contains(buf, []byte("first-")) {
		t.Fatalf("first chunk %q: %v", buf, err)
	}
	return c
}

// TestSlotHeldUntilResponseEnds: a request counts against its backend until
// its response's last byte is written, not only until the head arrives, so
// max_connections and least_connections see responses still streaming.
func TestSlotHeldUntilResponseEnds(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	finish := func() { once.Do(func() { close(release) }) }
	addrs := streamingBackends(t, 2, release)
	t.Cleanup(finish) // before the backends' Close: a failed test must not leave them waiting
	tp := startProxy(t, addrs, map[string]any{
		"strategy": "least_connections", "max_connections": 1, "retries": 0,
	})
	a := startSlow(t, tp.Addr)
	// The response is streaming: exactly one backend has a request in flight.
	if got := tp.inflight(); sumOf(got) != 1 {
		t.Fatalf("in flight while a response streams: %v, want one backend at 1", got)
	}
	busy := 0
	if tp.inflight()[1] == 1 {
		busy = 1
	}
	idleName := string(rune('a' + 1 - busy))
	// Every new request goes to the idle backend, none to the busy one.
	for i := 0; i < 4; i++ {
		c := dialProxy(t, tp.Addr)
		resp, body := c.get("/who")
		if resp.StatusCode != 200 || string(body) != idleName {
			t.Fatalf("request %d: %d %q, want 200 from the idle backend %q", i, resp.StatusCode, body, idleName)
		}
		// Its slot is released just after its last byte is written, which
		// this client may have read first.
		waitFor(t, 5*time.Second, "the idle backend's slot released", func() bool { return sumOf(tp.inflight()) == 1 })
	}
	// Both busy: max_connections 1 leaves no slot, so 503 without a queue.
	b := startSlow(t, tp.Addr)
	if got := tp.inflight(); got[0] != 1 || got[1] != 1 {
		t.Fatalf("in flight with two streams: %v, want [1 1]", got)
	}
	c := dialProxy(t, tp.Addr)
	if resp, body := c.get("/who"); resp.StatusCode != 503 {
		t.Fatalf("third request while both stream: %d %q, want 503", resp.StatusCode, body)
	}
	finish()
	for _, cl := range []*client{a, b} {
		// The rest of the chunked body, up to its last chunk.
		cl.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		rest, err := io.ReadAll(io.LimitReader(cl.br, int64(len("1\r\na\r\n0\r\n\r\n"))))
		if err != nil || !bytes.HasSuffix(rest, []byte("0\r\n\r\n")) {
			t.Fatalf("rest of the body %q: %v", rest, err)
		}
	}
	waitFor(t, 5*time.Second, "slots released after the responses ended", func() bool {
		return sumOf(tp.inflight()) == 0
	})
}

// TestTunnelCountsAsOneRequest: an open WebSocket tunnel holds its backend's
// slot until it closes.
func TestTunnelCountsAsOneRequest(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		io.Copy(conn, brw) // echo until the client closes
	}))
	tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"max_connections": 1, "retries": 0})
	c := dialProxy(t, tp.Addr)
	c.write("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	if head := c.readRawHead(); !strings.HasPrefix(head, "HTTP/1.1 101 ") {
		t.Fatalf("upgrade head:\n%s", head)
	}
	if got := tp.inflight(); got[0] != 1 {
		t.Fatalf("in flight with an open tunnel: %v, want [1]", got)
	}
	d := dialProxy(t, tp.Addr)
	if resp, _ := d.get("/"); resp.StatusCode != 503 {
		t.Errorf("request while the only slot holds a tunnel: %d, want 503", resp.StatusCode)
	}
	c.c.Close()
	waitFor(t, 8*time.Second, "tunnel's slot released", func() bool { return tp.inflight()[0] == 0 })
}
