package testutil

import (
	"io"
	"net"
	"testing"
	"time"
)

// TCPPair returns both ends of a fresh loopback TCP connection, closed at
// cleanup.
func TCPPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// ClosedAddr returns a loopback host:port that was free a moment ago and has
// nothing listening: connections to it are refused.
func ClosedAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Exchange connects to addr from the loopback address local ("" for any),
// sends raw, which must ask the server to close, and returns everything the
// server wrote back before closing. The whole exchange is bounded by 10 s.
func Exchange(tb testing.TB, addr, local, raw string) string {
	tb.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		tb.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// WaitListening waits up to 10 s until addr accepts connections.
func WaitListening(tb testing.TB, addr string) {
	tb.Helper()
	WaitFor(tb, 10*time.Second, addr+" listening", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}
