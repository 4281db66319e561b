package proxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoHandler reports what the backend saw: method, framing, body length and
// checksum, Host and a few forwarding fields.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	h := crc32.NewIEEE()
	n, err := io.Copy(h, r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-CL", strconv.FormatInt(r.ContentLength, 10))
	w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
	w.Header().Set("X-Len", strconv.FormatInt(n, 10))
	w.Header().Set("X-CRC", fmt.Sprintf("%08x", h.Sum32()))
	w.Header().Set("X-Host", r.Host)
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "ok")
}

func newBackend(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	s := httptest.NewServer(h)
	tb.Cleanup(s.Close)
	return s
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func chunkedEncode(body []byte, size int, ext bool, trailer string) string {
	var b strings.Builder
	for i := 0; i < len(body); i += size {
		end := min(i+size, len(body))
		fmt.Fprintf(&b, "%x", end-i)
		if ext && i == 0 {
			b.WriteString(";name=\"v\"")
		}
		b.WriteString("\r\n")
		b.Write(body[i:end])
		b.WriteString("\r\n")
	}
	b.WriteString("0\r\n")
	b.WriteString(trailer)
	b.WriteString("\r\n")
	return b.String()
}

func TestBodiesArriveIntactWithFraming(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(echoHandler))
	tp := startProxy(t, []string{hostPort(be.URL)}, nil)
	c := dialProxy(t, tp.Addr)

	small := randBytes(10, 1)
	big := randBytes(200<<10, 2) // above retry_buffer: streamed, not buffered
	cases := []struct {
		name, method string
		body         []byte
		chunked      bool
		chunkSize    int
		trailer      string
	}{
		{name: "GET", method: "GET"},
		{name: "DELETE no body", method: "DELETE"},
		{name: "POST empty CL", method: "POST", body: []byte{}},
		{name: "POST small CL", method: "POST", body: small},
		{name: "PUT big CL", method: "PUT", body: big},
		{name: "POST small chunked", method: "POST", body: small, chunked: true, chunkSize: 3},
		{name: "PUT big chunked with ext and trailer", method: "PUT", body: big, chunked: true, chunkSize: 7001, trailer: "X-Sum: 1\r\n"},
		{name: "PATCH chunked empty", method: "PATCH", body: []byte{}, chunked: true, chunkSize: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := tc.method + " /echo?x=1 HTTP/1.1\r\nHost: app.example:8080\r\n"
			switch {
			case tc.chunked:
				raw += "Transfer-Encoding: chunked\r\n\r\n" + chunkedEncode(tc.body, tc.chunkSize, true, tc.trailer)
			case tc.body != nil:
				raw += "Content-Length: " + strconv.Itoa(len(tc.body)) + "\r\n\r\n" + string(tc.body)
			default:
				raw += "\r\n"
			}
			resp, body := c.do(tc.method, raw)
			if resp.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			h := resp.Header
			if h.Get("X-Method") != tc.method || h.Get("X-Host") != "app.example:8080" {
				t.Errorf("backend saw method %q host %q", h.Get("X-Method"), h.Get("X-Host"))
			}
			wantLen := strconv.Itoa(len(tc.body))
			wantCRC := fmt.Sprintf("%08x", crc32.ChecksumIEEE(tc.body))
			if h.Get("X-Len") != wantLen || h.Get("X-CRC") != wantCRC {
				t.Errorf("backend got %s bytes crc %s, want %s crc %s", h.Get("X-Len"), h.Get("X-CRC"), wantLen, wantCRC)
			}
			switch {
			case tc.chunked:
				if h.Get("X-TE") != "chunked" || h.Get("X-CL") != "-1" {
					t.Errorf("chunked request reached the backend as TE %q CL %s", h.Get("X-TE"), h.Get("X-CL"))
				}
			default:
				if h.Get("X-TE") != "" || h.Get("X-CL") != wantLen {
					t.Errorf("request reached the backend as TE %q CL %s, want CL %s", h.Get("X-TE"), h.Get("X-CL"), wantLen)
				}
			}
		})
	}
}

