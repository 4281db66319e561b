package h1

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (client, server net.Conn) {
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

// A shorter inactivity timeout armed after a longer deadline takes effect at
// once: the earlier deadline must not keep a connection open past it.
func TestTimedConnShorterTimeoutReplacesLongerDeadline(t *testing.T) {
	_, server := tcpPair(t)
	tc := &TimedConn{Conn: server}
	tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	tc.ArmRead(150 * time.Millisecond)
	start := time.Now()
	_, err := tc.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a timeout", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("timed out after %v; the 10 s deadline was kept instead of 150 ms", took)
	}
}

// A connection that keeps receiving data never hits its inactivity timeout.
func TestTimedConnActivityKeepsItOpen(t *testing.T) {
	client, server := tcpPair(t)
	tc := &TimedConn{Conn: server}
	tc.ArmRead(200 * time.Millisecond)
	buf := make([]byte, 1)
	for i := 0; i < 8; i++ { // 8 × 60 ms = 480 ms, beyond the 200 ms timeout
		time.Sleep(60 * time.Millisecond)
		if _, err := client.Write([]byte{'x'}); err != nil {
			t.Fatal(err)
		}
		if _, err := tc.Read(buf); err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
	}
}
