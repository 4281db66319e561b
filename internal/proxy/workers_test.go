package proxy_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"fulcrum/internal/proxy"
)

// New connections are served by goroutines that already exist: a run of
// connections one after another starts only a few, not one each.
func TestWorkersServeConnectionsWithoutNewGoroutines(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	tp := startProxy(t, []string{hostPort(be.URL)}, nil)
	const n = 200
	for i := range n {
		c := dialProxy(t, tp.Addr)
		resp, body := c.do("GET", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("connection %d: %d %q", i, resp.StatusCode, body)
		}
		if !c.closed(5 * time.Second) {
			t.Fatalf("connection %d not closed after Connection: close", i)
		}
		c.c.Close()
	}
	// A connection can arrive before the worker of the previous one is back
	// in the pool, so a few more than one may start, never one per connection.
	if got := proxy.WorkersStarted(tp.Srv); got > n/4 {
		t.Errorf("%d serving goroutines started for %d connections in sequence", got, n)
	}
	waitFor(t, 5*time.Second, "connections to be released", func() bool { return tp.Srv.Conns() == 0 })
	if g := serveGoroutines(); g != 0 {
		t.Errorf("%d goroutines still in serve", g)
	}
}

// Pipelined and keep-alive connections that park and wake are served by the
// pool too, and every response is right.
func TestWorkersServeWokenConnections(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok "+r.URL.Path) }))
	tp := startProxy(t, []string{hostPort(be.URL)}, nil)
	clients := make([]*client, 20)
	for i := range clients {
		clients[i] = dialProxy(t, tp.Addr)
	}
	for round := range 5 {
		for i, c := range clients {
			path := "/" + strings.Repeat("x", round+1)
			if resp, body := c.get(path); resp.StatusCode != 200 || string(body) != "ok "+path {
				t.Fatalf("round %d conn %d: %d %q", round, i, resp.StatusCode, body)
			}
		}
	}
	// One goroutine per accept and per wake would be about 100.
	if got := proxy.WorkersStarted(tp.Srv); got > 25 {
		t.Errorf("%d goroutines started for 100 requests on 20 connections, one at a time", got)
	}
}