// readRawHead reads one response head as bytes.
func (c *client) readRawHead() string {
	c.tb.Helper()
	h, err := readHead(c.br)
	if err != nil {
		c.tb.Fatalf("read head: %v", err)
	}
	return string(h)
}

func TestBodylessResponses(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/head", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("/204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	mux.HandleFunc("/304", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(304)
	})
	be := newBackend(t, mux)
	tp := startProxy(t, []string{hostPort(be.URL)}, nil)
	c := dialProxy(t, tp.Addr)

	// Raw heads, back to back on one connection: a stray body byte would
	// show up as the start of the next head.
	c.write("HEAD /head HTTP/1.1\r\nHost: h\r\n\r\n")
	head := c.readRawHead()
	if !strings.HasPrefix(head, "HTTP/1.1 200 ") || !strings.Contains(head, "Content-Length: 5\r\n") || strings.Contains(head, "Transfer-Encoding") {
		t.Errorf("HEAD response head:\n%s", head)
	}
	c.write("GET /204 HTTP/1.1\r\nHost: h\r\n\r\n")
	head = c.readRawHead()
	if !strings.HasPrefix(head, "HTTP/1.1 204 ") || strings.Contains(head, "Transfer-Encoding") || strings.Contains(head, "Content-Length: ") && !strings.Contains(head, "Content-Length: 0") {
		t.Errorf("204 response head:\n%s", head)
	}
	c.write("GET /304 HTTP/1.1\r\nHost: h\r\n\r\n")
	head = c.readRawHead()
	if !strings.HasPrefix(head, "HTTP/1.1 304 ") || strings.Contains(head, "Transfer-Encoding") || !strings.Contains(head, `Etag: "v1"`) {
		t.Errorf("304 response head:\n%s", head)
	}
	resp, body := c.get("/head")
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Errorf("GET after bodyless responses: %d %q", resp.StatusCode, body)
	}
}

func TestCloseDelimitedResponse(t *testing.T) {
	const payload = "hello, close-delimited world"
	be := newRawBackend(t, func(head []byte) ([]byte, bool) {
		return []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + payload), true
	})
	tp := startProxy(t, []string{be.Addr()}, nil)

	t.Run("HTTP/1.1 client gets chunked", func(t *testing.T) {
		c := dialProxy(t, tp.Addr)
		for i := 0; i < 2; i++ { // the client connection stays usable
			c.write("GET / HTTP/1.1\r\nHost: h\r\n\r\n")
			head := c.readRawHead()
			if !strings.Contains(head, "Transfer-Encoding: chunked\r\n") || strings.Contains(head, "Connection: close") {
				t.Fatalf("head:\n%s", head)
			}
			body, err := io.ReadAll(httputilChunked(c.br))
			if err != nil || string(body) != payload {
				t.Fatalf("body %q err %v", body, err)
			}
		}
	})
	t.Run("HTTP/1.0 client gets close-delimited", func(t *testing.T) {
		c := dialProxy(t, tp.Addr)
		c.write("GET / HTTP/1.0\r\n\r\n")
		head := c.readRawHead()
		if strings.Contains(head, "Transfer-Encoding") || strings.Contains(head, "Content-Length") || !strings.Contains(head, "Connection: close") {
			t.Fatalf("head:\n%s", head)
		}
		body, err := io.ReadAll(c.br)
		if err != nil || string(body) != payload {
			t.Fatalf("body %q err %v", body, err)
		}
	})
}

// httputilChunked decodes one chunked body (and its empty trailer) from br.
func httputilChunked(br *bufio.Reader) io.Reader {
	return &chunkedReader{br: br}
}

type chunkedReader struct {
	br   *bufio.Reader
	left int64
	done bool
}

