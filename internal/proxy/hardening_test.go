package proxy_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"fulcrum/internal/desync"
	"fulcrum/internal/testutil"
)

func newRecorder(t *testing.T) *desync.RecordingBackend {
	t.Helper()
	rec, err := desync.NewRecordingBackend()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	return rec
}

// TestMalformedRequestsRefused sends each request on a fresh connection and
// checks the status, that the connection was closed, and (from a raw
// recording backend) that nothing reached a backend.
func TestMalformedRequestsRefused(t *testing.T) {
	rec := newRecorder(t)
	tp := startProxy(t, []string{rec.Addr()}, nil)
	const host = "Host: h\r\n"
	many := strings.Repeat("X-Many: 1\r\n", 130)
	cases := []struct {
		name string
		raw  string
		want int
	}{
		{name: "CL and TE", raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: 400},
		{name: "TE and CL", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", want: 400},
		{name: "two differing CL", raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", want: 400},
		{name: "two equal CL", raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", want: 400},
		{name: "CL list", raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 5, 5\r\n\r\nhello", want: 400},
		{name: "CL sign", raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\nhello", want: 400},
		{name: "CL negative", raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n", want: 400},
		{name: "CL hex", raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 0x5\r\n\r\nhello", want: 400},
		{name: "CL overflow", raw: "POST / HTTP/1.1\r\n" + host + "Content-Length: 99999999999999999999\r\n\r\n", want: 400},
		{name: "TE xchunked", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", want: 501},
		{name: "TE gzip, chunked", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", want: 501},
		{name: "TE chunked, gzip", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", want: 400},
		{name: "TE chunked twice", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: 400},
		{name: "TE chunked, chunked", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", want: 400},
		{name: "TE space before colon", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", want: 400},
		{name: "TE underscore", raw: "POST / HTTP/1.1\r\n" + host + "Transfer_Encoding: chunked\r\n\r\n0\r\n\r\n", want: 400},
		{name: "CL underscore", raw: "POST / HTTP/1.1\r\n" + host + "Content_Length: 5\r\n\r\nhello", want: 400},
		{name: "TE vertical tab", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n", want: 400},
		{name: "TE in HTTP/1.0", raw: "POST / HTTP/1.0\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", want: 400},
		{name: "bare LF everywhere", raw: "GET / HTTP/1.1\nHost: h\n\n", want: 400},
		{name: "bare LF in a field", raw: "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", want: 400},
		{name: "bare CR in a value", raw: "GET / HTTP/1.1\r\n" + host + "X: a\rb\r\n\r\n", want: 400},
		{name: "bare CR in a name", raw: "GET / HTTP/1.1\r\n" + host + "X\r: b\r\n\r\n", want: 400},
		{name: "bare CR line end", raw: "GET / HTTP/1.1\r\n" + host + "X: a\r\r\n\r\n", want: 400},
		{name: "NUL in a value", raw: "GET / HTTP/1.1\r\n" + host + "X: a\x00b\r\n\r\n", want: 400},
		{name: "obs-fold", raw: "GET / HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n", want: 400},
		{name: "obs-fold of TE", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", want: 400},
		{name: "space in a name", raw: "GET / HTTP/1.1\r\n" + host + "X Y: z\r\n\r\n", want: 400},
		{name: "empty name", raw: "GET / HTTP/1.1\r\n" + host + ": z\r\n\r\n", want: 400},
		{name: "no colon", raw: "GET / HTTP/1.1\r\n" + host + "Xyz\r\n\r\n", want: 400},
		{name: "missing Host", raw: "GET / HTTP/1.1\r\n\r\n", want: 400},
		{name: "two Hosts", raw: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", want: 400},
		{name: "Host with space", raw: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", want: 400},
		{name: "Host with slash", raw: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", want: 400},
		{name: "GET with CL body", raw: "GET / HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello", want: 400},
		{name: "GET with chunked body", raw: "GET / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: 400},
		{name: "HEAD with CL body", raw: "HEAD / HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello", want: 400},
		{name: "HTTP/1.2", raw: "GET / HTTP/1.2\r\n" + host + "\r\n", want: 505},
		{name: "HTTP/2.0", raw: "GET / HTTP/2.0\r\n" + host + "\r\n", want: 505},
		{name: "HTTP/0.9", raw: "GET /\r\n\r\n", want: 400},
		{name: "lowercase version", raw: "GET / http/1.1\r\n" + host + "\r\n", want: 400},
		{name: "version with space", raw: "GET / HTTP/1.1 \r\n" + host + "\r\n", want: 400},
		{name: "double space", raw: "GET  / HTTP/1.1\r\n" + host + "\r\n", want: 400},
		{name: "tab separator", raw: "GET\t/ HTTP/1.1\r\n" + host + "\r\n", want: 400},
		{name: "method with (", raw: "G(T / HTTP/1.1\r\n" + host + "\r\n", want: 400},
		{name: "method with NUL", raw: "G\x00T / HTTP/1.1\r\n" + host + "\r\n", want: 400},
		{name: "target with DEL", raw: "GET /\x7f HTTP/1.1\r\n" + host + "\r\n", want: 400},
		{name: "non-http absolute target", raw: "GET ftp://h/ HTTP/1.1\r\n" + host + "\r\n", want: 400},
		{name: "CONNECT", raw: "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", want: 405},
		{name: "leading empty line", raw: "\r\nGET / HTTP/1.1\r\n" + host + "\r\n", want: 400},
		{name: "only an empty line", raw: "\r\n\r\n", want: 400},
		{name: "too many fields", raw: "GET / HTTP/1.1\r\n" + host + many + "\r\n", want: 431},
		{name: "bad chunk size", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", want: 400},
		{name: "chunk size with sign", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", want: 400},
		{name: "chunk size 0x", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", want: 400},
		{name: "chunk size overflow", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", want: 400},
		{name: "chunk data too long", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", want: 400},
		{name: "chunk bare LF", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", want: 400},
		{name: "chunk ext with CR", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5;a=\rb\r\nhello\r\n0\r\n\r\n", want: 400},
		{name: "chunk trailer obs-fold", raw: "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n", want: 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := desync.Judge(tp.Addr, rec, desync.Case{Name: tc.name, Tier: desync.Severe, Raw: []byte(tc.raw), Renderable: true})
			if v.Status != tc.want {
				t.Errorf("status %d, want %d (%s)", v.Status, tc.want, v.Why)
			}
			if !v.Closed {
				t.Errorf("connection left open: %s", v.Why)
			}
			// A malformed chunked body that arrives with its head is
			// refused before the head is forwarded (ScanChunked).
			if v.Reached != 0 {
				t.Errorf("%d request(s) reached the backend: %q", v.Reached, v.Forwarded)
			}
		})
	}

	// A chunked body is streamed: when the bad chunk comes later, the head
	// and the valid chunks before it have been forwarded, but the request
	// is cut before its end, so the backend never gets a whole request.
	t.Run("bad chunk after streaming began", func(t *testing.T) {
		rec.Reset()
		c := dialProxy(t, tp.Addr)
		c.write("POST /s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
		waitFor(t, 3*time.Second, "the head to reach the backend", func() bool { return len(rec.Requests()) == 1 })
		c.write("zz\r\nworld\r\n0\r\n\r\n")
		resp, _ := c.read("POST")
		if resp.StatusCode != 400 || !c.closed(2*time.Second) {
			t.Errorf("status %d, want 400 and close", resp.StatusCode)
		}
		for _, f := range rec.Requests() {
			if strings.Contains(string(f), "0\r\n\r\n") || strings.Contains(string(f), "world") {
				t.Errorf("more than the valid prefix reached the backend: %q", f)
			}
		}
	})
	if p := tp.counter(t, "fulcrum_panics_total", nil); p != 0 {
		t.Errorf("%v panics while parsing", p)
	}
}

// TestDesyncCorpus runs the http-desync-guardian corpus through the proxy.
func TestDesyncCorpus(t *testing.T) {
	cases := desync.LoadOrSkip(t)
	// Judge runs one case at a time per recorder: shard over a few
	// proxy+recorder pairs to keep the wall time low.
	const shards = 6
	verdicts := make([]desync.Verdict, len(cases))
	var wg sync.WaitGroup
	for s := 0; s < shards; s++ {
		rec := newRecorder(t)
		tp := startProxy(t, []string{rec.Addr()}, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := s; i < len(cases); i += shards {
				verdicts[i] = desync.Judge(tp.Addr, rec, cases[i])
			}
		}()
	}
	wg.Wait()
	t.Log("\n" + desync.Summary(verdicts))
	for _, v := range verdicts {
		if v.Safe {
			continue
		}
		switch v.Case.Tier {
		case desync.Severe, desync.Ambiguous, desync.Compliant:
			t.Errorf("[%s] %s %q: %s", v.Case.Tier, v.Case.File, v.Case.Name, v.Why)
		}
	}
}

func TestHeaderAndBodyLimits(t *testing.T) {
	var reached atomic.Int64
	be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		echoHandler(w, r)
	}))
	tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"max_header_bytes": 2048, "max_body_bytes": 1000})

	t.Run("431 beyond max_header_bytes", func(t *testing.T) {
		c := dialProxy(t, tp.Addr)
		resp, _ := c.do("GET", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: "+strings.Repeat("a", 4096)+"\r\n\r\n")
		if resp.StatusCode != 431 || !c.closed(2*time.Second) {
			t.Errorf("status %d, want 431 and close", resp.StatusCode)
		}
	})
	t.Run("head just under max_header_bytes", func(t *testing.T) {
		c := dialProxy(t, tp.Addr)
		raw := "GET / HTTP/1.1\r\nHost: h\r\nX-Big: "
		raw += strings.Repeat("a", 2048-len(raw)-4) + "\r\n\r\n"
		if resp, _ := c.do("GET", raw); resp.StatusCode != 200 {
			t.Errorf("status %d for a %d-byte head, want 200", resp.StatusCode, len(raw))
		}
	})
	t.Run("413 for Content-Length over max_body_bytes", func(t *testing.T) {
		before := reached.Load()
		c := dialProxy(t, tp.Addr)
		resp, _ := c.do("POST", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n")
		if resp.StatusCode != 413 || !c.closed(2*time.Second) {
			t.Errorf("status %d, want 413 and close", resp.StatusCode)
		}
		if reached.Load() != before {
			t.Error("the request reached the backend")
		}
	})
	t.Run("body of exactly max_body_bytes", func(t *testing.T) {
		c := dialProxy(t, tp.Addr)
		resp, _ := c.do("POST", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("x", 1000))
		if resp.StatusCode != 200 || resp.Header.Get("X-Len") != "1000" {
			t.Errorf("status %d len %s", resp.StatusCode, resp.Header.Get("X-Len"))
		}
	})
	t.Run("413 for a chunked body over max_body_bytes", func(t *testing.T) {
		c := dialProxy(t, tp.Addr)
		c.write("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedEncode([]byte(strings.Repeat("y", 1500)), 400, false, ""))
		resp, _ := c.read("POST")
		if resp.StatusCode != 413 || !c.closed(2*time.Second) {
			t.Errorf("status %d, want 413 and close", resp.StatusCode)
		}
	})
}

// overLimit opens a connection (from local, if set) and sends a request. A
// connection over a limit is answered 503 and reset at once, so the client
// sees the 503 or, when the reset wins the race, a reset (even on connect).
func overLimit(t *testing.T, addr, local string) bool {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return errors.Is(err, syscall.ECONNRESET)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return errors.Is(err, syscall.ECONNRESET)
	}
	resp.Body.Close()
	return resp.StatusCode == 503 && resp.Header.Get("Retry-After") != ""
}

func TestConnectionLimits(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(echoHandler))

	t.Run("max_conns", func(t *testing.T) {
		tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"max_conns": 2})
		c1, c2 := dialProxy(t, tp.Addr), dialProxy(t, tp.Addr)
		for _, c := range []*client{c1, c2} {
			if resp, _ := c.get("/"); resp.StatusCode != 200 {
				t.Fatalf("holder: %d", resp.StatusCode)
			}
		}
		if !overLimit(t, tp.Addr, "") {
			t.Error("third connection not answered 503")
		}
		// The holders are still served.
		if resp, _ := c1.get("/"); resp.StatusCode != 200 {
			t.Errorf("holder after rejection: %d", resp.StatusCode)
		}
		// Once a holder leaves, a new client gets in.
		c2.c.Close()
		waitFor(t, 3*time.Second, "a slot to free up", func() bool { return tp.Srv.Conns() < 2 })
		c4 := dialProxy(t, tp.Addr)
		if resp, _ := c4.get("/"); resp.StatusCode != 200 {
			t.Errorf("client after a slot freed: %d", resp.StatusCode)
		}
		if n := tp.counter(t, "fulcrum_rejected_requests_total", map[string]string{"reason": "conn_limit"}); n != 1 {
			t.Errorf("rejected{conn_limit} = %v, want 1", n)
		}
	})

	t.Run("max_conns_per_ip", func(t *testing.T) {
		tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"max_conns_per_ip": 2})
		a1, a2 := dialFrom(t, tp.Addr, "127.0.0.2"), dialFrom(t, tp.Addr, "127.0.0.2")
		for _, c := range []*client{a1, a2} {
			if resp, _ := c.get("/"); resp.StatusCode != 200 {
				t.Fatalf("holder: %d", resp.StatusCode)
			}
		}
		if !overLimit(t, tp.Addr, "127.0.0.2") {
			t.Error("third connection from 127.0.0.2 not answered 503")
		}
		// Another address gets its own two connections.
		for i := 0; i < 2; i++ {
			b := dialFrom(t, tp.Addr, "127.0.0.3")
			if resp, _ := b.get("/"); resp.StatusCode != 200 {
				t.Errorf("other client %d: %d", i, resp.StatusCode)
			}
		}
		if resp, _ := a1.get("/"); resp.StatusCode != 200 {
			t.Errorf("holder after rejection: %d", resp.StatusCode)
		}
	})
}

func TestRateLimit(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(echoHandler))
	rl := map[string]any{"requests_per_second": 1, "burst": 2}

	t.Run("per client IP", func(t *testing.T) {
		tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"rate_limit": rl})
		a := dialFrom(t, tp.Addr, "127.0.0.2")
		for i := 0; i < 2; i++ {
			if resp, _ := a.get("/"); resp.StatusCode != 200 {
				t.Fatalf("request %d within burst: %d", i, resp.StatusCode)
			}
		}
		// A spoofed X-Forwarded-For from an untrusted peer changes nothing.
		resp, body := a.do("GET", "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.9\r\n\r\n")
		if resp.StatusCode != 429 {
			t.Fatalf("over the limit: %d", resp.StatusCode)
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
		if len(body) == 0 || len(body) > 64 {
			t.Errorf("body %q", body)
		}
		// 429 without a body keeps the connection.
		if resp.Close {
			t.Error("429 closed the connection")
		}
		b := dialFrom(t, tp.Addr, "127.0.0.3")
		if resp, _ := b.get("/"); resp.StatusCode != 200 {
			t.Errorf("another client IP: %d", resp.StatusCode)
		}
	})

	t.Run("behind a trusted proxy", func(t *testing.T) {
		tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"rate_limit": rl, "trusted_proxies": []string{"127.0.0.0/8"}})
		c := dialProxy(t, tp.Addr)
		send := func(xff string) int {
			resp, _ := c.do("GET", "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: "+xff+"\r\n\r\n")
			return resp.StatusCode
		}
		if got := []int{send("198.51.100.1"), send("198.51.100.1"), send("198.51.100.1"), send("198.51.100.2")}; !slices.Equal(got, []int{200, 200, 429, 200}) {
			t.Errorf("statuses %v, want [200 200 429 200] (limits apply per forwarded client)", got)
		}
	})
}

// TestSlowlorisDoesNotStarveClients: many connections trickle a head one
// byte at a time; they are cut at read_header_timeout while normal clients
// keep getting fast answers.
func TestSlowlorisDoesNotStarveClients(t *testing.T) {
	const slow = 200
	be := newBackend(t, http.HandlerFunc(echoHandler))
	tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"read_header_timeout": "1s"})

	type result struct {
		got408 bool
		at     time.Duration
		err    error
	}
	start := time.Now()
	conns := make([]net.Conn, slow)
	results := make([]result, slow)
	var wg sync.WaitGroup
	for i := range conns {
		c, err := net.DialTimeout("tcp", tp.Addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(6 * time.Second))
		conns[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			data, err := io.ReadAll(c)
			results[i] = result{got408: strings.HasPrefix(string(data), "HTTP/1.1 408 "), at: time.Since(start), err: err}
		}()
	}
	readersDone := make(chan struct{})
	go func() { wg.Wait(); close(readersDone) }()

	// One byte per connection every 200ms, never finishing the head.
	trickle := []byte("GET / HTTP/1.1\r\nHost: h\r\nX-Slow: " + strings.Repeat("a", 100))
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for pos := 0; pos < len(trickle); pos++ {
			for _, c := range conns {
				c.Write(trickle[pos : pos+1])
			}
			select {
			case <-readersDone:
				return
			case <-tick.C:
			}
		}
	}()

	// Meanwhile: 50 normal requests, each on a new connection.
	var lat []time.Duration
	for i := 0; i < 50; i++ {
		t0 := time.Now()
		c := dialProxy(t, tp.Addr)
		resp, _ := c.get("/")
		lat = append(lat, time.Since(t0))
		if resp.StatusCode != 200 {
			t.Fatalf("normal request %d: %d", i, resp.StatusCode)
		}
		c.c.Close()
	}
	slices.Sort(lat)
	p99 := lat[len(lat)*99/100]
	t.Logf("normal requests during slowloris: p50 %v p99 %v max %v", lat[len(lat)/2], p99, lat[len(lat)-1])
	if p99 > 200*time.Millisecond {
		t.Errorf("p99 latency %v under slowloris, want < 200ms", p99)
	}

	select {
	case <-readersDone:
	case <-time.After(8 * time.Second):
		t.Fatal("slow connections were not closed")
	}
	<-writerDone
	var n408 int
	var last time.Duration
	for i, r := range results {
		// The proxy closes while the client is still sending: the client's
		// kernel may then see a reset after the 408 (or instead of a FIN).
		if r.err != nil && !errors.Is(r.err, syscall.ECONNRESET) {
			t.Errorf("slow conn %d: %v after %v", i, r.err, r.at)
		}
		if r.got408 {
			n408++
		}
		last = max(last, r.at)
	}
	t.Logf("%d/%d slow connections got 408; the last closed after %v", n408, slow, last)
	if last > 4*time.Second {
		t.Errorf("slow connections held for %v with read_header_timeout 1s", last)
	}
}

// TestSlowBodyWithoutReadTimeout: with read_timeout "0s" (none), a body that
// trickles in for longer than read_header_timeout must still be accepted:
// the head's deadline does not apply to the body.
func TestSlowBodyWithoutReadTimeout(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(echoHandler))
	tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"read_header_timeout": "300ms", "read_timeout": "0s"})
	for _, size := range []int{3, 70000} { // buffered, streamed
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			c := dialProxy(t, tp.Addr)
			c.write(fmt.Sprintf("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n", size))
			body := strings.Repeat("z", size)
			// A slow client: the last byte comes well after
			// read_header_timeout (a paced client, not a wait on a condition).
			c.write(body[:size-1])
			time.Sleep(700 * time.Millisecond)
			c.write(body[size-1:])
			resp, _, err := c.tryRead("POST")
			if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Len") != strconv.Itoa(size) {
				t.Fatalf("slow body: resp %v err %v", resp, err)
			}
		})
	}
}

// panicOnBackendError is a log handler that panics while logging a backend
// failure: a way to make the request path panic without any test hook in
// production code.
type panicOnBackendError struct{ armed *atomic.Bool }

func (h panicOnBackendError) Enabled(context.Context, slog.Level) bool { return true }
func (h panicOnBackendError) Handle(_ context.Context, r slog.Record) error {
	if h.armed.Load() && r.Message == "backend request failed" {
		panic("test: log handler failed")
	}
	return nil
}
func (h panicOnBackendError) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h panicOnBackendError) WithGroup(string) slog.Handler      { return h }

func TestPanicInRequestPathIsRecovered(t *testing.T) {
	var armed atomic.Bool
	armed.Store(true)
	tp := startProxyWith(t, proxySetup{
		Backends: []string{testutil.ClosedAddr(t)},
		Extra:    map[string]any{"retries": 0},
		Logger:   slog.New(panicOnBackendError{&armed}),
	})
	c := dialProxy(t, tp.Addr)
	resp, body := c.get("/")
	if resp.StatusCode != 500 || !strings.HasPrefix(string(body), "internal server error") {
		t.Errorf("after a panic: %d %q, want 500", resp.StatusCode, body)
	}
	if !c.closed(2 * time.Second) {
		t.Error("connection not closed after a panic")
	}
	if p := tp.counter(t, "fulcrum_panics_total", nil); p != 1 {
		t.Errorf("fulcrum_panics_total = %v, want 1", p)
	}
	// The server keeps serving, and the backend slot was released.
	armed.Store(false)
	c2 := dialProxy(t, tp.Addr)
	if resp, _ := c2.get("/"); resp.StatusCode != 502 {
		t.Errorf("next request: %d, want 502", resp.StatusCode)
	}
	for _, st := range tp.Pool.Statuses() {
		if st.Active != 0 {
			t.Errorf("backend %s: %d requests still counted active", st.URL, st.Active)
		}
	}
}
