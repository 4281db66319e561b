package proxy_test

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// tinyBackend is a raw-TCP keep-alive origin answering every request with a
// fixed tiny response. It does not allocate per request, so a benchmark's
// allocs/op are the proxy's (and the client's, which does not allocate
// either).
type tinyBackend struct {
	ln net.Listener
	wg sync.WaitGroup
	mu sync.Mutex
	cs []net.Conn
}

var tinyResponse = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")

func newTinyBackend(tb testing.TB) *tinyBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	b := &tinyBackend{ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.cs = append(b.cs, c)
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				buf := make([]byte, 16<<10)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for { // answer every complete head (no bodies here)
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(tinyResponse); err != nil {
							return
						}
						n = copy(buf, buf[i+4:n])
					}
					if n == len(buf) {
						return
					}
				}
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		for _, c := range b.cs {
			c.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

// benchClient does keep-alive GETs on one raw connection without allocating.
type benchClient struct {
	c   net.Conn
	req []byte
	buf []byte
}

func newBenchClient(tb testing.TB, addr string) *benchClient {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &benchClient{
		c: c,
		req: []byte("GET /bench?x=1 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: fulcrum-bench\r\n" +
			"Accept: */*\r\nCookie: session=abcdef0123456789\r\n\r\n"),
		buf: make([]byte, 4096),
	}
}

// get sends one request and reads one response with a 2-byte body.
func (bc *benchClient) get() error {
	if _, err := bc.c.Write(bc.req); err != nil {
		return err
	}
	n := 0
	for {
		m, err := bc.c.Read(bc.buf[n:])
		if err != nil {
			return err
		}
		n += m
		if i := bytes.Index(bc.buf[:n], []byte("\r\n\r\n")); i >= 0 && n >= i+4+2 {
			if !bytes.HasPrefix(bc.buf, []byte("HTTP/1.1 200 ")) || n != i+6 {
				return &net.OpError{Op: "bench", Err: errBadResponse(string(bc.buf[:n]))}
			}
			return nil
		}
	}
}

type errBadResponse string

func (e errBadResponse) Error() string {
	return "unexpected response: " + strings.ToValidUTF8(string(e), "?")
}

// BenchmarkProxyGET measures one keep-alive GET round trip through fulcrum:
// client -> proxy -> pooled backend connection -> proxy -> client, all on
// loopback. allocs/op covers the whole process (proxy, metrics, client and
// backend; the latter two do not allocate).
func BenchmarkProxyGET(b *testing.B) {
	be := newTinyBackend(b)
	tp := startProxy(b, []string{be.ln.Addr().String()}, nil)
	bc := newBenchClient(b, tp.Addr)
	if err := bc.get(); err != nil { // warm up: dial the backend once
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := bc.get(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProxyGETRequestID is BenchmarkProxyGET with request_id on (the
// default, which BenchmarkProxyGET also runs with) and off: the cost of
// generating X-Request-Id and sending it to the backend. Measured on the
// shared 2-vCPU machine, medians of 8 interleaved runs of 20,000 requests
// (±20% run to run): before request IDs 55.0 µs/op, request_id=true 55.4,
// request_id=false 54.7, all 0 allocs/op; the difference is below the
// noise. Generating an ID alone is about 50 ns (requestid's BenchmarkAppend).
func BenchmarkProxyGETRequestID(b *testing.B) {
	for _, on := range []bool{true, false} {
		b.Run("request_id="+strconv.FormatBool(on), func(b *testing.B) {
			benchGET(b, map[string]any{"request_id": on}, nil)
		})
	}
}

// BenchmarkProxyGETAccessLog is BenchmarkProxyGET with access_log on, per
// format; the lines go to io.Discard, so this is the cost of building them
// (writing one is one write(2) more). 0 allocs/op in every format; the
// access log through slog it replaced took 10 (text) and 11 (json)
// allocations, 233-241 B per request. Building a line alone takes about
// 1-1.7 µs (accesslog's BenchmarkAppend), within the run-to-run noise of a
// 50 µs round trip here.
func BenchmarkProxyGETAccessLog(b *testing.B) {
	for _, f := range []string{"json", "text", "combined"} {
		b.Run(f, func(b *testing.B) {
			benchGET(b, map[string]any{"access_log": true, "access_log_format": f}, io.Discard)
		})
	}
}

func benchGET(b *testing.B, extra map[string]any, alog io.Writer) {
	be := newTinyBackend(b)
	tp := startProxyWith(b, proxySetup{Backends: []string{be.ln.Addr().String()}, Extra: extra, AccessLog: alog})
	bc := newBenchClient(b, tp.Addr)
	if err := bc.get(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := bc.get(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProxyGETParallel runs GOMAXPROCS clients, each on its own
// keep-alive connection.
func BenchmarkProxyGETParallel(b *testing.B) {
	be := newTinyBackend(b)
	tp := startProxy(b, []string{be.ln.Addr().String()}, nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		bc := newBenchClient(b, tp.Addr)
		for pb.Next() {
			if err := bc.get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkIdleConnMemory reports what an idle keep-alive client connection
// costs the proxy (heap and goroutine stacks, after a GC), the in-process
// counterpart of the harness's W4. Each iteration opens idleConns
// connections, sends one request on each, measures, and closes them.
func BenchmarkIdleConnMemory(b *testing.B) {
	const idleConns = 2000
	be := newTinyBackend(b)
	tp := startProxy(b, []string{be.ln.Addr().String()}, nil)
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
	var total float64
	for i := 0; i < b.N; i++ {
		before := proxyMemory()
		conns := make([]net.Conn, 0, idleConns)
		buf := make([]byte, 256)
		for j := 0; j < idleConns; j++ {
			c, err := net.Dial("tcp", tp.Addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			if n, err := c.Read(buf); err != nil || !bytes.Contains(buf[:n], []byte("200 OK")) {
				b.Fatalf("response: %q %v", buf[:n], err)
			}
		}
		waitFor(b, 10*time.Second, "idle connections to settle", func() bool {
			// On Linux idle connections give up their goroutines (the lot).
			return tp.Srv.Conns() == idleConns && (runtime.GOOS != "linux" || serveGoroutines() == 0)
		})
		total += float64(proxyMemory()-before) / idleConns
		for _, c := range conns {
			c.Close()
		}
		waitFor(b, 10*time.Second, "connections to be released", func() bool { return tp.Srv.Conns() == 0 })
	}
	b.ReportMetric(total/float64(b.N), "B/idle-conn")
}

// proxyMemory is the process's heap and stack in use after a GC. The test's
// own client sockets are included (a few hundred bytes each), so the figure
// is an upper bound of the proxy's share.
func proxyMemory() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}
