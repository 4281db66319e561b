package h1

import (
	"errors"
	"os"
	"testing"
	"time"

	"fulcrum/internal/testutil"
)

// A shorter inactivity timeout armed after a longer deadline takes effect at
// once: the earlier deadline must not keep a connection open past it.
func TestTimedConnShorterTimeoutReplacesLongerDeadline(t *testing.T) {
	_, server := testutil.TCPPair(t)
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
	client, server := testutil.TCPPair(t)
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

// Written counts what was written, successfully, through Write.
func TestTimedConnCountsWrites(t *testing.T) {
	client, server := testutil.TCPPair(t)
	tc := &TimedConn{Conn: server, WriteTimeout: time.Second}
	for _, s := range []string{"hello", ", ", "world"} {
		if _, err := tc.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if tc.Written != 12 {
		t.Errorf("Written = %d after 12 bytes", tc.Written)
	}
	client.Close()
	server.Close()
	if n, err := tc.Write([]byte("more")); err == nil || tc.Written != 12+int64(n) {
		t.Errorf("write on a closed conn: n=%d err=%v, Written %d", n, err, tc.Written)
	}
}
