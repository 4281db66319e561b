package proxy_test

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A client that connects and sends its request a little later is served
// (on Linux the kernel holds the connection until the bytes arrive).
func TestLateFirstRequestIsServed(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(echoHandler))
	tp := startProxy(t, []string{hostPort(be.URL)}, nil)
	c := dialProxy(t, tp.Addr)
	time.Sleep(300 * time.Millisecond)
	if resp, _ := c.get("/"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// A client that connects and never sends is still closed: after the
// kernel's defer period (Linux, about a second or two) the connection is
// accepted and read_header_timeout runs from there.
func TestSilentConnectionIsClosed(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(echoHandler))
	tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"read_header_timeout": "500ms"})
	// One request first, so that Serve has set up its listener.
	if resp, _ := dialProxy(t, tp.Addr).get("/"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	c, err := net.DialTimeout("tcp", tp.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(8 * time.Second))
	_, err = io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("silent connection still open after %v", time.Since(start))
	}
	t.Logf("silent connection closed after %v", time.Since(start))
}