func (r *chunkedReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	if r.left == 0 {
		line, err := r.br.ReadString('\n')
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(strings.SplitN(line, ";", 2)[0]), 16, 64)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			for { // trailer section
				l, err := r.br.ReadString('\n')
				if err != nil {
					return 0, err
				}
				if l == "\r\n" {
					break
				}
			}
			r.done = true
			return 0, io.EOF
		}
		r.left = n
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.br.Read(p)
	r.left -= int64(n)
	if r.left == 0 && err == nil {
		var crlf [2]byte
		if _, err := io.ReadFull(r.br, crlf[:]); err != nil || string(crlf[:]) != "\r\n" {
			return n, fmt.Errorf("bad chunk end %q %v", crlf, err)
		}
	}
	return n, err
}

func TestKeepAliveReuseBothSides(t *testing.T) {
	// Count connections that carried a request: the TCP health check also
	// connects (and closes without a request), which must not count.
	var newConns atomic.Int64
	var mu sync.Mutex
	seen := map[net.Conn]bool{}
	be := httptest.NewUnstartedServer(http.HandlerFunc(echoHandler))
	be.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateActive {
			mu.Lock()
			if !seen[c] {
				seen[c] = true
				newConns.Add(1)
			}
			mu.Unlock()
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	tp := startProxy(t, []string{hostPort(be.URL)}, nil)

	c := dialProxy(t, tp.Addr)
	for i := 0; i < 50; i++ {
		resp, body := c.get("/n/" + strconv.Itoa(i))
		if resp.StatusCode != 200 || string(body) != "ok" || resp.Close {
			t.Fatalf("request %d: %d %q close=%v", i, resp.StatusCode, body, resp.Close)
		}
	}
	// A second client, after the first: the idle backend connection is
	// reused. (The proxy answers the client before it pools the backend
	// connection, so wait for that.)
	mem := tp.Pool.Snapshot().Members[0]
	waitFor(t, 2*time.Second, "the backend connection to be pooled", func() bool { return mem.Conns.Idle() == 1 })
	c2 := dialProxy(t, tp.Addr)
	for i := 0; i < 5; i++ {
		if resp, _ := c2.get("/again"); resp.StatusCode != 200 {
			t.Fatalf("second client: %d", resp.StatusCode)
		}
	}
	if n := newConns.Load(); n != 1 {
		t.Errorf("backend saw %d connections for 55 sequential requests, want 1", n)
	}
}

// patternReader yields n bytes of a fixed 64 KiB random block, repeated,
// without holding more than the block in memory.
type patternReader struct {
	n   int64
	off int
}

var patternBlock = randBytes(64<<10, 42)

func (r *patternReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n := copy(p, patternBlock[r.off:])
	r.off = (r.off + n) % len(patternBlock)
	r.n -= int64(n)
	return n, nil
}

func patternCRC(n int64) uint32 {
	h := crc32.NewIEEE()
	io.Copy(h, &patternReader{n: n})
	return h.Sum32()
}

// heapPeak samples HeapInuse until stop is called and returns the peak
// above the baseline taken at start (after a GC).
func heapPeak() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(quit)
		wg.Wait()
		if peak < base {
			return 0
		}
		return peak - base
	}
}

