// Command benchtool is a small helper for bench/run.sh. It only ever talks to
// the address it is given (run.sh passes 127.0.0.1 addresses).
//
//	benchtool probe -url URL [-timeout 10s]
//	    GET URL until it answers 200 (exit 0) or the timeout passes (exit 1).
//	    An https URL's certificate is not verified (the bench's is self-signed).
//
//	benchtool idle -addr HOST:PORT [-n 10000] [-request=true] [-par 128]
//	    Opens n TCP connections to addr; on each (if -request) sends one
//	    keep-alive "GET /" and reads the whole response, then leaves the
//	    connection idle. Prints "ready OPENED FAILED" once all are open and
//	    then waits. On SIGUSR1 (or SIGTERM/SIGINT) it checks how many
//	    connections the server still holds open, prints "alive N", closes
//	    everything and exits. It gives up by itself after -max-hold.
//
//	benchtool tlsload -addr HOST:PORT [-c 32] [-d 10s] [-path /]
//	    W6: a full TLS 1.3 handshake per request (see tlsload.go).
//
//	benchtool serve -addr HOST:PORT
//	    A backend that answers 200 "ok" (bench/testssl.sh).
//
//	benchtool sslcheck -json FILE
//	    Judges testssl.sh's JSON output (see sslcheck.go); exit 1 on a finding.
package main

import (
	"bufio"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool probe|idle|tlsload|serve|sslcheck [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "probe":
		os.Exit(probe(os.Args[2:]))
	case "idle":
		os.Exit(idle(os.Args[2:]))
	case "tlsload":
		os.Exit(tlsload(os.Args[2:]))
	case "serve":
		os.Exit(serve(os.Args[2:]))
	case "sslcheck":
		os.Exit(sslcheck(os.Args[2:]))
	default:
		fmt.Fprintln(os.Stderr, "unknown subcommand", os.Args[1])
		os.Exit(2)
	}
}

func probe(args []string) int {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	url := fs.String("url", "", "URL to GET")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after")
	_ = fs.Parse(args)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // self-signed bench certificate; loopback only
	}}
	deadline := time.Now().Add(*timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Get(*url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return 0
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintln(os.Stderr, "probe failed:", last)
	return 1
}

func idle(args []string) int {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	addr := fs.String("addr", "", "host:port to connect to")
	n := fs.Int("n", 10000, "connections to open")
	par := fs.Int("par", 128, "connections opened in parallel")
	request := fs.Bool("request", true, "send one keep-alive GET / on each connection before leaving it idle")
	maxHold := fs.Duration("max-hold", 5*time.Minute, "exit by itself after holding this long")
	_ = fs.Parse(args)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)

	conns := make([]net.Conn, *n)
	var failed atomic.Int64
	var firstErr atomic.Value
	sem := make(chan struct{}, *par)
	var wg sync.WaitGroup
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\nUser-Agent: benchtool\r\n\r\n")
	for i := 0; i < *n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := openOne(*addr, *request, req)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			conns[i] = c
		}(i)
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		fmt.Fprintln(os.Stderr, "first error:", e)
	}
	fmt.Printf("ready %d %d\n", int64(*n)-failed.Load(), failed.Load())

	select {
	case <-sigs:
	case <-time.After(*maxHold):
		fmt.Fprintln(os.Stderr, "max-hold reached")
	}
	signal.Reset() // a second signal ends the process at once

	alive := 0
	for _, c := range conns {
		if c != nil && stillOpen(c) {
			alive++
		}
	}
	fmt.Printf("alive %d\n", alive)
	return 0 // exiting closes the connections
}

// stillOpen reports whether the peer has not closed c, without blocking:
// a non-blocking MSG_PEEK read returns EAGAIN on an open idle connection and
// 0 bytes (EOF) or an error once the server has closed it.
func stillOpen(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	buf := make([]byte, 1)
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case errors.Is(err, syscall.EAGAIN):
			open = true
		case err == nil && n > 0:
			open = true // unexpected data, but the connection is open
		}
		return true // never wait for readiness
	})
	return open
}

func openOne(addr string, request bool, req []byte) (net.Conn, error) {
	var c net.Conn
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	if !request {
		return c, nil
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close || resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, fmt.Errorf("response %s close=%v", resp.Status, resp.Close)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}
