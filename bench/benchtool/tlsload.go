package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// tlsload is W6's load generator: every request is a fresh TCP connection
// with a full TLS 1.3 handshake. wrk cannot be made to skip resumption, so
// the bench needs its own client. The client has no session cache and
// disables tickets, so a ticket the server sends is dropped and never
// offered back: every handshake is a full one (the tool checks DidResume).
// It does not verify the server's certificate (the bench's is self-signed),
// which keeps the load generator's own CPU cost per handshake down; the
// server's cost (key exchange, signature) is the same either way.
//
// Each of the -c workers loops until -d has passed: dial, handshake, send
// one "GET PATH" with Connection: close, read the whole response, close.
// The latency of a request runs from the dial to the last byte of the body.
// It prints key-value lines that bench/run.sh reads:
//
//	requests N      completed requests (status 200, whole body read)
//	errors N        failed attempts (dial, handshake, read, status != 200)
//	resumed N       handshakes the server resumed (0 unless something is wrong)
//	duration_s S    measured time
//	rps R           requests / duration
//	p50_ms, p90_ms, p99_ms, max_ms
//	first_error E   (only if there was one)
func tlsload(args []string) int {
	fs := flag.NewFlagSet("tlsload", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port of the TLS listener")
	conns := fs.Int("c", 32, "concurrent connections (one request each, one after the other)")
	dur := fs.Duration("d", 10*time.Second, "how long to run")
	path := fs.String("path", "/", "request path")
	sni := fs.String("sni", "bench.test", "server name sent in the ClientHello (empty: none)")
	curve := fs.String("curve", "x25519", "key exchange offered: x25519, p256 or default (Go's own list, which includes a post-quantum hybrid)")
	_ = fs.Parse(args)
	if *addr == "" || *conns < 1 {
		fmt.Println("usage: benchtool tlsload -addr HOST:PORT [-c 32] [-d 10s] [-path /] [-sni NAME] [-curve x25519]")
		return 2
	}
	cfg := &tls.Config{
		MinVersion:             tls.VersionTLS13,
		MaxVersion:             tls.VersionTLS13,
		ServerName:             *sni,
		InsecureSkipVerify:     true, // self-signed bench certificate; loopback only
		SessionTicketsDisabled: true,
		ClientSessionCache:     nil,
		NextProtos:             []string{"http/1.1"},
	}
	switch *curve {
	case "x25519":
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	case "p256":
		cfg.CurvePreferences = []tls.CurveID{tls.CurveP256}
	case "default":
	default:
		fmt.Println("unknown -curve", *curve)
		return 2
	}
	host := *sni
	if host == "" {
		host = "bench"
	}
	req := []byte("GET " + *path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: benchtool-tlsload\r\nConnection: close\r\n\r\n")

	type result struct {
		lat      []time.Duration
		errs     int
		resumed  int
		firstErr error
	}
	results := make([]result, *conns)
	start := time.Now()
	deadline := start.Add(*dur)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func(r *result) {
			defer wg.Done()
			br := bufio.NewReaderSize(nil, 4096)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resumed, err := oneTLSRequest(*addr, cfg, req, br)
				if err != nil {
					r.errs++
					if r.firstErr == nil {
						r.firstErr = err
					}
					time.Sleep(10 * time.Millisecond) // do not spin on a refused port
					continue
				}
				if resumed {
					r.resumed++
				}
				r.lat = append(r.lat, time.Since(t0))
			}
		}(&results[i])
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	errs, resumed := 0, 0
	var firstErr error
	for _, r := range results {
		all = append(all, r.lat...)
		errs += r.errs
		resumed += r.resumed
		if firstErr == nil {
			firstErr = r.firstErr
		}
	}
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(p * float64(len(all)-1))
		return float64(all[i].Microseconds()) / 1000
	}
	fmt.Printf("requests %d\nerrors %d\nresumed %d\nduration_s %.3f\nrps %.2f\n", len(all), errs, resumed,
		elapsed.Seconds(), float64(len(all))/elapsed.Seconds())
	fmt.Printf("p50_ms %.3f\np90_ms %.3f\np99_ms %.3f\nmax_ms %.3f\n", pct(0.50), pct(0.90), pct(0.99), pct(1))
	if firstErr != nil {
		fmt.Printf("first_error %v\n", firstErr)
	}
	if len(all) == 0 {
		return 1
	}
	return 0
}

// oneTLSRequest does one fresh connection: dial, full handshake, one GET,
// the whole response, close. It reports whether the handshake was resumed.
func oneTLSRequest(addr string, cfg *tls.Config, req []byte, br *bufio.Reader) (bool, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, err
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		return false, fmt.Errorf("handshake: %w", err)
	}
	st := c.ConnectionState()
	if st.Version != tls.VersionTLS13 {
		return false, fmt.Errorf("negotiated %s, not TLS 1.3", tls.VersionName(st.Version))
	}
	if _, err := c.Write(req); err != nil {
		return false, err
	}
	br.Reset(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false, fmt.Errorf("response: %w", err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, fmt.Errorf("body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %s", resp.Status)
	}
	return st.DidResume, nil
}