func TestLargeBodiesStreamWithoutBuffering(t *testing.T) {
	const size = 256 << 20
	const heapBound = 32 << 20
	mux := http.NewServeMux()
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		io.Copy(w, &patternReader{n: size})
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := crc32.NewIEEE()
		n, err := io.Copy(h, r.Body)
		fmt.Fprintf(w, "%d %08x %v", n, h.Sum32(), err)
	})
	be := newBackend(t, mux)
	tp := startProxy(t, []string{hostPort(be.URL)}, map[string]any{"read_timeout": "10s", "write_timeout": "10s"})
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	want := fmt.Sprintf("%d %08x <nil>", size, patternCRC(size))

	t.Run("upload", func(t *testing.T) {
		stop := heapPeak()
		req, _ := http.NewRequest("POST", "http://"+tp.Addr+"/upload", &patternReader{n: size})
		req.ContentLength = size
		start := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		grew := stop()
		t.Logf("upload %d MiB in %v, heap peak +%d KiB", size>>20, time.Since(start), grew>>10)
		if string(body) != want {
			t.Errorf("backend got %q, want %q", body, want)
		}
		if grew > heapBound {
			t.Errorf("heap grew by %d MiB during a %d MiB upload", grew>>20, size>>20)
		}
	})
	t.Run("chunked upload", func(t *testing.T) {
		stop := heapPeak()
		req, _ := http.NewRequest("POST", "http://"+tp.Addr+"/upload", io.NopCloser(&patternReader{n: size / 4}))
		req.ContentLength = -1 // the client sends it chunked
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		grew := stop()
		if w := fmt.Sprintf("%d %08x <nil>", size/4, patternCRC(size/4)); string(body) != w {
			t.Errorf("backend got %q, want %q", body, w)
		}
		if grew > heapBound {
			t.Errorf("heap grew by %d MiB during a chunked upload", grew>>20)
		}
	})
	t.Run("download", func(t *testing.T) {
		stop := heapPeak()
		start := time.Now()
		resp, err := hc.Get("http://" + tp.Addr + "/download")
		if err != nil {
			t.Fatal(err)
		}
		h := crc32.NewIEEE()
		n, err := io.Copy(h, resp.Body)
		resp.Body.Close()
		grew := stop()
		t.Logf("download %d MiB in %v, heap peak +%d KiB", size>>20, time.Since(start), grew>>10)
		if got := fmt.Sprintf("%d %08x %v", n, h.Sum32(), err); got != want {
			t.Errorf("client got %q, want %q", got, want)
		}
		if grew > heapBound {
			t.Errorf("heap grew by %d MiB during a %d MiB download", grew>>20, size>>20)
		}
	})
}

// TestStreamingResponseFlushedAtOnce: the backend writes one event and then
// waits until the client has received it through the proxy, so any
// buffering in the proxy deadlocks the exchange (bounded by timeouts).
func TestStreamingResponseFlushedAtOnce(t *testing.T) {
	const events = 4
	ack := make(chan struct{})
	be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		for i := 0; i < events; i++ {
			fmt.Fprintf(w, "data: event %d\n\n", i)
			f.Flush()
			select {
			case <-ack:
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Second):
				return
			}
		}
	}))
	tp := startProxy(t, []string{hostPort(be.URL)}, nil)
	c := dialProxy(t, tp.Addr)
	c.write("GET /events HTTP/1.1\r\nHost: h\r\nAccept: text/event-stream\r\n\r\n")
	c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("content type %q", resp.Header.Get("Content-Type"))
	}
	body := bufio.NewReader(resp.Body)
	for i := 0; i < events; i++ {
		line, err := body.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d not received (buffered?): %v", i, err)
		}
		if want := fmt.Sprintf("data: event %d\n", i); line != want {
			t.Fatalf("got %q want %q", line, want)
		}
		if blank, _ := body.ReadString('\n'); blank != "\n" {
			t.Fatalf("got %q want blank line", blank)
		}
		ack <- struct{}{}
	}
	if rest, err := io.ReadAll(body); err != nil || len(rest) != 0 {
		t.Errorf("trailing %q %v", rest, err)
	}
}

