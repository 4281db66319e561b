//go:build linux

package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// acceptPair listens on loopback, dials, and accepts the connection as a
// Sock. send is written by the client before the accept.
func acceptPair(t *testing.T, send string) (client net.Conn, s *Sock) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a := NewAcceptor(ln)
	if a == nil {
		t.Fatal("no acceptor for a TCP listener")
	}
	defer a.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if send != "" {
		if _, err := client.Write([]byte(send)); err != nil {
			t.Fatal(err)
		}
	}
	s, err = a.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return client, s
}

func TestAcceptorOnlyTCP(t *testing.T) {
	ln, err := net.Listen("unix", t.TempDir()+"/s")
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	if NewAcceptor(ln) != nil {
		t.Error("an acceptor for a unix listener")
	}
}

// A connection whose request is there at accept and whose answer fits the
// socket buffer is served without ever entering Go's poller.
func TestSockServesWithoutPoller(t *testing.T) {
	client, s := acceptPair(t, "ping")
	if got := s.Peer(); got.String() != client.LocalAddr().String() {
		t.Errorf("peer %v, want %v", got, client.LocalAddr())
	}
	if got := s.RemoteAddr().String(); got != client.LocalAddr().String() {
		t.Errorf("RemoteAddr %v, want %v", got, client.LocalAddr())
	}
	if got := s.LocalAddr().String(); got != client.RemoteAddr().String() {
		t.Errorf("LocalAddr %v, want %v", got, client.RemoteAddr())
	}
	nodelay, err := syscall.GetsockoptInt(s.FD(), syscall.IPPROTO_TCP, syscall.TCP_NODELAY)
	if err != nil || nodelay == 0 {
		t.Errorf("TCP_NODELAY = %d, %v; want set", nodelay, err)
	}
	// Deadlines before any wait cost nothing and must not register.
	s.SetReadDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 16)
	// The bytes may still be on their way on a loaded machine: wait for
	// them through the poller only if they are not there yet.
	n, err := io.ReadAtLeast(s, buf, 4)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	registered := s.Registered()
	if _, err := s.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if !registered && s.Registered() {
		t.Error("a write that fit the buffer registered the socket")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "pong" {
		t.Errorf("client read %q, %v", got, err)
	}
}

// A read with nothing there registers the socket and then honours the
// deadline set before, as a net.Conn would.
func TestSockDeadlineAppliesOnceWaiting(t *testing.T) {
	_, s := acceptPair(t, "")
	s.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	_, err := s.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a deadline error", err)
	}
	if !s.Registered() {
		t.Error("a read that waited did not register the socket")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timed out after %v", d)
	}
	// RawConn reads wait in the poller too.
	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	calls := 0
	err = s.RawConn().Read(func(fd uintptr) bool { calls++; return false })
	if !errors.Is(err, os.ErrDeadlineExceeded) || calls == 0 {
		t.Errorf("raw read: %v after %d calls, want a deadline error", err, calls)
	}
}

// RawConn.Read calls the function on the bare descriptor and registers only
// when it asks to wait; the wait ends when the client sends.
func TestSockRawReadWaitsForData(t *testing.T) {
	client, s := acceptPair(t, "")
	buf := make([]byte, 8)
	n := 0
	go func() {
		time.Sleep(20 * time.Millisecond)
		client.Write([]byte("late"))
	}()
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	err := s.RawConn().Read(func(fd uintptr) bool {
		m, err := Read(fd, buf)
		if err == syscall.EAGAIN {
			return false
		}
		n = m
		return true
	})
	if err != nil || string(buf[:n]) != "late" {
		t.Fatalf("raw read %q, %v", buf[:n], err)
	}
}

// Kick, from another goroutine, ends a read waiting in the poller and one
// not yet registered alike, and never races with the owner's Close.
func TestSockKick(t *testing.T) {
	_, s := acceptPair(t, "")
	done := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	s.Kick()
	select {
	case err := <-done:
		if err != io.EOF {
			t.Errorf("read after Kick: %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Kick did not end the waiting read")
	}
	s.Close()
	s.Kick() // after Close: a no-op, not a shutdown of a reused number

	// Kicks racing with Close, many times (run with -race).
	for range 50 {
		_, s := acceptPair(t, "")
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() { defer wg.Done(); s.Kick() }()
		}
		s.Close()
		wg.Wait()
	}
}

// A write larger than the socket buffers waits in the poller (with its
// deadline) and delivers every byte.
func TestSockLargeWrite(t *testing.T) {
	client, s := acceptPair(t, "")
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<21) // 32 MiB: more than both buffers
	s.SetWriteDeadline(time.Now().Add(30 * time.Second))
	got := make(chan []byte, 1)
	go func() {
		time.Sleep(100 * time.Millisecond) // let the buffers fill
		b, _ := io.ReadAll(client)
		got <- b
	}()
	n, err := s.Write(data)
	if err != nil || n != len(data) {
		t.Fatalf("wrote %d, %v", n, err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, data) {
			t.Errorf("client got %d bytes, want %d, equal %v", len(b), len(data), bytes.Equal(b, data))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("client did not get the data")
	}
	if !s.Registered() {
		t.Error("a 32 MiB write never waited")
	}
}

// The wrapped form (what the proxy reads and writes through) works on a Sock.
func TestWrapSock(t *testing.T) {
	client, s := acceptPair(t, "hello")
	w := Wrap(s)
	if _, ok := w.(*Conn); !ok {
		t.Fatal("a Sock was not wrapped")
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(w, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := w.Write([]byte("world")); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "world" {
		t.Fatalf("client read %q, %v", buf, err)
	}
	if err := s.SetKeepAlive(60*time.Second, 15*time.Second, 4); err != nil {
		t.Fatal(err)
	}
	if v, _ := syscall.GetsockoptInt(s.FD(), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE); v != 1 {
		t.Errorf("SO_KEEPALIVE = %d", v)
	}
}
