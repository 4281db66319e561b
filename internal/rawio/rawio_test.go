package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"fulcrum/internal/testutil"
)

func TestWrapOnlyTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Wrap(a) != a {
		t.Error("a net.Pipe was wrapped")
	}
	_, s := testutil.TCPPair(t)
	w := Wrap(s)
	if _, ok := w.(*Conn); ok != (runtime.GOOS == "linux") {
		t.Errorf("TCP conn wrapped: %v on %s", ok, runtime.GOOS)
	}
	if Unwrap(w) != s {
		t.Error("Unwrap does not give back the TCP conn")
	}
}

// A transfer far larger than the socket buffers makes both sides wait for
// readiness many times; every byte arrives in order.
func TestRoundTripLarge(t *testing.T) {
	c, s := testutil.TCPPair(t)
	wc, ws := Wrap(c), Wrap(s)
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	done := make(chan error, 1)
	go func() {
		n, err := ws.Write(data)
		if err == nil && n != len(data) {
			err = io.ErrShortWrite
		}
		ws.(interface{ CloseWrite() error }).CloseWrite()
		done <- err
	}()
	wc.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(wc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes, different from the %d sent", len(got), len(data))
	}
}

func TestReadEOFAndZeroLength(t *testing.T) {
	c, s := testutil.TCPPair(t)
	w := Wrap(s)
	if n, err := w.Read(nil); n != 0 || err != nil {
		t.Errorf("zero-length read: %d %v", n, err)
	}
	if n, err := w.Write(nil); n != 0 || err != nil {
		t.Errorf("zero-length write: %d %v", n, err)
	}
	c.Write([]byte("hi"))
	c.Close()
	buf := make([]byte, 10)
	w.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := w.Read(buf)
	if n != 2 || err != nil || string(buf[:2]) != "hi" {
		t.Fatalf("read: %d %v %q", n, err, buf[:n])
	}
	if n, err := w.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("after close: %d %v, want EOF", n, err)
	}
}

func TestReadDeadline(t *testing.T) {
	_, s := testutil.TCPPair(t)
	w := Wrap(s)
	w.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	start := time.Now()
	_, err := w.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want a deadline error", err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v is not a net.Error timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("deadline took %v", d)
	}
}

// A write whose peer is gone fails with an error (no hang, no crash).
func TestWriteToResetPeer(t *testing.T) {
	c, s := testutil.TCPPair(t)
	c.(*net.TCPConn).SetLinger(0)
	c.Close() // RST
	w := Wrap(s)
	w.SetWriteDeadline(time.Now().Add(5 * time.Second))
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = w.Write(make([]byte, 64<<10))
	}
	if err == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
	if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("error %v, want EPIPE or ECONNRESET", err)
	}
}

func TestReadFD(t *testing.T) {
	c, s := testutil.TCPPair(t)
	rc, err := s.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	var n int
	var rerr error
	rc.Read(func(fd uintptr) bool { n, rerr = Read(fd, buf); return true })
	if rerr != syscall.EAGAIN {
		t.Fatalf("empty socket: %d %v, want EAGAIN", n, rerr)
	}
	c.Write([]byte("abc"))
	rc.Read(func(fd uintptr) bool {
		n, rerr = Read(fd, buf)
		return rerr != syscall.EAGAIN
	})
	if rerr != nil || string(buf[:n]) != "abc" {
		t.Fatalf("read: %q %v", buf[:n], rerr)
	}
}