func TestWebSocketUpgradePassThrough(t *testing.T) {
	gotHead := make(chan http.Header, 1)
	be := newBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			w.Header().Set("Upgrade", "websocket") // must not leak to the client
			io.WriteString(w, "plain")
			return
		}
		gotHead <- r.Header.Clone()
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nhello-from-backend")
		buf := make([]byte, 4096)
		for { // echo until the client closes
			n, err := brw.Read(buf)
			if n > 0 {
				if _, werr := conn.Write(bytes.ToUpper(buf[:n])); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}))
	tp := startProxy(t, []string{hostPort(be.URL)}, nil)

	c := dialProxy(t, tp.Addr)
	c.write("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	head := c.readRawHead()
	if !strings.HasPrefix(head, "HTTP/1.1 101 ") || !strings.Contains(head, "Upgrade: websocket\r\n") ||
		!strings.Contains(head, "Connection: Upgrade\r\n") || !strings.Contains(head, "Sec-Websocket-Accept: ") && !strings.Contains(head, "Sec-WebSocket-Accept: ") {
		t.Fatalf("upgrade response head:\n%s", head)
	}
	h := <-gotHead
	if h.Get("Sec-Websocket-Key") != "dGhlIHNhbXBsZSBub25jZQ==" || !strings.EqualFold(h.Get("Connection"), "Upgrade") {
		t.Errorf("backend saw %v", h)
	}
	greet := make([]byte, len("hello-from-backend"))
	if _, err := io.ReadFull(c.br, greet); err != nil || string(greet) != "hello-from-backend" {
		t.Fatalf("greeting %q %v", greet, err)
	}
	for i, msg := range []string{"ping", "some more bytes", strings.Repeat("x", 3000)} {
		c.write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c.br, got); err != nil || string(got) != strings.ToUpper(msg) {
			t.Fatalf("message %d: %q %v", i, got, err)
		}
	}
	// Half-close: the backend sees EOF and closes; so does the client side.
	c.c.(*net.TCPConn).CloseWrite()
	if !c.closed(3 * time.Second) {
		t.Error("tunnel not torn down after both sides closed")
	}

	t.Run("Upgrade refused by backend stays HTTP", func(t *testing.T) {
		c := dialProxy(t, tp.Addr)
		c.write("GET /plain HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
		head := c.readRawHead()
		if !strings.HasPrefix(head, "HTTP/1.1 200 ") || strings.Contains(head, "Upgrade") {
			t.Errorf("head:\n%s", head)
		}
	})
}

func TestHopByHopAndForwardedHeaders(t *testing.T) {
	be := newRawBackend(t, func(head []byte) ([]byte, bool) {
		return []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Resp-Hop\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-Resp-Hop: secret\r\n" +
			"X-Resp-Keep: yes\r\n\r\nok"), false
	})
	const spoofed = "GET /p?q=1 HTTP/1.1\r\nHost: app.example:8080\r\nConnection: keep-alive, X-Hop-A\r\nKeep-Alive: timeout=5\r\n" +
		"Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c\r\nX-Hop-A: secret\r\n" +
		"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nX-Keep: yes\r\n\r\n"

	t.Run("untrusted peer", func(t *testing.T) {
		tp := startProxy(t, []string{be.Addr()}, nil)
		c := dialProxy(t, tp.Addr)
		c.write(spoofed)
		head := c.readRawHead()
		for _, bad := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "TE", "Trailer", "Upgrade", "X-Resp-Hop"} {
			for _, n := range headerNames([]byte(head)) {
				if strings.EqualFold(n, bad) {
					t.Errorf("response to client carries hop-by-hop %q:\n%s", n, head)
				}
			}
		}
		if headerValue([]byte(head), "X-Resp-Keep") != "yes" || headerValue([]byte(head), "Content-Length") != "2" {
			t.Errorf("end-to-end response fields lost:\n%s", head)
		}
		io.CopyN(io.Discard, c.br, 2)

		heads := be.Heads()
		got := heads[len(heads)-1]
		names := headerNames(got)
		for _, bad := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade", "X-Hop-A"} {
			for _, n := range names {
				if strings.EqualFold(n, bad) {
					t.Errorf("backend got hop-by-hop %q:\n%s", n, got)
				}
			}
		}
		want := map[string]string{
			"Host": "app.example:8080", "X-Keep": "yes", "X-Forwarded-For": "127.0.0.1",
			"X-Forwarded-Proto": "http", "X-Forwarded-Host": "app.example:8080",
		}
		for k, v := range want {
			if g := headerValue(got, k); g != v {
				t.Errorf("backend %s = %q, want %q\n%s", k, g, v, got)
			}
		}
		for _, k := range []string{"Host", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
			if n := strings.Count(strings.ToLower(string(got)), "\r\n"+strings.ToLower(k)+":"); n != 1 {
				t.Errorf("backend got %d %s fields:\n%s", n, k, got)
			}
		}
		if !strings.HasPrefix(string(got), "GET /p?q=1 HTTP/1.1\r\n") {
			t.Errorf("request line: %q", strings.SplitN(string(got), "\r\n", 2)[0])
		}
	})

	t.Run("trusted peer extends the chain", func(t *testing.T) {
		tp := startProxy(t, []string{be.Addr()}, map[string]any{"trusted_proxies": []string{"127.0.0.0/8"}})
		c := dialProxy(t, tp.Addr)
		c.do("GET", "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.7, 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n"+
			"X-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\n\r\n")
		heads := be.Heads()
		got := heads[len(heads)-1]
		want := map[string]string{
			"X-Forwarded-For":   "203.0.113.7, 10.0.0.1, 10.0.0.2, 127.0.0.1",
			"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example", "Host": "h",
		}
		for k, v := range want {
			if g := headerValue(got, k); g != v {
				t.Errorf("backend %s = %q, want %q", k, g, v)
			}
		}
	})
}

func TestAbsoluteFormTarget(t *testing.T) {
	be := newRawBackend(t, func([]byte) ([]byte, bool) { return okResponse("ok"), false })
	tp := startProxy(t, []string{be.Addr()}, nil)
	c := dialProxy(t, tp.Addr)
	for _, tc := range []struct{ target, line, host string }{
		{"http://api.example/v1?x=2", "GET /v1?x=2 HTTP/1.1", "api.example"},
		{"http://api.example:81", "GET / HTTP/1.1", "api.example:81"},
		{"http://api.example?x", "GET /?x HTTP/1.1", "api.example"},
	} {
		resp, _ := c.do("GET", "GET "+tc.target+" HTTP/1.1\r\nHost: ignored.example\r\n\r\n")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", tc.target, resp.StatusCode)
		}
		heads := be.Heads()
		got := heads[len(heads)-1]
		if l := strings.SplitN(string(got), "\r\n", 2)[0]; l != tc.line || headerValue(got, "Host") != tc.host {
			t.Errorf("%s: backend got %q Host %q", tc.target, l, headerValue(got, "Host"))
		}
	}
}

func TestPipelinedRequests(t *testing.T) {
	be := newBackend(t, http.HandlerFunc(echoHandler))
	tp := startProxy(t, []string{hostPort(be.URL)}, nil)
	c := dialProxy(t, tp.Addr)
	// Three requests in one write, the second with a body, the last asking
	// to close: answered in order, then the connection closes.
	c.write("GET /1 HTTP/1.1\r\nHost: h\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody" +
		"GET /3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
	for i, want := range []struct {
		method, len string
		close       bool
	}{{"GET", "0", false}, {"POST", "4", false}, {"GET", "0", true}} {
		resp, _ := c.read(want.method)
		if resp.StatusCode != 200 || resp.Header.Get("X-Method") != want.method || resp.Header.Get("X-Len") != want.len || resp.Close != want.close {
			t.Fatalf("response %d: %d %s len %s close %v", i, resp.StatusCode, resp.Header.Get("X-Method"), resp.Header.Get("X-Len"), resp.Close)
		}
	}
	if !c.closed(2 * time.Second) {
		t.Error("connection open after Connection: close")
	}
}
